"""Call registration (henvendelsesregistrering): one row per (call, agent) in
``dispositions``, written by the agent who took the call. Plain functions taking a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Agent, Disposition


async def team_of(session: AsyncSession, agent_id: str) -> str | None:
    return (
        await session.execute(select(Agent.team).where(Agent.id == agent_id))
    ).scalar_one_or_none()


async def put_disposition(
    session: AsyncSession,
    *,
    call_id: int,
    agent_id: str,
    queue: str | None,
    reason: str,
    resolved: bool,
    transferred_to: str | None,
    note: str | None,
    now: datetime,
) -> tuple[Disposition, bool]:
    """Create or replace the registration of ``agent_id`` for the call; (row, created)."""
    row = (
        await session.execute(
            select(Disposition).where(
                Disposition.call_id == call_id, Disposition.agent_id == agent_id
            )
        )
    ).scalar_one_or_none()
    created = row is None
    if row is None:
        row = Disposition(call_id=call_id, agent_id=agent_id, created_at=now)
        session.add(row)
    row.queue = queue
    row.reason = reason
    row.resolved = resolved
    row.transferred_to = transferred_to
    row.note = note
    row.updated_at = now
    await session.flush()
    return row, created


async def dispositions_of(session: AsyncSession, call_id: int) -> Sequence[Disposition]:
    return (
        (
            await session.execute(
                select(Disposition).where(Disposition.call_id == call_id).order_by(Disposition.id)
            )
        )
        .scalars()
        .all()
    )
