"""Agent actions carried out on the PBX: QueueAdd, QueueRemove, QueuePause and
BlindTransfer/Redirect, each confirmed by its event (``app.ami.confirm``).

Use cases: plain functions taking the parts they need (the AMI link, the confirmations,
the state machine). The HTTP mapping is in ``app.api``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.acd import events as ev
from app.acd.agents import (
    TalkingLeg,
    WrongState,
    plan_login,
    plan_logout,
    plan_pause,
    plan_unpause,
)
from app.acd.state import CallCentre
from app.ami.confirm import Confirmations, Step, StepsResult, member_key, run_steps

# Replies of app_queue's manager actions that mean "the state is not what you think",
# not "the PBX is broken" (tests/fixtures/ami/05_ami_actions, app_queue.c).
STATE_REPLIES = (
    "Already there",
    "Not there",
    "Member not dynamic",
    "Interface not found",
    "Transfer not permitted",
    "does not exist",
)


class PbxUnavailable(Exception):
    """No PBX configured, or the AMI link is down: nothing was sent."""


class Link(Protocol):
    state: str

    async def action(
        self, action: dict[str, str], *, as_list: bool | None = None, within: float | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Pbx:
    """What an agent action needs: the link, where confirmations arrive, the live state."""

    link: Link | None
    confirmations: Confirmations
    centre: CallCentre
    timeout: float

    def ready(self) -> Link:
        if self.link is None:
            raise PbxUnavailable("no PBX is configured (ACD_AMI_HOST is not set)")
        if self.link.state != "logged_in":
            raise PbxUnavailable(f"the AMI link to the PBX is {self.link.state}")
        return self.link

    async def run(self, steps: Sequence[Step]) -> StepsResult:
        link = self.ready()
        try:
            return await run_steps(link.action, self.confirmations, steps, self.timeout)
        except ConnectionError as exc:
            raise PbxUnavailable(f"the AMI link to the PBX failed: {exc}") from exc


def is_state_reply(message: str) -> bool:
    return any(s.lower() in message.lower() for s in STATE_REPLIES)


async def login(
    pbx: Pbx, interface: str, member_name: str, wanted: Sequence[tuple[str, int]]
) -> StepsResult:
    todo = plan_login(pbx.centre, interface, wanted)
    pbx.ready()
    steps = [
        Step(
            queue,
            {
                "Action": "QueueAdd",
                "Queue": queue,
                "Interface": interface,
                "Penalty": str(penalty),
                "Paused": "false",
                "MemberName": member_name,
                "StateInterface": interface,
            },
            "added",
            member_key(queue, interface),
        )
        for queue, penalty in todo
    ]
    return await pbx.run(steps)


async def logout(pbx: Pbx, interface: str) -> StepsResult:
    queues = plan_logout(pbx.centre, interface)
    pbx.ready()
    steps = [
        Step(
            q,
            {"Action": "QueueRemove", "Queue": q, "Interface": interface},
            "removed",
            member_key(q, interface),
        )
        for q in queues
    ]
    return await pbx.run(steps)


async def pause(pbx: Pbx, interface: str, reason: str, queue: str | None) -> StepsResult:
    queues = plan_pause(pbx.centre, interface, reason, queue)
    pbx.ready()

    def same_reason(e: ev.DomainEvent) -> bool:
        return isinstance(e, ev.MemberPaused) and e.paused_reason == reason

    # One action per queue (not QueuePause without Queue): each one has its own event,
    # whatever Asterisk does for members already paused elsewhere.
    steps = [
        Step(
            q,
            {
                "Action": "QueuePause",
                "Queue": q,
                "Interface": interface,
                "Paused": "true",
                "Reason": reason,
            },
            "paused",
            member_key(q, interface),
            same_reason,
        )
        for q in queues
    ]
    return await pbx.run(steps)


async def unpause(pbx: Pbx, interface: str, queue: str | None) -> StepsResult:
    queues = plan_unpause(pbx.centre, interface, queue)
    pbx.ready()
    steps = [
        Step(
            q,
            {"Action": "QueuePause", "Queue": q, "Interface": interface, "Paused": "false"},
            "unpaused",
            member_key(q, interface),
        )
        for q in queues
    ]
    return await pbx.run(steps)


TRANSFER_QUEUE_CONTEXT = "acd-queue"  # docs/dialplan-contract.md: <queue> as extension
TRANSFER_NUMBER_CONTEXT = "acd-transfer"  # docs/dialplan-contract.md: a number as extension


async def transfer(
    pbx: Pbx, leg: TalkingLeg, *, queue: str | None = None, number: str | None = None
) -> tuple[StepsResult, str]:
    """Move the caller of ``leg`` to ``queue`` or an external ``number``: (result, via).

    The agent leg is blind-transferred (the caller goes on in the dialplan, the agent is
    free: capture 09), confirmed by the BlindTransfer event. Without a known agent leg
    (e.g. picked up again after a resync) a queue transfer redirects the caller channel
    (capture 09b), confirmed by its QueueCallerJoin in the new queue.
    """
    if (queue is None) == (number is None):
        raise ValueError("transfer to a queue or a number")
    pbx.ready()
    context, exten = (
        (TRANSFER_QUEUE_CONTEXT, queue) if queue is not None else (TRANSFER_NUMBER_CONTEXT, number)
    )
    assert exten is not None
    label = queue or "external"
    if leg.agent_channel is not None:
        step = Step(
            label,
            {
                "Action": "BlindTransfer",
                "Channel": leg.agent_channel,
                "Context": context,
                "Exten": exten,
            },
            "transferred",
            (leg.linkedid,),
        )
        via = "blind_transfer"
    elif queue is not None and leg.caller_channel is not None:
        step = Step(
            label,
            {
                "Action": "Redirect",
                "Channel": leg.caller_channel,
                "Context": context,
                "Exten": exten,
                "Priority": "1",
            },
            "joined",
            (leg.linkedid, queue),
        )
        via = "redirect"
    else:
        raise WrongState("the agent's channel of this call is not known; transfer from the phone")
    return await pbx.run([step]), via
