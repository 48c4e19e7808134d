"""A staffing plan: the forecast's calls per half hour turned into agents per queue (or per
group of queues sharing agents) to meet the goals, under Erlang C and Erlang A, with the
figures expected at that staffing. Pure.

The plan's number of agents per half hour is Erlang A's where the callers' patience is
known from the log, else Erlang C's; both are shown. Agents are *on the phones*;
``rostered`` adds the shrinkage (pauses and other non-call time). Agent-hours add up the
half hours (0.5 h each).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.acd.forecast import SLOT_SECONDS, QueueDayForecast, slot_label
from app.acd.kpi import GOALS, Goals, KpiConfig
from app.acd.staffing import (
    Model,
    Performance,
    Staffing,
    StaffingError,
    Targets,
    erlang_a_performance,
    erlang_c_performance,
    required_agents,
)


@dataclass(frozen=True, slots=True)
class PlanTargets:
    """The goals a plan staffs each half hour to. Filled from the goals data; the defaults
    are DOMAIN.md's agreement as ``app.acd.kpi.GOALS`` holds it (availability 92 %,
    average wait 150 s, 93 % answered within 180 s)."""

    answer_rate: float | None = GOALS.answer_rate
    avg_wait_seconds: float | None = GOALS.avg_wait_seconds
    service_level: float | None = GOALS.service_level
    service_level_seconds: float = 180.0
    max_occupancy: float | None = None

    @classmethod
    def from_goals(
        cls, goals: Goals, kpi: KpiConfig, max_occupancy: float | None = None
    ) -> PlanTargets:
        return cls(
            answer_rate=goals.answer_rate,
            avg_wait_seconds=goals.avg_wait_seconds,
            service_level=goals.service_level,
            service_level_seconds=kpi.service_level_seconds,
            max_occupancy=max_occupancy,
        )

    def targets(self) -> Targets:
        return Targets(
            service_level=self.service_level,
            answer_within=self.service_level_seconds,
            avg_wait_seconds=self.avg_wait_seconds,
            answer_rate=self.answer_rate,
            max_occupancy=self.max_occupancy,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer_rate": self.answer_rate,
            "avg_wait_seconds": self.avg_wait_seconds,
            "service_level": self.service_level,
            "service_level_seconds": self.service_level_seconds,
            "max_occupancy": self.max_occupancy,
        }


@dataclass(frozen=True, slots=True)
class PlanInputs:
    targets: PlanTargets = field(default_factory=PlanTargets)
    patience: Mapping[str, float | None] = field(default_factory=dict)  # mean, per queue
    shrinkage: float = 0.0
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)  # shared agents


@dataclass(frozen=True, slots=True)
class PlanCell:
    """One group, one half hour."""

    slot: int
    calls: float
    aht_seconds: float | None
    patience_seconds: float | None
    erlang_c: Staffing | None
    erlang_a: Staffing | None
    note: str | None = None  # why there is no staffing (no handle time known, ...)

    @property
    def erlangs(self) -> float:
        return self.calls * (self.aht_seconds or 0.0) / SLOT_SECONDS

    @property
    def chosen(self) -> Staffing | None:
        """Erlang A where a patience is known, else Erlang C."""
        return self.erlang_a if self.erlang_a is not None else self.erlang_c

    @property
    def agents(self) -> int | None:
        s = self.chosen
        return None if s is None else s.agents


@dataclass(frozen=True, slots=True)
class DayFigures:
    """Expected figures of a day (or a group's day) at a staffing: calls-weighted."""

    calls: float
    answer_rate: float | None
    avg_wait_seconds: float | None
    service_level: float | None
    asa_seconds: float | None
    occupancy: float | None

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None, n: int) -> float | None:
            return None if v is None else round(v, n)

        return {
            "calls": round(self.calls, 1),
            "answer_rate": r(self.answer_rate, 4),
            "avg_wait_seconds": r(self.avg_wait_seconds, 1),
            "service_level": r(self.service_level, 4),
            "asa_seconds": r(self.asa_seconds, 1),
            "occupancy": r(self.occupancy, 4),
        }


def day_figures(parts: Iterable[tuple[float, Performance | None]]) -> DayFigures:
    """Add up half hours: (calls, figures at their staffing)."""
    calls = answered = waits = within = answered_wait = busy = staffed = 0.0
    known = False
    for n, p in parts:
        calls += n
        if p is None or n <= 0:
            continue
        if p.avg_wait_seconds is None:  # unstable Erlang C: the day is unbounded too
            return DayFigures(calls, None, None, None, None, None)
        known = True
        share = p.answer_rate if p.answer_rate is not None else 1.0
        answered += n * share
        waits += n * p.avg_wait_seconds
        within += n * share * p.service_level
        answered_wait += n * share * (p.asa_seconds or 0.0)
        busy += p.load_erlangs * share
        staffed += p.agents
    if not known or calls <= 0:
        return DayFigures(calls, None, None, None, None, None)
    return DayFigures(
        calls,
        answered / calls,
        waits / calls,
        within / answered if answered else None,
        answered_wait / answered if answered else None,
        busy / staffed if staffed else None,
    )


