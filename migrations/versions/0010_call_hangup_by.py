"""calls.hangup_by: who ended the call (caller, agent, system)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:30:00

Why: on a real Asterisk the Hangup of a caller who leaves the menu or a queue says
Cause 0, so hangup_cause cannot tell a caller hanging up from the PBX ending the call.
The state machine now records who ended it from the events that say so (HangupRequest on
the caller's or an agent's leg, AgentComplete's Reason, QueueCallerAbandon, the menu's
hang-up). Rows written before this revision keep NULL: not known.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("hangup_by", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("hangup_by")
