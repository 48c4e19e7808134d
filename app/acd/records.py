"""What the state machine hands to storage: frozen snapshots and append-only records.

Each record knows its table and its idempotency key, so the writer can upsert (calls,
visits, surveys) or insert-once (events, agent states, call-backs, gaps) and a replay of
the same records, from memory or from the spill file, writes each row exactly once.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


def tuple_getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """One C-level getter of these attributes, giving a tuple whatever their number
    (``attrgetter`` of one name gives the bare value). For the hot paths that turn an
    event or a record into its logged values."""
    if not names:
        return lambda _obj: ()
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (get(obj),)
    return get


DATACLASS_INIT: dict[type, Callable[..., None]] = {}  # the originals, for the tests


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            setter: Callable[[Any, Any], None] = klass.__dict__[name].__set__
            return setter
    raise AttributeError(name)


def fast_init(cls: type) -> type:
    """Give a frozen, slotted dataclass a generated ``__init__`` that sets each field
    through its slot's own setter. The dataclass's own goes through
    ``object.__setattr__`` per field (a global, an attribute and a call each): on the hot
    path (an event per AMI frame, a record per call change) ~40 % of the time goes. Same
    parameters (positional or keyword-only, defaults); no ``__post_init__`` or default
    factories (refused). The original is kept in ``DATACLASS_INIT``."""
    params: list[str] = []
    kw_only: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {}
    assert not hasattr(cls, "__post_init__"), cls  # the generated __init__ would skip it
    for i, f in enumerate(dataclasses.fields(cls)):
        assert f.default_factory is dataclasses.MISSING and f.init, (cls, f.name)
        param = f.name
        if f.default is not dataclasses.MISSING:
            env[f"_d{i}"] = f.default
            param = f"{f.name}=_d{i}"
        (kw_only if f.kw_only else params).append(param)
        env[f"_s{i}"] = _slot_setter(cls, f.name)
        body.append(f"    _s{i}(self, {f.name})")
    signature = ", ".join(["self", *params, *(["*", *kw_only] if kw_only else [])])
    code: dict[str, Any] = {}
    exec(f"def __init__({signature}):\n" + "\n".join(body) + "\n", env, code)
    init = code["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    DATACLASS_INIT[cls] = cls.__init__  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[misc]
    return cls


class EventRecord(NamedTuple):
    """One row of ``call_events``. A named tuple, not a frozen dataclass like the others:
    one is made for every event, and a tuple is made in a third of the time (the frozen
    dataclass sets each field through ``object.__setattr__``)."""

    pbx: str
    event_key: str
    at: datetime
    received_at: datetime
    linkedid: str | None
    uniqueid: str | None
    source: str
    kind: str
    data: dict[str, Any]
    raw: dict[str, Any] | None


@fast_init
@dataclass(frozen=True, slots=True)
class CallRecord:
    """The ``calls`` row of one call as it stands now (upserted by (pbx, linkedid))."""

    pbx: str
    linkedid: str
    caller_hash: str
    caller_display: str
    dialled: str
    keys: str
    queue: str | None
    started_at: datetime
    queue_entered_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    ring_seconds: float | None
    talk_seconds: float | None
    agent: str | None
    outcome: str | None
    transferred_to: str | None
    hangup_cause: int | None
    survey_flagged: bool
    data_gap: bool


@fast_init
@dataclass(frozen=True, slots=True)
class VisitRecord:
    """One ``queue_visits`` row (upserted by (pbx, linkedid, seq))."""

    pbx: str
    linkedid: str
    seq: int
    queue: str
    entered_at: datetime
    position: int | None
    estimated_wait_seconds: float | None
    left_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    ring_seconds: float | None
    talk_seconds: float | None
    agent: str | None
    outcome: str | None
    complete_reason: str | None
    data_gap: bool


@fast_init
@dataclass(frozen=True, slots=True)
class AgentStateRecord:
    """One ``agent_state_changes`` row (inserted once by (pbx, event_key))."""

    pbx: str
    event_key: str
    at: datetime
    agent_id: str | None
    interface: str
    queue: str | None
    state: str
    reason: str | None


@fast_init
@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """The ``survey_responses`` row of a call (upserted by (pbx, linkedid))."""

    pbx: str
    linkedid: str
    agent: str | None
    queue: str | None
    started_at: datetime
    friendliness: int | None
    wait: int | None
    overall: int | None
    completed: bool


@fast_init
@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """A call-back or message task from the menu (inserted once by (pbx, linkedid))."""

    kind: str
    pbx: str
    linkedid: str
    queue: str
    caller_hash: str
    caller_display: str
    number_sealed: str | None
    requested_at: datetime
    due_at: datetime
    note: str | None


@fast_init
@dataclass(frozen=True, slots=True)
class GapRecord:
    """A stretch without AMI (upserted by (pbx, gap_from))."""

    pbx: str
    gap_from: datetime
    gap_to: datetime | None
    calls_closed: int
    reason: str


Record = (
    EventRecord
    | CallRecord
    | VisitRecord
    | AgentStateRecord
    | SurveyRecord
    | CallbackRecord
    | GapRecord
)
