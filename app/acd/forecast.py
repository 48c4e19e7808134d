"""How many calls, and how long they take: a forecast per queue and half hour, from the
log. Pure: the history comes in (``History``, built from ``queue_visits`` by
``app/store/planning.py``), dates and the opening hours come in; nothing reads a clock.

The model is a baseline a planner can follow line by line (docs/planning.md):

1. **Day volume** per queue = the weighted mean of the same weekday in the last
   ``reference_weeks`` normal days (weights 6, 5, ..., 1: the latest counts most), times
   a **trend** (calls per week up or down, a log-linear fit over ``trend_weeks`` with the
   weekdays taken out; used only where it is clear: |t| > 2), times the factors of
   **special days** found in the history: the first working day after a public holiday,
   the last one before it, and the first working day of a month. A factor is estimated
   over the whole centre from every such day of the past year (its calls against the
   baseline of the days before it) and applied only if the data shows it (at least 2
   days and the mean log ratio more than 2 standard errors from 0).
2. **Time of day**: the share of each half hour on the same weekday over ``shape_weeks``,
   blended with the whole centre's shape for small queues (``shape_prior_calls``).
3. **Handle time** per half hour: ring + talk of answered visits over ``aht_weeks`` (any
   weekday), drawn towards the queue's mean where few calls were answered, plus the
   queue's wrap-up.
4. **Closed days** (public holidays, weekends, extra closures from the opening hours)
   forecast no calls, and say why.
5. An **interval** per half hour (80 % by default): Poisson noise plus the day-to-day
   spread the reference days show beyond it.

Accuracy is measured by ``backtest``: each held-out day of the last weeks is forecast
from the data up to ``horizon`` days before it and compared with what came.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from statistics import NormalDist
from typing import Any

from app.acd.calendar import Schedule

SLOT_SECONDS = 1800
SLOTS = 48  # half hours in a day (a DST day is laid on the same 48 local slots)
CENTRE = "_all"

AFTER_HOLIDAY = "after_holiday"
BEFORE_HOLIDAY = "before_holiday"
MONTH_START = "month_start"
DAY_KINDS = (AFTER_HOLIDAY, BEFORE_HOLIDAY, MONTH_START)


class ForecastError(ValueError):
    """Nothing to forecast from (no history before the origin), or a bad request."""


def slot_of(t: time) -> int:
    return (t.hour * 60 + t.minute) // 30


def slot_label(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


# --------------------------------------------------------------------------------------
# The history
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class DayLog:
    """One queue's decided visits of one local day, per half hour."""

    offered: list[int] = field(default_factory=lambda: [0] * SLOTS)
    handled: list[int] = field(default_factory=lambda: [0] * SLOTS)  # answered, known talk
    handle_seconds: list[float] = field(default_factory=lambda: [0.0] * SLOTS)  # ring + talk

    @property
    def total(self) -> int:
        return sum(self.offered)


class History:
    """Per queue and local day, what the log holds. ``observed`` are the days the centre
    had any visit at all: a day missing from the log (no service, a data gap) is not a day
    with no calls, and is left out of every mean."""

    def __init__(self) -> None:
        self.queues: dict[str, dict[date, DayLog]] = {}
        self.observed: set[date] = set()
        self._totals: dict[str, dict[date, int]] | None = None

    def add(
        self,
        queue: str,
        day: date,
        slot: int,
        offered: int,
        handled: int = 0,
        handle_seconds: float = 0.0,
    ) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} outside 0-47")
        log = self.queues.setdefault(queue, {}).get(day)
        if log is None:
            log = self.queues[queue][day] = DayLog()
        log.offered[slot] += offered
        log.handled[slot] += handled
        log.handle_seconds[slot] += handle_seconds
        if offered:
            self.observed.add(day)
        self._totals = None

    @property
    def last_day(self) -> date | None:
        return max(self.observed) if self.observed else None

    @property
    def first_day(self) -> date | None:
        return min(self.observed) if self.observed else None

    def totals(self, queue: str) -> dict[date, int]:
        """Day totals per queue (``CENTRE``: all queues), cached until the next ``add``."""
        if self._totals is None:
            totals: dict[str, dict[date, int]] = {CENTRE: {}}
            centre = totals[CENTRE]
            for q, days in self.queues.items():
                per = totals[q] = {}
                for d, log in days.items():
                    n = log.total
                    per[d] = n
                    centre[d] = centre.get(d, 0) + n
            self._totals = totals
        return self._totals.get(queue, {})

    def day(self, queue: str, d: date) -> DayLog | None:
        if queue == CENTRE:
            logs = [days[d] for days in self.queues.values() if d in days]
            if not logs:
                return None
            out = DayLog()
            for log in logs:
                for s in range(SLOTS):
                    out.offered[s] += log.offered[s]
                    out.handled[s] += log.handled[s]
                    out.handle_seconds[s] += log.handle_seconds[s]
            return out
        return self.queues.get(queue, {}).get(d)


