"""A day's figures from the database: from the stored visits (how a restarted service
rebuilds "today") and recomputed from the event log alone (replayed through a fresh
state machine). Both count with ``app.acd.kpi``, as the live path does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.kpi import CallFacts, CountedVisit, DayBook, KpiConfig, call_facts, day_bounds
from app.acd.queues import QueueCatalogue
from app.acd.replay import Replay
from app.store.models import Call, CallEvent, QueueVisit

# A call's events can start this long before its visit's day (stale calls close after 12 h).
REPLAY_MARGIN = timedelta(hours=12)


async def visits_of_day(
    sessions: async_sessionmaker[AsyncSession], pbx: str, day: date, tz: ZoneInfo
) -> list[QueueVisit]:
    """The decided visits of one local day, in the order they ended (oldest first)."""
    start, end = day_bounds(day, tz)
    stmt = (
        select(QueueVisit)
        .where(
            QueueVisit.pbx == pbx,
            QueueVisit.entered_at >= start,
            QueueVisit.entered_at < end,
            QueueVisit.outcome.is_not(None),
        )
        .order_by(QueueVisit.id)
    )
    async with sessions() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return sorted(rows, key=lambda r: (r.ended_at or r.left_at or r.entered_at, r.id))


async def calls_of_day(
    sessions: async_sessionmaker[AsyncSession], pbx: str, day: date, tz: ZoneInfo
) -> list[CallFacts]:
    """The decided calls of one local day as the centre counts them (``call_facts``): the
    calls whose first queue entry was that day, from all their stored visits."""
    start, end = day_bounds(day, tz)
    stmt = (
        select(QueueVisit, Call.ended_at)
        .join(Call, (Call.pbx == QueueVisit.pbx) & (Call.linkedid == QueueVisit.linkedid))
        .where(
            Call.pbx == pbx,
            Call.started_at >= start - REPLAY_MARGIN,
            Call.started_at < end,
            Call.queue_entered_at >= start,
            Call.queue_entered_at < end,
        )
        .order_by(QueueVisit.linkedid, QueueVisit.seq)
    )
    async with sessions() as session:
        rows = (await session.execute(stmt)).all()
    by_call: dict[str, list[QueueVisit]] = {}
    ended: dict[str, bool] = {}
    for visit, ended_at in rows:
        by_call.setdefault(visit.linkedid, []).append(visit)
        ended[visit.linkedid] = ended_at is not None
    out = []
    for linkedid, visits in by_call.items():
        facts = call_facts(visits, ended[linkedid])
        if facts is not None:
            out.append(facts)
    return out


def book_of_visits(visits: Sequence[CountedVisit], tz: ZoneInfo, config: KpiConfig) -> DayBook:
    book = DayBook(tz, config, keep_days=10_000)
    book.feed(visits)
    return book


async def replay_day(
    sessions: async_sessionmaker[AsyncSession],
    pbx: str,
    day: date,
    tz: ZoneInfo,
    config: KpiConfig,
    catalogue: QueueCatalogue | None = None,
    batch: int = 2000,
) -> Replay:
    """The day recomputed from ``call_events`` alone: every event of the PBX around the
    day, in the order the service applied them, through a fresh ``CallCentre``."""
    start, end = day_bounds(day, tz)
    replay = Replay.new(pbx, DayBook(tz, config, keep_days=10_000), catalogue)
    async for part in logged_events(sessions, pbx, start - REPLAY_MARGIN, end + REPLAY_MARGIN):
        replay.apply_rows(part)
    return replay


async def logged_events(
    sessions: async_sessionmaker[AsyncSession],
    pbx: str,
    since: datetime,
    until: datetime,
    batch: int = 2000,
) -> AsyncIterator[Sequence[Any]]:
    """The PBX's logged events in [since, until), in the order the service applied them
    (the log's), ``batch`` rows at a time, as rows with ``kind, at, pbx, event_key,
    linkedid, uniqueid, data`` (what ``Replay`` takes)."""
    e = CallEvent
    # ``data`` as the text stored, decoded by the replay with orjson (the driver's json
    # codec took a fifth of a replay).
    stmt = (
        select(
            e.kind,
            e.at,
            e.pbx,
            e.event_key,
            e.linkedid,
            e.uniqueid,
            cast(e.data, Text).label("data"),
        )
        .where(e.pbx == pbx, e.at >= since, e.at < until)
        .order_by(e.id)
        .execution_options(yield_per=batch)
    )
    async with sessions() as session:
        result = await session.stream(stmt)
        async for part in result.partitions(batch):
            yield part
