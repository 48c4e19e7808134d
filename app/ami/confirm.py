"""Actions the API sends to Asterisk, confirmed by the events they cause.

A ``Response: Success`` only says Asterisk accepted an action; the member is added, paused
or removed (and a call transferred) when the event saying so arrives, and only then has
the state machine moved. So an agent action

1. registers what it expects (``Confirmations.expect``) *before* sending, because the
   event may come before the response (they share the socket, and Asterisk orders them by
   thread timing);
2. sends the action(s) through the AMI link;
3. waits, bounded, for the events; the pipeline calls ``Confirmations.on_event`` with
   every domain event *after* the state machine applied it, so a confirmed action is
   also visible in the state.

Nothing here writes state: what the PBX did not confirm is not claimed anywhere (the state
machine only moves on events). A timeout is reported as such, with what did come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.acd import events as ev

log = logging.getLogger(__name__)

Kind = Literal["added", "removed", "paused", "unpaused", "transferred", "joined"]
Key = tuple[str, ...]


def member_key(queue: str, interface: str) -> Key:
    return (queue, interface.lower())


def _keys_of(event: ev.DomainEvent) -> tuple[Kind, Key] | None:
    if isinstance(event, ev.MemberAdded):
        return "added", member_key(event.queue, event.interface)
    if isinstance(event, ev.MemberRemoved):
        return "removed", member_key(event.queue, event.interface)
    if isinstance(event, ev.MemberPaused):
        return ("paused" if event.paused else "unpaused"), member_key(event.queue, event.interface)
    if isinstance(event, ev.BlindTransferred) and event.result == "Success":
        return "transferred", (event.linkedid,)
    if isinstance(event, ev.QueueCallerJoined):
        return "joined", (event.linkedid, event.queue)
    return None


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[ev.DomainEvent]
    check: Callable[[ev.DomainEvent], bool] | None


class TooManyPending(Exception):
    pass


class Confirmations:
    """Futures waiting for domain events, keyed by (kind, key); O(1) per event."""

    def __init__(self, max_waiting: int = 2000) -> None:
        self.max_waiting = max_waiting
        self._waiting: dict[tuple[Kind, Key], list[_Waiter]] = {}
        self._count = 0

    def expect(
        self, kind: Kind, key: Key, check: Callable[[ev.DomainEvent], bool] | None = None
    ) -> asyncio.Future[ev.DomainEvent]:
        if self._count >= self.max_waiting:
            raise TooManyPending(f"{self._count} PBX actions are waiting for confirmation")
        future: asyncio.Future[ev.DomainEvent] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((kind, key), []).append(_Waiter(future, check))
        self._count += 1
        return future

    def on_event(self, event: ev.DomainEvent) -> None:
        if not self._waiting:
            return
        found = _keys_of(event)
        if found is None:
            return
        waiters = self._waiting.get(found)
        if not waiters:
            return
        for waiter in list(waiters):
            if waiter.future.done():
                continue
            if waiter.check is None or waiter.check(event):
                waiter.future.set_result(event)

    def forget(self, futures: Sequence[asyncio.Future[ev.DomainEvent]]) -> None:
        """Drop waiters (done or not) once their action is over."""
        gone = set(map(id, futures))
        for key in list(self._waiting):
            kept = [w for w in self._waiting[key] if id(w.future) not in gone]
            self._count -= len(self._waiting[key]) - len(kept)
            if kept:
                self._waiting[key] = kept
            else:
                del self._waiting[key]
        for f in futures:
            if not f.done():
                f.cancel()

    @property
    def pending(self) -> int:
        return self._count


# --------------------------------------------------------------------------------------
# Running a set of actions and waiting for their events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One AMI action and the event that proves it: ``label`` names it to the user."""

    label: str
    action: dict[str, str]
    kind: Kind
    key: Key
    check: Callable[[ev.DomainEvent], bool] | None = None


@dataclass
class StepsResult:
    confirmed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (label, PBX message)
    unconfirmed: list[str] = field(default_factory=list)  # accepted, no event in time
    unanswered: list[str] = field(default_factory=list)  # no response at all

    @property
    def ok(self) -> bool:
        return not (self.refused or self.unconfirmed or self.unanswered)


ActionFn = Callable[..., Any]


async def run_steps(
    send: ActionFn, confirmations: Confirmations, steps: Sequence[Step], within: float
) -> StepsResult:
    """Send every step's action and wait (at most ``within`` s in all) for its event."""
    futures = [confirmations.expect(s.kind, s.key, s.check) for s in steps]
    result = StepsResult()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        replies = await asyncio.gather(
            *(send(s.action, as_list=False, within=within) for s in steps),
            return_exceptions=True,
        )
        waiting: list[tuple[Step, asyncio.Future[ev.DomainEvent]]] = []
        for step, future, reply in zip(steps, futures, replies, strict=True):
            if isinstance(reply, ConnectionError):
                raise reply
            if isinstance(reply, BaseException):
                if not isinstance(reply, TimeoutError):
                    log.warning("AMI %s failed: %s", step.action.get("Action"), type(reply))
                result.unanswered.append(step.label)
                continue
            if reply.get("Response") != "Success" and not future.done():
                result.refused.append((step.label, str(reply.get("Message", "refused"))))
                continue
            waiting.append((step, future))
        pending = [f for _, f in waiting if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        for step, future in waiting:
            if future.done() and not future.cancelled():
                result.confirmed.append(step.label)
            else:
                result.unconfirmed.append(step.label)
        return result
    finally:
        confirmations.forget(futures)