# --------------------------------------------------------------------------------------
# Calendar: which days are special
# --------------------------------------------------------------------------------------


def _closed_weekday(d: date, schedule: Schedule) -> bool:
    """A Monday-Friday the line is closed on for a reason (holiday, extra closure)."""
    return d.weekday() < 5 and schedule.closed_reason(d) is not None


def _adjacent_weekday(d: date, step: int) -> date:
    d += timedelta(days=step)
    while d.weekday() >= 5:
        d += timedelta(days=step)
    return d


def is_open(d: date, schedule: Schedule) -> bool:
    return bool(schedule.intervals(d))


def day_kinds(d: date, schedule: Schedule) -> tuple[str, ...]:
    """The special kinds of an open day (empty for a normal day)."""
    kinds: list[str] = []
    if _closed_weekday(_adjacent_weekday(d, -1), schedule):
        kinds.append(AFTER_HOLIDAY)
    if _closed_weekday(_adjacent_weekday(d, 1), schedule):
        kinds.append(BEFORE_HOLIDAY)
    first = d.replace(day=1)
    while first < d and not is_open(first, schedule):
        first += timedelta(days=1)
    if first == d:
        kinds.append(MONTH_START)
    return tuple(kinds)


def open_slots(d: date, schedule: Schedule) -> list[int]:
    """The half hours of ``d`` that overlap its opening hours."""
    out: list[int] = []
    for interval in schedule.intervals(d):
        start = slot_of(interval.start)
        end_min = (
            24 * 60 if interval.end == time.max else (interval.end.hour * 60 + interval.end.minute)
        )
        last = (end_min - 1) // 30
        out.extend(range(start, last + 1))
    return sorted(set(out))


def closed_reason(d: date, schedule: Schedule) -> str | None:
    """Why ``d`` has no opening hours (Danish holiday name, an extra closure, weekly)."""
    reason = schedule.closed_reason(d)
    if reason is not None:
        kind, why = reason
        return f"helligdag: {why}" if kind == "holiday" else f"lukket: {why}"
    if not schedule.intervals(d):
        return f"lukket om {_DAY_NAMES[d.weekday()]}en"
    return None


_DAY_NAMES = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")


# --------------------------------------------------------------------------------------
# The forecast
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    reference_weeks: int = 6
    trend_weeks: int = 12
    shape_weeks: int = 8
    aht_weeks: int = 8
    special_lookback_days: int = 400
    shape_prior_calls: float = 300.0
    aht_prior_calls: float = 30.0
    interval: float = 0.8
    trend_cap: float = 0.3  # the trend moves a forecast by at most +-30 %
    default_aht: float | None = None  # when the log has no answered call at all


@dataclass(frozen=True, slots=True)
class SlotForecast:
    slot: int
    calls: float
    low: float
    high: float
    aht_seconds: float | None  # ring + talk + wrap-up

    @property
    def start(self) -> str:
        return slot_label(self.slot)

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "calls": round(self.calls, 2),
            "low": round(self.low, 2),
            "high": round(self.high, 2),
            "aht_seconds": None if self.aht_seconds is None else round(self.aht_seconds, 1),
        }


@dataclass(frozen=True, slots=True)
class QueueDayForecast:
    queue: str
    day: date
    closed: str | None  # why the line is closed that day; None = open
    slots: tuple[SlotForecast, ...]
    kinds: tuple[str, ...] = ()
    explain: Mapping[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> float:
        return sum(s.calls for s in self.slots)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "date": self.day.isoformat(),
            "closed": self.closed,
            "kinds": list(self.kinds),
            "calls": round(self.calls, 1),
            "explain": dict(self.explain),
            "slots": [s.as_dict() for s in self.slots],
        }


