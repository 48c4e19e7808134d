"""Intraday: from today's calls so far, the rest of the day re-forecast and the day's
availability, average wait and service level projected, so that "goal at risk" can be
said while there is still time to act. Pure: the morning's forecast and plan, today's
figures so far, the agents staffed now and the time come in.

- **Re-forecast**: the rest of each queue's day is the morning forecast times
  (calls so far + 20) / (forecast so far + 20): today's surprise, damped while it rests
  on few calls.
- **Staffing** assumed: the agents staffed now for the current half hour, the plan's for
  the half hours after it.
- **Projection**: today's decided visits plus, for each remaining half hour, the
  re-forecast calls at the Erlang A (or C) figures of that staffing; the same definitions
  as docs/kpis.md (availability = answered / (offered - short abandons), average wait
  over every offered visit, service level over the answered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.acd.forecast import SLOT_SECONDS, QueueDayForecast
from app.acd.plan import PlanCell, PlanTargets, cell_performance
from app.acd.staffing import Performance

DAMPING_CALLS = 20.0


@dataclass(frozen=True, slots=True)
class SoFar:
    """Today's decided visits of a queue (the live "today" figures)."""

    offered: int = 0
    short_abandoned: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    wait_seconds: float = 0.0  # summed over every decided visit

    @classmethod
    def from_figures(cls, today: Mapping[str, Any]) -> SoFar:
        offered = int(today.get("offered") or 0)
        avg = today.get("avg_wait_seconds")
        return cls(
            offered=offered,
            short_abandoned=int(today.get("short_abandoned") or 0),
            answered=int(today.get("answered") or 0),
            answered_within_sl=int(today.get("answered_within_sl") or 0),
            wait_seconds=float(avg) * offered if avg is not None else 0.0,
        )

    def __add__(self, other: SoFar) -> SoFar:
        return SoFar(
            self.offered + other.offered,
            self.short_abandoned + other.short_abandoned,
            self.answered + other.answered,
            self.answered_within_sl + other.answered_within_sl,
            self.wait_seconds + other.wait_seconds,
        )


@dataclass(frozen=True, slots=True)
class Projection:
    forecast_calls: float  # the morning forecast of the whole day
    expected_calls: float  # calls so far + the re-forecast rest of the day
    factor: float  # re-forecast / forecast for the rest of the day
    answer_rate: float | None
    avg_wait_seconds: float | None
    service_level: float | None
    at_risk: tuple[str, ...]  # goals the projection misses: answer_rate, avg_wait, ...

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None, n: int) -> float | None:
            return None if v is None else round(v, n)

        return {
            "forecast_calls": round(self.forecast_calls, 1),
            "expected_calls": round(self.expected_calls, 1),
            "factor": round(self.factor, 3),
            "answer_rate": r(self.answer_rate, 4),
            "avg_wait_seconds": r(self.avg_wait_seconds, 1),
            "service_level": r(self.service_level, 4),
            "at_risk": list(self.at_risk),
        }


@dataclass
class _Sums:
    net_offered: float = 0.0
    offered: float = 0.0
    answered: float = 0.0
    within: float = 0.0
    waits: float = 0.0
    forecast: float = 0.0
    expected: float = 0.0
    rest_forecast: float = 0.0  # the morning forecast of the rest of the day
    rest_expected: float = 0.0  # its re-forecast

    def add_so_far(self, s: SoFar) -> None:
        self.net_offered += s.offered - s.short_abandoned
        self.offered += s.offered
        self.answered += s.answered
        self.within += s.answered_within_sl
        self.waits += s.wait_seconds
        self.expected += s.offered

    def add_expected(self, calls: float, p: Performance | None, patience: float | None) -> None:
        self.net_offered += calls
        self.offered += calls
        self.expected += calls
        if p is None:  # nobody to answer: every caller gives up (after their patience)
            self.waits += calls * (patience or 0.0)
            return
        share = p.answer_rate if p.answer_rate is not None else 1.0
        self.answered += calls * share
        self.within += calls * share * p.service_level
        self.waits += calls * (p.avg_wait_seconds or 0.0)

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def projection(self, targets: PlanTargets) -> Projection:
        factor = self.rest_expected / self.rest_forecast if self.rest_forecast > 0 else 1.0
        rate = self.answered / self.net_offered if self.net_offered > 0 else None
        wait = self.waits / self.offered if self.offered > 0 else None
        sl = self.within / self.answered if self.answered > 0 else None
        risk: list[str] = []
        if targets.answer_rate is not None and rate is not None and rate < targets.answer_rate:
            risk.append("answer_rate")
        if (
            targets.avg_wait_seconds is not None
            and wait is not None
            and wait > targets.avg_wait_seconds
        ):
            risk.append("avg_wait")
        if targets.service_level is not None and sl is not None and sl < targets.service_level:
            risk.append("service_level")
        return Projection(self.forecast, self.expected, factor, rate, wait, sl, tuple(risk))


def project_queue(
    forecast: QueueDayForecast,
    cells: Sequence[PlanCell],
    so_far: SoFar,
    elapsed_slot: float,
    staffed_now: int,
    targets: PlanTargets,
) -> tuple[Projection, _Sums]:
    """One queue. ``elapsed_slot`` = the time of day in half hours (10.5 = 05:15 ...)."""
    current = int(elapsed_slot)
    frac = elapsed_slot - current
    done = 0.0
    for s in forecast.slots:
        if s.slot < current:
            done += s.calls
        elif s.slot == current:
            done += s.calls * frac
    factor = (so_far.offered + DAMPING_CALLS) / (done + DAMPING_CALLS)
    by_slot = {c.slot: c for c in cells}
    sums = _Sums(forecast=forecast.calls)
    sums.add_so_far(so_far)
    for s in forecast.slots:
        if s.slot < current:
            continue
        rest = s.calls * (1.0 - frac if s.slot == current else 1.0)
        left = rest * factor
        sums.rest_forecast += rest
        sums.rest_expected += left
        if left <= 0:
            continue
        cell = by_slot.get(s.slot)
        if cell is None:
            continue
        plan = cell.agents or 0
        agents = staffed_now if s.slot == current else plan
        # the figures at this staffing, for the re-forecast calls of the whole half hour
        scaled = PlanCell(
            cell.slot,
            s.calls * factor,
            cell.aht_seconds,
            cell.patience_seconds,
            cell.erlang_c,
            cell.erlang_a,
        )
        p = cell_performance(agents, scaled, targets)
        sums.add_expected(left, p, cell.patience_seconds)
    return sums.projection(targets), sums


def project_day(
    forecasts: Mapping[str, QueueDayForecast],
    cells: Mapping[str, Sequence[PlanCell]],
    so_far: Mapping[str, SoFar],
    staffed_now: Mapping[str, int],
    elapsed_slot: float,
    targets: PlanTargets,
) -> tuple[dict[str, Projection], Projection]:
    """Every queue with a forecast, and the centre (their sum)."""
    out: dict[str, Projection] = {}
    total = _Sums()
    for queue, fc in forecasts.items():
        if fc.closed is not None:
            continue
        proj, sums = project_queue(
            fc,
            cells.get(queue, ()),
            so_far.get(queue, SoFar()),
            elapsed_slot,
            staffed_now.get(queue, 0),
            targets,
        )
        out[queue] = proj
        total.add(sums)
    return out, total.projection(targets)


def elapsed_slots(seconds_since_midnight: float) -> float:
    return seconds_since_midnight / SLOT_SECONDS
