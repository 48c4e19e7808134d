"""The one definition of each queue figure (docs/kpis.md): pure, fed queue visits.

The same code computes the live "today" figures (fed incrementally from ``Drained``), the
figures of a stored day (fed ``queue_visits`` rows) and a recomputation from the event log
(``call_events`` replayed through a fresh ``CallCentre``), so the three agree exactly.

Units and rules
- The unit is the queue *visit*, not the call: a call transferred from one queue to
  another counts in each queue it visited (``queue_visits``).
- A visit counts once its outcome is known ("decided"): ``answered`` (an agent took it
  in this queue), ``abandoned`` (the caller hung up waiting), ``timeout`` (the queue's max
  wait passed), ``empty`` (no agents left: leavewhenempty), ``transferred`` (moved to
  another queue while still waiting). ``offered`` is the sum of the five.
- Its day is the local day (the centre's time zone) of its queue entry on the PBX clock.
- Waits are whole milliseconds here (the state machine rounds them so), so sums are
  exact integers and do not depend on the order visits arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

VISIT_OUTCOMES = ("answered", "abandoned", "timeout", "empty", "transferred")
CENTRE = "_all"  # the whole centre: never a queue name (those start with a letter)


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """The thresholds the definitions take (``ACD_SHORT_ABANDON_SECONDS``,
    ``ACD_SERVICE_LEVEL_SECONDS``)."""

    short_abandon_seconds: float = 5.0
    service_level_seconds: float = 180.0


@dataclass(frozen=True, slots=True)
class Goals:
    """The agreement's service goals (DOMAIN.md) and the early-warning levels before them.

    The alert rules in ``deploy/prometheus/rules`` and the wallboard's colours use these
    numbers (a test checks the rules file against them)."""

    answer_rate: float = 0.92  # availability (tilgængelighed)
    answer_rate_ambition: float = 0.95
    answer_rate_warning: float = 0.94
    avg_wait_seconds: float = 150.0  # ventetid at most 2.5 min
    avg_wait_warning_seconds: float = 120.0
    service_level: float = 0.93  # "93 % answered within 3 minutes"
    service_level_warning: float = 0.95

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


GOALS = Goals()


class CountedVisit(Protocol):
    """What the figures read of one queue visit. The visit itself, not a copy of it: the
    state machine's ``Visit`` (app/acd/state.py), its ``VisitRecord`` (app/acd/records.py)
    and the stored ``queue_visits`` row (app/store/models.py) all are one."""

    @property
    def linkedid(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def queue(self) -> str: ...
    @property
    def entered_at(self) -> datetime: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def wait_seconds(self) -> float | None: ...
    @property
    def talk_seconds(self) -> float | None: ...
    @property
    def ring_seconds(self) -> float | None: ...
    @property
    def estimated_wait_seconds(self) -> float | None: ...  # what the menu expected


def visit_key(v: CountedVisit) -> tuple[str, int, str]:
    """A visit's identity: it counts once however often it is fed."""
    return (v.linkedid, v.seq, v.queue)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class Tally:
    """Counts and integer-millisecond sums of the decided visits of one queue and day."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    timeout: int = 0
    empty: int = 0
    transferred: int = 0
    answered_within_sl: int = 0
    abandoned_after_sl: int = 0
    waits: int = 0  # visits with a known wait (all of them, in practice)
    wait_ms: int = 0
    answered_waits: int = 0
    answered_wait_ms: int = 0
    max_wait_ms: int = 0
    talked: int = 0
    talk_ms: int = 0
    ewt_samples: int = 0
    ewt_error_ms: int = 0  # sum of (actual wait - estimate)
    ewt_abs_error_ms: int = 0

    def decided(self, v: CountedVisit, config: KpiConfig) -> None:
        if v.outcome not in VISIT_OUTCOMES:
            return
        self.offered += 1
        setattr(self, v.outcome, getattr(self, v.outcome) + 1)
        if v.wait_seconds is None:
            return
        wait = _ms(v.wait_seconds)
        self.waits += 1
        self.wait_ms += wait
        self.max_wait_ms = max(self.max_wait_ms, wait)
        if v.outcome == "answered":
            self.answered_waits += 1
            self.answered_wait_ms += wait
            if wait <= _ms(config.service_level_seconds):
                self.answered_within_sl += 1
            if v.estimated_wait_seconds is not None:
                error = wait - _ms(v.estimated_wait_seconds)
                self.ewt_samples += 1
                self.ewt_error_ms += error
                self.ewt_abs_error_ms += abs(error)
        elif v.outcome == "abandoned":
            if wait < _ms(config.short_abandon_seconds):
                self.short_abandoned += 1
            if wait > _ms(config.service_level_seconds):
                self.abandoned_after_sl += 1

    def talk(self, v: CountedVisit) -> None:
        if v.talk_seconds is None:
            return
        self.talked += 1
        self.talk_ms += _ms(v.talk_seconds)

    def add(self, other: Tally) -> None:
        for f in fields(self):
            if f.name == "max_wait_ms":
                self.max_wait_ms = max(self.max_wait_ms, other.max_wait_ms)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den > 0 else None


def _avg_seconds(total_ms: int, n: int) -> float | None:
    return round(total_ms / n / 1000, 1) if n > 0 else None


@dataclass(frozen=True, slots=True)
class Figures:
    """The published figures of one queue (or the centre) for one day; docs/kpis.md."""

    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    timeout: int
    empty: int
    transferred: int
    answered_within_sl: int
    abandoned_after_sl: int
    answer_rate: float | None  # answered / (offered - short_abandoned)
    answer_rate_raw: float | None  # answered / offered
    abandon_rate: float | None  # (abandoned - short) / (offered - short)
    avg_wait_seconds: float | None  # every offered visit's wait
    asa_seconds: float | None  # answered visits' wait
    service_level: float | None  # answered within T / answered
    service_level_abandons: float | None  # answered within T / (answered + abandoned after T)
    avg_talk_seconds: float | None
    max_wait_seconds: float | None
    talked: int
    ewt_samples: int
    ewt_mean_error_seconds: float | None  # actual - estimate: > 0 = waits longer than said
    ewt_mean_abs_error_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def figures(t: Tally) -> Figures:
    net = t.offered - t.short_abandoned
    return Figures(
        offered=t.offered,
        answered=t.answered,
        abandoned=t.abandoned,
        short_abandoned=t.short_abandoned,
        timeout=t.timeout,
        empty=t.empty,
        transferred=t.transferred,
        answered_within_sl=t.answered_within_sl,
        abandoned_after_sl=t.abandoned_after_sl,
        answer_rate=_rate(t.answered, net),
        answer_rate_raw=_rate(t.answered, t.offered),
        abandon_rate=_rate(t.abandoned - t.short_abandoned, net),
        avg_wait_seconds=_avg_seconds(t.wait_ms, t.waits),
        asa_seconds=_avg_seconds(t.answered_wait_ms, t.answered_waits),
        service_level=_rate(t.answered_within_sl, t.answered_waits),
        service_level_abandons=_rate(t.answered_within_sl, t.answered_waits + t.abandoned_after_sl),
        avg_talk_seconds=_avg_seconds(t.talk_ms, t.talked),
        max_wait_seconds=round(t.max_wait_ms / 1000, 1) if t.waits else None,
        talked=t.talked,
        ewt_samples=t.ewt_samples,
        ewt_mean_error_seconds=_avg_seconds(t.ewt_error_ms, t.ewt_samples),
        ewt_mean_abs_error_seconds=_avg_seconds(t.ewt_abs_error_ms, t.ewt_samples),
    )


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) of a local day in UTC (23 or 25 hours on DST change days)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class DayBook:
    """Tallies per (local day, queue), each visit counted once however often it is fed.

    Feeding is idempotent by the visit's key (linkedid, seq, queue), separately for its
    decision and its talk: the live path and a reload of the stored day may both offer
    the same visit and it still counts once. Days older than ``keep_days`` are dropped.
    """

    tz: ZoneInfo
    config: KpiConfig = field(default_factory=KpiConfig)
    keep_days: int = 2
    tallies: dict[date, dict[str, Tally]] = field(default_factory=dict)
    _decided: dict[date, set[tuple[str, int, str]]] = field(default_factory=dict)
    _talked: dict[date, set[tuple[str, int, str]]] = field(default_factory=dict)

    def day_of(self, at: datetime) -> date:
        return local_day(at, self.tz)

    def _tally(self, day: date, queue: str) -> Tally:
        return self.tallies.setdefault(day, {}).setdefault(queue, Tally())

    def decided(self, v: CountedVisit) -> bool:
        """Count a decided visit; False if it was counted before (or is not decided)."""
        if v.outcome not in VISIT_OUTCOMES:
            return False
        day = self.day_of(v.entered_at)
        seen = self._decided.setdefault(day, set())
        if visit_key(v) in seen:
            return False
        seen.add(visit_key(v))
        self._tally(day, v.queue).decided(v, self.config)
        return True

    def talked(self, v: CountedVisit) -> bool:
        """Count the talk of an answered visit whose talk ended; False if counted before."""
        if v.talk_seconds is None:
            return False
        day = self.day_of(v.entered_at)
        seen = self._talked.setdefault(day, set())
        if visit_key(v) in seen:
            return False
        seen.add(visit_key(v))
        self._tally(day, v.queue).talk(v)
        return True

    def feed(self, visits: Iterable[CountedVisit]) -> None:
        """A stored visit: its decision and, if its talk ended, its talk."""
        for v in visits:
            self.decided(v)
            self.talked(v)

    def tally(self, day: date, queue: str) -> Tally:
        if queue == CENTRE:
            total = Tally()
            for t in self.tallies.get(day, {}).values():
                total.add(t)
            return total
        return self.tallies.get(day, {}).get(queue) or Tally()

    def figures(self, day: date, queue: str) -> Figures:
        return figures(self.tally(day, queue))

    def queues(self, day: date) -> list[str]:
        return sorted(self.tallies.get(day, {}))

    def prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.keep_days - 1)
        for book in (self.tallies, self._decided, self._talked):
            for day in [d for d in book if d < oldest]:
                del book[day]
