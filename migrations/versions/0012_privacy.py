"""privacy: a message task's recording in its own column; agent states found by time

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-07 07:30:00

Why: a voice message's file was known only from the task's ``note``, which closing the
task with a note overwrote: the file could then be neither served, nor deleted when its
retention ended, nor found for a citizen's erasure (``callbacks.recording``; older tasks'
notes that name a recording are copied over). The purge deletes agent state changes by
time, which needs an index on ``at`` alone.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("recording", sa.Text(), nullable=True))
    op.execute(
        "UPDATE callbacks SET recording = note "
        "WHERE kind = 'message' AND linkedid IS NOT NULL AND note LIKE '/%'"
    )
    op.create_index(
        op.f("ix_agent_state_changes_at"), "agent_state_changes", ["at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_state_changes_at"), table_name="agent_state_changes")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("recording")
