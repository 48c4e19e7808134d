"""The state machine's model: what it knows of calls, queue visits, members and agents.

Plain data. ``app/acd/state.py`` changes it (its transition table is the only writer),
``app/acd/recording.py`` turns it into the writer's records, and the views (the board,
the agents' list, the figures through ``app/acd/kpi.py``'s ``CountedVisit``) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.acd.presence import AgentStateName
from app.acd.records import HangupBy, Record

Outcome = Literal[
    "answered",
    "abandoned",
    "ivr_hangup",
    "closed",
    "forwarded",
    "message",
    "callback",
    "failed",
]

# Hang-up causes (Q.850) that are an ordinary end of a call, not a failure.
NORMAL_CAUSES = frozenset({0, 16, 17, 18, 19, 21, 31, 32})
# Asterisk's hangup causes are Q.850's, 0-127; a value beyond (``Cause: 99999``) says
# nothing about how the call ended, so it cannot make a call "failed".
Q850_CAUSES = range(128)
# QUEUESTATUS values meaning the caller never got into the queue.
NOT_QUEUED = frozenset({"JOINEMPTY", "JOINUNAVAIL", "FULL"})

DEFAULT_WRAPUP = 30


def default_agent_id(interface: str) -> str:
    """``PJSIP/agent1`` -> ``agent1``: the agent id when no roster says otherwise."""
    return interface.rsplit("/", 1)[-1]


def in_wrapup(agent: Agent, at: datetime | None) -> bool:
    """In wrap-up at ``at`` (``tick`` clears a wrap-up that has run out)."""
    until = agent.wrapup_until
    return until is not None and (at is None or until > at)


def seconds_between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round(max(0.0, (b - a).total_seconds()), 3)


# --------------------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------------------


@dataclass
class Visit:
    """One stay of the caller in one queue."""

    seq: int
    queue: str
    entered_at: datetime
    position: int | None
    estimated_wait: float | None = None
    left_at: datetime | None = None
    answered_at: datetime | None = None
    talk_end_at: datetime | None = None
    ringing: dict[str, datetime] = field(default_factory=dict)  # interface -> AgentCalled
    ring_seconds: float | None = None
    agent_interface: str | None = None
    agent_uniqueid: str | None = None
    agent: str | None = None
    outcome: str | None = None
    complete_reason: str | None = None
    reported_hold: int | None = None  # Asterisk's HoldTime, to cross-check
    reported_talk: int | None = None
    data_gap: bool = False
    linkedid: str = ""  # of its call: the visit's identity with ``seq`` (KPIs count it once)
    # Times a resync had to guess (the events that say them were missed in a gap); the
    # queue's own figures in a later AgentComplete (HoldTime, TalkTime) put them right.
    guessed_entry: bool = False
    guessed_answer: bool = False

    @property
    def waiting(self) -> bool:
        return self.left_at is None and self.answered_at is None

    @property
    def talking(self) -> bool:
        return self.answered_at is not None and self.talk_end_at is None

    @property
    def wait_seconds(self) -> float | None:
        return seconds_between(self.entered_at, self.answered_at or self.left_at)

    @property
    def talk_seconds(self) -> float | None:
        return seconds_between(self.answered_at, self.talk_end_at)

    @property
    def estimated_wait_seconds(self) -> float | None:
        """As the record calls it (the figures read a visit as its record: app/acd/kpi.py)."""
        return self.estimated_wait


@dataclass
class Call:
    pbx: str
    linkedid: str
    started_at: datetime
    caller_hash: str = ""
    caller_display: str = ""
    dialled: str = ""
    caller_uniqueid: str = ""
    channels: dict[str, str] = field(default_factory=dict)  # live uniqueid -> channel
    known: set[str] = field(default_factory=set)  # every uniqueid ever mapped to this call
    dtmf_keys: list[str] = field(default_factory=list)
    ivr_keys: list[str] = field(default_factory=list)
    ivr_seen: bool = False
    ivr_route: str | None = None  # closed | forwarded | callback | message | queue
    ivr_estimate: float | None = None  # expected wait the menu saw when it routed
    forwarded_to: str | None = None
    visits: list[Visit] = field(default_factory=list)
    queue_status: str | None = None
    transferred_to: str | None = None
    hangup_cause: int | None = None
    # Who ended the call, from the first event that says it (``ended_by_first``); None
    # until then. ``hung_up`` is set when the end itself was seen (the last channel's
    # Hangup), so a call ended with nobody named was ended by the PBX (``hangup_by``).
    ended_by: HangupBy | None = None
    hung_up: bool = False
    survey_flagged: bool = False
    survey: dict[str, int] = field(default_factory=dict)
    survey_started: datetime | None = None
    survey_done: bool = False
    ended_at: datetime | None = None
    outcome: str | None = None
    data_gap: bool = False
    last_at: datetime | None = None
    link: int = 0  # the AMI link session in which this call was last heard of
    # Up (or first heard of) while the service could not see the PBX: part of the call
    # may be missing. A resync that finds the PBX's view as ours clears it; a call that
    # ends with it set is recorded with ``data_gap``.
    in_gap: bool = False
    start_seen: bool = False  # the caller leg's ChannelCreated was seen
    ivr_queue: str | None = None  # the queue the menu sent the caller to
    routed_at: datetime | None = None  # when the menu did

    @property
    def keys(self) -> str:
        return "".join(self.ivr_keys if self.ivr_seen else self.dtmf_keys)

    def visit(self, queue: str | None = None) -> Visit | None:
        """The latest visit (of ``queue`` if given)."""
        for v in reversed(self.visits):
            if queue is None or v.queue == queue:
                return v
        return None

    def answered_visit(self) -> Visit | None:
        return next((v for v in self.visits if v.answered_at is not None), None)

    @property
    def hangup_by(self) -> HangupBy | None:
        """Who ended the call (docs/kpis.md, "Who hung up"): the first party an event
        named (HangupRequest on the caller's or a talking agent's leg, AgentComplete's
        Reason, QueueCallerAbandon, a hang-up in the menu); else, when its end was seen,
        the system (Asterisk sends no HangupRequest when it ends a channel itself: the
        dialplan's Hangup(), the far end of a forward); else (a gap hid the end) None."""
        if self.ended_by is not None:
            return self.ended_by
        if self.ended_at is not None and self.hung_up:
            return "system"
        return None

    def ended_by_first(self, who: HangupBy) -> bool:
        """Note who ended the call, once: the first to end it is who hung up (an agent
        who hangs up first and the caller leaving the survey later: the agent)."""
        if self.ended_by is None:
            self.ended_by = who
            return True
        return False


# --------------------------------------------------------------------------------------
# Members and agents
# --------------------------------------------------------------------------------------


@dataclass
class Member:
    """An interface's membership of one queue."""

    queue: str
    interface: str
    name: str
    membership: str = "dynamic"
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    since: datetime | None = None  # of the current pause/unpause
    link: int = 0  # the AMI link session in which this member was last heard of


@dataclass
class Agent:
    """One interface (phone) across all its queues."""

    interface: str
    agent_id: str
    name: str
    device_status: int = 1
    ringing: set[str] = field(default_factory=set)  # linkedids ringing this agent
    on_call: str | None = None  # linkedid
    call_queue: str | None = None
    wrapup_until: datetime | None = None
    state: AgentStateName = "logged_out"
    since: datetime | None = None
    reason: str | None = None


@dataclass
class Drained:
    """Everything that changed since the last ``drain()``.

    ``decided``: visits whose outcome became known (answered, abandoned, ...), each once;
    ``talked``: answered visits whose talk ended, each once; ``calls_ended``: calls that
    ended; ``calls_answered``: calls an agent answered for the first time (the centre
    counts a call once: ``app.acd.kpi.call_facts``). Adapters count metrics from these
    without deriving anything themselves.
    """

    records: list[Record]
    calls_ended: list[Call]
    decided: list[Visit]
    talked: list[Visit]
    calls_answered: list[Call] = field(default_factory=list)


def outcome_of(call: Call) -> Outcome:
    """What became of a call (also while it is up: the latest word so far)."""
    if call.answered_visit() is not None:
        return "answered"
    if call.ivr_route in ("callback", "message"):
        return call.ivr_route  # type: ignore[return-value]
    if call.ivr_route == "forwarded":
        return "forwarded"
    if call.ivr_route == "closed":
        return "closed"
    if call.visits:
        return "abandoned"
    if call.queue_status in NOT_QUEUED:
        return "failed"
    cause = call.hangup_cause
    if cause is not None and cause in Q850_CAUSES and cause not in NORMAL_CAUSES:
        return "failed"
    return "ivr_hangup"
