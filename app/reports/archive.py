"""The follow-up the centre owes, made without anyone asking: when an ISO week, a month or
a quarter has ended (local time, on the PBX's clock), its report is built and rendered in
every document format and kept in ``stored_reports``, so last quarter's report is there on
the first working day. ``GET /v1/reports/archive`` lists and serves them.

- What is made (``SCHEDULE``): the weekly report by department (DOMAIN.md: each
  department its calls and availability), the monthly and the quarterly by department
  (all goals on page one, the departments after them).
- When: ``delay`` after the period's end (local midnight), so that the last calls have
  ended and their agents have registered them (``ACD_DISPOSITION_WINDOW_MINUTES``).
- Catching up: each run looks back ``catchup_days`` (never before the first day with
  data) and makes every period of the schedule that has ended and is not kept yet, oldest
  first: a service that was down over a period's end makes it when it is back.
- Idempotent: one row per (period, cut, format), inserted only where none is; two
  processes running this at once store each document once.
- The same bytes: the documents carry no time of making (``made_at`` is the row's), so a
  re-run over the same data gives the same bytes (``sha256`` is kept to compare).

Rendering runs in a worker thread: a quarter's PDF takes about a second of CPU, which the
event loop (and the AMI reader on it) must not wait for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.components import PeriodicJob
from app.reports import render
from app.reports.build import build_report
from app.reports.model import By
from app.reports.periods import Period, parse_period
from app.reports.rollup import Context
from app.store.models import Call, ReportDay, StoredReport

log = logging.getLogger(__name__)

# (period kind, cut) made when a period of that kind ends.
SCHEDULE: tuple[tuple[str, By], ...] = (
    ("week", "department"),
    ("month", "department"),
    ("quarter", "department"),
)
# The documents kept: what people open. (JSON is the live API's: it carries ``as_of``.)
FORMATS: tuple[str, ...] = ("pdf", "xlsx", "html", "csv")


def period_of(kind: str, day: date) -> Period:
    """The week, month or quarter that holds ``day``."""
    if kind == "week":
        year, week, _ = day.isocalendar()
        return parse_period(f"{year}-W{week:02d}")
    if kind == "month":
        return parse_period(f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        return parse_period(f"{day.year}-Q{(day.month - 1) // 3 + 1}")
    raise ValueError(f"no scheduled report for a {kind!r}")


def ended(kind: str, now_local: datetime, delay: timedelta, since: date) -> list[Period]:
    """The periods of ``kind`` whose end (local midnight after their last day) is at least
    ``delay`` before ``now_local`` and whose last day is on or after ``since``, oldest
    first. Pure: ``now_local`` is aware, in the centre's zone (DST is its business)."""
    tz = now_local.tzinfo
    cutoff = now_local - delay

    def end_of(p: Period) -> datetime:
        return datetime.combine(p.last + timedelta(days=1), time(0), tzinfo=tz)

    period = period_of(kind, cutoff.date())
    if end_of(period) > cutoff:  # still running (or not yet past its delay)
        period = period.previous()
    out: list[Period] = []
    while period.last >= since:
        out.append(period)
        period = period.previous()
    return out[::-1]


@dataclass(frozen=True, slots=True)
class Made:
    period: str
    by: str
    format: str
    sha256: str
    size: int
    stored: bool  # False: a row was there already (another process, or a remake)


def _label(period: Period) -> str:
    assert period.label is not None  # scheduled periods come from parse_period
    return period.label


async def first_day_with_data(session: AsyncSession, tz: Any) -> date | None:
    """The first local day any call or stored tally is of: no report is made before it."""
    first_call = await session.scalar(select(func.min(Call.started_at)))
    first_tally = await session.scalar(select(func.min(ReportDay.day)))
    days = [d for d in (first_call and first_call.astimezone(tz).date(), first_tally) if d]
    return min(days) if days else None


async def kept(session: AsyncSession, labels: Sequence[str]) -> set[tuple[str, str, str]]:
    """(period, by, format) of the documents kept for these periods."""
    if not labels:
        return set()
    rows = await session.execute(
        select(StoredReport.period, StoredReport.by, StoredReport.format).where(
            StoredReport.period.in_(labels)
        )
    )
    return {(p, b, f) for p, b, f in rows}


