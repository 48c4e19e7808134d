"""Planning use cases: the forecast and the staffing plan of coming days, and the intraday
projection behind "goal at risk". The reads are in ``app/store/planning.py``, the
arithmetic in ``app/acd`` (forecast, plan, intraday, staffing); this module loads, caches
and shapes the documents (JSON, CSV, XLSX) the API and ``acd plan`` give out.

"Now" comes from the clock passed in; the data used ends the day before today (a day in
progress is not history), or the day before the first planned day if that is earlier.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.calendar import Schedule
from app.acd.forecast import (
    CENTRE,
    ForecastConfig,
    ForecastError,
    History,
    QueueDayForecast,
    backtest,
    forecast,
    special_factors,
)
from app.acd.intraday import SoFar, elapsed_slots, project_day
from app.acd.plan import GroupDayPlan, PlanCell, PlanInputs, PlanTargets, build_plan, mean_patience
from app.acd.staffing import StaffingError
from app.components import Health, cancel_tasks
from app.store.planning import (
    ShrinkageSample,
    load_history,
    patience_samples,
    shrinkage_sample,
)

log = logging.getLogger(__name__)

MAX_DAYS = 42
EARLIEST, LATEST = date(1971, 1, 1), date(2099, 12, 31)  # a year of history must fit in
PATIENCE_WEEKS = 8
SHRINKAGE_DAYS = 20


class PlanningError(ValueError):
    """A request with no answer (unknown queue, too many days, nothing in the log)."""


@dataclass(frozen=True)
class PlanningData:
    """What a plan needs from the log, read once per origin day."""

    origin: date  # the last day of data used
    history: History
    patience: dict[str, float | None]
    centre_patience: float | None
    abandons: dict[str, int]
    shrinkage: ShrinkageSample


@dataclass(frozen=True)
class PlanOptions:
    shrinkage: float | None = None  # None: measured from agent_state_changes
    max_occupancy: float | None = None
    patience: float | None = None  # seconds, all queues; None: measured from the log
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    history_weeks: int = 53
    backtest_weeks: int = 4


class Planner:
    """Forecasts and plans from the database, cached per origin day (the history of past
    days does not change while the day goes on)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        tz: ZoneInfo,
        queues: Callable[[], Sequence[str]],
        wrapup: Callable[[], Mapping[str, float]],
        schedule: Callable[[], Schedule],
        targets: PlanTargets,
        short_abandon_seconds: float,
        clock: Callable[[], datetime],
        config: ForecastConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.tz = tz
        # The running catalogue's queues and wrap-ups (a reload changes them: read them
        # each time, app/config/registry.py).
        self._queue_names = queues
        self._wrapups = wrapup
        self.schedule = schedule
        self.targets = targets
        self.short_abandon_seconds = short_abandon_seconds
        self.clock = clock
        self.config = config or ForecastConfig()
        self._cache: dict[tuple[date, int], PlanningData] = {}
        self._lock = asyncio.Lock()

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self._queue_names())

    @property
    def wrapup(self) -> dict[str, float]:
        return dict(self._wrapups())

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def origin_for(self, start: date) -> date:
        return min(self.today(), start) - timedelta(days=1)

    async def data(self, origin: date, history_weeks: int = 53) -> PlanningData:
        key = (origin, history_weeks)
        async with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            first = origin - timedelta(weeks=history_weeks) + timedelta(days=1)
            async with self.sessions() as session:
                history = await load_history(session, first, origin + timedelta(days=1), self.tz)
                last = history.last_day or origin
                p_start = datetime.combine(
                    last - timedelta(weeks=PATIENCE_WEEKS), datetime.min.time(), self.tz
                )
                p_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), self.tz)
                samples = await patience_samples(
                    session, p_start, p_end, self.short_abandon_seconds
                )
                days = sorted(d for d in history.observed if d <= last)[-SHRINKAGE_DAYS:]
                shrink = await shrinkage_sample(session, days, self.tz)
            patience, centre = mean_patience(
                {q: (s.abandons, s.exposure_seconds) for q, s in samples.items()}
            )
            data = PlanningData(
                origin=origin,
                history=history,
                patience=patience,
                centre_patience=centre,
                abandons={q: s.abandons for q, s in samples.items()},
                shrinkage=shrink,
            )
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[key] = data
            return data

    # ------------------------------------------------------------------ the forecast

    def _days(self, start: date, days: int) -> list[date]:
        if not 1 <= days <= MAX_DAYS:
            raise PlanningError(f"days must be 1-{MAX_DAYS}")
        if not EARLIEST <= start <= LATEST:
            raise PlanningError(f"the date must lie between {EARLIEST} and {LATEST}")
        return [start + timedelta(days=i) for i in range(days)]

    def _queues(self, queue: str | None) -> tuple[str, ...]:
        if queue is None:
            return self.queues
        if queue not in self.queues:
            raise PlanningError(f"no queue {queue!r}")
        return (queue,)

    async def forecasts(
        self, start: date, days: int = 1, queue: str | None = None, history_weeks: int = 53
    ) -> tuple[PlanningData, list[QueueDayForecast]]:
        dates = self._days(start, days)
        queues = self._queues(queue)
        data = await self.data(self.origin_for(start), history_weeks)
        try:
            fcs = forecast(
                data.history,
                queues,
                dates,
                self.schedule(),
                origin=data.origin,
                wrapup=self.wrapup,
                config=self.config,
            )
        except ForecastError as exc:
            raise PlanningError(str(exc)) from exc
        return data, fcs

    def accuracy(
        self, data: PlanningData, start: date, queues: Sequence[str], weeks: int = 4
    ) -> dict[str, Any]:
        origin = min(data.origin, data.history.last_day or data.origin)
        horizon = max(1, (start - origin).days)
        result = backtest(
            data.history,
            queues,
            self.schedule(),
            origin=origin,
            weeks=weeks,
            horizon=horizon,
            wrapup=self.wrapup,
            config=self.config,
        )
        return {
            "weeks": weeks,
            "horizon_days": horizon,
            "centre": result[CENTRE].as_dict() if CENTRE in result else None,
            "queues": {q: a.as_dict() for q, a in result.items() if q != CENTRE},
        }

    async def forecast_doc(
        self, start: date, days: int = 1, queue: str | None = None, backtest_weeks: int = 4
    ) -> dict[str, Any]:
        data, fcs = await self.forecasts(start, days, queue)
        queues = self._queues(queue)
        return {
            **self.head(data),
            "accuracy": self.accuracy(data, start, queues, backtest_weeks),
            "special_days": special_factors(
                data.history, self.schedule(), data.origin, self.config
            ),
            "days": _by_day(fcs),
        }

    def head(self, data: PlanningData) -> dict[str, Any]:
        h = data.history
        return {
            "generated_at": self.clock().isoformat(),
            "origin": data.origin.isoformat(),
            "history": {
                "first_day": h.first_day.isoformat() if h.first_day else None,
                "last_day": h.last_day.isoformat() if h.last_day else None,
                "days": len(h.observed),
            },
        }

    # ------------------------------------------------------------------- the plan

    async def plan(
        self, start: date, days: int = 1, options: PlanOptions | None = None
    ) -> tuple[PlanningData, list[QueueDayForecast], list[GroupDayPlan], PlanInputs]:
        options = options or PlanOptions()
        data, fcs = await self.forecasts(start, days, history_weeks=options.history_weeks)
        inputs = self.inputs(data, options)
        try:
            plans = build_plan(fcs, inputs)
        except StaffingError as exc:
            raise PlanningError(str(exc)) from exc
        return data, fcs, plans, inputs

    def inputs(self, data: PlanningData, options: PlanOptions) -> PlanInputs:
        shrinkage = options.shrinkage
        if shrinkage is None:
            shrinkage = data.shrinkage.share or 0.0
        if options.patience is not None:
            patience: Mapping[str, float | None] = dict.fromkeys(self.queues, options.patience)
        else:
            patience = {q: data.patience.get(q, data.centre_patience) for q in self.queues}
        targets = self.targets
        if options.max_occupancy is not None:
            targets = replace(targets, max_occupancy=options.max_occupancy)
        return PlanInputs(
            targets=targets, patience=patience, shrinkage=shrinkage, groups=options.groups
        )

    async def staffing_doc(
        self, start: date, days: int = 1, options: PlanOptions | None = None
    ) -> dict[str, Any]:
        options = options or PlanOptions()
        data, _, plans, inputs = await self.plan(start, days, options)
        accuracy = self.accuracy(data, start, self.queues, options.backtest_weeks)
        return self.document(data, plans, inputs, options, accuracy)

    def document(
        self,
        data: PlanningData,
        plans: Sequence[GroupDayPlan],
        inputs: PlanInputs,
        options: PlanOptions,
        accuracy: Mapping[str, Any],
        check: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The staffing document (the API's JSON; CSV and XLSX are made from it)."""
        return staffing_document(
            self.head(data),
            data,
            plans,
            inputs,
            measured_shrinkage=options.shrinkage is None,
            patience_measured=options.patience is None,
            accuracy=accuracy,
            check=check,
        )


def _by_day(fcs: Sequence[QueueDayForecast]) -> list[dict[str, Any]]:
    days: dict[date, list[QueueDayForecast]] = {}
    for f in fcs:
        days.setdefault(f.day, []).append(f)
    out = []
    for d, items in sorted(days.items()):
        closed = items[0].closed if all(f.closed for f in items) else None
        out.append(
            {
                "date": d.isoformat(),
                "closed": closed,
                "calls": round(sum(f.calls for f in items), 1),
                "queues": [f.as_dict() for f in items],
            }
        )
    return out


def staffing_document(
    head: Mapping[str, Any],
    data: PlanningData,
    plans: Sequence[GroupDayPlan],
    inputs: PlanInputs,
    *,
    measured_shrinkage: bool,
    patience_measured: bool,
    accuracy: Mapping[str, Any],
    check: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    by_day: dict[date, list[GroupDayPlan]] = {}
    for p in plans:
        by_day.setdefault(p.day, []).append(p)
    days = []
    for d, items in sorted(by_day.items()):
        days.append(
            {
                "date": d.isoformat(),
                "closed": items[0].closed if all(p.closed for p in items) else None,
                "agent_hours": {
                    "erlang_c": sum(p.agent_hours("C") for p in items),
                    "erlang_a": sum(p.agent_hours("A") for p in items),
                    "plan": sum(p.agent_hours() for p in items),
                    "rostered": sum(p.rostered_hours() for p in items),
                },
                "groups": [p.as_dict() for p in items],
            }
        )
    s = data.shrinkage
    doc = {
        **head,
        "targets": inputs.targets.as_dict(),
        "model": "Erlang A where the callers' patience is known, else Erlang C; agents are "
        "on the phones, rostered adds the shrinkage",
        "shrinkage": {
            "share": round(inputs.shrinkage, 4),
            "source": "measured" if measured_shrinkage else "given",
            "measured": None if s.share is None else round(s.share, 4),
            "agent_days": s.agent_days,
        },
        "patience": {
            "source": "measured" if patience_measured else "given",
            "method": "exponential, maximum likelihood with answered waits censored "
            "(total wait of callers who could abandon / abandons); queues with few "
            "abandons drawn towards the centre",
            "centre_seconds": _r(data.centre_patience),
            "queues": {q: _r(v) for q, v in inputs.patience.items()},
            "abandons": data.abandons,
        },
        "accuracy": dict(accuracy),
        "days": days,
    }
    if check is not None:
        doc["check"] = dict(check)
    return doc


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


# --------------------------------------------------------------------------------------
# Documents: CSV and XLSX
# --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "date",
    "group",
    "queues",
    "start",
    "calls",
    "aht_seconds",
    "erlangs",
    "patience_seconds",
    "erlang_c_agents",
    "erlang_a_agents",
    "agents",
    "rostered",
    "service_level",
    "asa_seconds",
    "avg_wait_seconds",
    "answer_rate",
    "occupancy",
    "note",
)
XLSX_HEADERS = (
    "Dato",
    "Gruppe",
    "Køer",
    "Halvtime",
    "Opkald",
    "Behandlingstid (s)",
    "Erlang",
    "Tålmodighed (s)",
    "Agenter, Erlang C",
    "Agenter, Erlang A",
    "Agenter",
    "Vagtplan (med svind)",
    "Servicegrad",
    "Svartid, besvarede (s)",
    "Ventetid (s)",
    "Tilgængelighed",
    "Belægning",
    "Note",
)


def plan_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """One row per group and half hour of a staffing document, in ``CSV_COLUMNS`` order."""
    rows: list[list[Any]] = []
    for day in doc["days"]:
        for g in day["groups"]:
            chosen = "erlang_a" if g["agent_hours"]["erlang_a"] is not None else "erlang_c"
            for h in g["half_hours"]:
                s = h.get(chosen) or h.get("erlang_c") or {}
                rows.append(
                    [
                        day["date"],
                        g["group"],
                        " ".join(g["queues"]),
                        h["start"],
                        h["calls"],
                        h["aht_seconds"],
                        h["erlangs"],
                        h["patience_seconds"],
                        (h["erlang_c"] or {}).get("agents"),
                        (h["erlang_a"] or {}).get("agents"),
                        h["agents"],
                        h["rostered"],
                        s.get("service_level"),
                        s.get("asa_seconds"),
                        s.get("avg_wait_seconds"),
                        s.get("answer_rate"),
                        s.get("occupancy"),
                        h["note"] or "",
                    ]
                )
    return rows


def plan_csv(doc: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in plan_rows(doc):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def plan_xlsx(doc: Mapping[str, Any]) -> bytes:
    """The plan as a workbook for managers (Danish headings): the half hours, the days,
    the accuracy of the forecast, the goals."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Bemanding"
    ws.append(list(XLSX_HEADERS))
    for row in plan_rows(doc):
        ws.append(row)
    days = wb.create_sheet("Dage")
    days.append(
        [
            "Dato",
            "Lukket",
            "Gruppe",
            "Opkald",
            "Agenttimer, Erlang C",
            "Agenttimer, Erlang A",
            "Agenttimer, plan",
            "Vagtplan-timer (med svind)",
            "Forventet tilgængelighed",
            "Forventet ventetid (s)",
            "Forventet servicegrad",
        ]
    )
    for day in doc["days"]:
        for g in day["groups"]:
            model = "erlang_a" if g["expected"]["erlang_a"] else "erlang_c"
            e = g["expected"][model]
            days.append(
                [
                    day["date"],
                    day["closed"] or g["closed"] or "",
                    g["group"],
                    e["calls"],
                    g["agent_hours"]["erlang_c"],
                    g["agent_hours"]["erlang_a"],
                    g["agent_hours"]["plan"],
                    g["agent_hours"]["rostered"],
                    e["answer_rate"],
                    e["avg_wait_seconds"],
                    e["service_level"],
                ]
            )
    acc = wb.create_sheet("Nøjagtighed")
    acc.append(["Kø", "Dage", "Horisont (dage)", "WAPE dag", "WAPE halvtime", "Bias", "Dækning"])
    accuracy = doc.get("accuracy") or {}
    rows = [("_all", accuracy.get("centre")), *(accuracy.get("queues") or {}).items()]
    for name, a in rows:
        if a:
            acc.append(
                [
                    name,
                    a["days"],
                    a["horizon_days"],
                    a["wape_day"],
                    a["wape_half_hour"],
                    a["bias"],
                    a["interval_coverage"],
                ]
            )
    goals = wb.create_sheet("Mål")
    for key, value in (doc.get("targets") or {}).items():
        goals.append([key, value])
    goals.append(["shrinkage", doc["shrinkage"]["share"]])
    for sheet in (ws, days, acc):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------------------
# Intraday: "goal at risk"
# --------------------------------------------------------------------------------------


@dataclass
class _Today:
    day: date
    forecasts: dict[str, QueueDayForecast]
    cells: dict[str, tuple[PlanCell, ...]]
    targets: PlanTargets


class IntradayMonitor:
    """Keeps today's forecast and plan (read from the log once a day) and projects the
    day's figures from the live board: ``decorate`` adds ``projection`` to each queue and
    to the centre of the board the live hub publishes (REST ``/v1/queues``, gauges)."""

    name = "intraday"
    required = False

    def __init__(self, planner: Planner, *, every: float = 30.0, retry: float = 60.0) -> None:
        self.planner = planner
        self.every = every
        self.retry = retry
        self.today: _Today | None = None
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: tuple[float, dict[str, Any], dict[str, Any]] | None = None

    async def load(self, day: date) -> None:
        try:
            _, fcs, plans, inputs = await self.planner.plan(day, 1)
        except PlanningError as exc:
            self.today, self.error = None, str(exc)
            return
        cells = {p.queues[0]: p.cells for p in plans if len(p.queues) == 1}
        self.today = _Today(day, {f.queue: f for f in fcs}, cells, inputs.targets)
        self.error = None
        self._last = None
        log.info("intraday: today's forecast and plan loaded for %s", day)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="intraday")

    async def stop(self) -> None:
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        return Health(
            True,
            "up" if self.today is not None else "no plan for today",
            {"day": self.today.day.isoformat() if self.today else None, "error": self.error},
        )

    async def _loop(self) -> None:
        while True:
            day = self.planner.today()
            if self.today is None or self.today.day != day:
                try:
                    await self.load(day)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("intraday: loading today's plan failed")
                    self.today, self.error = None, "loading today's plan failed"
            await asyncio.sleep(self.retry if self.today is None else self.every)

    def decorate(self, board: dict[str, Any], now: datetime) -> None:
        """Add the projection to ``board`` (None where there is none)."""
        queues: dict[str, Any] = board.get("queues", {})
        today = self.today
        local = now.astimezone(self.planner.tz)
        if today is None or today.day != local.date():
            for q in queues.values():
                q["projection"] = None
            board.setdefault("centre", {})["projection"] = None
            return
        stamp = now.timestamp()
        if self._last is not None and stamp - self._last[0] < self.every:
            per, centre = self._last[1], self._last[2]
        else:
            per, centre = self._project(today, queues, local)
            self._last = (stamp, per, centre)
        for name, q in queues.items():
            q["projection"] = per.get(name)
        board.setdefault("centre", {})["projection"] = centre

    def _project(
        self, today: _Today, queues: Mapping[str, Any], local: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = elapsed_slots((local - midnight).total_seconds())
        so_far = {n: SoFar.from_figures(q.get("today") or {}) for n, q in queues.items()}
        staffed = {
            n: sum(int((q.get("agents") or {}).get(s, 0)) for s in STAFFED)
            for n, q in queues.items()
        }
        per, centre = project_day(
            today.forecasts, today.cells, so_far, staffed, elapsed, today.targets
        )
        return {n: p.as_dict() for n, p in per.items()}, centre.as_dict()


STAFFED = ("available", "ringing", "on_call", "wrapup")


def schedule_of_flows(flows: Mapping[str, Any], preferred: str = "jobcenter") -> Schedule:
    """The phone line's opening hours: the ``preferred`` flow's, else the first flow's."""
    flow = flows.get(preferred) or next(iter(flows.values()), None)
    if flow is None:
        raise PlanningError("no IVR flow: the opening hours are unknown")
    schedule: Schedule = flow.hours.schedule
    return schedule


__all__ = [
    "MAX_DAYS",
    "IntradayMonitor",
    "PlanOptions",
    "Planner",
    "PlanningData",
    "PlanningError",
    "plan_csv",
    "plan_xlsx",
    "schedule_of_flows",
]
