"""Erlang C and Erlang A: how many agents a half hour needs. The one owner of the queueing
maths in the tree (planning, the intraday projection and the simulator's staffing use it).

Pure: numbers in, numbers out; no clock, no I/O.

Models (one queue, Poisson arrivals at rate ``lam`` per second, exponential handle times of
mean ``aht``, ``agents`` identical agents, first come first served):

Erlang C (M/M/N)
    Callers never give up. P(wait) = C(N, a) with a = lam * aht the offered load in
    Erlangs, from Erlang B by the stable recursion B(n) = a B(n-1) / (n + a B(n-1)) (no
    factorials, so no overflow at any N). Service level P(W <= T) = 1 - C e^{-(N/aht - lam) T},
    ASA = C / (N/aht - lam). Needs N > a; below that the queue grows without bound.
    With a patience estimate, the share that would give up is estimated as
    P(an Erlang C wait outlasts an exponential patience) = C theta / (theta + N/aht - lam),
    which bounds Erlang A's abandonment from above (abandonment only shortens the queue).
Erlang A (M/M/N+M, Palm; Mandelbaum & Zeltyn)
    Callers give up after an exponential patience of mean ``patience`` (rate theta). The
    queue is a birth-death chain; with x = N / (aht theta), y = lam / theta and
    A(x, y) = 1 + sum_{k>=1} y^k / ((x+1)...(x+k)) (the incomplete-gamma function of the
    literature, summed here in log scale from its largest term, so it neither overflows
    nor loses digits for large N or heavy overload):
        P(all busy, nobody waiting) = B / (1 + (A - 1) B),   P(wait) = that * A(x, y)
        P(abandon | wait) = 1 - (x / y)(1 - 1/A(x, y))
        P(wait > t, answered)
            = P(N) (x / y) (A(x, y e^{-theta t}) - 1) e^{-x theta t + y (1 - e^{-theta t})}
        mean wait of every caller = P(abandon) / theta            (exact: Little's law)
    ASA (mean wait of the answered) sums over the queue lengths an arrival may meet.
    As patience grows Erlang A tends to Erlang C; with patience equal to the AHT the
    number in the system is Poisson(a) (a check the tests use).

Figures are those of docs/kpis.md: ``service_level`` = answered within T / answered,
``avg_wait_seconds`` = mean wait of every offered call (answered or not), ``answer_rate`` =
answered / offered (availability), ``occupancy`` = busy time / staffed time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Model = Literal["C", "A"]

# Beyond this many agents above the load, every target that can be met at all is met
# (P(wait) is then below 1e-30); the search stops there and says "cannot be met".
_SLACK_SQRT = 12.0
_SLACK_FLAT = 40


class StaffingError(ValueError):
    """Input that has no staffing answer (AHT 0, a negative volume, a target of 100 %)."""


@dataclass(frozen=True, slots=True)
class Targets:
    """What one interval's staffing must reach. None = no such target.

    Planning fills it from the goals (availability, average wait, service level); the
    calculator from its options."""

    service_level: float | None = None  # answered within ``answer_within`` / answered
    answer_within: float = 180.0  # seconds
    avg_wait_seconds: float | None = None  # mean wait of all offered calls
    answer_rate: float | None = None  # availability: answered / offered
    asa_seconds: float | None = None  # mean wait of the answered calls
    max_occupancy: float | None = None

    def check(self) -> None:
        """Refuse targets no staffing can guarantee, before any search."""
        if self.answer_within < 0:
            raise StaffingError("the answer time must be 0 seconds or more")
        for name in ("service_level", "answer_rate"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                raise StaffingError(
                    f"{name.replace('_', ' ')} {v:g}: must be above 0 and below 1 "
                    "(with random arrivals 100 % cannot be guaranteed)"
                )
        if self.max_occupancy is not None and not 0 < self.max_occupancy <= 1:
            raise StaffingError("max occupancy must be above 0 and at most 1")
        for name in ("avg_wait_seconds", "asa_seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise StaffingError(
                    f"{name.replace('_', ' ')} {v:g}: must be above 0 seconds (some caller "
                    "always waits)"
                )


@dataclass(frozen=True, slots=True)
class Performance:
    """What ``agents`` agents give in one interval under one model."""

    model: Model
    agents: int
    load_erlangs: float
    stable: bool  # Erlang C: more agents than Erlangs (else waits grow without bound)
    wait_probability: float
    service_level: float  # answered within T / answered
    asa_seconds: float | None  # mean wait of answered calls (None: unbounded)
    avg_wait_seconds: float | None  # mean wait of all offered calls (None: unbounded)
    abandon_rate: float | None  # share giving up (Erlang C: only with a patience)
    answer_rate: float | None  # 1 - abandon_rate
    occupancy: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Staffing:
    """The fewest agents meeting the targets (``agents`` None: cannot be met)."""

    model: Model
    agents: int | None
    performance: Performance | None
    reason: str | None = None  # why not, when agents is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "agents": self.agents,
            "reason": self.reason,
            **({"performance": self.performance.as_dict()} if self.performance else {}),
        }


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def erlang_b_table(load: float, up_to: int) -> list[float]:
    """[B(0, a), ..., B(up_to, a)]: blocking probability of n servers (stable recursion)."""
    out = [1.0]
    b = 1.0
    for n in range(1, up_to + 1):
        b = load * b / (n + load * b)
        out.append(b)
    return out


def erlang_b(agents: int, load: float) -> float:
    return erlang_b_table(load, agents)[agents]


def erlang_c(agents: int, load: float) -> float:
    """P(wait) in M/M/N; 1.0 when the queue is unstable (N <= a)."""
    return _erlang_c_from_b(agents, load, erlang_b(agents, load))


def _erlang_c_from_b(agents: int, load: float, b: float) -> float:
    if agents <= load:
        return 1.0
    rho = load / agents
    return b / (1.0 - rho * (1.0 - b))


def log_a_series(x: float, y: float) -> float:
    """log A(x, y) = log(1 + sum_{k>=1} y^k / ((x+1)...(x+k))), for x > 0, y >= 0.

    Summed outwards from the largest term (at k* = max(0, floor(y - x))), so terms are
    at most 1 relative to it: no overflow however large x and y, and O(sqrt(y)) terms.
    """
    if y <= 0.0:
        return 0.0
    peak = max(0, math.floor(y - x))
    log_peak = peak * math.log(y) - (math.lgamma(x + peak + 1.0) - math.lgamma(x + 1.0))
    total = 1.0
    term = 1.0
    k = peak
    while True:  # upwards: t_{k+1} / t_k = y / (x + k + 1) < 1 past the peak
        k += 1
        term *= y / (x + k)
        total += term
        if term < 1e-15 * total:
            break
    term = 1.0
    k = peak
    while k > 0:  # downwards: t_{k-1} / t_k = (x + k) / y <= 1 below the peak
        term *= (x + k) / y
        total += term
        k -= 1
        if term < 1e-15 * total:
            break
    return log_peak + math.log(total)


def _log_expm1(z: float) -> float:
    """log(e^z - 1) for z > 0 without overflow."""
    return z + math.log1p(-math.exp(-z)) if z > 30.0 else math.log(math.expm1(z))


def _check_inputs(calls_per_second: float, aht: float, patience: float | None) -> None:
    if not math.isfinite(calls_per_second) or calls_per_second < 0:
        raise StaffingError("the number of calls must be 0 or more")
    if not math.isfinite(aht) or aht <= 0:
        raise StaffingError("the average handle time must be above 0 seconds")
    if patience is not None and (not math.isfinite(patience) or patience <= 0):
        raise StaffingError("the mean patience must be above 0 seconds")


# --------------------------------------------------------------------------------------
# Performance at a given staffing
# --------------------------------------------------------------------------------------


def erlang_c_performance(
    agents: int,
    calls_per_second: float,
    aht: float,
    answer_within: float = 180.0,
    patience: float | None = None,
    *,
    blocking: float | None = None,
) -> Performance:
    """Erlang C figures; ``patience`` only adds the estimated abandonment (see module doc).
    ``blocking`` is B(agents, a) if the caller has it (the search does)."""
    _check_inputs(calls_per_second, aht, patience)
    lam, load = calls_per_second, calls_per_second * aht
    if agents < 1:
        raise StaffingError("at least one agent")
    if lam == 0:
        return _idle("C", agents)
    b = blocking if blocking is not None else erlang_b(agents, load)
    stable = agents > load
    if not stable:
        return Performance(
            "C", agents, load, False, 1.0, 0.0, None, None, 1.0 if patience else None,
            0.0 if patience else None, 1.0,
        )  # fmt: skip
    c = _erlang_c_from_b(agents, load, b)
    drain = agents / aht - lam  # rate at which a queue empties
    asa = c / drain
    sl = 1.0 - c * math.exp(-drain * answer_within)
    abandon = None
    if patience is not None:
        theta = 1.0 / patience
        abandon = c * theta / (theta + drain)
    return Performance(
        model="C",
        agents=agents,
        load_erlangs=load,
        stable=True,
        wait_probability=c,
        service_level=sl,
        asa_seconds=asa,
        avg_wait_seconds=asa,
        abandon_rate=abandon,
        answer_rate=None if abandon is None else 1.0 - abandon,
        occupancy=load / agents,
    )


def erlang_a_performance(
    agents: int,
    calls_per_second: float,
    aht: float,
    patience: float,
    answer_within: float = 180.0,
    *,
    blocking: float | None = None,
    with_asa: bool = True,
) -> Performance:
    """Erlang A figures (module doc). ``with_asa=False`` skips the ASA sum (the search
    does not need it)."""
    _check_inputs(calls_per_second, aht, patience)
    if agents < 1:
        raise StaffingError("at least one agent")
    lam, load = calls_per_second, calls_per_second * aht
    if lam == 0:
        return _idle("A", agents)
    theta = 1.0 / patience
    x = agents / (aht * theta)  # N mu / theta
    y = lam / theta
    b = blocking if blocking is not None else erlang_b(agents, load)
    if b <= 0.0:  # underflow: so many agents that nobody ever waits
        return Performance("A", agents, load, True, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, load / agents)
    log_a0 = log_a_series(x, y)
    # P(wait) = A B / (1 + (A - 1) B) = 1 / (1 + (1 - B) / (A B)), stable for huge A.
    p_wait = 1.0 / (1.0 + (1.0 - b) * math.exp(-(log_a0 + math.log(b))))
    # P(abandon | wait) = 1 - (x/y)(1 - 1/A)
    p_ab_wait = 1.0 - (x / y) * -math.expm1(-log_a0)
    p_ab = min(1.0, max(0.0, p_wait * p_ab_wait))
    served = 1.0 - p_ab
    # P(wait > T, answered)
    late = 0.0
    if answer_within > 0:
        decay = theta * answer_within
        log_a1 = log_a_series(x, y * math.exp(-decay))
        if log_a1 > 0.0:
            log_late = (
                math.log(p_wait)
                - log_a0
                + math.log(x / y)
                + _log_expm1(log_a1)
                - x * decay
                - y * math.expm1(-decay)
            )
            late = math.exp(log_late) if log_late > -745.0 else 0.0
    else:
        late = p_wait * (1.0 - p_ab_wait)
    sl = (served - late) / served if served > 0 else 0.0
    asa = _erlang_a_asa(x, y, theta, p_wait, log_a0, served) if with_asa else None
    return Performance(
        model="A",
        agents=agents,
        load_erlangs=load,
        stable=True,
        wait_probability=p_wait,
        service_level=min(1.0, max(0.0, sl)),
        asa_seconds=asa,
        avg_wait_seconds=p_ab / theta,
        abandon_rate=p_ab,
        answer_rate=served,
        occupancy=min(1.0, load * served / agents),
    )


def _erlang_a_asa(
    x: float, y: float, theta: float, p_wait: float, log_a0: float, served: float
) -> float:
    """E[wait | answered]. An arrival meeting j waiting callers is answered with
    probability x / (x+j+1) after a wait whose tilted mean is sum_{i=1}^{j+1} 1/(theta(x+i));
    the queue lengths it meets have weights y^j / ((x+1)...(x+j)) (the terms of A).
    Summed from j = 0 in linear scale, rescaled whenever a term grows past 1e200."""
    if served <= 0.0 or p_wait <= 0.0:
        return 0.0
    peak = max(0, math.floor(y - x))
    term = 1.0  # t_j / e^{log_scale}
    log_scale = 0.0
    harmonic = 0.0
    weighted = 0.0
    total = 0.0
    j = 0
    while True:
        harmonic += 1.0 / (x + j + 1)
        weighted += term * (x / (x + j + 1)) * harmonic
        total += term
        j += 1
        term *= y / (x + j)
        if term > 1e200:
            term *= 1e-200
            weighted *= 1e-200
            total *= 1e-200
            log_scale += 200.0 * math.log(10.0)
        if j > peak and term < 1e-15 * total:
            break
    # sum_j pi_{N+j} (...) = P(N) e^{log_scale} weighted, with P(N) = p_wait / A and
    # A = e^{log_scale} total: the scale cancels.
    e_w_served = p_wait * weighted / total / theta
    return e_w_served / served


def _idle(model: Model, agents: int) -> Performance:
    return Performance(model, agents, 0.0, True, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


# --------------------------------------------------------------------------------------
# The fewest agents meeting the targets
# --------------------------------------------------------------------------------------


def meets(p: Performance, t: Targets) -> bool:
    if not p.stable:
        return False
    if t.service_level is not None and p.service_level < t.service_level:
        return False
    if t.avg_wait_seconds is not None and (
        p.avg_wait_seconds is None or p.avg_wait_seconds > t.avg_wait_seconds
    ):
        return False
    if t.asa_seconds is not None and (p.asa_seconds is None or p.asa_seconds > t.asa_seconds):
        return False
    if t.answer_rate is not None and p.answer_rate is not None and p.answer_rate < t.answer_rate:
        return False
    return t.max_occupancy is None or p.occupancy <= t.max_occupancy


class _Blocking:
    """B(n, a) for n = 0, 1, ... computed on demand by the recursion, kept for re-use."""

    __slots__ = ("load", "values")

    def __init__(self, load: float) -> None:
        self.load = load
        self.values = [1.0]

    def __call__(self, n: int) -> float:
        values, load = self.values, self.load
        b = values[-1]
        for k in range(len(values), n + 1):
            b = load * b / (k + load * b)
            values.append(b)
        return values[n]


def required_agents(
    model: Model,
    calls_per_second: float,
    aht: float,
    targets: Targets,
    patience: float | None = None,
) -> Staffing:
    """The fewest agents whose ``model`` figures meet ``targets`` (every figure improves
    with each agent, so the first N that meets them is the answer).

    Erlang A needs ``patience``; for Erlang C it only adds the abandonment estimate (and so
    the answer-rate target). No calls: 0 agents. Bounded: beyond load + 12 sqrt(load) + 40
    agents the targets are called out of reach."""
    targets.check()
    _check_inputs(calls_per_second, aht, patience)
    if model == "A" and patience is None:
        raise StaffingError("Erlang A needs the callers' mean patience")
    load = calls_per_second * aht
    if calls_per_second == 0:
        return Staffing(model, 0, _idle(model, 0))
    cap = max(1, math.ceil(load + _SLACK_SQRT * math.sqrt(load) + _SLACK_FLAT))
    if targets.max_occupancy is not None:
        cap = max(cap, math.ceil(load / targets.max_occupancy))
    blocking = _Blocking(load)

    def c_perf(n: int) -> Performance:
        return erlang_c_performance(
            n, calls_per_second, aht, targets.answer_within, patience, blocking=blocking(n)
        )

    def a_perf(n: int, asa: bool = False) -> Performance:
        assert patience is not None
        return erlang_a_performance(
            n,
            calls_per_second,
            aht,
            patience,
            targets.answer_within,
            blocking=blocking(n),
            with_asa=asa or targets.asa_seconds is not None,
        )

    def out_of_reach(best: Performance) -> Staffing:
        return Staffing(
            model,
            None,
            best,
            f"not met even with {cap} agents for {load:.1f} Erlangs: the targets are "
            "out of reach for this volume and handle time",
        )

    # Erlang C: walk up from the first stable (and occupancy-allowed) staffing; each step
    # costs one recursion step and an exponential.
    lo = math.floor(load) + 1
    if targets.max_occupancy is not None:
        lo = max(lo, math.ceil(load / targets.max_occupancy - 1e-9))
    n_c: int | None = None
    for n in range(min(lo, cap), cap + 1):
        if meets(c_perf(n), targets):
            n_c = n
            break
    if model == "C":
        return Staffing("C", n_c, c_perf(n_c)) if n_c is not None else out_of_reach(c_perf(cap))
    # Erlang A: Erlang C with the same patience over-states every figure Erlang A computes
    # (abandonment only shortens the queue), so its answer is an upper bound, usually 0-3
    # above Erlang A's: walk down from it. Should it not hold, bisect up to the cap.
    ok: Callable[[int], bool] = lambda n: meets(a_perf(n), targets)  # noqa: E731
    if n_c is not None and ok(n_c):
        n = n_c
        while n > 1 and ok(n - 1):
            n -= 1
        return Staffing("A", n, a_perf(n, asa=True))
    if not ok(cap):
        return out_of_reach(a_perf(cap, asa=True))
    lo, hi = (n_c + 1 if n_c is not None else 1), cap
    while lo < hi:  # invariant: ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return Staffing("A", hi, a_perf(hi, asa=True))


def rostered(agents: float, shrinkage: float) -> float:
    """Agents to roster so that ``agents`` are on the phones after ``shrinkage`` (pauses,
    meetings, other non-call time, as a share of logged-in time)."""
    if not 0 <= shrinkage < 1:
        raise StaffingError("shrinkage must be 0 or more and below 1")
    return agents / (1.0 - shrinkage)


def offered_load(calls: float, aht: float, interval: float) -> float:
    """Erlangs: calls x handle time / interval length."""
    if interval <= 0:
        raise StaffingError("the interval must be above 0 seconds")
    return calls * aht / interval
