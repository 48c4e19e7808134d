"""reports: per-day tallies (report_days, report_rollup)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-10 09:00:00

Why: reports over weeks, quarters and years read one row per day and group instead of
every call (a year is ~389,000), and keep working when old calls are purged. The rows are
counted from the detail by app/reports/rollup.py (a day is counted until it is final) and
rebuilt by ``acd recompute``; nothing on the write path of a call changes.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_days")),
    )
    op.create_table(
        "report_rollup",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "day", "key", "slot", name=op.f("pk_report_rollup")),
    )


def downgrade() -> None:
    op.drop_table("report_rollup")
    op.drop_table("report_days")
