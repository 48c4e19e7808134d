"""Use cases on a call: read it, register it (henvendelsesregistrering), transfer it.

Who may read or act on a call is one rule, ``app.acd.access.may_act_on_call``, asked with
the agents concerned: those who took the call (reading it, registering it, transferring
it from the record), the one talking on it now (transferring it live).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import privacy
from app.acd import events as ev
from app.acd.access import Principal, may_act_on_call
from app.acd.agents import WrongState, talking_leg
from app.acd.state import CallCentre
from app.acd.work import WorkConfig
from app.ami import agent_actions as actions
from app.clock import PbxClock
from app.config.snapshot import ConfigSnapshot
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.services.pbx import Note, PbxGate, no_note
from app.store import registrations, repo
from app.store.models import Call, CallEvent, Disposition, QueueVisit


async def _teams(session: AsyncSession, agents: set[str]) -> dict[str, str | None]:
    return {a: await registrations.team_of(session, a) for a in sorted(agents)}


# ---- reading --------------------------------------------------------------------------


async def read_call(
    sessions: async_sessionmaker[AsyncSession], who: Principal, call_id: int
) -> tuple[Call, Sequence[QueueVisit], Sequence[CallEvent], Sequence[Disposition]]:
    """The call with its visits, events and registrations; an agent reads the calls it
    took only."""
    async with sessions() as session:
        found = await repo.get_call(session, call_id)
        if found is None:
            raise NotFound(f"no call with id {call_id}")
        call, visits, events = found
        takers = {v.agent for v in visits if v.agent is not None}
        if not may_act_on_call(who, dict.fromkeys(takers), read=True):
            raise Forbidden(f"call {call_id} was not taken by you")
        registered = await registrations.dispositions_of(session, call_id)
    return call, visits, events, registered


async def call_row_id(sessions: async_sessionmaker[AsyncSession], ref: str, pbx_id: str) -> int:
    """The call's row id from what a caller of the API names it by: the numeric id of
    ``/v1/calls``, or the Asterisk linkedid that the live views (``/v1/calls/live``,
    ``/v1/agents``) show. A linkedid is never all digits (Asterisk's is
    ``<epoch>.<sequence>``); two PBXes may use the same one, then this service's PBX's
    call is meant."""
    if ref.isdigit():
        return int(ref)
    async with sessions() as session:
        rows = await repo.call_ids_by_linkedid(session, ref)
    if not rows:
        raise NotFound(f"no call with linkedid {ref!r}")
    ours = [row_id for row_id, pbx in rows if pbx == pbx_id]
    return ours[0] if ours else rows[0][0]


# ---- registration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    reason: str
    resolved: bool | None
    transferred_to: str | None
    note: str | None
    agent: str | None  # whose registration (a supervisor's choice); None: who took it


async def register(
    sessions: async_sessionmaker[AsyncSession],
    who: Principal,
    call_id: int,
    wanted: Registration,
    *,
    work: WorkConfig,
    config: ConfigSnapshot,
    clock: PbxClock,
    window_minutes: float,
) -> tuple[Disposition, bool, str]:
    """Create or replace an agent's registration of an answered call, within the window
    after it ended: (row, created, the agent registered for)."""
    now = clock.now()  # the PBX's: the call's times are its
    async with sessions.begin() as session:
        found = await repo.call_and_visits(session, call_id)
        if found is None:
            raise NotFound(f"no call with id {call_id}")
        call, visits = found
        takers = [v for v in visits if v.agent is not None and v.answered_at is not None]
        if not takers:
            raise Conflict(f"call {call_id} was not answered by an agent: nothing to register")
        agent_id = _whose(who, call_id, wanted.agent, {v.agent for v in takers if v.agent})
        if not may_act_on_call(who, await _teams(session, {agent_id})):
            raise Forbidden(
                f"call {call_id} was not taken by you"
                if who.role == "agent"
                else f"agent {agent_id!r} is not in your team(s)"
            )
        window = timedelta(minutes=window_minutes)
        if call.ended_at is not None and now > call.ended_at + window:
            raise Conflict(
                f"registration of call {call_id} closed {window_minutes:g} "
                f"min after it ended ({call.ended_at.isoformat()})"
            )
        queue = next(v.queue for v in reversed(takers) if v.agent == agent_id)
        if work.disposition(queue, wanted.reason) is None:
            allowed = ", ".join(c.code for c in work.dispositions.for_queue(queue))
            raise Invalid(
                f"{wanted.reason!r} is not a registration reason of {queue}; one of {allowed}",
                ("body", "reason"),
            )
        target = wanted.transferred_to
        if target is not None and work.destination(target) is None and config.queue(target) is None:
            raise Invalid(
                f"transferred_to {target!r} is neither a queue nor a unit",
                ("body", "transferred_to"),
            )
        row, created = await registrations.put_disposition(
            session,
            call_id=call_id,
            agent_id=agent_id,
            queue=queue,
            reason=wanted.reason,
            resolved=bool(wanted.resolved) and target is None,
            transferred_to=target,
            note=wanted.note,
            now=now,
        )
    return row, created, agent_id


def _whose(who: Principal, call_id: int, chosen: str | None, agents: set[str]) -> str:
    """The agent whose registration this is: the agent itself, or the one a supervisor or
    admin names (or the only one who took the call)."""
    if who.role == "agent":
        if chosen is not None and chosen != who.agent_id:
            raise Forbidden("an agent registers only its own calls")
        if who.agent_id not in agents:
            raise Forbidden(f"call {call_id} was not taken by you")
        assert who.agent_id is not None
        return who.agent_id
    if chosen is not None:
        if chosen not in agents:
            raise Invalid(f"agent {chosen!r} did not take call {call_id}", ("body", "agent"))
        return chosen
    if len(agents) == 1:
        return next(iter(agents))
    raise Invalid(
        f"call {call_id} was taken by {', '.join(sorted(agents))}; "
        "say whose registration in 'agent'",
        ("body", "agent"),
    )


# ---- transfers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transferred:
    target_type: Literal["queue", "destination"]
    target: str
    via: str  # blind_transfer | redirect
    backup: bool  # outside the unit's best hours: its back-up line (bagvagt)
    at: datetime


async def transfer(
    sessions: async_sessionmaker[AsyncSession],
    who: Principal,
    call_id: int,
    *,
    queue: str | None,
    destination: str | None,
    pbx_id: str,
    centre: CallCentre,
    config: ConfigSnapshot,
    clock: PbxClock,
    gate: PbxGate,
    emit: Callable[[ev.DomainEvent], None],
    note: Note = no_note,
) -> Transferred:
    """Move the live call to another queue or a named unit (AMI BlindTransfer/Redirect):
    whose call it was (the record) and whose it is (the live state) decide who may."""
    async with sessions() as session:
        found = await repo.call_and_visits(session, call_id)
        if found is None:
            raise NotFound(f"no call with id {call_id}")
        call, visits = found
        if who.role in ("agent", "supervisor"):
            takers = await _teams(session, {v.agent for v in visits if v.agent is not None})
            if not may_act_on_call(who, takers):
                mine = "you" if who.role == "agent" else "your team(s)"
                raise Forbidden(f"call {call_id} was not taken by {mine}")
        if call.pbx != pbx_id:
            raise Conflict(f"call {call_id} is on {call.pbx}, not this service's PBX")
        try:
            leg = talking_leg(centre, call.linkedid)
        except WrongState as exc:
            raise Conflict(f"call {call_id}: {exc}") from exc
        if who.role in ("agent", "supervisor"):
            talking = await _teams(session, {leg.agent or ""})
            if not may_act_on_call(who, talking):
                raise Forbidden(
                    f"call {call_id} is not yours (it is with {leg.agent})"
                    if who.role == "agent"
                    else f"call {call_id} is with an agent outside your team(s)"
                )
    now = clock.now()  # best contact hours on the PBX's clock, as the menu's
    backup = False
    target_type: Literal["queue", "destination"]
    if queue is not None:
        if config.queue(queue) is None:
            raise NotFound(f"no queue {queue!r}")
        if queue == leg.queue:
            raise Conflict(f"call {call_id} is in {queue} already")
        target_type, target, number, recorded = "queue", queue, None, queue
    else:
        assert destination is not None
        if config.work is None:
            raise Unavailable("no work.yaml loaded: transfer destinations are not configured")
        unit = config.work.destination(destination)
        if unit is None:
            raise NotFound(f"no destination {destination!r}")
        number, in_hours, next_window = unit.route(now.astimezone(clock.tz))
        if number is None:
            when = next_window.isoformat() if next_window else "not within a year"
            raise Conflict(
                f"{unit.title} takes transfers in its best contact hours only and has no "
                f"back-up line; next window: {when}"
            )
        backup = not in_hours
        target_type, target, recorded = "destination", unit.name, privacy.mask_number(number)
    note(target_type=target_type, target_name=target, backup=backup)
    result, via = await gate.attempt(
        "transfer",
        f"call {call_id}",
        actions.transfer(gate.pbx, leg, queue=queue, number=number),
    )
    gate.confirmed("transfer", result, note)
    at = clock.now()
    emit(
        ev.CallTransferred(
            at=at,
            pbx=pbx_id,
            key=f"api-transfer:{uuid.uuid4().hex}",
            linkedid=call.linkedid,
            target_type=target_type,
            target=target,
            recorded=recorded,
            via=via,
            by=who.name,
            backup=backup,
        )
    )
    return Transferred(target_type, target, via, backup, at)
