"""Read use cases over the call record: plain functions taking their session."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Call, CallEvent, QueueVisit


class BadCursor(ValueError):
    pass


def encode_cursor(started_at: datetime, call_id: int) -> str:
    raw = f"{started_at.isoformat()}|{call_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, ident = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(stamp), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not one this API gave out") from exc


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    queue: str | None = None
    outcome: str | None = None
    agent: str | None = None
    taken_by: str | None = None  # an agent answered one of the call's queue visits
    hangup_by: str | None = None  # caller | agent | system
    pbx: str | None = None  # the PBX the call came through


async def list_calls(
    session: AsyncSession, flt: CallFilter, limit: int, cursor: str | None
) -> tuple[Sequence[Call], str | None]:
    """Calls newest first (by start, then id), keyset-paginated."""
    stmt = select(Call)
    if flt.since is not None:
        stmt = stmt.where(Call.started_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(Call.started_at < flt.until)
    if flt.queue is not None:
        stmt = stmt.where(Call.queue == flt.queue)
    if flt.outcome is not None:
        stmt = stmt.where(Call.outcome == flt.outcome)
    if flt.agent is not None:
        stmt = stmt.where(Call.agent == flt.agent)
    if flt.hangup_by is not None:
        stmt = stmt.where(Call.hangup_by == flt.hangup_by)
    if flt.pbx is not None:
        stmt = stmt.where(Call.pbx == flt.pbx)
    if flt.taken_by is not None:
        stmt = stmt.where(
            exists(
                select(QueueVisit.id).where(
                    QueueVisit.pbx == Call.pbx,
                    QueueVisit.linkedid == Call.linkedid,
                    QueueVisit.agent == flt.taken_by,
                )
            )
        )
    if cursor is not None:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(Call.started_at < at, and_(Call.started_at == at, Call.id < ident)))
    stmt = stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit + 1)
    rows = (await session.execute(stmt)).scalars().all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.started_at, last.id)
    return rows, next_cursor


async def call_and_visits(
    session: AsyncSession, call_id: int
) -> tuple[Call, Sequence[QueueVisit]] | None:
    """A call row and its queue visits in order, or None for an unknown id."""
    call = await session.get(Call, call_id)
    if call is None:
        return None
    visits = (
        (
            await session.execute(
                select(QueueVisit)
                .where(QueueVisit.pbx == call.pbx, QueueVisit.linkedid == call.linkedid)
                .order_by(QueueVisit.seq)
            )
        )
        .scalars()
        .all()
    )
    return call, visits


async def call_ids_by_linkedid(session: AsyncSession, linkedid: str) -> list[tuple[int, str]]:
    """The rows (id, pbx) of the call with this Asterisk linkedid (one per PBX)."""
    rows = await session.execute(
        select(Call.id, Call.pbx).where(Call.linkedid == linkedid).order_by(Call.id)
    )
    return [(int(i), str(p)) for i, p in rows.all()]


async def get_call(
    session: AsyncSession, call_id: int
) -> tuple[Call, Sequence[QueueVisit], Sequence[CallEvent]] | None:
    found = await call_and_visits(session, call_id)
    if found is None:
        return None
    call, visits = found
    events = (
        (
            await session.execute(
                select(CallEvent)
                .where(CallEvent.pbx == call.pbx, CallEvent.linkedid == call.linkedid)
                .order_by(CallEvent.at, CallEvent.id)
            )
        )
        .scalars()
        .all()
    )
    return call, visits, events
