"""pbx leases: one owner per PBX, elected, and a fence on its writes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:40:00

Why: two service processes on one PBX both connected to it and both wrote, so the last
writer won (outcomes overwritten, call-backs dialled twice). Every process may own a PBX,
but only the holder of its lease row does; a takeover raises ``epoch``. On PostgreSQL,
``acd_fence(pbx, epoch)`` is called first in every transaction the owner writes: it takes
a share lock on the lease row (a takeover waits for a write under way) and raises
SQLSTATE ``AC001`` when the epoch has moved on, so an owner that hung and came back after
its lease was taken writes nothing (app/ha/lease.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FENCE = """
CREATE OR REPLACE FUNCTION acd_fence(p_pbx text, p_epoch bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- A fenced transaction left open by a paused owner must not hold the row's share
    -- lock (and so a takeover) for long: 2 s idle in it and the server ends it.
    PERFORM set_config('idle_in_transaction_session_timeout', '2000', true);
    PERFORM 1 FROM pbx_leases WHERE pbx = p_pbx AND epoch = p_epoch FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stale lease: pbx % epoch % is no longer the owner', p_pbx, p_epoch
            USING ERRCODE = 'AC001';
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "pbx_leases",
        sa.Column("pbx", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handovers", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("pbx", name=op.f("pk_pbx_leases")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FENCE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS acd_fence(text, bigint)")
    op.drop_table("pbx_leases")
