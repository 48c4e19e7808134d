"""Whole calls as the domain events the AMI normaliser and the IVR make for them, for the
report tests and bench/reports.py: a ``Script`` says what happens to a call (menu, queues,
waits, answers, talks, transfers, survey), ``events`` makes its events, and ``Centre``
runs them through the real state machine and writes what it records with the service's
own writer backend (PostgreSQL or SQLite), while a live ``DayBook`` counts alongside.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.acd import events as ev
from app.acd.callbacks import callback_due
from app.acd.kpi import DayBook, KpiConfig
from app.acd.queues import QueueCatalogue
from app.acd.records import EventRecord, Record
from app.acd.replay import take
from app.acd.resync import Snapshot, resync
from app.acd.state import CallCentre
from app.privacy import Caller
from app.store.writer import _group

TZ = ZoneInfo("Europe/Copenhagen")


def local(day: date, hh: int, mm: int = 0, ss: float = 0.0) -> datetime:
    """A local time of the centre, in UTC."""
    at = datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ) + timedelta(seconds=ss)
    return at.astimezone(UTC)


@dataclass
class Leg:
    """One stay in a queue. ``outcome``: answered, abandoned, timeout, or moved (put
    into the next leg's queue while still waiting). ``then`` (answered): the call ends
    (``hangup``), or the agent puts it through to the next leg's queue (``transfer``)."""

    queue: str
    wait: float
    outcome: Literal["answered", "abandoned", "timeout", "moved"] = "answered"
    talk: float = 0.0
    agent: str = "agent1"
    then: Literal["hangup", "transfer"] = "hangup"
    ring: float = 3.0


@dataclass
class Script:
    id: str
    start: datetime
    caller: str = ""  # keyed hash; "" = withheld
    route: Literal["queue", "closed", "forwarded", "ivr_hangup", "callback", "message"] = "queue"
    menu: float = 20.0  # seconds in the menu before the route
    legs: list[Leg] = field(default_factory=list)
    flagged: bool = False  # picked for the survey
    survey: tuple[int | None, int | None, int | None] | None = None  # friendliness, wait, overall
    external: str | None = None  # put through to this unit after the (last) talk
    after_timeout: Literal["message", "hangup"] = "hangup"
    estimate: float | None = None  # what the menu expected at routing


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def step(self, seconds: float) -> datetime:
        self.at = self.at + timedelta(seconds=seconds)
        return self.at


def events(s: Script, pbx: str = "pbx1") -> list[ev.DomainEvent]:
    """The events of one scripted call, in time order."""
    n = itertools.count(1)
    out: list[ev.DomainEvent] = []
    caller = Caller(hash=s.caller, display="+45 ••••••12" if s.caller else "")
    chan = f"PJSIP/trunk-{s.id}"

    def base(at: datetime, uniqueid: str | None = None) -> dict[str, Any]:
        return {
            "at": at,
            "pbx": pbx,
            "key": f"{s.id}:{next(n)}",
            "linkedid": s.id,
            "uniqueid": uniqueid or s.id,
        }

    clock = _Clock(s.start)
    out.append(
        ev.ChannelCreated(
            **base(clock.at),
            channel=chan,
            caller=caller,
            context="from-trunk",
            exten="82565682",
            state=4,
        )
    )
    out.append(
        ev.IvrStarted(
            **base(clock.step(0.5)),
            flow="jobcenter",
            script="ivr",
            caller=caller,
            dialled="82565682",
            channel=chan,
        )
    )

    def hangup(at: datetime, uniqueid: str | None = None, channel: str = chan) -> None:
        out.append(
            ev.ChannelHungUp(**base(at, uniqueid), channel=channel, cause=16, cause_txt="Normal")
        )

    if s.route == "closed":
        out.append(ev.IvrClosed(**base(clock.step(5)), reason="hours", next_open=None))
        hangup(clock.step(10))
        return out
    if s.route == "ivr_hangup":
        hangup(clock.step(s.menu))
        return out
    if s.route == "forwarded":
        out.append(
            ev.IvrForwarded(
                **base(clock.step(s.menu)),
                destination="jka",
                number="+4582565690",
                rule="sygedagpenge 09-10",
            )
        )
        hangup(clock.step(120))
        return out
    if s.route in ("callback", "message"):
        queue = s.legs[0].queue if s.legs else "dagpenge"
        out.append(
            ev.IvrCallbackAccepted(
                **base(clock.step(s.menu)), queue=queue, task=s.route, caller=caller
            )
        )
        hangup(clock.step(15))
        return out

    first = s.legs[0]
    out.append(
        ev.IvrRouted(
            **base(clock.step(s.menu)),
            queue=first.queue,
            menu="main",
            estimated_wait_seconds=s.estimate,
        )
    )
    if s.flagged:
        out.append(ev.IvrSurveyFlagged(**base(clock.step(0.1))))
    clock.step(0.4)
    talking: tuple[str, str] | None = None  # (agent uniqueid, agent channel) of the talk
    for i, leg in enumerate(s.legs):
        join_at = clock.at
        out.append(
            ev.QueueCallerJoined(
                **base(join_at), channel=chan, queue=leg.queue, position=1, count=1, caller=caller
            )
        )
        if talking is not None:  # the previous agent put the call through: their leg goes
            hangup(join_at + timedelta(seconds=0.2), talking[0], talking[1])
            talking = None
        iface = f"PJSIP/{leg.agent}"
        auid = f"{s.id}.{i + 1}"
        achan = f"PJSIP/{leg.agent}-{s.id}-{i + 1}"
        agent = {
            "channel": chan,
            "queue": leg.queue,
            "interface": iface,
            "member_name": leg.agent,
            "agent_channel": achan,
            "agent_uniqueid": auid,
        }
        end_wait = join_at + timedelta(seconds=leg.wait)
        if leg.outcome == "answered":
            ring_at = max(join_at, end_wait - timedelta(seconds=leg.ring))
            out.append(
                ev.ChannelCreated(
                    **base(ring_at, auid),
                    channel=achan,
                    caller=Caller(hash="", display=""),
                    context="from-queue",
                    exten="s",
                    state=5,
                )
            )
            out.append(ev.AgentCalled(**base(ring_at), **agent))
            out.append(
                ev.QueueCallerLeft(
                    **base(end_wait), channel=chan, queue=leg.queue, position=1, count=0
                )
            )
            out.append(
                ev.AgentConnected(
                    **base(end_wait),
                    **agent,
                    hold_time=round(leg.wait),
                    ring_time=round(leg.ring),
                )
            )
            clock.at = end_wait + timedelta(seconds=leg.talk)
            if leg.then == "transfer" and i + 1 < len(s.legs):
                talking = (auid, achan)  # the next join ends the talk (a Redirect)
                continue
            if s.external is not None and i + 1 == len(s.legs):
                out.append(
                    ev.CallTransferred(
                        **base(clock.at),
                        target_type="destination",
                        target=s.external,
                        recorded="+45 ••••••91",
                        via="blind_transfer",
                        by="agent",
                    )
                )
            out.append(
                ev.AgentCompleted(
                    **base(clock.at),
                    **agent,
                    hold_time=round(leg.wait),
                    talk_time=round(leg.talk),
                    reason="agent" if s.external else "caller",
                )
            )
            hangup(clock.step(0.1), auid, achan)
            if s.survey is not None:
                out.append(ev.SurveyStarted(**base(clock.step(1))))
                for q, value in zip(("friendliness", "wait", "overall"), s.survey, strict=True):
                    if value is not None:
                        out.append(
                            ev.SurveyAnswered(**base(clock.step(4)), question=q, value=value)  # type: ignore[arg-type]
                        )
                out.append(ev.SurveyEnded(**base(clock.step(1)), completed=None not in s.survey))
            hangup(clock.step(1 if s.external is None else 60))
            return out
        if leg.outcome == "abandoned":
            out.append(
                ev.QueueCallerAbandoned(
                    **base(end_wait),
                    channel=chan,
                    queue=leg.queue,
                    position=1,
                    original_position=1,
                    hold_time=round(leg.wait),
                )
            )
            out.append(
                ev.QueueCallerLeft(
                    **base(end_wait), channel=chan, queue=leg.queue, position=1, count=0
                )
            )
            hangup(end_wait + timedelta(seconds=0.1))
            return out
        if leg.outcome == "timeout":
            out.append(
                ev.QueueCallerLeft(
                    **base(end_wait), channel=chan, queue=leg.queue, position=1, count=0
                )
            )
            out.append(
                ev.VariableSet(
                    **base(end_wait + timedelta(seconds=0.01)),
                    channel=chan,
                    variable="QUEUESTATUS",
                    value="TIMEOUT",
                )
            )
            clock.at = end_wait + timedelta(seconds=1)
            if s.after_timeout == "message":
                out.append(
                    ev.IvrCallbackAccepted(
                        **base(clock.step(10)), queue=leg.queue, task="message", caller=caller
                    )
                )
            hangup(clock.step(20))
            return out
        # moved on to the next leg's queue while waiting
        clock.at = end_wait
    raise ValueError(f"{s.id}: the last leg must end the call")


# --------------------------------------------------------------------------------------
# Running scripts through the real state machine and writer
# --------------------------------------------------------------------------------------


@dataclass
class Centre:
    """A ``CallCentre`` fed events in time order, its records written by ``backend`` (the
    service's writer backend), a live ``DayBook`` counting as the live hub does."""

    backend: Any
    catalogue: QueueCatalogue | None = None
    config: KpiConfig = field(default_factory=KpiConfig)
    pbx: str = "pbx1"
    written: int = 0
    live: bool = True  # count the live figures alongside (a benchmark's year need not)

    def __post_init__(self) -> None:
        self.cc = CallCentre(self.pbx, self.catalogue, due_at=lambda at: callback_due(at, TZ))
        self.book = DayBook(TZ, self.config, keep_days=10_000)
        self.pending: list[Record] = []

    def apply(self, event: ev.DomainEvent) -> None:
        self.cc.apply(event, event.at)
        self._drain()

    def tick(self, at: datetime) -> None:
        self.cc.tick(at)
        self._drain()

    def link_lost(self, at: datetime) -> None:
        self.cc.link_lost(at)
        self._drain()

    def resync(self, at: datetime) -> None:
        """The link is back and the PBX has no calls up."""
        resync(self.cc, Snapshot((), (), ()), at)
        self._drain()

    def _drain(self) -> None:
        drained = self.cc.drain()
        if self.live:
            take(self.book, drained)
        self.pending.extend(drained.records)

    async def flush(self, now: datetime, events_too: bool = True) -> None:
        records = (
            self.pending
            if events_too
            else [r for r in self.pending if not isinstance(r, EventRecord)]
        )
        self.pending = []
        for i in range(0, len(records), 20_000):
            await self.backend.write(_group(records[i : i + 20_000]), now)
        self.written += len(records)


def merged(scripts: Iterable[Script], pbx: str = "pbx1") -> list[ev.DomainEvent]:
    """Every event of the scripts, in time order (stable: a call's own order kept)."""
    out = [e for s in scripts for e in events(s, pbx)]
    out.sort(key=lambda e: e.at)
    return out


async def call_ids(session: Any, linkedids: Sequence[str]) -> dict[str, int]:
    from app.store.models import Call

    rows = await session.execute(select(Call.linkedid, Call.id).where(Call.linkedid.in_(linkedids)))
    out: dict[str, int] = {}
    for lid, cid in rows:
        out[lid] = cid
    return out
