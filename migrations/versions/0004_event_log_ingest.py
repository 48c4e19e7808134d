"""event log ingest: call_events.raw as json, drop the unused kind index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:00:00

Why: ``raw`` is the archive of what the PBX said (some 35 headers an AMI event) and is
only ever read back whole; as ``jsonb`` PostgreSQL decomposes every row on insert, a
third of the server's time per logged event. ``json`` keeps the text (validated) as it
came. ``ix_call_events_kind_at`` served no query (every reader selects by PBX and
linkedid or by time) and was one more index on the hottest table.

On PostgreSQL the type change rewrites call_events: on a large log run it in a quiet
hour. SQLite stores both types as text: nothing to do there but the index.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_call_events_kind_at", table_name="call_events")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "call_events",
            "raw",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(astext_type=sa.Text()),
            existing_nullable=True,
            postgresql_using="raw::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "call_events",
            "raw",
            type_=postgresql.JSONB(astext_type=sa.Text()),
            existing_type=sa.JSON(),
            existing_nullable=True,
            postgresql_using="raw::jsonb",
        )
    op.create_index("ix_call_events_kind_at", "call_events", ["kind", "at"], unique=False)
