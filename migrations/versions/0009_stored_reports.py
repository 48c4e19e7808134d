"""reports: stored_reports, the documents made when a period ends

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00

Why: the weekly, monthly and quarterly reports are made when their period ends
(app/reports/archive.py) and kept, one row per period, cut and format, so last quarter's
report is there on the first working day without anyone asking, on every API replica
(a table, not a folder of one machine). A quarter's four documents are ~0.5 MB.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("by", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_reports")),
        sa.UniqueConstraint("period", "by", "format", name=op.f("uq_stored_reports_period_by_format")),
    )
    op.create_index("ix_stored_reports_kind_first", "stored_reports", ["kind", "first"])


def downgrade() -> None:
    op.drop_index("ix_stored_reports_kind_first", table_name="stored_reports")
    op.drop_table("stored_reports")
