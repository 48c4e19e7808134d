"""The flow engine: given the flow, the call's state, the time, an input and the live
queue estimates, the next step. Pure: no await, no clock, no I/O, no randomness.

A :class:`Step` is what the session adapter does next, in order:

1. ``plays``: prompts to play (``STREAM FILE``); an *interruptible* one may be cut short by
   a key, which then answers ``then`` (barge-in: a caller who knows the menu presses 2
   during the welcome);
2. ``then``: what to wait for: :class:`Ask` (one key, ``GET DATA``), :class:`Record`
   (a message, ``RECORD FILE``) or :class:`Finish` (set the route, end the session);
3. ``facts``: what happened, for the call log: each becomes one ``Ivr*`` domain event.

The adapter feeds the answer to ``then`` back with :func:`advance` and repeats until a
``Finish``; a hang-up at any point ends the session (:func:`hung_up` gives its facts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from app.acd.calendar import WEEKDAYS, opening_prompts
from app.acd.estimates import EstimateSource
from app.acd.events import (
    IvrCallbackAccepted,
    IvrCallbackDeclined,
    IvrCallbackOffered,
    IvrClosed,
    IvrEvent,
    IvrForwarded,
    IvrKey,
    IvrMenuEntered,
    IvrRouted,
    IvrTimeout,
)
from app.ivr.model import (
    Flow,
    ForwardNode,
    MenuNode,
    MessageNode,
    QueueNode,
    ScheduleNode,
)

# Menu labels of the call-back offer's own questions (bounded metric labels).
OFFER_MENU = "callback_offer"
CONFIRM_MENU = "callback_confirm"

EndReason = Literal["routed", "forwarded", "closed", "callback", "message", "hangup", "survey_done"]
Phase = Literal["menu", "offer", "confirm", "record"]


# --------------------------------------------------------------------------------------
# What the engine knows, gets and says
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallInfo:
    uniqueid: str
    has_number: bool  # a caller id we could call back
    # The voice message's file name (random, given by the session: not guessable from
    # the call's id); "" = the channel's id (tests, tools).
    message_name: str = ""


@dataclass(frozen=True, slots=True)
class CallState:
    call: CallInfo
    node: str = ""  # the menu asked, or the queue node while offering a call-back
    phase: Phase = "menu"
    attempt: int = 1
    menu: str = ""  # the last menu a key was pressed in (IvrRouted.menu)
    keys: tuple[str, ...] = ()
    inputs: int = 0
    fallback: bool = False
    ewt: float | None = None
    recording: str = ""


@dataclass(frozen=True, slots=True)
class Digits:
    digits: str


@dataclass(frozen=True, slots=True)
class NoInput:
    """GET DATA timed out with no key."""


@dataclass(frozen=True, slots=True)
class Recorded:
    endpos: int  # samples recorded
    ended_by: Literal["dtmf", "timeout", "hangup"]


Input = Digits | NoInput | Recorded


@dataclass(frozen=True, slots=True)
class Play:
    prompt: str
    interruptible: bool = False


@dataclass(frozen=True, slots=True)
class Ask:
    prompt: str
    timeout_ms: int
    max_digits: int = 1


@dataclass(frozen=True, slots=True)
class Record:
    path: str
    fmt: str
    max_ms: int
    escape: str = "#"
    beep: bool = True


@dataclass(frozen=True, slots=True)
class Finish:
    route: Literal["queue", "forward", "hangup", "none"]
    reason: EndReason
    queue: str = ""
    number: str = ""


Then = Ask | Record | Finish


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened: becomes ``kind(**fields)`` plus the session's ids."""

    kind: type[IvrEvent]
    fields: dict[str, Any] = field(default_factory=dict)


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Step(Generic[S]):
    state: S
    plays: tuple[Play, ...]
    then: Then
    facts: tuple[Fact, ...]


ANY_KEY = "0123456789*#"
_SAFE_FILE = re.compile(r"[^A-Za-z0-9_.-]")


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def start(
    flow: Flow, call: CallInfo, now_local: datetime, estimates: EstimateSource
) -> Step[CallState]:
    """The first step of a call: closed message, or the flow's start node."""
    state = CallState(call=call)
    schedule = flow.hours.schedule
    is_open, reason = schedule.status(now_local)
    if is_open:
        return _enter(flow, flow.start, state, now_local, estimates, [], [])
    opens = schedule.next_opening(now_local)
    hours = flow.hours
    prompt = {
        "hours": hours.closed_prompt,
        "holiday": hours.holiday_prompt,
        "override": hours.override_prompt,
    }[reason]
    plays = [Play(prompt)]
    if opens is not None:
        plays.append(Play(hours.opens_prompt))
        plays.extend(Play(p) for p in opening_prompts(now_local, opens))
    if hours.goodbye_prompt is not None:
        plays.append(Play(hours.goodbye_prompt))
    fact = Fact(
        IvrClosed,
        {"reason": reason, "next_open": opens.astimezone(UTC) if opens is not None else None},
    )
    return Step(state, tuple(plays), Finish("hangup", "closed"), (fact,))