@dataclass(frozen=True, slots=True)
class GroupDayPlan:
    """One group of queues (usually one queue) on one day."""

    group: str
    queues: tuple[str, ...]
    day: date
    closed: str | None
    cells: tuple[PlanCell, ...]
    shrinkage: float

    def agent_hours(self, model: Model | None = None) -> float:
        """Agent-hours on the phones: Erlang C, Erlang A, or the plan's (None)."""
        total = 0
        for c in self.cells:
            s = c.chosen if model is None else (c.erlang_a if model == "A" else c.erlang_c)
            if s is not None and s.agents is not None:
                total += s.agents
        return total * SLOT_SECONDS / 3600.0

    def rostered(self, agents: int | None) -> int | None:
        if agents is None:
            return None
        return math.ceil(agents / (1.0 - self.shrinkage) - 1e-9)

    def rostered_hours(self) -> float:
        return sum(self.rostered(c.agents) or 0 for c in self.cells) * SLOT_SECONDS / 3600.0

    def figures(self, model: Model | None = None) -> DayFigures:
        parts = []
        for c in self.cells:
            s = c.chosen if model is None else (c.erlang_a if model == "A" else c.erlang_c)
            parts.append((c.calls, None if s is None else s.performance))
        return day_figures(parts)

    def as_dict(self) -> dict[str, Any]:
        def staffing(s: Staffing | None) -> dict[str, Any] | None:
            if s is None:
                return None
            p = s.performance
            return {
                "agents": s.agents,
                "reason": s.reason,
                "service_level": None if p is None else round(p.service_level, 4),
                "asa_seconds": _r(p.asa_seconds if p else None, 1),
                "avg_wait_seconds": _r(p.avg_wait_seconds if p else None, 1),
                "answer_rate": _r(p.answer_rate if p else None, 4),
                "occupancy": None if p is None else round(p.occupancy, 4),
            }

        return {
            "group": self.group,
            "queues": list(self.queues),
            "date": self.day.isoformat(),
            "closed": self.closed,
            "shrinkage": round(self.shrinkage, 4),
            "agent_hours": {
                "erlang_c": self.agent_hours("C"),
                "erlang_a": self.agent_hours("A") if self._has_a else None,
                "plan": self.agent_hours(),
                "rostered": self.rostered_hours(),
            },
            "expected": {
                "erlang_c": self.figures("C").as_dict(),
                "erlang_a": self.figures("A").as_dict() if self._has_a else None,
            },
            "half_hours": [
                {
                    "start": slot_label(c.slot),
                    "calls": round(c.calls, 2),
                    "aht_seconds": _r(c.aht_seconds, 1),
                    "patience_seconds": _r(c.patience_seconds, 1),
                    "erlangs": round(c.erlangs, 3),
                    "agents": c.agents,
                    "rostered": self.rostered(c.agents),
                    "erlang_c": staffing(c.erlang_c),
                    "erlang_a": staffing(c.erlang_a),
                    "note": c.note,
                }
                for c in self.cells
            ],
        }

    @property
    def _has_a(self) -> bool:
        return any(c.erlang_a is not None for c in self.cells)


def _r(v: float | None, n: int) -> float | None:
    return None if v is None else round(v, n)