@dataclass
class _Ctx:
    """What one forecast origin needs, computed once and shared by its queues."""

    history: History
    schedule: Schedule
    origin: date
    config: ForecastConfig
    wrapup: Mapping[str, float]
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)
    _kinds: dict[date, tuple[str, ...]] = field(default_factory=dict)
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # per queue/weekday parts

    def kinds(self, d: date) -> tuple[str, ...]:
        k = self._kinds.get(d)
        if k is None:
            k = self._kinds[d] = day_kinds(d, self.schedule)
        return k

    def normal(self, d: date) -> bool:
        return d in self.history.observed and is_open(d, self.schedule) and not self.kinds(d)


def _reference_days(ctx: _Ctx, weekday: int, before: date, count: int) -> list[date]:
    """The latest ``count`` normal observed days with ``weekday`` on or before ``before``,
    looking back at most twice as many weeks."""
    days: list[date] = []
    d = before - timedelta(days=(before.weekday() - weekday) % 7)
    oldest = before - timedelta(weeks=2 * count + 2)
    while d >= oldest and len(days) < count:
        if ctx.normal(d):
            days.append(d)
        d -= timedelta(weeks=1)
    return days


def _weighted_mean(values: Sequence[float]) -> float:
    """Weights n, n-1, ..., 1 for values latest first."""
    n = len(values)
    weights = range(n, 0, -1)
    return sum(w * v for w, v in zip(weights, values, strict=True)) / (n * (n + 1) / 2)


def _baseline(ctx: _Ctx, queue: str, d: date, before: date) -> tuple[float, list[date]] | None:
    """Weighted same-weekday mean (falls back to all weekdays of the last 4 weeks when a
    weekday has fewer than 2 normal days); None without any normal day."""
    totals = ctx.history.totals(queue)
    days = _reference_days(ctx, d.weekday(), before, ctx.config.reference_weeks)
    if len(days) < 2:
        days = [
            before - timedelta(days=i) for i in range(28) if ctx.normal(before - timedelta(days=i))
        ]
        if not days:
            return None
    return _weighted_mean([float(totals.get(x, 0)) for x in days]), days


def _trend(ctx: _Ctx, queue: str) -> tuple[float, float]:
    """(log growth per day, t statistic) over the last ``trend_weeks`` of normal days,
    weekday effects removed (each weekday's own means)."""
    key = ("trend", queue)
    hit = ctx.cache.get(key)
    if hit is None:
        hit = ctx.cache[key] = _fit_trend(ctx, queue)
    slope, tstat = hit
    return float(slope), float(tstat)


def _fit_trend(ctx: _Ctx, queue: str) -> tuple[float, float]:
    totals = ctx.history.totals(queue)
    start = ctx.origin - timedelta(weeks=ctx.config.trend_weeks)
    by_wd: dict[int, list[tuple[float, float]]] = {}
    d = ctx.origin
    while d > start:
        if ctx.normal(d):
            t = float((d - ctx.origin).days)
            by_wd.setdefault(d.weekday(), []).append((t, math.log(totals.get(d, 0) + 0.5)))
        d -= timedelta(days=1)
    sxy = sxx = 0.0
    resid: list[float] = []
    points: list[tuple[float, float]] = []
    for pts in by_wd.values():
        if len(pts) < 2:
            continue
        mt = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        for t, y in pts:
            points.append((t - mt, y - my))
            sxy += (t - mt) * (y - my)
            sxx += (t - mt) ** 2
    n = len(points)
    if n < 15 or sxx == 0:
        return 0.0, 0.0
    slope = sxy / sxx
    resid = [y - slope * t for t, y in points]
    dof = n - 1 - len(by_wd)
    if dof <= 0:
        return 0.0, 0.0
    s2 = sum(r * r for r in resid) / dof
    se = math.sqrt(s2 / sxx) if s2 > 0 else 0.0
    if se == 0:
        return slope, math.inf if slope else 0.0
    return slope, slope / se


def _special_factors(ctx: _Ctx) -> dict[str, dict[str, Any]]:
    """Per special kind: the centre's calls on such days against their baseline."""
    totals = ctx.history.totals(CENTRE)
    oldest = ctx.origin - timedelta(days=ctx.config.special_lookback_days)
    ratios: dict[str, list[float]] = {k: [] for k in DAY_KINDS}
    for d in sorted(ctx.history.observed):
        if d < oldest or d > ctx.origin or not is_open(d, ctx.schedule):
            continue
        kinds = ctx.kinds(d)
        if not kinds:
            continue
        base = _baseline(ctx, CENTRE, d, d - timedelta(days=1))
        if base is None or base[0] <= 0:
            continue
        ratio = math.log((totals.get(d, 0) + 0.5) / (base[0] + 0.5))
        for k in kinds:
            ratios[k].append(ratio)
    out: dict[str, dict[str, Any]] = {}
    for kind, rs in ratios.items():
        n = len(rs)
        factor = 1.0
        if n >= 2:
            m = sum(rs) / n
            sd = math.sqrt(sum((r - m) ** 2 for r in rs) / (n - 1))
            se = sd / math.sqrt(n)
            if abs(m) > 2 * se and abs(m) > math.log(1.03):
                factor = math.exp(m)
        out[kind] = {"days": n, "factor": round(factor, 3), "applied": factor != 1.0}
    return out


