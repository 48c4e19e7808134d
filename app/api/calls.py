"""``/v1/calls``: the call record for reports and integrations, and what agents do with a
call: register it (henvendelsesregistrering) and transfer it.

An agent sees and acts on the calls it took; supervisors on their teams' (reads of the
record: every role but the agent sees every call).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app import privacy
from app.acd import events as ev
from app.acd.access import Principal
from app.acd.agents import WrongState, talking_leg
from app.acd.state import Outcome
from app.ami import agent_actions as actions
from app.api import pbx as pbx_http
from app.api.auth import access, audit_note, forbidden
from app.api.common import (
    ERRORS,
    AgentId,
    Code,
    Instant,
    Note,
    QueueName,
    conflict,
    not_found,
    runtime,
    work_config,
)
from app.store import registrations, repo

router = APIRouter(prefix="/v1/calls", tags=["calls"])


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pbx: str
    linkedid: str  # Asterisk's, for correlation with CDRs
    started_at: datetime
    ended_at: datetime | None
    caller: str  # masked display form, never the number
    dialled: str
    keys: str
    queue: str | None
    outcome: str | None  # None while the call is up
    wait_seconds: float | None
    ring_seconds: float | None
    talk_seconds: float | None
    agent: str | None
    transferred_to: str | None
    hangup_cause: int | None
    data_gap: bool

    @classmethod
    def of(cls, call: Any) -> CallOut:
        return cls.model_validate({**_columns(call), "caller": call.caller_display})


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    queue: str
    entered_at: datetime
    position: int | None
    left_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    ring_seconds: float | None
    talk_seconds: float | None
    agent: str | None
    outcome: str | None
    data_gap: bool


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    source: str
    uniqueid: str | None
    data: dict[str, Any]


class RegistrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    queue: str | None
    reason: str
    resolved: bool
    transferred_to: str | None
    updated_at: datetime


class CallDetail(CallOut):
    visits: list[VisitOut]
    events: list[EventOut]
    registrations: list[RegistrationOut]  # henvendelsesregistrering, one per agent


class ErrorOut(BaseModel):
    detail: str | dict[str, Any] | list[Any]


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


@router.get(
    "",
    response_model=CallPage,
    summary="Calls, newest first, with filters and cursor pagination",
    responses={**ERRORS, 400: {"model": ErrorOut}},
)
async def list_calls(
    request: Request,
    who: Annotated[Principal, Security(access("calls:read", "calls.list"))],
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    queue: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    outcome: Outcome | None = None,
    agent: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CallPage:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(400, f"{name} needs a time zone (e.g. 2014-11-04T08:00:00+01:00)")
        if value is not None and not (1970 <= value.year <= 2100):
            raise HTTPException(400, f"{name} must be between 1970 and 2100")
    if who.own_agent is not None and agent is not None and agent != who.own_agent:
        raise forbidden("an agent sees only the calls it took")
    flt = repo.CallFilter(
        since=since,
        until=until,
        queue=queue,
        outcome=outcome,
        agent=agent,
        taken_by=who.own_agent,  # an agent: the calls it answered (also transferred ones)
    )
    async with request.app.state.rt.sessions() as session:
        try:
            rows, next_cursor = await repo.list_calls(session, flt, limit, cursor)
        except repo.BadCursor as exc:
            raise HTTPException(400, str(exc)) from exc
    return CallPage(items=[CallOut.of(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{call_id}",
    response_model=CallDetail,
    summary="One call with its queue visits and its events in order",
    responses={**ERRORS, 404: {"model": ErrorOut}},
)
async def get_call(
    request: Request,
    call_id: Annotated[int, Path(ge=1, le=2**62)],
    who: Annotated[Principal, Security(access("calls:read", "calls.get"))],
) -> CallDetail:
    async with request.app.state.rt.sessions() as session:
        found = await repo.get_call(session, call_id)
        registered = await registrations.dispositions_of(session, call_id) if found else []
    if found is None:
        raise HTTPException(404, f"no call with id {call_id}")
    call, visits, events = found
    if who.own_agent is not None and who.own_agent not in {v.agent for v in visits}:
        raise forbidden(f"call {call_id} was not taken by you")
    return CallDetail.model_validate(
        {
            **CallOut.of(call).model_dump(),
            "visits": [VisitOut.model_validate(v) for v in visits],
            "events": [EventOut.model_validate(e) for e in events],
            "registrations": [RegistrationOut.model_validate(d) for d in registered],
        }
    )


# --------------------------------------------------------------------------------------
# Call registration (henvendelsesregistrering)
# --------------------------------------------------------------------------------------


class DispositionIn(BaseModel):
    """``{reason, resolved: true}`` (settled), ``{reason, transferred_to}`` (sent on to a
    queue or a named unit), or ``{reason, resolved: false}`` (neither: follow-up)."""

    model_config = ConfigDict(extra="forbid")

    reason: Code = Field(description="a registration reason of the queue (work.yaml)")
    resolved: bool | None = None
    transferred_to: Code | None = Field(None, description="a queue or a destination name")
    note: Note | None = Field(None, description="for the agent's colleagues; no CPR numbers")
    agent: AgentId | None = Field(
        None, description="whose registration (supervisors; default: the agent who took it)"
    )

    @model_validator(mode="after")
    def _shape(self) -> DispositionIn:
        if self.transferred_to is not None and self.resolved:
            raise ValueError("a transferred call is not resolved at first contact")
        if self.transferred_to is None and self.resolved is None:
            raise ValueError("say resolved (true/false) or transferred_to")
        return self


class DispositionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: int
    agent_id: str
    queue: str | None
    reason: str
    resolved: bool
    transferred_to: str | None
    note: str | None
    created_at: datetime
    updated_at: datetime


CallPath = Annotated[int, Path(ge=1, le=2**62, description="calls.id")]


@router.put(
    "/{call_id}/disposition",
    response_model=DispositionOut,
    summary="Register the call: reason, and resolved or transferred (agent who took it)",
    responses={
        **ERRORS,
        201: {"model": DispositionOut, "description": "created"},
        404: {"model": ErrorOut, "description": "no such call"},
        409: {"model": ErrorOut, "description": "never answered, or the window has closed"},
    },
)
async def put_disposition(
    request: Request,
    response: Response,
    call_id: CallPath,
    body: DispositionIn,
    who: Annotated[Principal, Security(access("calls:write", "call.disposition"))],
) -> DispositionOut:
    rt = runtime(request)
    work = work_config(rt)
    now = rt.clock.now()  # the PBX's (app/clock.py): the call's times are its
    async with rt.sessions.begin() as session:
        found = await repo.call_and_visits(session, call_id)
        if found is None:
            raise not_found(f"no call with id {call_id}")
        call, visits = found
        takers = [v for v in visits if v.agent is not None and v.answered_at is not None]
        if not takers:
            raise conflict(f"call {call_id} was not answered by an agent: nothing to register")
        agents = {v.agent for v in takers}
        if who.role == "agent":
            if body.agent is not None and body.agent != who.agent_id:
                raise forbidden("an agent registers only its own calls")
            agent_id = who.agent_id
            if agent_id not in agents:
                raise forbidden(f"call {call_id} was not taken by you")
        elif body.agent is not None:
            agent_id = body.agent
            if agent_id not in agents:
                raise HTTPException(422, f"agent {agent_id!r} did not take call {call_id}")
        elif len(agents) == 1:
            agent_id = next(iter(agents))
        else:
            raise HTTPException(
                422,
                f"call {call_id} was taken by {', '.join(sorted(a or '' for a in agents))}; "
                "say whose registration in 'agent'",
            )
        assert agent_id is not None
        if who.role == "supervisor" and not who.reaches(
            agent_id, await registrations.team_of(session, agent_id)
        ):
            raise forbidden(f"agent {agent_id!r} is not in your team(s)")
        window = timedelta(minutes=rt.settings.disposition_window_minutes)
        if call.ended_at is not None and now > call.ended_at + window:
            raise conflict(
                f"registration of call {call_id} closed {rt.settings.disposition_window_minutes} "
                f"min after it ended ({call.ended_at.isoformat()})"
            )
        queue = next(v.queue for v in reversed(takers) if v.agent == agent_id)
        if work.disposition(queue, body.reason) is None:
            allowed = ", ".join(c.code for c in work.dispositions.for_queue(queue))
            raise HTTPException(
                422, f"{body.reason!r} is not a registration reason of {queue}; one of {allowed}"
            )
        target = body.transferred_to
        if (
            target is not None
            and work.destination(target) is None
            and rt.config.current.queue(target) is None
        ):
            raise HTTPException(422, f"transferred_to {target!r} is neither a queue nor a unit")
        row, created = await registrations.put_disposition(
            session,
            call_id=call_id,
            agent_id=agent_id,
            queue=queue,
            reason=body.reason,
            resolved=bool(body.resolved) and target is None,
            transferred_to=target,
            note=body.note,
            now=now,
        )
        out = DispositionOut.model_validate(row)
    audit_note(
        request, agent=agent_id, reason=body.reason, resolved=out.resolved, transferred_to=target
    )
    response.status_code = 201 if created else 200
    return out


# --------------------------------------------------------------------------------------
# Transfers
# --------------------------------------------------------------------------------------


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueName | None = Field(None, description="another queue of the centre")
    destination: Code | None = Field(None, description="a named unit of work.yaml (e.g. jka)")

    @model_validator(mode="after")
    def _one(self) -> TransferIn:
        if (self.queue is None) == (self.destination is None):
            raise ValueError("give exactly one of queue and destination")
        return self


class TransferOut(BaseModel):
    call_id: int
    target_type: Literal["queue", "destination"]
    target: str
    via: str  # blind_transfer | redirect
    backup: bool  # outside the unit's best hours: its back-up line (bagvagt)
    at: Instant


@router.post(
    "/{call_id}/transfer",
    response_model=TransferOut,
    summary="Transfer a live call to a queue or a named unit (AMI BlindTransfer/Redirect)",
    responses={
        **ERRORS,
        404: {"model": ErrorOut, "description": "no such call, queue or unit"},
        409: {"model": ErrorOut, "description": "not live, nobody talking, or unit closed"},
        502: {"model": ErrorOut},
        503: {"model": ErrorOut},
        504: {"model": ErrorOut},
    },
)
async def transfer(
    request: Request,
    call_id: CallPath,
    body: TransferIn,
    who: Annotated[Principal, Security(access("calls:write", "call.transfer"))],
) -> TransferOut:
    rt = runtime(request)
    async with rt.sessions() as session:
        found = await repo.call_and_visits(session, call_id)
        if found is None:
            raise not_found(f"no call with id {call_id}")
        call, visits = found
        if who.role in ("agent", "supervisor"):
            # Whose call it was, from the record (the live check below says whose it is).
            takers = {v.agent for v in visits if v.agent is not None}
            teams = {await registrations.team_of(session, a) for a in takers}
            if who.role == "agent" and who.agent_id not in takers:
                raise forbidden(f"call {call_id} was not taken by you")
            if who.role == "supervisor" and not (teams & who.teams):
                raise forbidden(f"call {call_id} was not taken by your team(s)")
        if call.pbx != rt.settings.pbx_id:
            raise conflict(f"call {call_id} is on {call.pbx}, not this service's PBX")
        try:
            leg = talking_leg(rt.centre, call.linkedid)
        except WrongState as exc:
            raise conflict(f"call {call_id}: {exc}") from exc
        if who.role == "agent" and leg.agent != who.agent_id:
            raise forbidden(f"call {call_id} is not yours (it is with {leg.agent})")
        if who.role == "supervisor" and not who.reaches(
            leg.agent or "", await registrations.team_of(session, leg.agent or "")
        ):
            raise forbidden(f"call {call_id} is with an agent outside your team(s)")
    now = rt.clock.now()  # best contact hours on the PBX's clock, as the menu's
    backup = False
    if body.queue is not None:
        if rt.config.current.queue(body.queue) is None:
            raise not_found(f"no queue {body.queue!r}")
        if body.queue == leg.queue:
            raise conflict(f"call {call_id} is in {body.queue} already")
        target_type: Literal["queue", "destination"] = "queue"
        target, number, recorded = body.queue, None, body.queue
    else:
        assert body.destination is not None
        unit = work_config(rt).destination(body.destination)
        if unit is None:
            raise not_found(f"no destination {body.destination!r}")
        number, in_hours, next_window = unit.route(now.astimezone(rt.settings.tz))
        if number is None:
            when = next_window.isoformat() if next_window else "not within a year"
            raise conflict(
                f"{unit.title} takes transfers in its best contact hours only and has no "
                f"back-up line; next window: {when}"
            )
        backup = not in_hours
        target_type, target, recorded = "destination", unit.name, privacy.mask_number(number)
    audit_note(request, target_type=target_type, target_name=target, backup=backup)
    result, via = await pbx_http.attempt(
        rt,
        "transfer",
        f"call {call_id}",
        actions.transfer(pbx_http.pbx(rt), leg, queue=body.queue, number=number),
    )
    pbx_http.check(rt, request, "transfer", result)
    at = rt.clock.now()
    rt.emit(
        ev.CallTransferred(
            at=at,
            pbx=rt.settings.pbx_id,
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
    return TransferOut(
        call_id=call_id, target_type=target_type, target=target, via=via, backup=backup, at=at
    )
