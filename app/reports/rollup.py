"""The per-day report tallies in the database (``report_days``, ``report_rollup``): read
the detail rows of some days, count them (``compute.count_days``), store the result; read
the stored tallies back for a report.

When a day is counted
- on demand, by a report that needs a day that has no usable tallies (``ensure_days``);
- by ``RollupJob``, once an hour, for the days of the last weeks that are not final yet,
  so that reports find them ready;
- by ``acd recompute``, after it rebuilt calls from the event log.

A day is *final* once it was counted after its repeat-call window closed (REPEAT_MAX_DAYS
working days later): then its tallies are never counted again by themselves and its detail
rows may be purged. A day that is not final is used as stored if it was counted after the
day ended (and the registration window after it) and on the current local day: so each
past day is counted about once a day (its later callers' repeat calls, its call-backs
returned since) until final, ~14 times in all; today is counted by each report. Tallies
counted with other definitions (thresholds, scopes, departments, wrap-ups: ``digest``)
are counted again where the detail rows still exist.

Nothing here is on the path a call is written by: the cost is the counting, about once a
day per recent day until final (measured in bench/reports.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, cast, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import jsoncodec
from app.acd.calendar import is_working_day
from app.acd.kpi import KpiConfig, day_bounds, local_day
from app.acd.model import DEFAULT_WRAPUP
from app.acd.queues import QueueCatalogue
from app.components import Health, cancel_tasks
from app.reports.assemble import Overdue, Rows
from app.reports.compute import (
    CallRow,
    DayRows,
    GapRow,
    Registration,
    SurveyRow,
    TaskRow,
    VisitRow,
    count_days,
)
from app.reports.goals import GoalsConfig
from app.reports.periods import days_of
from app.reports.tally import REPEAT_MAX_DAYS, ReportTally
from app.store.models import (
    Call,
    Callback,
    DataGap,
    Disposition,
    QueueVisit,
    ReportDay,
    ReportRollup,
    SurveyResponse,
)

log = logging.getLogger(__name__)

# Raise when what a tally counts changes (or what is counted: a new kind of row): stored
# days are counted again where their detail rows exist. 2: the PBXs' own rows ("pbx",
# "pbx_scope"), which days counted by version 1 do not have.
ROLLUP_VERSION = 2
MARGIN = timedelta(hours=12)  # a call's start can be this long before its day's queue entry
SETTLE = timedelta(minutes=60)  # agents register a call up to an hour after it (setting)


@dataclass(frozen=True)
class Context:
    """What counting and reading depend on, built once from the settings and the files."""

    tz: ZoneInfo
    config: KpiConfig
    goals: GoalsConfig
    catalogue: QueueCatalogue | None
    repeat_days: int = 3
    settle: timedelta = SETTLE

    @property
    def queues(self) -> tuple[str, ...]:
        return self.catalogue.names if self.catalogue is not None else ()

    def wrapup_of(self, queue: str) -> int:
        q = self.catalogue.get(queue) if self.catalogue is not None else None
        return q.wrapup_seconds if q is not None else DEFAULT_WRAPUP

    @cached_property
    def digest(self) -> str:
        parts = [
            f"v{ROLLUP_VERSION}",
            f"S{self.config.short_abandon_seconds:g}",
            f"T{self.config.service_level_seconds:g}",
            repr(self.goals.digest_parts),
            repr(sorted((q, self.wrapup_of(q)) for q in self.queues)),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def add_working_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def is_final(day: date, counted_on: date) -> bool:
    """Counted on a local day after the day's repeat-call window closed."""
    return counted_on > add_working_days(day, REPEAT_MAX_DAYS)


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


# --------------------------------------------------------------------------------------
# Reading the detail rows of some days
# --------------------------------------------------------------------------------------


def _key(pbx: str, linkedid: str) -> str:
    # Calls are (pbx, linkedid): several Asterisk boxes write one database.
    return f"{pbx}\x1f{linkedid}"


