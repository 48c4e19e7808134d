"""dead letters: records the database refused, set aside by the event writer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 05:00:00

Why: one row PostgreSQL refused (a value longer than its column, a number out of its
range, a constraint) made the writer retry its batch for ever, so the event log stopped
for good (issue 14). The writer now isolates such rows, writes the others, and keeps the
refused ones here with the error, counted by ``acd_store_dead_letters_total``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("pbx", sa.Text(), nullable=True),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("sqlstate", sa.String(length=5), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("digest", name=op.f("uq_dead_letters_digest")),
    )
    op.create_index("ix_dead_letters_at", "dead_letters", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dead_letters_at", table_name="dead_letters")
    op.drop_table("dead_letters")