def _shape(
    ctx: _Ctx, queue: str, d: date, slots: Sequence[int]
) -> tuple[list[float], list[float], str]:
    """Share of the day's calls per open slot (sums to 1 over ``slots``), and the calls
    each share rests on."""

    def counts(q: str) -> tuple[list[float], float]:
        key = ("shape", q, d.weekday())
        acc = ctx.cache.get(key)
        if acc is None:
            days = _reference_days(ctx, d.weekday(), ctx.origin, ctx.config.shape_weeks)
            acc = [0.0] * SLOTS
            names = list(ctx.history.queues) if q == CENTRE else [q]
            for x in days:
                for name in names:
                    log = ctx.history.queues.get(name, {}).get(x)
                    if log is not None:
                        for s in range(SLOTS):
                            acc[s] += log.offered[s]
            ctx.cache[key] = acc
        return acc, sum(acc[s] for s in slots)

    own, n_own = counts(queue)
    centre, n_centre = counts(CENTRE) if queue != CENTRE else (own, n_own)
    k = ctx.config.shape_prior_calls
    out: list[float] = []
    weight: list[float] = []  # calls behind each share: its sampling noise
    for s in slots:
        p_own = own[s] / n_own if n_own else 0.0
        p_centre = centre[s] / n_centre if n_centre else 1.0 / len(slots)
        out.append((n_own * p_own + k * p_centre) / (n_own + k))
        weight.append(own[s] + k * p_centre)
    total = sum(out)
    if total <= 0:
        return [1.0 / len(slots)] * len(slots), [0.0] * len(slots), "flat"
    how = "queue" if n_own >= 10 * k else ("blended with the centre" if n_own else "centre")
    return [x / total for x in out], weight, how


def _aht_sums(ctx: _Ctx, queue: str) -> tuple[list[float], list[int]]:
    key = ("aht", queue)
    hit = ctx.cache.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    secs, n = [0.0] * SLOTS, [0] * SLOTS
    names = list(ctx.history.queues) if queue == CENTRE else [queue]
    for i in range(7 * ctx.config.aht_weeks):
        d = ctx.origin - timedelta(days=i)
        for name in names:
            log = ctx.history.queues.get(name, {}).get(d)
            if log is None:
                continue
            for s in range(SLOTS):
                if log.handled[s]:
                    secs[s] += log.handle_seconds[s]
                    n[s] += log.handled[s]
    ctx.cache[key] = (secs, n)
    return secs, n


def _aht(ctx: _Ctx, queue: str, slots: Sequence[int]) -> tuple[list[float | None], float | None]:
    """Ring + talk per slot (without wrap-up), and the queue's mean."""
    secs, n = _aht_sums(ctx, queue)
    total_n = sum(n)
    if total_n:
        mean: float | None = sum(secs) / total_n
    else:
        c_secs, c_n = _aht_sums(ctx, CENTRE)
        mean = sum(c_secs) / sum(c_n) if sum(c_n) else ctx.config.default_aht
    if mean is None:
        return [None] * len(slots), None
    k = ctx.config.aht_prior_calls
    return [(secs[s] + k * mean) / (n[s] + k) for s in slots], mean


def _dispersion(ctx: _Ctx, queue: str, days: Sequence[date], mean: float) -> float:
    """Relative day-to-day spread beyond Poisson noise among the reference days."""
    if len(days) < 3 or mean <= 0:
        return 0.0
    totals = ctx.history.totals(queue)
    xs = [float(totals.get(d, 0)) for d in days]
    m = sum(xs) / len(xs)
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return math.sqrt(max(0.0, var / (mean * mean) - 1.0 / mean))