async def read_detail(session: AsyncSession, first: date, last: date, tz: ZoneInfo) -> DayRows:
    """The rows days ``first``..``last`` are counted from: calls started up to 12 hours
    before, their visits, registrations and surveys, the tasks requested and the gaps
    within, and every later call of their answered callers for the repeat look-ahead."""
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    in_range = and_(Call.started_at >= start - MARGIN, Call.started_at < end)
    out = DayRows()
    calls = await session.execute(
        select(
            Call.id,
            Call.pbx,
            Call.linkedid,
            Call.caller_hash,
            Call.started_at,
            Call.queue_entered_at,
            Call.ended_at,
            Call.outcome,
            Call.transferred_to,
            Call.survey_flagged,
            Call.data_gap,
        ).where(in_range)
    )
    for r in calls:
        out.calls.append(
            CallRow(
                id=r.id,
                linkedid=_key(r.pbx, r.linkedid),
                caller_hash=r.caller_hash,
                started_at=r.started_at,
                queue_entered_at=r.queue_entered_at,
                ended_at=r.ended_at,
                outcome=r.outcome,
                transferred_to=r.transferred_to,
                survey_flagged=r.survey_flagged,
                data_gap=r.data_gap,
                pbx=r.pbx,
            )
        )
    v = QueueVisit
    visits = await session.execute(
        select(
            v.pbx,
            v.linkedid,
            v.seq,
            v.queue,
            v.entered_at,
            v.outcome,
            v.wait_seconds,
            v.talk_seconds,
            v.ring_seconds,
            v.estimated_wait_seconds,
            v.agent,
            v.data_gap,
        )
        .join(Call, and_(Call.pbx == v.pbx, Call.linkedid == v.linkedid))
        .where(in_range)
        .order_by(v.pbx, v.linkedid, v.seq)
    )
    for vr in visits:
        key = _key(vr.pbx, vr.linkedid)
        out.visits.setdefault(key, []).append(
            VisitRow(
                linkedid=key,
                seq=vr.seq,
                queue=vr.queue,
                entered_at=vr.entered_at,
                outcome=vr.outcome,
                wait_seconds=vr.wait_seconds,
                talk_seconds=vr.talk_seconds,
                ring_seconds=vr.ring_seconds,
                estimated_wait_seconds=vr.estimated_wait_seconds,
                agent=vr.agent,
                data_gap=vr.data_gap,
            )
        )
    d = Disposition
    regs = await session.execute(
        select(d.call_id, d.agent_id, d.queue, d.resolved, d.transferred_to)
        .join(Call, Call.id == d.call_id)
        .where(in_range)
    )
    for reg in regs:
        out.registrations.setdefault(reg.call_id, []).append(
            Registration(reg.call_id, reg.agent_id, reg.queue, reg.resolved, reg.transferred_to)
        )
    s = SurveyResponse
    surveys = await session.execute(
        select(s.pbx, s.linkedid, s.agent, s.queue, s.friendliness, s.wait, s.overall, s.completed)
        .join(Call, and_(Call.pbx == s.pbx, Call.linkedid == s.linkedid))
        .where(in_range)
    )
    for sr in surveys:
        key = _key(sr.pbx, sr.linkedid)
        out.surveys[key] = SurveyRow(
            key, sr.agent, sr.queue, sr.friendliness, sr.wait, sr.overall, sr.completed
        )
    cb = Callback
    tasks = await session.execute(
        select(
            cb.kind, cb.queue, cb.requested_at, cb.due_at, cb.status, cb.completed_at, cb.pbx
        ).where(cb.requested_at >= start, cb.requested_at < end)
    )
    out.tasks = [TaskRow(*r) for r in tasks]
    g = DataGap
    gaps = await session.execute(
        select(g.gap_from, g.gap_to, g.pbx).where(
            g.gap_from < end, or_(g.gap_to.is_(None), g.gap_to > start)
        )
    )
    out.gaps = [GapRow(*r) for r in gaps]
    # The look-ahead: later calls of the callers answered in these days.
    _, ahead = day_bounds(add_working_days(last, REPEAT_MAX_DAYS + 1), tz)
    answered = (
        select(Call.caller_hash)
        .where(in_range, Call.outcome == "answered", Call.caller_hash != "")
        .scalar_subquery()
    )
    callers = await session.execute(
        select(Call.caller_hash, Call.started_at).where(
            Call.started_at >= start - MARGIN,
            Call.started_at < ahead,
            Call.caller_hash.in_(answered),
        )
    )
    for h, at in callers:
        out.callers.setdefault(h, []).append(at)
    for starts in out.callers.values():
        starts.sort()
    return out


# --------------------------------------------------------------------------------------
# Counting and storing
# --------------------------------------------------------------------------------------


@dataclass
class Counted:
    days: int = 0
    calls: int = 0
    kept: list[date] = field(default_factory=list)  # stored tallies kept: no detail rows


