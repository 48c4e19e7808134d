"""What an agent action must ask of the PBX, decided from the live state. Pure.

``plan_*`` take the ``CallCentre`` and an agent's interface and return the queues an
action must touch, or raise ``WrongState`` saying why the action makes no sense now
(pause while logged out, unpause while not paused, log in where already logged in, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.acd.model import Member
from app.acd.state import CallCentre


class WrongState(Exception):
    """The action does not fit the agent's state; the message says what the state is."""


@dataclass(frozen=True, slots=True)
class QueueState:
    queue: str
    penalty: int
    paused: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class AgentView:
    interface: str
    state: str
    since: datetime | None
    reason: str | None
    queues: tuple[QueueState, ...]


def memberships(centre: CallCentre, interface: str) -> list[Member]:
    iface = interface.lower()
    return sorted(
        (m for (_, i), m in centre.members.items() if i.lower() == iface), key=lambda m: m.queue
    )


def view(centre: CallCentre, interface: str) -> AgentView:
    agent = next((a for i, a in centre.agents.items() if i.lower() == interface.lower()), None)
    members = memberships(centre, interface)
    return AgentView(
        interface=interface,
        state=agent.state if agent is not None else "logged_out",
        since=agent.since if agent is not None else None,
        reason=agent.reason if agent is not None else None,
        queues=tuple(
            QueueState(m.queue, m.penalty, m.paused, m.paused_reason or None) for m in members
        ),
    )


def plan_login(
    centre: CallCentre, interface: str, wanted: Sequence[tuple[str, int]]
) -> list[tuple[str, int]]:
    present = {m.queue for m in memberships(centre, interface)}
    todo = [(q, p) for q, p in wanted if q not in present]
    if not todo:
        raise WrongState(f"already logged in to {', '.join(sorted(q for q, _ in wanted))}")
    return todo


def plan_logout(centre: CallCentre, interface: str) -> list[str]:
    queues = [m.queue for m in memberships(centre, interface)]
    if not queues:
        raise WrongState("logged out already")
    return queues


def _scope(centre: CallCentre, interface: str, queue: str | None) -> list[Member]:
    members = memberships(centre, interface)
    if not members:
        raise WrongState("logged out: log in first")
    if queue is None:
        return members
    chosen = [m for m in members if m.queue == queue]
    if not chosen:
        raise WrongState(f"not logged in to {queue}")
    return chosen


def plan_pause(centre: CallCentre, interface: str, reason: str, queue: str | None) -> list[str]:
    todo = [
        m.queue
        for m in _scope(centre, interface, queue)
        if not (m.paused and m.paused_reason == reason)
    ]
    if not todo:
        raise WrongState(f"paused already ({reason})")
    return todo


def plan_unpause(centre: CallCentre, interface: str, queue: str | None) -> list[str]:
    todo = [m.queue for m in _scope(centre, interface, queue) if m.paused]
    if not todo:
        raise WrongState("not paused")
    return todo


@dataclass(frozen=True, slots=True)
class TalkingLeg:
    """A live call and the agent talking with the caller now."""

    linkedid: str
    agent: str | None
    queue: str
    agent_channel: str | None
    caller_channel: str | None


def talking_leg(centre: CallCentre, linkedid: str) -> TalkingLeg:
    call = centre.calls.get(linkedid)
    if call is None or call.ended_at is not None:
        raise WrongState("the call is not live (it has ended, or this PBX does not know it)")
    visit = next((v for v in reversed(call.visits) if v.talking), None)
    if visit is None:
        raise WrongState("no agent is talking with the caller")
    agent_channel = call.channels.get(visit.agent_uniqueid) if visit.agent_uniqueid else None
    return TalkingLeg(
        linkedid=linkedid,
        agent=visit.agent,
        queue=visit.queue,
        agent_channel=agent_channel,
        caller_channel=call.channels.get(call.caller_uniqueid),
    )
