"""Callers and agents of a working day at Jobcenter København: a seeded, pure model.

Everything random comes from ``random.Random`` instances derived from one seed, so a
day is the same for the same seed (and parameters). Time is passed in; nothing here
reads a clock.

The model, with its numbers and where they come from:

Arrivals
    A Poisson process per hour of the opening day with hour-of-day weights, mornings
    heavier (DOMAIN.md: "calls concentrate in the morning"): 08-09 1.45, 09-10 1.35,
    10-11 1.15, 11-12 1.0, 12-13 0.85, 13-14 0.75, 14-15 0.65. Opening hours 08:00-15:00
    (a 7-hour day). Volume: 388,901 offered calls a year / 251 working days = ~1,549 a
    working day (``calls_scale`` scales it). 2 % more call in the half hour before the
    opening or after the closing and hear the "closed" message. Weekend days and Danish
    public holidays get the outside-hours trickle only.
Queue mix
    The catalogue's ``calls_per_year`` (DOMAIN.md's 2014 table) as weights. 2 % call
    from abroad (+46/+47/+49 numbers) and dial +4582565682.
Keys
    The path of digits from the top menu to the target queue comes from a ``KeyPlanner``.
    At each menu prompt a caller presses a wrong key with 6 %, lets the input time out
    with 4 % (the menu is then replayed and the caller tries again), hangs up with 1.5 %;
    keys come 1-4 s into the prompt.
Patience (abandonment)
    Lognormal, median 600 s, sigma 0.9 (~4 % give up within 2 minutes). With the
    staffing below a default day gives ~92 % answered and an average wait of 1-1.5
    minutes (DOMAIN.md: availability above 92 % since 2013, 134 s average wait in H2
    2014).
Offers (acd/offer-*)
    Impatient callers (patience under 240 s) take a call-back with 45 %, leave a message
    with 20 %; the patient ones with 8 % and 4 %; otherwise they keep waiting.
Handle time
    Lognormal per queue, sigma 0.6, means (seconds): kontanthjaelp 300, dagpenge 270,
    sygeopfoelgning 330, genregistrering 150, sygedagpenge 300, leverandoer 240,
    virksomhed 270, andre_forvaltninger 180, a_kasse 210, ni_by 240, erhvervshuset 270
    (default 270). The agent ends 35 % of calls, the caller the rest.
Survey
    Scores 1-9, normal around 7.2 (friendliness), 7.5 - wait/120 s (wait) and 6.0
    (overall), sigma 1.6; 8 % hang up at each question.
Agents
    Sized per queue for the peak hour: 0.95 agents per Erlang of load (calls x (handle
    time + wrap-up) / 3600), at least one agent for a queue with calls: a centre that
    runs a little short at the morning peak, as the 2014 figures suggest. Staff follow the
    profile: agent j of a queue works from the opening until the first hour that needs
    fewer than j+1 agents. 35 % have a second skill (penalty 1). Breaks: a 30-minute
    "Frokost" between 11:00 and 12:30 for shifts over 4 hours, one or two 10-minute
    "Pause", a 45-minute "Møde" for 10 %. Agents answer after 1.5-6 s; 3 % of rings go
    unanswered (AgentRingNoAnswer). Wrap-up is the queue's ``wrapuptime``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from app.acd.calendar import is_working_day
from app.acd.staffing import offered_load
from app.sim.behaviour import Reply, Talk
from app.sim.conf import QueuesConfig

WORKING_DAYS_PER_YEAR = 251
HOUR_WEIGHTS: Mapping[int, float] = {
    8: 1.45,
    9: 1.35,
    10: 1.15,
    11: 1.0,
    12: 0.85,
    13: 0.75,
    14: 0.65,
}
TALK_MEANS: Mapping[str, float] = {
    "kontanthjaelp": 300.0,
    "dagpenge": 270.0,
    "sygeopfoelgning": 330.0,
    "genregistrering": 150.0,
    "sygedagpenge": 300.0,
    "leverandoer": 240.0,
    "virksomhed": 270.0,
    "andre_forvaltninger": 180.0,
    "a_kasse": 210.0,
    "ni_by": 240.0,
    "erhvervshuset": 270.0,
}
FIRST_NAMES = (
    "Søren",
    "Mette",
    "Jørgen",
    "Åse",
    "Lærke",
    "Bjørn",
    "Sørine",
    "Mads",
    "Kirsten",
    "Frederik",
    "Ærtebølle",
    "Rasmus",
    "Ida",
    "Niels",
    "Hanne",
    "Øjvind",
    "Birthe",
    "Anders",
)
LAST_NAMES = (
    "Jørgensen",
    "Nielsen",
    "Sørensen",
    "Kjær",
    "Østergaard",
    "Hansen",
    "Mølgaard",
    "Pedersen",
    "Ærø",
    "Frølund",
    "Larsen",
    "Dahl",
    "Nørgaard",
    "Bæk",
    "Holm",
)


# ------------------------------------------------------------------------ keys


class KeyPlanner(Protocol):
    """Target queue -> the digits to press from the top menu, in order."""

    def keys_for(self, queue: str) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class MappingKeyPlanner:
    """A fixed mapping, e.g. ``{"dagpenge": "1"}`` or ``{"ni_by": ("9", "2")}``."""

    mapping: Mapping[str, str | Sequence[str]]

    def keys_for(self, queue: str) -> tuple[str, ...]:
        keys = self.mapping.get(queue)
        if keys is None:
            return ()
        return tuple(keys)


@dataclass(frozen=True, slots=True)
class FunctionKeyPlanner:
    """Wraps a ``key_path(flow, queue)`` function (app/ivr's, once it lands)."""

    key_path: Callable[[str, str], Sequence[str]]
    flow: str = "jobcenter"

    def keys_for(self, queue: str) -> tuple[str, ...]:
        return tuple(str(k) for k in self.key_path(self.flow, queue))


LAB_KEYS = MappingKeyPlanner(
    {"dagpenge": "1", "kontanthjaelp": "2", "sygedagpenge": "3", "virksomhed": "4"}
)


def catalogue_key_planner(queue_names: Sequence[str]) -> MappingKeyPlanner:
    """A stand-in until app/ivr's ``key_path`` exists: queues in catalogue order get
    1-8, the rest a sub-menu behind 9 (9-1, 9-2, ...)."""
    mapping: dict[str, tuple[str, ...]] = {}
    for i, name in enumerate(queue_names):
        mapping[name] = (str(i + 1),) if i < 8 else ("9", str(i - 7))
    return MappingKeyPlanner(mapping)


# --------------------------------------------------------------------- config


@dataclass(frozen=True)
class TrafficConfig:
    date: dt.date = dt.date(2014, 11, 4)
    seed: int = 7
    calls_scale: float = 1.0
    calls_per_day: float | None = None  # default: catalogue volume / 251
    timezone: str = "Europe/Copenhagen"
    open_hour: int = 8
    close_hour: int = 15
    hour_weights: Mapping[int, float] = field(default_factory=lambda: dict(HOUR_WEIGHTS))
    outside_share: float = 0.02
    abroad_share: float = 0.02  # dial +4582565682 from a foreign number
    wrong_key_share: float = 0.06
    timeout_share: float = 0.04
    menu_hangup_share: float = 0.015
    patience_median: float = 600.0
    patience_sigma: float = 0.9
    impatient_below: float = 240.0
    talk_means: Mapping[str, float] = field(default_factory=lambda: dict(TALK_MEANS))
    talk_sigma: float = 0.6
    agent_hangup_share: float = 0.35
    survey_hangup_share: float = 0.08
    no_answer_share: float = 0.03
    ring_seconds: tuple[float, float] = (1.5, 6.0)
    agents_per_erlang: float = 0.95
    second_skill_share: float = 0.35
    meeting_share: float = 0.10
    hours: tuple[float, float] | None = None  # limit arrivals to [from, to) local hours
    # Day-to-day pattern (planning tests and benchmarks; all 1.0 = every working day alike,
    # the default day's arrivals unchanged): weekday (0 = Monday) weights, the first
    # working day of a month, the first working day after a public holiday, and growth
    # per week from ``trend_from``.
    weekday_weights: Mapping[int, float] = field(default_factory=dict)
    month_start_factor: float = 1.0
    after_holiday_factor: float = 1.0
    trend_per_week: float = 0.0
    trend_from: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # epoch seconds
    target: str
    number: str
    name: str
    seed: int
    dialled: str = "82565682"  # or +4582565682, from abroad


@dataclass(frozen=True, slots=True)
class Break:
    start: float
    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class AgentPlan:
    interface: str
    name: str
    skills: tuple[tuple[str, int], ...]  # (queue, penalty)
    login: float
    logout: float
    breaks: tuple[Break, ...]
    seed: int


@dataclass(frozen=True, slots=True)
class DayPlan:
    day: dt.date
    start: float  # first instant of the simulation (before the first arrival/login)
    end: float  # last arrival time
    arrivals: tuple[Arrival, ...]
    agents: tuple[AgentPlan, ...]
    config: TrafficConfig

    def calls_by_queue(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.arrivals:
            counts[a.target] = counts.get(a.target, 0) + 1
        return counts


def _local(day: dt.date, hour: float, tz: str) -> float:
    h = int(hour)
    m = round((hour - h) * 60)
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=ZoneInfo(tz)).timestamp()


def _poisson_times(rng: random.Random, rate_per_s: float, t0: float, t1: float) -> list[float]:
    out: list[float] = []
    if rate_per_s <= 0:
        return out
    t = t0
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= t1:
            return out
        out.append(t)


def daily_volume(queues: QueuesConfig, cfg: TrafficConfig) -> float:
    """Expected calls of ``cfg.date`` (a working day), its day pattern included."""
    if cfg.calls_per_day is not None:
        base = cfg.calls_per_day * cfg.calls_scale
    else:
        total = sum(q.calls_per_year for q in queues.queues)
        base = total / WORKING_DAYS_PER_YEAR * cfg.calls_scale
    return base * day_factor(cfg, cfg.date)


def day_factor(cfg: TrafficConfig, day: dt.date) -> float:
    """The day-to-day pattern's multiplier for ``day`` (1.0 with the defaults)."""
    factor = cfg.weekday_weights.get(day.weekday(), 1.0)
    if cfg.month_start_factor != 1.0:
        first = day.replace(day=1)
        while not is_working_day(first):
            first += dt.timedelta(days=1)
        if first == day:
            factor *= cfg.month_start_factor
    if cfg.after_holiday_factor != 1.0:
        prev = day - dt.timedelta(days=1)
        while prev.weekday() >= 5:
            prev -= dt.timedelta(days=1)
        if not is_working_day(prev):
            factor *= cfg.after_holiday_factor
    if cfg.trend_per_week and cfg.trend_from is not None:
        factor *= (1.0 + cfg.trend_per_week) ** ((day - cfg.trend_from).days / 7.0)
    return factor


def expected_calls(queues: QueuesConfig, cfg: TrafficConfig) -> dict[str, list[float]]:
    """The expected arrivals per queue and local half hour (48 slots) of ``cfg.date``
    within the opening hours: the rates ``plan_day`` draws from (the known truth a
    forecast of this traffic should recover). Closed days: no queue has any."""
    names = [q for q in queues.queues if q.calls_per_year > 0]
    total_cpy = sum(q.calls_per_year for q in names)
    out = {q.name: [0.0] * 48 for q in queues.queues}
    if not is_working_day(cfg.date) or not total_cpy:
        return out
    volume = daily_volume(queues, cfg)
    total_w = sum(cfg.hour_weights.get(h, 0.0) for h in range(cfg.open_hour, cfg.close_hour))
    for h in range(cfg.open_hour, cfg.close_hour):
        if cfg.hours is not None and not cfg.hours[0] <= h < cfg.hours[1]:
            continue
        per_half = volume * cfg.hour_weights.get(h, 0.0) / total_w / 2
        for q in names:
            share = q.calls_per_year / total_cpy
            out[q.name][2 * h] += per_half * share
            out[q.name][2 * h + 1] += per_half * share
    return out


def plan_day(queues: QueuesConfig, cfg: TrafficConfig) -> DayPlan:
    """The arrivals and the staff of one day (deterministic for ``cfg.seed``)."""
    rng = random.Random(f"day:{cfg.seed}:{cfg.date.isoformat()}")
    tz = cfg.timezone
    names = [q.name for q in queues.queues if q.calls_per_year > 0] or list(queues.names)
    weights = [max(q.calls_per_year, 0) for q in queues.queues if q.name in names]
    if not any(weights):
        weights = [1] * len(names)
    volume = daily_volume(queues, cfg)
    working = is_working_day(cfg.date)
    total_w = sum(cfg.hour_weights.get(h, 0.0) for h in range(cfg.open_hour, cfg.close_hour))
    times: list[float] = []
    if working and total_w > 0:
        for h in range(cfg.open_hour, cfg.close_hour):
            if cfg.hours is not None and not cfg.hours[0] <= h < cfg.hours[1]:
                continue
            w = cfg.hour_weights.get(h, 0.0)
            rate = volume * w / total_w / 3600.0
            times += _poisson_times(rng, rate, _local(cfg.date, h, tz), _local(cfg.date, h + 1, tz))
    outside = volume * cfg.outside_share / 2 / 1800.0
    if cfg.hours is None or cfg.hours[0] <= cfg.open_hour - 0.5:
        times += _poisson_times(
            rng,
            outside,
            _local(cfg.date, cfg.open_hour - 0.5, tz),
            _local(cfg.date, cfg.open_hour, tz),
        )
    if cfg.hours is None or cfg.hours[1] > cfg.close_hour:
        times += _poisson_times(
            rng,
            outside,
            _local(cfg.date, cfg.close_hour, tz),
            _local(cfg.date, cfg.close_hour + 0.5, tz),
        )
    times.sort()
    arrivals = []
    for t in times:
        target = rng.choices(names, weights)[0]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if rng.random() < cfg.abroad_share:
            number = f"+{rng.choice(('46', '47', '49'))}{rng.randrange(10**8):08d}"
            dialled = "+4582565682"
        else:
            number = f"{rng.choice('2345')}{rng.randrange(10**7):07d}"
            dialled = "82565682"
        arrivals.append(Arrival(t, target, number, name, rng.randrange(2**31), dialled))
    agents = plan_agents(queues, cfg, volume, working) if working else ()
    start = _local(cfg.date, cfg.open_hour - 0.5, tz) - 300.0
    end = max([a.at for a in arrivals], default=start)
    return DayPlan(cfg.date, start, end, tuple(arrivals), tuple(agents), cfg)


def plan_given(
    queues: QueuesConfig,
    cfg: TrafficConfig,
    rates: Mapping[str, Sequence[tuple[float, float, float]]],
    agents: Sequence[AgentPlan],
) -> DayPlan:
    """A day with given arrivals and staff (``acd plan --check``): Poisson arrivals at
    ``calls`` per (start, end) epoch interval per queue, callers as in ``plan_day``.
    Deterministic for ``cfg.seed``: the same rates give the same callers."""
    rng = random.Random(f"given:{cfg.seed}:{cfg.date.isoformat()}")
    timed: list[tuple[float, str]] = []
    for queue in sorted(rates):
        for t0, t1, calls in rates[queue]:
            if calls > 0 and t1 > t0:
                timed += [(t, queue) for t in _poisson_times(rng, calls / (t1 - t0), t0, t1)]
    timed.sort()
    arrivals = []
    for t, target in timed:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        number = f"{rng.choice('2345')}{rng.randrange(10**7):07d}"
        arrivals.append(Arrival(t, target, number, name, rng.randrange(2**31)))
    first = min([a.at for a in arrivals] + [a.login for a in agents], default=0.0)
    start = first - 300.0
    end = max([a.at for a in arrivals], default=start)
    return DayPlan(cfg.date, start, end, tuple(arrivals), tuple(agents), cfg)


def staffed_agents(
    cfg: TrafficConfig,
    groups: Mapping[str, tuple[Sequence[str], Sequence[tuple[float, float, int]]]],
) -> list[AgentPlan]:
    """Agents for a staffing per group: (the group's queues, [(start, end, agents)]).
    Agent j of a group is there in every interval that needs more than j agents: logged
    in from the first, out after the last, paused ("Plan") in between. No other breaks:
    the staffing is agents on the phones."""
    rng = random.Random(f"staffed:{cfg.seed}:{cfg.date.isoformat()}")
    plans: list[AgentPlan] = []
    n = 0
    for group in sorted(groups):
        skills, cells = groups[group]
        cells = sorted(cells)
        most = max((c[2] for c in cells), default=0)
        for j in range(most):
            present = [(t0, t1) for t0, t1, k in cells if k > j]
            merged: list[list[float]] = []
            for t0, t1 in present:
                if merged and abs(merged[-1][1] - t0) < 1e-6:
                    merged[-1][1] = t1
                else:
                    merged.append([t0, t1])
            breaks = tuple(Break(a[1], b[0] - a[1], "Plan") for a, b in itertools.pairwise(merged))
            n += 1
            plans.append(
                AgentPlan(
                    interface=f"PJSIP/agent{100 + n}",
                    name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    skills=tuple((q, 0) for q in skills),
                    login=merged[0][0],
                    logout=merged[-1][1],
                    breaks=breaks,
                    seed=rng.randrange(2**31),
                )
            )
    return plans


def plan_agents(
    queues: QueuesConfig, cfg: TrafficConfig, volume: float, working: bool = True
) -> list[AgentPlan]:
    rng = random.Random(f"agents:{cfg.seed}:{cfg.date.isoformat()}")
    tz = cfg.timezone
    total_cpy = sum(q.calls_per_year for q in queues.queues) or 1
    total_w = sum(cfg.hour_weights.get(h, 0.0) for h in range(cfg.open_hour, cfg.close_hour))
    peak_w = max(
        (cfg.hour_weights.get(h, 0.0) for h in range(cfg.open_hour, cfg.close_hour)), default=1.0
    )
    plans: list[AgentPlan] = []
    n = 0
    busy_queues = [q for q in queues.queues if q.calls_per_year > 0]
    for q in busy_queues:
        share = q.calls_per_year / total_cpy
        aht = cfg.talk_means.get(q.name, 270.0) + q.wrapuptime
        peak_calls = volume * share * peak_w / max(total_w, 1e-9)
        need_peak = max(1, math.ceil(offered_load(peak_calls, aht, 3600.0) * cfg.agents_per_erlang))
        for j in range(need_peak):
            n += 1
            logout_hour = float(cfg.close_hour)
            for h in range(cfg.open_hour, cfg.close_hour):
                w = cfg.hour_weights.get(h, 0.0)
                need_h = max(1, math.ceil(need_peak * w / peak_w))
                if j >= need_h:
                    logout_hour = float(h)
                    break
            login = _local(cfg.date, cfg.open_hour, tz) - 300.0
            logout = (
                _local(cfg.date, logout_hour, tz)
                if logout_hour > cfg.open_hour
                else (_local(cfg.date, cfg.open_hour + 1, tz))
            )
            skills = [(q.name, 0)]
            if rng.random() < cfg.second_skill_share and len(busy_queues) > 1:
                others = [o for o in busy_queues if o.name != q.name]
                other = rng.choices(others, [o.calls_per_year for o in others])[0]
                skills.append((other.name, 1))
            breaks: list[Break] = []
            hours = (logout - login) / 3600.0
            if hours > 4:
                start = _local(cfg.date, 11, tz) + rng.uniform(0, 90 * 60)
                breaks.append(Break(start, 1800.0, "Frokost"))
            for _ in range(rng.choice((1, 2)) if hours > 2 else 0):
                start = rng.uniform(login + 3600, max(login + 3601, logout - 1800))
                breaks.append(Break(start, 600.0, "Pause"))
            if rng.random() < cfg.meeting_share and logout > _local(cfg.date, 14, tz):
                breaks.append(
                    Break(_local(cfg.date, 13, tz) + rng.uniform(0, 1800), 2700.0, "Møde")
                )
            breaks.sort(key=lambda b: b.start)
            merged: list[Break] = []
            for b in breaks:  # no overlapping breaks
                if merged and b.start < merged[-1].start + merged[-1].seconds:
                    continue
                merged.append(b)
            plans.append(
                AgentPlan(
                    interface=f"PJSIP/agent{100 + n}",
                    name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    skills=tuple(skills),
                    login=login,
                    logout=logout,
                    breaks=tuple(merged),
                    seed=rng.randrange(2**31),
                )
            )
    return plans


# ------------------------------------------------------------------- callers


class SimCaller:
    """A random caller following the model of the module doc (own seeded RNG)."""

    def __init__(
        self,
        arrival: Arrival,
        cfg: TrafficConfig,
        keys: Sequence[str],
        now: Callable[[], float],
        prompt_seconds: Callable[[str], float],
    ) -> None:
        self.rng = random.Random(arrival.seed)
        self.cfg = cfg
        self.number = arrival.number
        self.name = arrival.name
        self.target: str | None = arrival.target
        self.keys = list(keys)
        self._idx = 0
        self._menus = 0
        self._now = now
        self._prompt_seconds = prompt_seconds
        self._patience = self.rng.lognormvariate(math.log(cfg.patience_median), cfg.patience_sigma)
        self._joined: float | None = None
        self.waited = 0.0
        self._survey_q = 0

    def _key_delay(self, prompt: str, timeout: float) -> float:
        length = self._prompt_seconds(prompt)
        delay = self.rng.uniform(1.0, min(4.0, length + timeout - 0.5))
        return max(0.2, delay)

    def respond(self, prompt: str, timeout: float, max_digits: int) -> Reply:
        base = prompt.rsplit("/", 1)[-1]
        rng, cfg = self.rng, self.cfg
        if base.startswith("menu") or prompt in ("custom/menu", "custom/agi_menu"):
            self._menus += 1
            if rng.random() < cfg.menu_hangup_share or self._menus > len(self.keys) + 4:
                return Reply("hangup", after=rng.uniform(0.5, self._prompt_seconds(prompt)))
            if self._idx >= len(self.keys):
                return Reply("timeout")
            r = rng.random()
            if r < cfg.wrong_key_share:
                right = self.keys[self._idx]
                wrong = rng.choice([d for d in "0123456789" if d != right])
                return Reply("digits", wrong, self._key_delay(prompt, timeout))
            if r < cfg.wrong_key_share + cfg.timeout_share:
                return Reply("timeout")
            digit = self.keys[self._idx]
            self._idx += 1
            return Reply("digits", digit, self._key_delay(prompt, timeout))
        if base.startswith("offer"):
            impatient = self._patience < cfg.impatient_below
            cb, msg = (0.45, 0.20) if impatient else (0.08, 0.04)
            r = rng.random()
            if r < cb:
                return Reply("digits", "1", self._key_delay(prompt, timeout))
            if r < cb + msg:
                return Reply("digits", "2", self._key_delay(prompt, timeout))
            return (
                Reply("digits", "3", self._key_delay(prompt, timeout))
                if r < 0.9
                else (Reply("timeout"))
            )
        if base.startswith("confirm"):
            return Reply("digits", "1", self._key_delay(prompt, timeout))
        if base.startswith("survey"):
            if rng.random() < cfg.survey_hangup_share:
                return Reply("hangup", after=rng.uniform(0.5, 3.0))
            self._survey_q += 1
            if "vent" in base or "wait" in base:
                mean = 7.5 - self.waited / 120.0
            elif self._survey_q == 1 or "venlig" in base or "friend" in base:
                mean = 7.2
            else:
                mean = 6.0
            score = min(9, max(1, round(rng.gauss(mean, 1.6))))
            return Reply("digits", str(score), self._key_delay(prompt, timeout))
        return Reply("timeout")

    def barge(self, prompt: str, escape: str) -> Reply | None:
        return None

    def patience(self, queue: str) -> float | None:
        self._joined = self._now()
        return self._patience

    def talk(self, queue: str) -> Talk:
        if self._joined is not None:
            self.waited += self._now() - self._joined
        mean = self.cfg.talk_means.get(queue, 270.0)
        sigma = self.cfg.talk_sigma
        mu = math.log(mean) - sigma * sigma / 2  # lognormal with that mean
        seconds = max(10.0, self.rng.lognormvariate(mu, sigma))
        return Talk(seconds, self.rng.random() >= self.cfg.agent_hangup_share)

    def record(self, timeout: float, escape: str) -> Reply:
        spoken = self.rng.uniform(8.0, 40.0)
        if "#" in escape and spoken < timeout:
            return Reply("digits", "#", spoken)
        return Reply("timeout", after=min(spoken, timeout))


class SimAgent:
    """Answers after 1.5-6 s; lets 3 % of rings ring out (own seeded RNG)."""

    def __init__(self, seed: int, cfg: TrafficConfig) -> None:
        self.rng = random.Random(seed)
        self.cfg = cfg
        self.rings = 0
        self.unanswered = 0

    def on_ring(self, queue: str, now: float) -> float | None:
        self.rings += 1
        if self.rng.random() < self.cfg.no_answer_share:
            self.unanswered += 1
            return None
        return self.rng.uniform(*self.cfg.ring_seconds)
