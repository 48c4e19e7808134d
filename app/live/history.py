"""A day's figures from the database: from the stored visits (how a restarted service
rebuilds "today") and recomputed from the event log alone (replayed through a fresh
state machine). Both count with ``app.acd.kpi``, as the live path does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.kpi import CountedVisit, DayBook, KpiConfig, day_bounds
from app.acd.queues import QueueCatalogue
from app.acd.replay import Replay
from app.store.models import CallEvent, QueueVisit

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
    stmt = (
        select(CallEvent)
        .where(
            CallEvent.pbx == pbx,
            CallEvent.at >= start - REPLAY_MARGIN,
            CallEvent.at < end + REPLAY_MARGIN,
        )
        .order_by(CallEvent.id)
        .execution_options(yield_per=batch)
    )
    async with sessions() as session:
        result = await session.stream(stmt)
        async for part in result.scalars().partitions(batch):
            replay.apply_rows(part)
    return replay