def advance(
    flow: Flow,
    state: CallState,
    given: Input,
    now_local: datetime,
    estimates: EstimateSource,
) -> Step[CallState]:
    """The step after ``given`` answered the previous step's ``then``."""
    state = replace(state, inputs=state.inputs + 1)
    if state.inputs > flow.max_inputs:
        # A caller pressing keys forever (or a broken flow) still reaches a person.
        facts = [
            Fact(IvrRouted, {"queue": flow.default_queue, "menu": state.node, "fallback": True})
        ]
        return Step(state, (), Finish("queue", "routed", queue=flow.default_queue), tuple(facts))
    if state.phase == "menu":
        return _menu_input(flow, state, given, now_local, estimates)
    if state.phase == "offer":
        return _offer_input(flow, state, given)
    if state.phase == "confirm":
        return _confirm_input(flow, state, given)
    return _record_input(flow, state, given)


def hung_up(flow: Flow, state: CallState) -> tuple[Fact, ...]:
    """Facts of a caller hanging up in ``state`` (none today: the adapter records the
    hang-up itself; a message being recorded is handled as :class:`Recorded`)."""
    return ()


# --------------------------------------------------------------------------------------


def _key(given: Input) -> str | None:
    if isinstance(given, Digits) and given.digits:
        return given.digits[0]
    return None


def _menu_input(
    flow: Flow, state: CallState, given: Input, now: datetime, estimates: EstimateSource
) -> Step[CallState]:
    node = flow.nodes[state.node]
    assert isinstance(node, MenuNode)
    key = _key(given)
    facts: list[Fact] = []
    plays: list[Play] = []
    if key is not None and key in node.choices:
        facts.append(Fact(IvrKey, {"menu": state.node, "digit": key, "valid": True}))
        state = replace(state, menu=state.node, keys=(*state.keys, key))
        return _enter(flow, node.choices[key], state, now, estimates, plays, facts)
    if key is not None:
        facts.append(Fact(IvrKey, {"menu": state.node, "digit": key, "valid": False}))
        state = replace(state, keys=(*state.keys, key))
        retry_prompt = node.invalid_prompt
    else:
        facts.append(Fact(IvrTimeout, {"menu": state.node, "attempt": state.attempt}))
        retry_prompt = node.timeout_prompt
    if state.attempt >= node.tries:
        if node.fallback_prompt is not None:
            plays.append(Play(node.fallback_prompt))
        state = replace(state, menu=state.node, fallback=True)
        return _enter(flow, node.fallback, state, now, estimates, plays, facts)
    if retry_prompt is not None:
        plays.append(Play(retry_prompt, interruptible=True))
    state = replace(state, attempt=state.attempt + 1)
    facts.append(Fact(IvrMenuEntered, {"menu": state.node, "attempt": state.attempt}))
    return _step(state, plays, Ask(node.prompt, node.timeout_ms), facts)


def _enter(
    flow: Flow,
    target: str,
    state: CallState,
    now: datetime,
    estimates: EstimateSource,
    plays: list[Play],
    facts: list[Fact],
) -> Step[CallState]:
    """Go to ``target``, passing through messages and time rules, until something asks,
    routes or forwards."""
    for _hop in range(len(flow.nodes) + 1):  # the validator forbids exit-less loops
        node = flow.nodes[target]
        if isinstance(node, MessageNode):
            plays.append(Play(node.prompt, interruptible=node.interruptible))
            target = node.next
        elif isinstance(node, ScheduleNode):
            target = _schedule(node, now)
        elif isinstance(node, MenuNode):
            state = replace(state, node=target, phase="menu", attempt=1)
            facts.append(Fact(IvrMenuEntered, {"menu": target, "attempt": 1}))
            return _step(state, plays, Ask(node.prompt, node.timeout_ms), facts)
        elif isinstance(node, QueueNode):
            return _queue(flow, target, node, state, estimates, plays, facts)
        else:
            assert isinstance(node, ForwardNode)
            state = replace(state, node=target)
            facts.append(
                Fact(
                    IvrForwarded,
                    {"destination": node.destination, "number": node.number, "rule": node.rule},
                )
            )
            if node.prompt is not None:
                plays.append(Play(node.prompt))
            return _step(state, plays, Finish("forward", "forwarded", number=node.number), facts)
    facts.append(
        Fact(IvrRouted, {"queue": flow.default_queue, "menu": state.menu, "fallback": True})
    )
    return _step(state, plays, Finish("queue", "routed", queue=flow.default_queue), facts)


def _schedule(node: ScheduleNode, now: datetime) -> str:
    weekday = WEEKDAYS[now.weekday()]
    t = now.time().replace(tzinfo=None)
    for rule in node.rules:
        if weekday in rule.days and rule.interval.contains(t):
            return rule.goto
    return node.otherwise


