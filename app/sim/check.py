"""``acd plan --check``: play a planned day in the simulated PBX and adjust the staffing
until the simulation meets the goals with the fewest agent-hours.

The forecast day's calls arrive as Poisson streams per queue and half hour (the callers
of the traffic model: its lognormal patience and talk times, menu, ring times, wrap-up),
through the trivial FastAGI menu (app/sim/stub_ivr.py) over loopback TCP, into app_queue's
model; the agents are the plan's, per group and half hour, on the phones. The simulator
runs in its fast mode (virtual time), so a day costs seconds.

Judging uses the service's own definitions (``app.acd.kpi``): a half hour of a group,
a group's day, a half hour of the centre and the centre's day each meet the goals or not.
Units with fewer than ``min_calls`` offered are shown but not judged (a handful of calls
says nothing about a goal).

Adjusting, in at most ``rounds`` simulated days with the same callers each time (common
random numbers, so a change of figures is the staffing's doing):
- a unit missing a goal gets one agent more (a half hour: that cell; a day: the half hour
  with the longest average wait), and that cell is not reduced again;
- when everything is met, every judged cell whose figures are met with room to spare
  gives one agent back; if that breaks a goal, the cells involved get it back for good.
The answer is the passing staffing with the fewest agent-hours.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.acd.forecast import SLOT_SECONDS, QueueDayForecast, slot_label, slot_of
from app.acd.kpi import Figures, KpiConfig, Tally, figures
from app.acd.plan import GroupDayPlan, PlanTargets
from app.acd.records import VisitRecord
from app.sim.conf import QueuesConfig
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx
from app.sim.stub_ivr import StubIvr
from app.sim.traffic import (
    TrafficConfig,
    catalogue_key_planner,
    plan_given,
    staffed_agents,
)
from app.sim.truth import CallTruth

RING_MEAN = 3.75  # the simulated agents answer after 1.5-6 s
Cell = tuple[str, int]  # (group, slot)


@dataclass(frozen=True, slots=True)
class Verdict:
    figures: Figures
    judged: bool
    met: bool | None  # None: not judged
    missed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        f = self.figures
        return {
            "offered": f.offered,
            "answered": f.answered,
            "answer_rate": f.answer_rate,
            "avg_wait_seconds": f.avg_wait_seconds,
            "service_level": f.service_level,
            "asa_seconds": f.asa_seconds,
            "met": self.met,
            "missed": list(self.missed),
        }


@dataclass
class Round:
    staffing: dict[Cell, int]
    agent_hours: float
    cells: dict[Cell, Verdict]
    groups: dict[str, Verdict]
    centre_slots: dict[int, Verdict]
    centre: Verdict
    calls: int
    seconds: float

    @property
    def passed(self) -> bool:
        units: list[Verdict] = [
            *self.cells.values(),
            *self.groups.values(),
            *self.centre_slots.values(),
            self.centre,
        ]
        return all(v.met is not False for v in units)


@dataclass
class CheckResult:
    day: date
    rounds: list[Round] = field(default_factory=list)
    best: Round | None = None
    erlang_c_hours: float = 0.0
    erlang_a_hours: float = 0.0
    plan_hours: float = 0.0

    @property
    def met(self) -> bool:
        return self.best is not None

    def as_dict(self, groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        final = self.best or (self.rounds[-1] if self.rounds else None)
        out: dict[str, Any] = {
            "date": self.day.isoformat(),
            "met": self.met,
            "agent_hours": {
                "erlang_c": self.erlang_c_hours,
                "erlang_a": self.erlang_a_hours,
                "plan": self.plan_hours,
                "simulated_optimal": self.best.agent_hours if self.best else None,
            },
            "rounds": [
                {
                    "agent_hours": r.agent_hours,
                    "passed": r.passed,
                    "calls": r.calls,
                    "seconds": round(r.seconds, 2),
                    "centre": r.centre.as_dict(),
                }
                for r in self.rounds
            ],
        }
        if final is not None:
            out["centre"] = final.centre.as_dict()
            out["centre_half_hours"] = {
                slot_label(s): v.as_dict() for s, v in sorted(final.centre_slots.items())
            }
            out["groups"] = {
                g: {
                    "queues": list(groups[g]),
                    "day": final.groups[g].as_dict() if g in final.groups else None,
                    "half_hours": [
                        {
                            "start": slot_label(slot),
                            "agents": final.staffing[(g, slot)],
                            **(
                                final.cells[(g, slot)].as_dict() if (g, slot) in final.cells else {}
                            ),
                        }
                        for (gg, slot) in sorted(final.staffing)
                        if gg == g
                    ],
                }
                for g in groups
            }
        return out


def _verdict(t: Tally, targets: PlanTargets, min_calls: int) -> Verdict:
    f = figures(t)
    if f.offered < min_calls:
        return Verdict(f, False, None)
    missed: list[str] = []
    if targets.answer_rate is not None and (f.answer_rate or 0.0) < targets.answer_rate:
        missed.append("answer_rate")
    if (
        targets.avg_wait_seconds is not None
        and (f.avg_wait_seconds or 0.0) > targets.avg_wait_seconds
    ):
        missed.append("avg_wait")
    if targets.service_level is not None and (
        f.service_level is None or f.service_level < targets.service_level
    ):
        missed.append("service_level")
    return Verdict(f, True, not missed, tuple(missed))


def visits_of(truths: Iterable[CallTruth]) -> list[VisitRecord]:
    """The simulated calls that reached a queue, as the service's queue visits."""
    out: list[VisitRecord] = []
    for t in truths:
        if t.queue is None or t.joined is None or t.outcome not in ("answered", "abandoned"):
            continue
        outcome = "answered" if t.outcome == "answered" else _abandon_kind(t)
        out.append(
            VisitRecord(
                pbx="sim",
                linkedid=t.linkedid,
                seq=1,
                queue=t.queue,
                entered_at=datetime.fromtimestamp(t.joined, tz=ZoneInfo("UTC")),
                position=None,
                estimated_wait_seconds=None,
                left_at=None,
                answered_at=None,
                ended_at=None,
                wait_seconds=t.wait,
                ring_seconds=None,
                talk_seconds=t.talk,
                agent=None,
                outcome=outcome,
                complete_reason=None,
                data_gap=False,
            )
        )
    return out