async def count_and_store(
    session: AsyncSession, days: Iterable[date], ctx: Context, now: datetime
) -> Counted:
    """Count ``days`` from their detail rows and replace their stored tallies, in the
    session's transaction (the caller commits). A day that has stored tallies from calls
    but no detail rows any more (purged) keeps them."""
    wanted = sorted(set(days))
    done = Counted()
    if not wanted:
        return done
    today = local_day(now, ctx.tz)
    stored = {
        r.day: r
        for r in (
            await session.execute(select(ReportDay).where(ReportDay.day.in_(wanted)))
        ).scalars()
    }
    for first, last in _runs(wanted):
        run = days_of(first, last)
        data = await read_detail(session, first, last, ctx.tz)
        rows = count_days(
            run,
            data,
            tz=ctx.tz,
            config=ctx.config,
            goals=ctx.goals,
            queues=ctx.queues,
            wrapup_of=ctx.wrapup_of,
            now=now,
        )
        calls_of = _calls_per_day(rows, run)
        keep = [d for d in run if calls_of.get(d, 0) == 0 and d in stored and stored[d].calls > 0]
        done.kept += keep
        replace = [d for d in run if d not in keep]
        if not replace:
            continue
        await session.execute(delete(ReportRollup).where(ReportRollup.day.in_(replace)))
        await session.execute(delete(ReportDay).where(ReportDay.day.in_(replace)))
        values: list[dict[str, Any]] = []
        visits_of: dict[date, int] = {}
        for kind, by_key in rows.items():
            for key, by_day in by_key.items():
                for day, by_slot in by_day.items():
                    if day not in replace:
                        continue
                    for slot, t in by_slot.items():
                        values.append(
                            {
                                "kind": kind,
                                "day": day,
                                "key": key,
                                "slot": slot,
                                "data": t.to_data(),
                            }
                        )
                        if kind == "queue" and slot == -1:
                            visits_of[day] = visits_of.get(day, 0) + t.offered
        for chunk in range(0, len(values), 5000):
            await session.execute(insert(ReportRollup), values[chunk : chunk + 5000])
        await session.execute(
            insert(ReportDay),
            [
                {
                    "day": d,
                    "computed_at": now,
                    "calls": calls_of.get(d, 0),
                    "visits": visits_of.get(d, 0),
                    "final": is_final(d, today),
                    "digest": ctx.digest,
                }
                for d in replace
            ],
        )
        done.days += len(replace)
        done.calls += sum(calls_of.get(d, 0) for d in replace)
    return done


def _calls_per_day(rows: Rows, days: Iterable[date]) -> dict[date, int]:
    centre = rows.get("centre", {}).get("", {})
    return {d: centre[d][-1].calls for d in days if d in centre and -1 in centre[d]}


def usable(row: ReportDay | None, day: date, ctx: Context, now: datetime) -> bool:
    """May a report use the stored tallies of ``day`` as they are?"""
    if row is None or row.digest != ctx.digest:
        return False
    if row.final:
        return True
    _, end = day_bounds(day, ctx.tz)
    return row.computed_at >= end + ctx.settle and local_day(row.computed_at, ctx.tz) == local_day(
        now, ctx.tz
    )


@dataclass
class Ensured:
    from_rollup: int = 0
    counted: int = 0
    without_data: int = 0
    kept_other_definitions: list[date] = field(default_factory=list)


async def ensure_days(
    session: AsyncSession, days: Sequence[date], ctx: Context, now: datetime
) -> Ensured:
    """Make the stored tallies of ``days`` usable, counting those that are not (past and
    present days only: the future has nothing to count)."""
    today = local_day(now, ctx.tz)
    days = [d for d in days if d <= today]
    stored = (
        {
            r.day: r
            for r in (
                await session.execute(select(ReportDay).where(ReportDay.day.in_(days)))
            ).scalars()
        }
        if days
        else {}
    )
    stale = [d for d in days if not usable(stored.get(d), d, ctx, now)]
    out = Ensured(from_rollup=len(days) - len(stale))
    if stale:
        counted = await count_and_store(session, stale, ctx, now)
        out.counted = counted.days
        out.kept_other_definitions = [
            d for d in counted.kept if stored.get(d) is not None and stored[d].digest != ctx.digest
        ]
        out.from_rollup += len(counted.kept)
    calls = (
        {
            r.day: r.calls
            for r in (
                await session.execute(
                    select(ReportDay.day, ReportDay.calls).where(ReportDay.day.in_(days))
                )
            )
        }
        if days
        else {}
    )
    out.without_data = sum(1 for d in days if not calls.get(d))
    return out