def _queue(
    flow: Flow,
    node_id: str,
    node: QueueNode,
    state: CallState,
    estimates: EstimateSource,
    plays: list[Play],
    facts: list[Fact],
) -> Step[CallState]:
    estimate = estimates(node.queue)
    ewt = estimate.estimated_wait_seconds if estimate is not None else None
    threshold = node.callback_threshold_seconds
    if threshold is None:
        threshold = flow.callback.threshold_seconds
    state = replace(state, node=node_id, ewt=ewt)
    if node.callback_offer and ewt is not None and ewt > threshold:
        facts.append(Fact(IvrCallbackOffered, {"queue": node.queue, "estimated_wait_seconds": ewt}))
        state = replace(state, phase="offer")
        cb = flow.callback
        return _step(state, plays, Ask(cb.offer_prompt, cb.offer_timeout_ms), facts)
    return _route(node, state, plays, facts)


def _route(
    node: QueueNode, state: CallState, plays: list[Play], facts: list[Fact]
) -> Step[CallState]:
    facts.append(
        Fact(
            IvrRouted,
            {
                "queue": node.queue,
                "menu": state.menu,
                "fallback": state.fallback,
                "estimated_wait_seconds": state.ewt,
            },
        )
    )
    if node.prompt is not None:
        plays.append(Play(node.prompt))
    return _step(state, plays, Finish("queue", "routed", queue=node.queue), facts)


def _queue_node(flow: Flow, state: CallState) -> QueueNode:
    node = flow.nodes[state.node]
    assert isinstance(node, QueueNode)
    return node


def _declined(flow: Flow, state: CallState, facts: list[Fact]) -> Step[CallState]:
    node = _queue_node(flow, state)
    facts.append(Fact(IvrCallbackDeclined, {"queue": node.queue}))
    plays = [Play(flow.callback.declined_prompt)] if flow.callback.declined_prompt else []
    return _route(node, state, plays, facts)


def _offer_input(flow: Flow, state: CallState, given: Input) -> Step[CallState]:
    key = _key(given)
    facts: list[Fact] = []
    if key is not None:
        valid = key in ("1", "2")
        facts.append(Fact(IvrKey, {"menu": OFFER_MENU, "digit": key, "valid": valid}))
        state = replace(state, keys=(*state.keys, key))
    cb = flow.callback
    if key == "1" and state.call.has_number:
        state = replace(state, phase="confirm")
        return _step(state, [], Ask(cb.confirm_prompt, cb.offer_timeout_ms), facts)
    if key in ("1", "2"):
        plays = [] if key == "2" else [Play(cb.no_number_prompt)]
        plays.append(Play(cb.message_prompt))
        name = _SAFE_FILE.sub("_", state.call.message_name or state.call.uniqueid) or "message"
        path = f"{cb.message_dir}/{name}"
        state = replace(state, phase="record", recording=path)
        record = Record(path, cb.message_format, cb.message_max_seconds * 1000)
        return _step(state, plays, record, facts)
    return _declined(flow, state, facts)


def _confirm_input(flow: Flow, state: CallState, given: Input) -> Step[CallState]:
    key = _key(given)
    facts: list[Fact] = []
    if key is not None:
        facts.append(Fact(IvrKey, {"menu": CONFIRM_MENU, "digit": key, "valid": key in ("1", "2")}))
        state = replace(state, keys=(*state.keys, key))
    if key == "1":
        node = _queue_node(flow, state)
        facts.append(Fact(IvrCallbackAccepted, {"queue": node.queue, "task": "callback"}))
        plays = [Play(flow.callback.booked_prompt)]
        return _step(state, plays, Finish("hangup", "callback"), facts)
    return _declined(flow, state, facts)


def _record_input(flow: Flow, state: CallState, given: Input) -> Step[CallState]:
    node = _queue_node(flow, state)
    facts: list[Fact] = []
    if isinstance(given, Recorded) and given.endpos > 0:
        facts.append(
            Fact(
                IvrCallbackAccepted,
                {"queue": node.queue, "task": "message", "recording": state.recording},
            )
        )
        if given.ended_by == "hangup":
            return _step(state, [], Finish("none", "message"), facts)
        plays = [Play(flow.callback.message_saved_prompt)]
        return _step(state, plays, Finish("hangup", "message"), facts)
    if isinstance(given, Recorded) and given.ended_by == "hangup":
        return _step(state, [], Finish("none", "hangup"), facts)
    return _declined(flow, state, facts)


def _step(state: CallState, plays: list[Play], then: Then, facts: list[Fact]) -> Step[CallState]:
    if not isinstance(then, Ask):
        # Nothing waits for a key after these prompts: they cannot be cut short.
        plays = [replace(p, interruptible=False) for p in plays]
    return Step(state, tuple(plays), then, tuple(facts))
