"""callback idempotency, drop calls.first_queue

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:19:14.487914
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table, PostgreSQL alters it in place.
    with op.batch_alter_table("callbacks") as batch:
        batch.create_unique_constraint(op.f("uq_callbacks_pbx_linkedid"), ["pbx", "linkedid"])
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("first_queue")


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("first_queue", sa.String(length=64), nullable=True))
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_constraint(op.f("uq_callbacks_pbx_linkedid"), type_="unique")
