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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

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


_BASE_FIELDS = frozenset({"at", "pbx", "key", "linkedid", "uniqueid"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    KIND: ClassVar[str] = "event"
    SOURCE: ClassVar[str] = "ami"

    at: datetime
    pbx: str
    key: str
    linkedid: str = ""
    uniqueid: str = ""

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def source(self) -> str:
        return self.SOURCE

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in _BASE_FIELDS or not f.metadata.get("log", True):
                continue
            out[f.name] = _json_safe(getattr(self, f.name))
        return out


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
    """The FastAGI session ended; ``reason`` hangup = the caller hung up in the menu."""

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