def _queue_day(ctx: _Ctx, queue: str, d: date) -> QueueDayForecast:
    why = closed_reason(d, ctx.schedule)
    if why is not None:
        return QueueDayForecast(queue, d, why, ())
    slots = open_slots(d, ctx.schedule)
    base = _baseline(ctx, queue, d, ctx.origin)
    wrapup = ctx.wrapup.get(queue, 0.0)
    kinds = ctx.kinds(d)
    explain: dict[str, Any] = {"kinds": list(kinds)}
    days: list[date] = []
    if base is None:
        volume = 0.0
        explain["note"] = "no normal day in the log to start from"
    else:
        volume, days = base
        explain["weekday_mean"] = round(volume, 2)
        explain["reference_days"] = [x.isoformat() for x in days]
    slope, tstat = _trend(ctx, queue)
    factor = 1.0
    if abs(tstat) > 2 and days:
        ages = [(x - ctx.origin).days for x in days]
        n = len(ages)
        centre_t = sum(w * a for w, a in zip(range(n, 0, -1), ages, strict=True)) / (
            n * (n + 1) / 2
        )
        cap = ctx.config.trend_cap
        factor = min(1 + cap, max(1 - cap, math.exp(slope * ((d - ctx.origin).days - centre_t))))
    explain["trend_per_week"] = round(math.expm1(7 * slope), 4) if abs(tstat) > 2 else 0.0
    explain["trend_factor"] = round(factor, 4)
    special = 1.0
    for k in kinds:
        special *= ctx.factors[k]["factor"]
    explain["special_factor"] = round(special, 4)
    total = volume * factor * special
    shape, weight, how = _shape(ctx, queue, d, slots)
    explain["shape"] = how
    ahts, mean = _aht(ctx, queue, slots)
    explain["aht_mean_seconds"] = None if mean is None else round(mean + wrapup, 1)
    explain["wrapup_seconds"] = wrapup
    sigma = _dispersion(ctx, queue, days, volume)
    explain["day_spread"] = round(sigma, 4)
    z = NormalDist().inv_cdf(0.5 + ctx.config.interval / 2)
    out: list[SlotForecast] = []
    for s, share, behind, aht in zip(slots, shape, weight, ahts, strict=True):
        f = total * share
        # Poisson noise, the day's spread, the share's own sampling noise
        var = f + (sigma * f) ** 2 + (f * f / behind if behind > 0 else 0.0)
        half = z * math.sqrt(var)
        out.append(
            SlotForecast(s, f, max(0.0, f - half), f + half, None if aht is None else aht + wrapup)
        )
    return QueueDayForecast(queue, d, None, tuple(out), kinds, explain)


def _context(
    history: History,
    schedule: Schedule,
    origin: date,
    config: ForecastConfig,
    wrapup: Mapping[str, float],
) -> _Ctx:
    ctx = _Ctx(history, schedule, origin, config, wrapup)
    ctx.factors = _special_factors(ctx)
    return ctx


def forecast(
    history: History,
    queues: Sequence[str],
    days: Iterable[date],
    schedule: Schedule,
    *,
    origin: date | None = None,
    wrapup: Mapping[str, float] | None = None,
    config: ForecastConfig | None = None,
) -> list[QueueDayForecast]:
    """Each queue on each day, from the data up to ``origin`` (default: the last day of
    the history). Raises ``ForecastError`` when there is nothing to start from."""
    config = config or ForecastConfig()
    last = history.last_day
    if last is None:
        raise ForecastError("the log has no calls yet: nothing to forecast from")
    origin = min(origin, last) if origin is not None else last
    if history.first_day is not None and origin < history.first_day:
        raise ForecastError(f"the log has no calls on or before {origin.isoformat()}")
    ctx = _context(history, schedule, origin, config, wrapup or {})
    return [_queue_day(ctx, q, d) for d in days for q in queues]


def special_factors(
    history: History, schedule: Schedule, origin: date, config: ForecastConfig | None = None
) -> dict[str, dict[str, Any]]:
    """The special-day factors the forecast from ``origin`` applies (for the report)."""
    return _context(history, schedule, origin, config or ForecastConfig(), {}).factors


# --------------------------------------------------------------------------------------
# Measured accuracy: a rolling backtest
# --------------------------------------------------------------------------------------


