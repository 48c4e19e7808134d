"""What the state machine hands to storage: frozen snapshots and append-only records.

Each record knows its table and its idempotency key, so the writer can upsert (calls,
visits, surveys) or insert-once (events, agent states, call-backs, gaps) and a replay of
the same records, from memory or from the spill file, writes each row exactly once.

Every record fits its row by construction (``bounded``): a text longer than its column is
cut to its head and a marker with a hash of the whole (``fit``), a NUL (which PostgreSQL
refuses in text) becomes U+FFFD, and a number out of its ``smallint`` column's range
becomes NULL. Whatever the PBX sends, a record never makes the database refuse its batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar


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

# --------------------------------------------------------------------------------------
# Values that fit their columns
# --------------------------------------------------------------------------------------

ID_MAX = 64  # linkedid, uniqueid and event keys: the columns' VARCHAR(64)
_MARK = "~"  # between the kept head of a fitted text and the hash of the whole
_HASH_BYTES = 8  # 64 bits of BLAKE2b (16 hex digits): distinct long values stay distinct
SMALLINT_MIN, SMALLINT_MAX = -32768, 32767

# Values that had to be fitted (by ``table.column``; ``ami.<Header>`` for the normaliser's
# ids), for the ``acd_values_bounded_total`` metric. Process-wide and counted on the slow
# path only (a value that fits costs a length test and nothing else).
BOUNDED: Counter[str] = Counter()


def fit(value: str, limit: int | None, what: str = "") -> str:
    """``value`` as a column of ``limit`` characters (None: unbounded text) can hold it.

    A value that fits is returned as it is. A longer one keeps its head and ends in
    ``~`` and 16 hex digits of the BLAKE2b of the whole value, exactly ``limit`` long:
    deterministic (a replay, the spill file and a resync give the same text, so keys stay
    keys), distinct for distinct values, and idempotent (a fitted value fits). A NUL,
    which PostgreSQL refuses in any text, becomes U+FFFD first. ``what`` names the column
    for ``BOUNDED``."""
    clean = value.replace("\x00", "\ufffd") if "\x00" in value else value
    if limit is not None and len(clean) > limit:
        digest = hashlib.blake2b(
            value.encode("utf-8", "replace"), digest_size=_HASH_BYTES
        ).hexdigest()
        tail = _MARK + digest
        clean = digest[:limit] if limit <= len(tail) else clean[: limit - len(tail)] + tail
    if what and clean is not value:
        BOUNDED[what] += 1
    return clean


def fit_id(value: str, what: str = "") -> str:
    """An identity (Linkedid, Uniqueid, event key) as the 64-character columns hold it.
    Asterisk allows uniqueids of up to 150 characters (a long ``systemname``)."""
    if len(value) <= ID_MAX and "\x00" not in value:
        return value
    return fit(value, ID_MAX, what)


def small_int(value: int, what: str = "") -> int | None:
    """A number as a ``smallint`` column holds it: None when out of its range."""
    if SMALLINT_MIN <= value <= SMALLINT_MAX:
        return value
    if what:
        BOUNDED[what] += 1
    return None


# How a field is bounded: a VARCHAR's length, "text" (unbounded: NULs only) or "smallint".
Bound = int | Literal["text", "smallint"]
# Per record type: its table and the bound of each of its text and small-number fields
# (what ``bounded`` enforces; tests hold them to the ORM's column types).
BOUNDS: dict[type, tuple[str, dict[str, Bound]]] = {}

_T = TypeVar("_T", bound=type)


def bounded(table: str, **bounds: Bound) -> Callable[[_T], _T]:
    """``fast_init`` whose ``__init__`` also fits each named field to its column: text
    through ``fit`` (None passes), a smallint through ``small_int``. The test of a value
    that fits is inline in the generated code (a type, a length and a NUL test)."""

    def decorate(cls: _T) -> _T:
        BOUNDS[cls] = (table, dict(bounds))
        fast_init(cls, bounds={name: (f"{table}.{name}", b) for name, b in bounds.items()})
        return cls

    return decorate


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            setter: Callable[[Any, Any], None] = klass.__dict__[name].__set__
            return setter
    raise AttributeError(name)


def fast_init(cls: type, bounds: dict[str, tuple[str, Bound]] | None = None) -> type:
    """Give a frozen, slotted dataclass a generated ``__init__`` that sets each field
    through its slot's own setter. The dataclass's own goes through
    ``object.__setattr__`` per field (a global, an attribute and a call each): on the hot
    path (an event per AMI frame, a record per call change) ~40 % of the time goes. Same
    parameters (positional or keyword-only, defaults); no ``__post_init__`` or default
    factories (refused). The original is kept in ``DATACLASS_INIT``. ``bounds``: fields
    fitted to their column on the way in (see ``bounded``)."""
    params: list[str] = []
    kw_only: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {"_fit": fit, "_small": small_int, "_str": str, "_int": int}
    bounds = bounds or {}
    assert not hasattr(cls, "__post_init__"), cls  # the generated __init__ would skip it
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(bounds) <= names, (cls, set(bounds) - names)
    for i, f in enumerate(dataclasses.fields(cls)):
        assert f.default_factory is dataclasses.MISSING and f.init, (cls, f.name)
        param = f.name
        if f.default is not dataclasses.MISSING:
            env[f"_d{i}"] = f.default
            param = f"{f.name}=_d{i}"
        (kw_only if f.kw_only else params).append(param)
        env[f"_s{i}"] = _slot_setter(cls, f.name)
        if f.name in bounds:
            what, bound = bounds[f.name]
            env[f"_w{i}"] = what
            v = f.name
            if bound == "smallint":
                body.append(
                    f"    if type({v}) is _int and not {SMALLINT_MIN} <= {v} <= {SMALLINT_MAX}:\n"
                    f"        {v} = _small({v}, _w{i})"
                )
            else:
                limit = None if bound == "text" else int(bound)
                too_long = "" if limit is None else f"len({v}) > {limit} or "
                body.append(
                    f"    if type({v}) is _str and ({too_long}'\\x00' in {v}):\n"
                    f"        {v} = _fit({v}, {limit}, _w{i})"
                )
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


# A named tuple has no ``__init__`` to fit its fields in (and one is made per event): its
# producers bound them. The normaliser fits every AMI Linkedid and Uniqueid (``fit_id``),
# event keys are a 32-digit hash (AMI) or fitted (FastAGI), the PBX name is at most 32
# characters (settings), ``source`` and ``kind`` are the event classes' own words.
BOUNDS[EventRecord] = (
    "call_events",
    {"pbx": 32, "event_key": 64, "linkedid": 64, "uniqueid": 64, "source": 8, "kind": 48},
)


# Who ended a call: the caller (hung up in the menu, a queue, a conversation or a
# survey), an agent of the centre (hung up the conversation first) or the system (the
# PBX or the service ended it: closed, a call-back booked, a queue's time-out, the far
# end of a forward, an error).
HangupBy = Literal["caller", "agent", "system"]


@bounded(
    "calls",
    pbx=32,
    linkedid=64,
    caller_hash=64,
    caller_display=32,
    dialled=32,
    keys=64,
    queue=64,
    agent=64,
    outcome=16,
    transferred_to=64,
    hangup_cause="smallint",  # Asterisk's Q.850 causes are 0-127: 99999 is no cause
    hangup_by=8,
)
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
    # Who ended the call (docs/kpis.md, "Who hung up"); None while up or when unknown.
    hangup_by: HangupBy | None = None


@bounded(
    "queue_visits",
    pbx=32,
    linkedid=64,
    seq="smallint",
    queue=64,
    position="smallint",
    agent=64,
    outcome=16,
    complete_reason=16,
)
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


@bounded(
    "agent_state_changes",
    pbx=32,
    event_key=64,  # a resync's key names the time, queue and interface: hashed to fit
    agent_id=64,
    interface=128,
    queue=64,
    state=16,
    reason=64,
)
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


@bounded(
    "survey_responses",
    pbx=32,
    linkedid=64,
    agent=64,
    queue=64,
    friendliness="smallint",
    wait="smallint",
    overall="smallint",
)
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


@bounded(
    "callbacks",
    kind=16,
    pbx=32,
    linkedid=64,
    queue=64,
    caller_hash=64,
    caller_display=32,
    number_sealed="text",
    note="text",
    recording="text",
)
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
    recording: str | None = None  # a message's file (without extension)


@bounded("data_gaps", pbx=32, reason=64)
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