def groups_of(
    queues: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """Every queue in exactly one group: the given groups, then one per remaining queue."""
    out: dict[str, tuple[str, ...]] = {}
    taken: set[str] = set()
    for name, members in groups.items():
        ms = tuple(m for m in members if m in queues and m not in taken)
        if ms:
            out[name] = ms
            taken.update(ms)
    for q in queues:
        if q not in taken:
            out[q] = (q,)
    return out


def plan_cell(
    slot: int,
    calls: float,
    aht: float | None,
    patience: float | None,
    targets: PlanTargets,
) -> PlanCell:
    """Erlang C and (with a patience) Erlang A staffing of one half hour."""
    if calls <= 0:
        return PlanCell(slot, calls, aht, patience, None, None, "no calls expected")
    if aht is None or aht <= 0:
        return PlanCell(
            slot, calls, aht, patience, None, None, "no handle time in the log for this queue"
        )
    lam = calls / SLOT_SECONDS
    t = targets.targets()
    try:
        c = required_agents("C", lam, aht, t, patience)
        a = required_agents("A", lam, aht, t, patience) if patience is not None else None
    except StaffingError as exc:
        return PlanCell(slot, calls, aht, patience, None, None, str(exc))
    return PlanCell(slot, calls, aht, patience, c, a)


def build_plan(forecasts: Sequence[QueueDayForecast], inputs: PlanInputs) -> list[GroupDayPlan]:
    """The plan of every group on every day of ``forecasts``."""
    inputs.targets.targets().check()
    if not 0 <= inputs.shrinkage < 1:
        raise StaffingError("shrinkage must be 0 or more and below 1")
    by_day: dict[date, dict[str, QueueDayForecast]] = {}
    queues: list[str] = []
    for f in forecasts:
        by_day.setdefault(f.day, {})[f.queue] = f
        if f.queue not in queues:
            queues.append(f.queue)
    groups = groups_of(queues, inputs.groups)
    out: list[GroupDayPlan] = []
    for day in sorted(by_day):
        fcs = by_day[day]
        for name, members in groups.items():
            parts = [fcs[m] for m in members if m in fcs]
            closed = parts[0].closed if parts and all(p.closed for p in parts) else None
            cells = [] if closed else _group_cells(parts, inputs)
            out.append(GroupDayPlan(name, members, day, closed, tuple(cells), inputs.shrinkage))
    return out


def _group_cells(parts: Sequence[QueueDayForecast], inputs: PlanInputs) -> list[PlanCell]:
    """Pool the group's queues per half hour: calls add up, handle time and abandonment
    rate (1 / patience) are calls-weighted means."""
    slots: dict[int, list[tuple[float, float | None, float | None]]] = {}
    for f in parts:
        mean_patience = inputs.patience.get(f.queue)
        for s in f.slots:
            slots.setdefault(s.slot, []).append((s.calls, s.aht_seconds, mean_patience))
    cells: list[PlanCell] = []
    for slot in sorted(slots):
        rows = slots[slot]
        calls = sum(r[0] for r in rows)
        with_aht = [(n, a) for n, a, _ in rows if a is not None]
        weight = sum(n for n, _ in with_aht)
        if with_aht and weight > 0:
            aht: float | None = sum(n * a for n, a in with_aht) / weight
        elif with_aht:
            aht = sum(a for _, a in with_aht) / len(with_aht)
        else:
            aht = None
        pats = [(n, p) for n, _, p in rows if p is not None]
        pw = sum(n for n, _ in pats)
        patience: float | None = None
        if pats:
            rate = (
                sum(n / p for n, p in pats) / pw
                if pw > 0
                else sum(1 / p for _, p in pats) / len(pats)
            )
            patience = 1.0 / rate
        cells.append(plan_cell(slot, calls, aht, patience, inputs.targets))
    return cells


def cell_performance(
    agents: int, cell: PlanCell, targets: PlanTargets, model: Model | None = None
) -> Performance | None:
    """The figures of ``cell`` at a staffing other than the plan's (the check's)."""
    if cell.calls <= 0 or cell.aht_seconds is None:
        return None
    if agents < 1:
        return None
    lam = cell.calls / SLOT_SECONDS
    use_a = cell.patience_seconds is not None and model != "C"
    if use_a:
        assert cell.patience_seconds is not None
        return erlang_a_performance(
            agents, lam, cell.aht_seconds, cell.patience_seconds, targets.service_level_seconds
        )
    return erlang_c_performance(
        agents, lam, cell.aht_seconds, targets.service_level_seconds, cell.patience_seconds
    )


def mean_patience(
    samples: Mapping[str, tuple[int, float]], prior_abandons: float = 10.0
) -> tuple[dict[str, float | None], float | None]:
    """Mean patience per queue from (abandons, total wait of callers who could abandon):
    the exponential patience's maximum-likelihood estimate with the answered callers'
    waits as censored observations (mean = total wait / abandons). A queue with few
    abandons is drawn towards the centre's mean by ``prior_abandons`` pseudo-abandons.
    None: no abandon in the log at all (Erlang A cannot be fitted; Erlang C stands)."""
    abandons = sum(a for a, _ in samples.values())
    exposure = sum(w for _, w in samples.values())
    if abandons <= 0 or exposure <= 0:
        return dict.fromkeys(samples), None
    centre = exposure / abandons
    k = prior_abandons
    out: dict[str, float | None] = {q: (w + k * centre) / (a + k) for q, (a, w) in samples.items()}
    return out, centre
