"""Typed, frozen domain events: the one vocabulary between the adapters and the core.

Producers: the AMI normaliser (``app/ami``, source ``ami``), the FastAGI/IVR session
(``app/agi`` + ``app/ivr``, source ``agi``) and the API (source ``api``). Consumers: the
call/agent/queue state machine in ``app/acd``, the event log in ``app/store``, metrics.

Every event carries
- ``at``: when it happened (UTC, aware), from the source's own clock where it has one;
- ``pbx``: which Asterisk box;
- ``key``: the source event's identity, unique per pbx; the event log's idempotency key,
  so replaying a stream, a spill file or an IVR session never writes an event twice;
- ``linkedid``/``uniqueid``: Asterisk's call and channel ids ("" when not about a call).

``data()`` gives the JSON-safe normalised fields for ``call_events.data``; fields whose
metadata says ``log=False`` (sealed numbers) never reach the log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from app.acd.records import fast_init, tuple_getter
from app.privacy import Caller


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Caller):
        return {"hash": value.hash, "display": value.display}
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


_BASE_FIELDS = frozenset({"at", "pbx", "key", "linkedid", "uniqueid", "raw"})
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
# Per event class: the fields that go into the log and a getter of their values
# (computed once; data() is hot).
_LOG_SHAPE: dict[type, tuple[tuple[str, ...], Callable[[Any], Any], tuple[str, ...]]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    KIND: ClassVar[str] = "event"
    SOURCE: ClassVar[str] = "ami"

    at: datetime
    pbx: str
    key: str
    linkedid: str = ""
    uniqueid: str = ""
    # The source's own fields for the log (AMI headers with callers hashed); not data.
    raw: Mapping[str, str] | None = field(
        default=None, compare=False, repr=False, metadata={"log": False}
    )

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def source(self) -> str:
        return self.SOURCE

    def data(self) -> dict[str, Any]:
        """The logged fields, JSON-safe (each class gets a generated twin of
        ``reference_data``: see ``_specialise``)."""
        return reference_data(self)


def reference_data(event: DomainEvent) -> dict[str, Any]:
    shape = _LOG_SHAPE.get(type(event))
    if shape is None:
        shape = _LOG_SHAPE[type(event)] = _log_shape(type(event))
    names, values_of, loose = shape
    out = dict(zip(names, values_of(event), strict=True))
    for name in loose:  # only fields not declared plain can hold anything else
        value = out[name]
        if type(value) not in _PLAIN:
            out[name] = _json_safe(value)  # a value replaced, no key added: safe
    return out


def _log_shape(
    cls: type[DomainEvent],
) -> tuple[tuple[str, ...], Callable[[Any], Any], tuple[str, ...]]:
    """The fields of ``cls`` that go into the log, one getter of them all, and those of
    them whose declared type is not plain (str, int, float, bool, a Literal of strings,
    or one of those or None): only these can need ``_json_safe`` (mypy strict holds the
    rest to their declared types)."""
    fields = [
        f
        for f in dataclasses.fields(cls)
        if f.name not in _BASE_FIELDS and f.metadata.get("log", True)
    ]
    names = tuple(f.name for f in fields)
    loose = tuple(f.name for f in fields if not _declared_plain(f.type))
    return names, tuple_getter(names), loose


_PLAIN_NAMES = frozenset(t.__name__ for t in _PLAIN if t is not type(None)) | {"None"}


def _declared_plain(annotation: object) -> bool:
    if not isinstance(annotation, str):  # ``from __future__ import annotations``: text
        return False
    return all(
        part in _PLAIN_NAMES or (part.startswith("Literal[") and "(" not in part)
        for part in (p.strip() for p in annotation.split("|"))
    )


# --------------------------------------------------------------------------------------
# IVR (FastAGI) events: one per menu step, so IVR statistics come from the log
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrEvent(DomainEvent):
    SOURCE: ClassVar[str] = "agi"


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrStarted(IvrEvent):
    """A FastAGI session began for a call (agi_* environment read)."""

    KIND: ClassVar[str] = "ivr_started"
    flow: str
    script: str  # agi_network_script, e.g. "ivr" or "survey"
    caller: Caller
    dialled: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrMenuEntered(IvrEvent):
    KIND: ClassVar[str] = "ivr_menu"
    menu: str
    attempt: int  # 1 on first play, 2.. on replays after invalid/timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrKey(IvrEvent):
    """A key pressed in a menu; ``valid`` False = not a choice of that menu."""

    KIND: ClassVar[str] = "ivr_key"
    menu: str
    digit: str
    valid: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrTimeout(IvrEvent):
    KIND: ClassVar[str] = "ivr_timeout"
    menu: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrRouted(IvrEvent):
    """The menu sent the caller to a queue (``fallback`` after too many tries)."""

    KIND: ClassVar[str] = "ivr_routed"
    queue: str
    menu: str
    fallback: bool = False
    estimated_wait_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrForwarded(IvrEvent):
    """Sent straight to an external unit (e.g. Sygedagpenge 09-10 to JKA)."""

    KIND: ClassVar[str] = "ivr_forwarded"
    destination: str  # named destination
    number: str  # the unit's public number (not personal data)
    rule: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrClosed(IvrEvent):
    KIND: ClassVar[str] = "ivr_closed"
    reason: Literal["hours", "holiday", "override"]
    next_open: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrSurveyFlagged(IvrEvent):
    KIND: ClassVar[str] = "ivr_survey_flagged"


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrCallbackOffered(IvrEvent):
    KIND: ClassVar[str] = "ivr_callback_offered"
    queue: str
    estimated_wait_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrCallbackDeclined(IvrEvent):
    KIND: ClassVar[str] = "ivr_callback_declined"
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrCallbackAccepted(IvrEvent):
    """The caller chose a call-back (``callback``) or left a message (``message``).

    ``number_sealed`` is the caller's number encrypted (``CallerPrivacy.seal``) for the
    call-back task; it never goes into the event log.
    """

    KIND: ClassVar[str] = "ivr_callback_accepted"
    queue: str
    task: Literal["callback", "message"]
    caller: Caller
    number_sealed: str | None = field(default=None, metadata={"log": False})
    recording: str | None = None  # file name of a left message


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrEnded(IvrEvent):
    """The FastAGI session ended; ``reason`` hangup = the caller hung up in the menu,
    stopped = this service stopped mid-session (the dialplan falls back; a key pressed
    then was never read, so the call's menu record is incomplete)."""

    KIND: ClassVar[str] = "ivr_ended"
    reason: Literal[
        "routed",
        "forwarded",
        "closed",
        "callback",
        "message",
        "hangup",
        "error",
        "timeout",
        "survey_done",
        "stopped",
    ]
    menu: str = ""


# --------------------------------------------------------------------------------------
# Satisfaction survey (a second FastAGI session after the agent leaves)
# --------------------------------------------------------------------------------------


SurveyQuestion = Literal["friendliness", "wait", "overall"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyStarted(IvrEvent):
    KIND: ClassVar[str] = "survey_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyAnswered(IvrEvent):
    KIND: ClassVar[str] = "survey_answer"
    question: SurveyQuestion
    value: int  # 1-9


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyEnded(IvrEvent):
    KIND: ClassVar[str] = "survey_ended"
    completed: bool


# --------------------------------------------------------------------------------------
# API events (source "api"): what people did through the REST API, in the call's log
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiEvent(DomainEvent):
    SOURCE: ClassVar[str] = "api"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(ApiEvent):
    """A transfer through the API that the PBX confirmed (its own BlindTransfer or
    QueueCallerJoin event came first). Names the target: a queue, or a named external
    unit (``destination``), never a number; ``recorded`` is what the AMI event put in
    ``transferred_to`` (the queue, or the unit's number masked), replaced by the name."""

    KIND: ClassVar[str] = "api_transfer"
    target_type: Literal["queue", "destination"]
    target: str
    recorded: str
    via: str  # blind_transfer | redirect
    by: str  # the API user
    backup: bool = False  # outside the unit's best hours: its back-up line (bagvagt)


# --------------------------------------------------------------------------------------
# AMI events (source "ami"): what the normaliser makes of Asterisk's event stream
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCreated(DomainEvent):
    KIND: ClassVar[str] = "channel_created"
    channel: str
    caller: Caller
    context: str
    exten: str
    state: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStateChanged(DomainEvent):
    KIND: ClassVar[str] = "channel_state"
    channel: str
    state: int  # 4 ring, 5 ringing, 6 up, ...
    state_desc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdChanged(DomainEvent):
    KIND: ClassVar[str] = "caller_id"
    channel: str
    caller: Caller


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit(DomainEvent):
    """DTMFEnd (``end``) or DTMFBegin; SIP INFO gives only the end, RFC 4733 both."""

    KIND: ClassVar[str] = "dtmf"
    channel: str
    digit: str
    received: bool  # Direction: Received (from the caller) vs Sent
    end: bool
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableSet(DomainEvent):
    """Only the variables the service uses pass the normaliser (see ``app.ami.normalise``)."""

    KIND: ClassVar[str] = "varset"
    channel: str
    variable: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoined(DomainEvent):
    KIND: ClassVar[str] = "queue_join"
    channel: str
    queue: str
    position: int
    count: int
    caller: Caller


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeft(DomainEvent):
    KIND: ClassVar[str] = "queue_leave"
    channel: str
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandoned(DomainEvent):
    KIND: ClassVar[str] = "queue_abandon"
    channel: str
    queue: str
    position: int
    original_position: int
    hold_time: int  # seconds, as Asterisk counts them


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(DomainEvent):
    """Queue events about one member and the caller (``uniqueid``/``linkedid``)."""

    channel: str
    queue: str
    interface: str
    member_name: str
    agent_channel: str = ""  # DestChannel: the agent leg
    agent_uniqueid: str = ""  # DestUniqueid


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    KIND: ClassVar[str] = "agent_called"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    KIND: ClassVar[str] = "agent_ringnoanswer"
    ring_time_ms: int  # AgentRingNoAnswer's RingTime is in milliseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnected(AgentEvent):
    KIND: ClassVar[str] = "agent_connect"
    hold_time: int  # seconds
    ring_time: int  # seconds (AgentConnect's RingTime is in seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCompleted(AgentEvent):
    KIND: ClassVar[str] = "agent_complete"
    hold_time: int
    talk_time: int
    reason: str  # caller | agent | transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDumped(AgentEvent):
    KIND: ClassVar[str] = "agent_dump"


@dataclass(frozen=True, slots=True, kw_only=True)
class BlindTransferred(DomainEvent):
    """``uniqueid``/``linkedid`` are the transferee's (the caller)."""

    KIND: ClassVar[str] = "blind_transfer"
    result: str
    transferer_channel: str
    transferer_uniqueid: str
    transferee_channel: str
    context: str
    extension: str  # a queue name, or a number (kept masked)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttendedTransferred(DomainEvent):
    KIND: ClassVar[str] = "attended_transfer"
    result: str
    transferer_channel: str  # OrigTransfererChannel
    transferer_uniqueid: str
    target_channel: str  # SecondTransfererChannel's peer / TransferTarget
    dest_type: str
    destination: str  # queue name / bridge / app, numbers masked


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeChanged(DomainEvent):
    KIND: ClassVar[str] = "bridge"
    channel: str
    bridge_id: str
    entered: bool  # BridgeEnter vs BridgeLeave
    num_channels: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHungUp(DomainEvent):
    KIND: ClassVar[str] = "hangup"
    channel: str
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupRequested(DomainEvent):
    """AMI HangupRequest: the far end of ``channel`` hung up (a SIP BYE or CANCEL reached
    Asterisk), before the channel's Hangup. Asterisk sends none when it ends a channel
    itself (dialplan ``Hangup()``, the end of a bridge, an AMI Hangup: SoftHangupRequest),
    so on the caller's leg it says the caller hung up and on an agent's leg the agent
    (captures 01-09: the Hangup's Cause is 0 for a caller leaving the menu or a queue)."""

    KIND: ClassVar[str] = "hangup_request"
    channel: str
    cause: int = 0  # when Asterisk gives one (a caller leaving a transferred call: 16)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEvent(DomainEvent):
    """QueueMember* events: about a member of one queue, not about a call."""

    queue: str
    interface: str
    member_name: str
    state_interface: str = ""
    membership: str = ""  # static | dynamic | realtime
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0  # unix seconds
    in_call: bool = False
    status: int = 0  # device state: 1 idle, 2 in use, 5 unavailable, 6 ringing, ...
    paused: bool = False
    paused_reason: str = ""
    ringinuse: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAdded(MemberEvent):
    KIND: ClassVar[str] = "member_added"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRemoved(MemberEvent):
    KIND: ClassVar[str] = "member_removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberPaused(MemberEvent):
    KIND: ClassVar[str] = "member_pause"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberStatus(MemberEvent):
    KIND: ClassVar[str] = "member_status"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberPenalty(MemberEvent):
    KIND: ClassVar[str] = "member_penalty"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRinginuse(MemberEvent):
    KIND: ClassVar[str] = "member_ringinuse"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStateChanged(DomainEvent):
    KIND: ClassVar[str] = "device_state"
    device: str
    state: str  # NOT_INUSE, INUSE, RINGING, UNAVAILABLE, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AgiExec(DomainEvent):
    KIND: ClassVar[str] = "agi_exec"
    channel: str
    start: bool  # AGIExecStart vs AGIExecEnd
    command_id: str
    command: str  # the verb only (e.g. "GET DATA"); arguments may hold personal data
    result_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PbxLifecycle(DomainEvent):
    """FullyBooted, Shutdown, Reload."""

    KIND: ClassVar[str] = "pbx"
    what: Literal["booted", "shutdown", "reload"]
    detail: str = ""


# --------------------------------------------------------------------------------------
# Per class, generated once at import: ``__init__`` and ``data()`` as straight-line code
# --------------------------------------------------------------------------------------
# One event is made and logged for every AMI frame. ``__init__`` comes from
# ``records.fast_init`` (each slot's own setter, ~40 % less time than the frozen
# dataclass's); ``data()`` is one dict display instead of a getter, a zip and a dict, ~2x
# faster. Both do what the dataclass's and the reference ``data()`` do; tests compare them
# on every class and every captured event.


def _safe(value: Any) -> Any:
    return value if type(value) in _PLAIN else _json_safe(value)


def _specialise(cls: type[DomainEvent]) -> None:
    fast_init(cls)
    names, _, loose = _log_shape(cls)
    items = ", ".join(
        f"{n!r}: " + (f"_safe(self.{n})" if n in loose else f"self.{n}") for n in names
    )
    code: dict[str, Any] = {}
    exec(f"def data(self):\n    return {{{items}}}\n", {"_safe": _safe}, code)
    data = code["data"]
    data.__qualname__ = f"{cls.__qualname__}.data"
    data.__doc__ = DomainEvent.data.__doc__
    cls.data = data  # type: ignore[method-assign]


# The classes as this module names them: ``slots=True`` makes each a new class, and the
# one it replaced may linger among ``__subclasses__()`` until collected.
EVENT_CLASSES: tuple[type[DomainEvent], ...] = tuple(
    v for v in list(globals().values()) if isinstance(v, type) and issubclass(v, DomainEvent)
)
for _cls in EVENT_CLASSES:
    _specialise(_cls)