async def read_rows(
    session: AsyncSession,
    kinds: Iterable[str],
    days: Sequence[date],
    slots: bool = False,
) -> Rows:
    """The stored tallies of ``kinds`` over ``days`` (whole days; half-hours too if
    ``slots``)."""
    rows: Rows = {}
    if not days:
        return rows
    for first, last in _runs(days):
        # The JSON as text, decoded here with orjson: a year's rows decoded by the driver's
        # json codec took a third of a report.
        stmt = select(
            ReportRollup.kind,
            ReportRollup.key,
            ReportRollup.day,
            ReportRollup.slot,
            cast(ReportRollup.data, Text),
        ).where(
            ReportRollup.kind.in_(list(kinds)),
            ReportRollup.day >= first,
            ReportRollup.day <= last,
        )
        if not slots:
            stmt = stmt.where(ReportRollup.slot == -1)
        for kind, key, day, slot, data in await session.execute(stmt):
            rows.setdefault(kind, {}).setdefault(key, {}).setdefault(day, {})[slot] = (
                ReportTally.from_data(jsoncodec.loads(data))
            )
    return rows


async def overdue_tasks(
    session: AsyncSession, first: date, last: date, tz: ZoneInfo, as_of: datetime
) -> list[Overdue]:
    """The tasks requested in the period and still open past their due time at
    ``as_of``: the local day each was requested, its queue and its PBX."""
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    cb = Callback
    result = await session.execute(
        select(cb.requested_at, cb.queue, cb.pbx).where(
            cb.requested_at >= start,
            cb.requested_at < end,
            cb.status.in_(("open", "assigned", "dialling")),
            cb.due_at < as_of,
        )
    )
    return [Overdue(local_day(at, tz), queue, pbx) for at, queue, pbx in result]


async def final_before(session: AsyncSession) -> date | None:
    """The first day from which on the stored tallies are not all final: detail rows of
    days before it are no longer needed by any report (for purging, issue 19)."""
    first_open = (
        await session.execute(select(func.min(ReportDay.day)).where(ReportDay.final.is_(False)))
    ).scalar_one_or_none()
    if first_open is not None:
        return first_open
    last = (await session.execute(select(func.max(ReportDay.day)))).scalar_one_or_none()
    return last + timedelta(days=1) if last is not None else None


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------


class RollupJob:
    """Component: once every ``interval``, counts the days of the last ``window`` days
    that are not usable as stored (not final, and counted while open or on another day),
    so that reports find them ready. Days before the window are counted by the first
    report that needs them."""

    name = "reports"
    required = False

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ctx: Callable[[], Context | None],
        clock: Callable[[], datetime],
        *,
        interval: float = 3600.0,
        window: int = 31,
        first_delay: float = 60.0,
    ) -> None:
        self.sessions = sessions
        self.ctx = ctx
        self.clock = clock
        self.interval = interval
        self.window = window
        # Not in the start-up rush (calls restored, the AMI resync, today's history read).
        self.first_delay = first_delay
        self.last_run: datetime | None = None
        self.last_counted = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy: asyncio.Future[int] | None = None  # a count under way

    async def run_once(self) -> int:
        ctx = self.ctx()
        if ctx is None:
            return 0
        now = self.clock()
        today = local_day(now, ctx.tz)
        # Past days only: today is counted by each report that shows it.
        days = [today - timedelta(days=i) for i in range(self.window, 0, -1)]
        async with self.sessions.begin() as session:
            done = await ensure_days(session, days, ctx, now)
        self.last_run, self.last_counted, self.last_error = now, done.counted, None
        if done.counted:
            log.info("report tallies: counted %d days", done.counted)
        return done.counted

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="report-rollup")

    async def stop(self) -> None:
        # A count under way finishes (its transaction and connection end cleanly) before
        # the loop is cancelled: cancelled mid-statement, an SQLite connection's worker
        # thread can be left open and hold the process at exit.
        if self._busy is not None and not self._busy.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._busy), 30)
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        detail: dict[str, Any] = {"last_counted": self.last_counted}
        if self.last_run is not None:
            detail["last_run"] = self.last_run.astimezone(UTC).isoformat()
        if self.last_error:
            detail["last_error"] = self.last_error
        return Health(
            self.last_error is None, "up" if self.last_error is None else "failing", detail
        )

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                self._busy = asyncio.ensure_future(self.run_once())
                await asyncio.shield(self._busy)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("report tallies: counting failed; next try in %.0f s", self.interval)
            await asyncio.sleep(self.interval)
