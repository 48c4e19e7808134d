"""event log: call_events.data as json

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 02:30:00

Why: like ``raw`` in 0004, ``data`` (an event's normalised fields) is only ever read back
whole (call detail, restore, the live history's replay); no query looks inside it. As
``jsonb`` PostgreSQL decomposes every row on insert: a fifth of the server's time per
logged event (bench/ingest.py). ``json`` keeps the text as written, validated.

On PostgreSQL the type change rewrites call_events: on a large log run it in a quiet
hour. SQLite stores both types as text: nothing to do there.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "call_events",
            "data",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(astext_type=sa.Text()),
            existing_nullable=False,
            postgresql_using="data::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "call_events",
            "data",
            type_=postgresql.JSONB(astext_type=sa.Text()),
            existing_type=sa.JSON(),
            existing_nullable=False,
            postgresql_using="data::jsonb",
        )
