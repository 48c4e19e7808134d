"""The one definition of each queue figure (docs/kpis.md): pure, fed queue visits.

The same code computes the live "today" figures (fed incrementally from ``Drained``), the
figures of a stored day (fed ``queue_visits`` rows) and a recomputation from the event log
(``call_events`` replayed through a fresh ``CallCentre``), so the three agree exactly.

Units and rules
- A queue's unit is the *visit*, not the call: a call transferred from one queue to
  another counts in each queue it visited (``queue_visits``). The centre's unit is the
  *call* (``CENTRE``, ``call_facts``): a call counts once however many queues it visited,
  with the wait it had until an agent first answered it (the waits of every visit up to
  that one), or until it left the last queue unanswered.
- A visit counts once its outcome is known ("decided"): ``answered`` (an agent took it
  in this queue), ``abandoned`` (the caller hung up waiting), ``timeout`` (the queue's max
  wait passed), ``empty`` (no agents left: leavewhenempty), ``transferred`` (moved to
  another queue while still waiting). ``offered`` is the sum of the five.
- Its day is the local day (the centre's time zone) of its queue entry on the PBX clock.
- Waits are whole milliseconds here (the state machine rounds them so), so sums are
  exact integers and do not depend on the order visits arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    """The service goals the live figures of the whole centre are coloured and alerted
    against, with their early-warning levels: those of the agreement in force, read from
    ``ivr_flows/goals.yaml`` (``app.reports.goals.live_goals``). The alert rules in
    ``deploy/prometheus/rules`` are tested against that file."""

    answer_rate: float  # availability (tilgængelighed)
    answer_rate_ambition: float
    answer_rate_warning: float
    avg_wait_seconds: float  # ventetid
    avg_wait_warning_seconds: float
    service_level: float | None = None  # "93 % answered within 3 minutes", if set
    service_level_warning: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class CountedVisit(Protocol):
    """What the figures read of one queue visit. The visit itself, not a copy of it: the
    state machine's ``Visit`` (app/acd/model.py), its ``VisitRecord`` (app/acd/records.py)
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


@dataclass(frozen=True, slots=True)
class CallFacts:
    """A call as the centre counts it (``call_facts``): a ``CountedVisit`` of queue
    ``CENTRE`` and sequence 0, made from the call's visits (no row holds it). Reports
    read stored visits into the same values (app/reports/compute.py ``VisitRow``)."""

    linkedid: str
    seq: int
    queue: str
    entered_at: datetime
    outcome: str | None
    wait_seconds: float | None
    talk_seconds: float | None = None
    ring_seconds: float | None = None
    estimated_wait_seconds: float | None = None


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
    abandoned_within_sl: int = 0
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
            else:
                self.abandoned_within_sl += 1

    def talk(self, v: CountedVisit) -> None:
        if v.talk_seconds is None:
            return
        self.talked += 1
        self.talk_ms += _ms(v.talk_seconds)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        """From ``as_dict`` (unknown keys ignored, missing ones 0: boards of another
        version of the service)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in names})

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
    abandoned_within_sl: int
    abandoned_after_sl: int
    answer_rate: float | None  # answered / (offered - short_abandoned)
    answer_rate_raw: float | None  # answered / offered
    abandon_rate: float | None  # (abandoned - short) / (offered - short)
    avg_wait_seconds: float | None  # every offered visit's wait
    asa_seconds: float | None  # answered visits' wait
    service_level: float | None  # answered within T / answered
    service_level_abandons: float | None  # answered within T / (answered + abandoned after T)
    service_level_offered: float | None  # answered within T / offered
    service_level_sl2: float | None  # (answered + abandoned within T) / (answered + abandoned)
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
        abandoned_within_sl=t.abandoned_within_sl,
        abandoned_after_sl=t.abandoned_after_sl,
        answer_rate=_rate(t.answered, net),
        answer_rate_raw=_rate(t.answered, t.offered),
        abandon_rate=_rate(t.abandoned - t.short_abandoned, net),
        avg_wait_seconds=_avg_seconds(t.wait_ms, t.waits),
        asa_seconds=_avg_seconds(t.answered_wait_ms, t.answered_waits),
        service_level=_rate(t.answered_within_sl, t.answered_waits),
        service_level_abandons=_rate(t.answered_within_sl, t.answered_waits + t.abandoned_after_sl),
        service_level_offered=_rate(t.answered_within_sl, t.offered),
        service_level_sl2=_rate(
            t.answered_within_sl + t.abandoned_within_sl, t.answered_waits + t.abandoned
        ),
        avg_talk_seconds=_avg_seconds(t.talk_ms, t.talked),
        max_wait_seconds=round(t.max_wait_ms / 1000, 1) if t.waits else None,
        talked=t.talked,
        ewt_samples=t.ewt_samples,
        ewt_mean_error_seconds=_avg_seconds(t.ewt_error_ms, t.ewt_samples),
        ewt_mean_abs_error_seconds=_avg_seconds(t.ewt_abs_error_ms, t.ewt_samples),
    )


def call_facts(visits: Sequence[CountedVisit], ended: bool) -> CallFacts | None:
    """A call as the centre counts it (``queue=CENTRE``), from its visits in order; None
    while its outcome is not known.

    Decided when an agent first answers it (``answered``), or when it ended unanswered
    (the outcome of its last visit: abandoned, timeout, empty). Its wait is the sum of
    the waits of its visits up to and including the first answered one: the time the
    caller waited before first reaching an agent, across queues if moved while waiting
    (a wait after an agent put the call through to another queue is not in it; that
    visit counts in its own queue). Unanswered: the waits of every visit. Its talk is
    the talk of every visit, known when the call has ended. Its day is the local day of
    its first queue entry; its expected wait the one the menu gave at routing.
    """
    if not visits:
        return None
    answered = next((i for i, v in enumerate(visits) if v.outcome == "answered"), None)
    if answered is None and (not ended or any(v.outcome is None for v in visits)):
        return None
    upto = visits if answered is None else visits[: answered + 1]
    wait_ms = sum(_ms(v.wait_seconds) for v in upto if v.wait_seconds is not None)
    known = any(v.wait_seconds is not None for v in upto)
    if answered is None:
        outcome = visits[-1].outcome
        # Moved on and then the record ends: the caller did not get through.
        outcome = "abandoned" if outcome == "transferred" else outcome
    else:
        outcome = "answered"
    talks = [_ms(v.talk_seconds) for v in visits if v.talk_seconds is not None]
    first = visits[0]
    return CallFacts(
        linkedid=first.linkedid,
        seq=0,
        queue=CENTRE,
        entered_at=first.entered_at,
        outcome=outcome,
        wait_seconds=wait_ms / 1000 if known else None,
        talk_seconds=sum(talks) / 1000 if ended and talks else None,
        ring_seconds=visits[answered].ring_seconds if answered is not None else None,
        estimated_wait_seconds=first.estimated_wait_seconds,
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
    """Tallies per (local day, queue), each visit counted once however often it is fed;
    the centre's (``CENTRE``) is fed the calls (``call_facts``), each once too.

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
        return self.tallies.get(day, {}).get(queue) or Tally()

    def figures(self, day: date, queue: str) -> Figures:
        return figures(self.tally(day, queue))

    def queues(self, day: date) -> list[str]:
        return sorted(q for q in self.tallies.get(day, {}) if q != CENTRE)

    def prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.keep_days - 1)
        for book in (self.tallies, self._decided, self._talked):
            for day in [d for d in book if d < oldest]:
                del book[day]