@dataclass
class _Errors:
    days: int = 0
    actual: float = 0.0
    abs_day: float = 0.0
    abs_slot: float = 0.0
    signed: float = 0.0
    slots: int = 0
    covered: int = 0
    aht_abs: float = 0.0  # |forecast - actual| handle seconds, weighted by answered calls
    aht_calls: int = 0
    aht_actual: float = 0.0

    def result(self, horizon: int) -> Accuracy:
        a = self.actual
        return Accuracy(
            days=self.days,
            horizon_days=horizon,
            actual_calls=round(a),
            wape_day=round(self.abs_day / a, 4) if a else None,
            wape_half_hour=round(self.abs_slot / a, 4) if a else None,
            bias=round(self.signed / a, 4) if a else None,
            interval_coverage=round(self.covered / self.slots, 4) if self.slots else None,
            aht_wape=round(self.aht_abs / self.aht_actual, 4) if self.aht_actual else None,
        )


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Backtest figures: WAPE = sum |forecast - actual| / sum actual (per day totals and
    per half hour), bias = sum (forecast - actual) / sum actual (> 0: forecast too high),
    coverage = share of half hours whose actual count fell inside the interval."""

    days: int
    horizon_days: int
    actual_calls: int
    wape_day: float | None
    wape_half_hour: float | None
    bias: float | None
    interval_coverage: float | None
    aht_wape: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "horizon_days": self.horizon_days,
            "actual_calls": self.actual_calls,
            "wape_day": self.wape_day,
            "wape_half_hour": self.wape_half_hour,
            "bias": self.bias,
            "interval_coverage": self.interval_coverage,
            "aht_wape": self.aht_wape,
        }


def backtest(
    history: History,
    queues: Sequence[str],
    schedule: Schedule,
    *,
    origin: date | None = None,
    weeks: int = 4,
    horizon: int = 1,
    wrapup: Mapping[str, float] | None = None,
    config: ForecastConfig | None = None,
) -> dict[str, Accuracy]:
    """Rolling-origin backtest over the observed open days of the ``weeks`` before
    ``origin``: each day forecast from the data up to ``horizon`` days before it. Per
    queue and for the centre (``_all``, the sum of the queues)."""
    config = config or ForecastConfig()
    last = history.last_day
    if last is None:
        return {}
    origin = min(origin, last) if origin is not None else last
    horizon = max(1, horizon)
    wrapup = wrapup or {}
    errors = {q: _Errors() for q in (*queues, CENTRE)}
    z = NormalDist().inv_cdf(0.5 + config.interval / 2)
    test_days = [
        origin - timedelta(days=i)
        for i in range(7 * weeks)
        if (origin - timedelta(days=i)) in history.observed
        and is_open(origin - timedelta(days=i), schedule)
    ]
    contexts: dict[date, _Ctx] = {}
    for d in sorted(test_days):
        start = d - timedelta(days=horizon)
        if history.first_day is None or start < history.first_day:
            continue
        ctx = contexts.get(start)
        if ctx is None:
            ctx = contexts[start] = _context(history, schedule, start, config, wrapup)
        centre_f = [0.0] * SLOTS
        centre_var = [0.0] * SLOTS
        centre_a = history.day(CENTRE, d) or DayLog()
        for q in queues:
            fc = _queue_day(ctx, q, d)
            actual = history.day(q, d) or DayLog()
            _score(errors[q], fc.slots, actual, wrapup.get(q, 0.0))
            for s in fc.slots:
                centre_f[s.slot] += s.calls
                centre_var[s.slot] += ((s.high - s.calls) / z) ** 2
        centre_slots = tuple(
            SlotForecast(
                s,
                centre_f[s],
                max(0.0, centre_f[s] - z * math.sqrt(centre_var[s])),
                centre_f[s] + z * math.sqrt(centre_var[s]),
                None,
            )
            for s in open_slots(d, schedule)
        )
        _score(errors[CENTRE], centre_slots, centre_a, None)
    return {q: e.result(horizon) for q, e in errors.items()}


def _score(
    err: _Errors, slots: Sequence[SlotForecast], actual: DayLog, wrapup: float | None
) -> None:
    err.days += 1
    f_day = sum(s.calls for s in slots)
    a_day = float(sum(actual.offered[s.slot] for s in slots))
    # calls outside the forecast's open slots count as missed
    a_all = float(actual.total)
    err.actual += a_all
    err.abs_day += abs(f_day - a_all)
    err.signed += f_day - a_all
    err.abs_slot += sum(abs(s.calls - actual.offered[s.slot]) for s in slots) + (a_all - a_day)
    for s in slots:
        err.slots += 1
        if s.low <= actual.offered[s.slot] <= s.high:
            err.covered += 1
        n = actual.handled[s.slot]
        if wrapup is not None and n and s.aht_seconds is not None:
            real = actual.handle_seconds[s.slot] / n + wrapup
            err.aht_abs += n * abs(s.aht_seconds - real)
            err.aht_actual += n * real
            err.aht_calls += n
