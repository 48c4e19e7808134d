"""What a restarted service reads back before its first resync: the logged events of the
calls that were still up when the previous process stopped (``calls.ended_at`` unset),
so the state machine continues them with their keys, visits and visit numbering instead
of starting them afresh (which would overwrite the stored visits), and closes the ones
the PBX no longer has as ``data_gap``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd import events as ev
from app.acd.replay import UnknownEvent, event_of_row
from app.store.models import Call, CallEvent, DataGap

log = logging.getLogger(__name__)

# Calls that started longer than this before the log's newest event are not restored (the
# state machine closes calls it has not heard of for 12 hours as stale anyway); bounds the
# read on a long-running log. The window is measured back from the PBX's newest logged
# event, not from the wall clock: a service that was down for a week still finds the calls
# its previous run left open, and closes them as data gaps instead of leaving them open in
# the log for ever (and a replayed or old log behaves the same whatever today's date is).
OPEN_WITHIN = timedelta(days=2)
MAX_CALLS = 5000


@dataclass(frozen=True, slots=True)
class OpenCalls:
    events: list[ev.DomainEvent]  # of every open call, in the log's order
    last_event_at: datetime | None  # the PBX's newest logged event
    open_gap_from: datetime | None  # a gap the previous process opened (it stopped)


async def open_calls(
    sessions: async_sessionmaker[AsyncSession],
    pbx: str,
    now: datetime,
    *,
    within: timedelta = OPEN_WITHIN,
    max_calls: int = MAX_CALLS,
) -> OpenCalls:
    async with sessions() as session:
        last_at = (
            await session.execute(select(func.max(CallEvent.at)).where(CallEvent.pbx == pbx))
        ).scalar_one_or_none()
        # Never from a stamp ahead of the PBX's time now: one row stamped with a clock
        # that was wrong (a standby's menu before it learnt the PBX's clock) would put the
        # window past every open call.
        since = (min(last_at, now) if last_at is not None else now) - within
        linkedids = (
            (
                await session.execute(
                    select(Call.linkedid)
                    .where(
                        Call.pbx == pbx,
                        Call.started_at >= since,
                        Call.ended_at.is_(None),
                    )
                    .order_by(Call.started_at.desc())
                    .limit(max_calls)
                )
            )
            .scalars()
            .all()
        )
        open_gap = (
            await session.execute(
                select(func.max(DataGap.gap_from)).where(
                    DataGap.pbx == pbx, DataGap.gap_to.is_(None)
                )
            )
        ).scalar_one_or_none()
        events: list[ev.DomainEvent] = []
        skipped = 0
        if linkedids:
            rows = (
                (
                    await session.execute(
                        select(CallEvent)
                        .where(CallEvent.pbx == pbx, CallEvent.linkedid.in_(linkedids))
                        .order_by(CallEvent.id)
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                try:
                    events.append(event_of_row(row))
                except UnknownEvent:
                    skipped += 1
    if skipped:
        log.warning("restoring open calls: %d logged rows are not known events", skipped)
    return OpenCalls(events, last_at, open_gap)