def _abandon_kind(t: CallTruth) -> str:
    if t.detail == "timeout":
        return "timeout"
    if t.detail in ("leaveempty", "leaveunavail"):
        return "empty"
    return "abandoned"


class Checker:
    """Plays one planned day (``run``), bounded by ``rounds`` simulated days."""

    def __init__(
        self,
        queues: QueuesConfig,
        day: date,
        forecasts: Sequence[QueueDayForecast],
        plans: Sequence[GroupDayPlan],
        targets: PlanTargets,
        kpi: KpiConfig,
        *,
        tz: str,
        seed: int = 7,
        rounds: int = 6,
        min_calls: int = 20,
        traffic: TrafficConfig | None = None,
    ) -> None:
        self.queues = queues
        self.day = day
        self.tz = ZoneInfo(tz)
        self.targets = targets
        self.kpi = kpi
        self.rounds = max(1, rounds)
        self.min_calls = min_calls
        self.forecasts = [f for f in forecasts if f.day == day and f.closed is None]
        self.plans = [p for p in plans if p.day == day and p.closed is None]
        self.group_of = {q: p.group for p in self.plans for q in p.queues}
        self.members = {p.group: tuple(p.queues) for p in self.plans}
        talk = {}
        wrap = {q.name: float(q.wrapuptime) for q in queues.queues}
        for f in self.forecasts:
            weight = sum(s.calls for s in f.slots if s.aht_seconds is not None)
            if weight > 0:
                aht = sum(s.calls * (s.aht_seconds or 0) for s in f.slots) / weight
                talk[f.queue] = max(10.0, aht - wrap.get(f.queue, 0.0) - RING_MEAN)
        base = traffic or TrafficConfig()
        self.traffic = TrafficConfig(
            **{
                **{k: getattr(base, k) for k in base.__dataclass_fields__},
                "date": day,
                "seed": seed,
                "timezone": tz,
                "talk_means": {**base.talk_means, **talk},
            }
        )
        self.keys = catalogue_key_planner([q.name for q in queues.queues])

    def _start(self, slot: int) -> float:
        midnight = datetime(self.day.year, self.day.month, self.day.day, tzinfo=self.tz)
        return (midnight + timedelta(seconds=slot * SLOT_SECONDS)).timestamp()

    def initial(self) -> dict[Cell, int]:
        return {(p.group, c.slot): c.agents or 0 for p in self.plans for c in p.cells}

    def agent_hours(self, staffing: Mapping[Cell, int]) -> float:
        return sum(staffing.values()) * SLOT_SECONDS / 3600.0

    async def simulate(self, staffing: Mapping[Cell, int]) -> Round:
        rates = {
            f.queue: [
                (self._start(s.slot), self._start(s.slot) + SLOT_SECONDS, s.calls) for s in f.slots
            ]
            for f in self.forecasts
        }
        groups: dict[str, tuple[Sequence[str], Sequence[tuple[float, float, int]]]] = {}
        for (g, slot), n in staffing.items():
            cells = groups.setdefault(g, (self.members[g], []))[1]
            assert isinstance(cells, list)
            cells.append((self._start(slot), self._start(slot) + SLOT_SECONDS, n))
        plan = plan_given(self.queues, self.traffic, rates, staffed_agents(self.traffic, groups))
        ivr = StubIvr(self.keys.mapping)
        await ivr.start()
        t0 = time.perf_counter()
        try:
            config = PbxConfig(
                queues=self.queues,
                start=plan.start,
                agi_address=ivr.address,
                seed=self.traffic.seed,
                timezone=self.traffic.timezone,
            )
            async with SimulatedPbx(config, mode="fast", ami_port=None) as sim:
                result = await sim.run_day(plan, self.keys)
        finally:
            with contextlib.suppress(Exception):
                await ivr.stop()
        return self._judge(dict(staffing), result.truth, result.calls, time.perf_counter() - t0)

    def _judge(
        self, staffing: dict[Cell, int], truths: Iterable[CallTruth], calls: int, seconds: float
    ) -> Round:
        cells: dict[Cell, Tally] = {}
        groups: dict[str, Tally] = {}
        centre_slots: dict[int, Tally] = {}
        centre = Tally()
        for v in visits_of(truths):
            g = self.group_of.get(v.queue)
            if g is None:
                continue
            slot = slot_of(v.entered_at.astimezone(self.tz).time())
            for t in (
                cells.setdefault((g, slot), Tally()),
                groups.setdefault(g, Tally()),
                centre_slots.setdefault(slot, Tally()),
                centre,
            ):
                t.decided(v, self.kpi)

        def judge(t: Tally) -> Verdict:
            return _verdict(t, self.targets, self.min_calls)

        return Round(
            staffing=staffing,
            agent_hours=self.agent_hours(staffing),
            cells={k: judge(t) for k, t in cells.items()},
            groups={k: judge(t) for k, t in groups.items()},
            centre_slots={k: judge(t) for k, t in centre_slots.items()},
            centre=judge(centre),
            calls=calls,
            seconds=seconds,
        )

    async def run(self) -> CheckResult:
        result = CheckResult(self.day)
        result.erlang_c_hours = sum(p.agent_hours("C") for p in self.plans)
        result.erlang_a_hours = sum(p.agent_hours("A") for p in self.plans)
        result.plan_hours = sum(p.agent_hours() for p in self.plans)
        staffing = self.initial()
        if not staffing:
            return result
        locked: set[Cell] = set()
        tentative: set[Cell] = set()
        for _ in range(self.rounds):
            r = await self.simulate(staffing)
            result.rounds.append(r)
            if r.passed:
                if result.best is None or r.agent_hours < result.best.agent_hours:
                    result.best = r
                tentative = set()
                slack = [
                    c
                    for c, v in r.cells.items()
                    if c not in locked and staffing.get(c, 0) > 1 and self._roomy(v)
                ]
                if not slack:
                    break
                staffing = dict(staffing)
                for c in slack:
                    staffing[c] -= 1
                tentative = set(slack)
                continue
            fix = self._fixes(r)
            if tentative:
                # a reduction broke a goal: give those cells their agent back for good
                undo = {c for c in tentative if c in fix or c[0] in {g for g, _ in fix}}
                undo = undo or tentative
                staffing = dict(staffing)
                for c in undo:
                    staffing[c] += 1
                locked |= undo
                tentative = set()
                continue
            staffing = dict(staffing)
            for c in fix:
                staffing[c] = staffing.get(c, 0) + 1
            locked |= fix
        return result

    def _roomy(self, v: Verdict) -> bool:
        """Met with room to spare: a reduction may still meet the goals."""
        if not v.judged:
            return False
        f, t = v.figures, self.targets
        if t.answer_rate is not None and (f.answer_rate or 0) < t.answer_rate + 0.03:
            return False
        if t.avg_wait_seconds is not None and (f.avg_wait_seconds or 0) > 0.5 * t.avg_wait_seconds:
            return False
        return not (
            t.service_level is not None
            and (f.service_level or 0) < min(0.999, t.service_level + 0.03)
        )

    def _fixes(self, r: Round) -> set[Cell]:
        """One agent more where a goal was missed (see the module doc)."""
        fix = {c for c, v in r.cells.items() if v.met is False}

        def worst(cands: Iterable[Cell]) -> Cell | None:
            scored = [
                (r.cells[c].figures.avg_wait_seconds or 0.0, c) for c in cands if c in r.cells
            ]
            return max(scored)[1] if scored else None

        for g, v in r.groups.items():
            if v.met is False and not any(c[0] == g for c in fix):
                c = worst(c for c in r.staffing if c[0] == g)
                if c is not None:
                    fix.add(c)
        for slot, v in r.centre_slots.items():
            if v.met is False and not any(c[1] == slot for c in fix):
                c = worst(c for c in r.staffing if c[1] == slot)
                if c is not None:
                    fix.add(c)
        if r.centre.met is False and not fix:
            c = worst(r.staffing)
            if c is not None:
                fix.add(c)
        return fix