async def store(
    session: AsyncSession, period: Period, by: str, fmt: str, body: bytes, media_type: str
) -> Made:
    """Keep one document, unless one is kept for (period, by, format) already."""
    digest = hashlib.sha256(body).hexdigest()
    values = {
        "period": _label(period),
        "kind": period.kind,
        "by": by,
        "format": fmt,
        "first": period.first,
        "last": period.last,
        "media_type": media_type,
        "size": len(body),
        "sha256": digest,
        "content": body,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(StoredReport).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["period", "by", "format"])
    result = await session.execute(stmt)
    return Made(_label(period), by, fmt, digest, len(body), bool(result.rowcount))  # type: ignore[attr-defined]


async def make(
    sessions: async_sessionmaker[AsyncSession],
    ctx: Context,
    period: Period,
    by: By,
    now: datetime,
    formats: Sequence[str],
) -> list[tuple[str, bytes, str]]:
    """Build the report of ``period`` and render it in each format: (format, bytes, media
    type). The tallies the build counted are committed (the next report reads them)."""
    async with sessions.begin() as session:
        report = await build_report(session, period=period, by=by, ctx=ctx, now=now)
    out = []
    for fmt in formats:
        body, media_type = await asyncio.to_thread(render.render, report, fmt)
        out.append((fmt, body, media_type))
    return out


class ReportArchive(PeriodicJob):
    """Component: every ``interval`` seconds, makes the scheduled reports of the periods
    that have ended and are not kept yet (see the module's docstring)."""

    name = "report-archive"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ctx: Callable[[], Context | None],
        clock: Callable[[], datetime],
        *,
        delay: timedelta = timedelta(hours=2),
        catchup_days: int = 100,
        interval: float = 600.0,
        schedule: Sequence[tuple[str, By]] = SCHEDULE,
        formats: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.ctx = ctx
        self.clock = clock
        self.delay = delay
        self.catchup_days = catchup_days
        self.interval = interval
        self.schedule = tuple(schedule)
        self.formats = tuple(formats) if formats is not None else None
        self.last_made = 0

    def progress(self) -> dict[str, Any]:
        return {"last_made": self.last_made}

    def _formats(self) -> tuple[str, ...]:
        if self.formats is not None:
            return self.formats
        available = render.available()
        return tuple(f for f in FORMATS if f in available)

    async def due(self, now: datetime, ctx: Context) -> list[tuple[Period, By, list[str]]]:
        """(period, cut, formats missing) of every scheduled period that has ended, is
        within the catch-up window and is not wholly kept, oldest first."""
        now_local = now.astimezone(ctx.tz)
        async with self.sessions() as session:
            first = await first_day_with_data(session, ctx.tz)
            if first is None:
                return []
            since = max(first, now_local.date() - timedelta(days=self.catchup_days))
            wanted = [
                (p, by)
                for kind, by in self.schedule
                for p in ended(kind, now_local, self.delay, since)
            ]
            have = await kept(session, sorted({_label(p) for p, _ in wanted}))
        formats = self._formats()
        out = []
        for period, by in sorted(wanted, key=lambda w: (w[0].last, w[0].days)):
            missing = [f for f in formats if (_label(period), by, f) not in have]
            if missing:
                out.append((period, by, missing))
        return out

    async def run_once(self) -> list[Made]:
        ctx = self.ctx()
        if ctx is None:
            return []
        now = self.clock()
        made: list[Made] = []
        errors: list[str] = []
        for period, by, formats in await self.due(now, ctx):
            try:
                documents = await make(self.sessions, ctx, period, by, now, formats)
                async with self.sessions.begin() as session:
                    for fmt, body, media_type in documents:
                        made.append(await store(session, period, by, fmt, body, media_type))
                log.info("report %s by %s made: %s", _label(period), by, ", ".join(formats))
            except Exception as exc:  # one period that fails must not stop the others
                log.exception("report %s by %s could not be made", _label(period), by)
                errors.append(f"{_label(period)}: {type(exc).__name__}")
        self.last_run, self.last_made = now, sum(m.stored for m in made)
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        self.last_error = "; ".join(errors[:3]) + more if errors else None
        return made
