"""An agent's state: the one rule, for the agent as a whole and as seen from one queue.

Pure and small on purpose. The state machine (``app/acd/state.py``) keeps the facts (the
call an agent talks on, the calls ringing it, its wrap-up, its phone's device state, its
memberships and their pauses) and asks ``state_of`` for the state; the agent view
(``/v1/agents``), the queue counts (``agents`` of ``/v1/queues``, the ``acd_agents``
gauges), the expected wait and the call-back dialer all read what it answers, so they
cannot disagree. docs/kpis.md shows the table below; a test compares the two.

The first rule that holds wins:

1. ``on_call``: talking with a caller (of any queue), paused or not: the call goes on;
2. ``logged_out``: no membership left (and no call);
3. ``ringing``: a queue call rings the phone (it may be answered any second);
4. ``paused``: paused (as a whole: in every queue; from one queue: in that queue). A
   pause taken during wrap-up shows at once, with its reason: Asterisk pauses the member
   at once and rings it no more, so the agent is not staffed for the expected wait;
5. ``wrapup``: the queue's wrap-up time after a call is running;
6. ``unavailable``: the phone is unreachable (device INVALID or UNAVAILABLE); a paused
   agent with an unreachable phone stays ``paused``: the pause says why it takes no calls;
7. ``available``: ready for the next caller.
"""

from __future__ import annotations

from typing import Literal

AgentStateName = Literal[
    "logged_out", "available", "ringing", "on_call", "wrapup", "paused", "unavailable"
]
# Every state in the order of the rule (the first that holds wins).
PRECEDENCE: tuple[AgentStateName, ...] = (
    "on_call",
    "logged_out",
    "ringing",
    "paused",
    "wrapup",
    "unavailable",
    "available",
)
# The states of a logged-in queue member, in the order documents list them.
MEMBER_STATES: tuple[AgentStateName, ...] = (
    "available",
    "ringing",
    "on_call",
    "wrapup",
    "paused",
    "unavailable",
)
AGENT_STATES: tuple[AgentStateName, ...] = ("logged_out", *MEMBER_STATES)
# Members who will take a queue's callers: what the expected wait counts.
STAFFED: frozenset[AgentStateName] = frozenset({"available", "ringing", "on_call", "wrapup"})
# Device states (QueueMemberStatus Status) in which a member cannot take a call.
DEVICE_UNAVAILABLE = frozenset({4, 5})  # invalid, unavailable


def state_of(
    *,
    logged_in: bool,
    on_call: bool,
    ringing: bool,
    paused: bool,
    wrapup: bool,
    unreachable: bool,
) -> AgentStateName:
    """The state the facts give (module doc). ``paused``: paused everywhere for the agent
    as a whole, paused in that queue for one queue's view."""
    if on_call:
        return "on_call"
    if not logged_in:
        return "logged_out"
    if ringing:
        return "ringing"
    if paused:
        return "paused"
    if wrapup:
        return "wrapup"
    if unreachable:
        return "unavailable"
    return "available"
