"""Reads for planning: the log summed per queue and half hour (the forecast's history),
the callers' patience from their waits, and the agents' shrinkage from their states.
Plain functions taking their session; the arithmetic lives in app/acd.

The history is summed by the database per UTC half hour (Copenhagen's offsets are whole
hours, so a UTC half hour is exactly one local half hour) and laid on local days here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.acd.forecast import SLOT_SECONDS, History, slot_of
from app.acd.kpi import VISIT_OUTCOMES, day_bounds
from app.acd.presence import AGENT_STATES
from app.store.models import AgentStateChange, QueueVisit
from app.store.reports import _PER_AGENT, time_in_states


def _half_hour(session: AsyncSession, column: Any) -> Any:
    """The number of the UTC half hour since 1970 a timestamp column falls in, in the
    session's SQL dialect (SQLite: integer division of its epoch seconds; no ``floor``,
    which not every SQLite build has)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / SLOT_SECONDS), Integer)
    return cast(func.strftime("%s", column), Integer) / SLOT_SECONDS


async def load_history(session: AsyncSession, start: date, end: date, tz: ZoneInfo) -> History:
    """Decided visits of the local days [start, end) per queue and half hour: offered,
    answered with a known talk, and their ring + talk seconds."""
    v = QueueVisit
    lo, _ = day_bounds(start, tz)
    hi, _ = day_bounds(end, tz)
    bucket = _half_hour(session, v.entered_at)
    handled = and_(v.outcome == "answered", v.talk_seconds.is_not(None))
    stmt = (
        select(
            v.queue,
            bucket,
            func.count(),
            func.sum(case((handled, 1), else_=0)),
            func.sum(
                case((handled, func.coalesce(v.ring_seconds, 0.0) + v.talk_seconds), else_=0.0)
            ),
        )
        .where(v.entered_at >= lo, v.entered_at < hi, v.outcome.in_(VISIT_OUTCOMES))
        .group_by(v.queue, bucket)
    )
    history = History()
    for queue, b, offered, n, secs in (await session.execute(stmt)).all():
        local = datetime.fromtimestamp(int(b) * SLOT_SECONDS, UTC).astimezone(tz)
        history.add(
            queue, local.date(), slot_of(local.time()), int(offered), int(n or 0), float(secs or 0)
        )
    return history


@dataclass(frozen=True, slots=True)
class PatienceSample:
    """Waits of one queue's callers: abandons (not counting short ones) and the total wait
    of every caller who could have abandoned (answered waits are censored patience)."""

    abandons: int
    exposure_seconds: float


async def patience_samples(
    session: AsyncSession, start: datetime, end: datetime, short_abandon_seconds: float
) -> dict[str, PatienceSample]:
    v = QueueVisit
    short = and_(v.outcome == "abandoned", v.wait_seconds < short_abandon_seconds)
    abandon = and_(v.outcome == "abandoned", v.wait_seconds >= short_abandon_seconds)
    stmt = (
        select(
            v.queue,
            func.sum(case((abandon, 1), else_=0)),
            func.sum(case((not_(short), func.coalesce(v.wait_seconds, 0.0)), else_=0.0)),
        )
        .where(v.entered_at >= start, v.entered_at < end, v.outcome.in_(VISIT_OUTCOMES))
        .group_by(v.queue)
    )
    return {
        q: PatienceSample(int(n or 0), float(w or 0.0))
        for q, n, w in (await session.execute(stmt)).all()
    }


@dataclass(frozen=True, slots=True)
class ShrinkageSample:
    logged_in_seconds: float
    paused_seconds: float
    unavailable_seconds: float
    agent_days: int

    @property
    def share(self) -> float | None:
        """Paused and unavailable time / logged-in time (None: nobody logged in)."""
        if self.logged_in_seconds <= 0:
            return None
        return (self.paused_seconds + self.unavailable_seconds) / self.logged_in_seconds


async def shrinkage_sample(
    session: AsyncSession, days: Sequence[date], tz: ZoneInfo, batch: int = 5000
) -> ShrinkageSample:
    """Every agent's time in each state on each of ``days`` (the scorecard's arithmetic,
    ``time_in_states``, per agent and local day, starting logged out)."""
    logged = paused = unavailable = 0.0
    agent_days = 0
    for day in days:
        start, end = day_bounds(day, tz)
        stmt = (
            select(AgentStateChange.interface, AgentStateChange.at, AgentStateChange.state)
            .where(
                _PER_AGENT,
                AgentStateChange.state.in_(AGENT_STATES),
                AgentStateChange.at >= start,
                AgentStateChange.at < end,
            )
            .order_by(AgentStateChange.interface, AgentStateChange.at, AgentStateChange.id)
            .execution_options(yield_per=batch)
        )
        per: dict[str, list[tuple[datetime, str]]] = {}
        result = await session.stream(stmt)
        async for part in result.partitions(batch):
            for interface, at, state in part:
                per.setdefault(interface, []).append((at, state))
        for changes in per.values():
            # until the last change, not the end of the day: an agent never logged out
            # (no event after the last call) is not counted logged in all night
            until = max(at for at, _ in changes) + timedelta(seconds=1)
            states = time_in_states(None, changes, start, min(until, end))
            logged += sum(v for k, v in states.items() if k != "logged_out")
            paused += states["paused"]
            unavailable += states["unavailable"]
            agent_days += 1
    return ShrinkageSample(logged, paused, unavailable, agent_days)
