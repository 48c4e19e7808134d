"""``/v1/calls``: the call record for reports and integrations, and what agents do with a
call: register it (henvendelsesregistrering) and transfer it.

An agent sees and acts on the calls it took; supervisors on their teams' (reads of the
record: every role but the agent sees every call). Thin: the rules are the use cases of
``app/services/calls.py``; their domain errors become status codes in app/api/errors.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.acd.access import Principal
from app.acd.model import Outcome
from app.acd.records import HangupBy
from app.api.auth import access, audit_note, forbidden
from app.api.common import ERRORS, AgentId, Code, Instant, Note, QueueName
from app.api.deps import AppSettings, Centre, Clock, Config, Emit, Pbx, Sessions, Work
from app.api.errors import ErrorOut
from app.services import calls as use
from app.store import repo

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
    hangup_cause: int | None = Field(
        description="Asterisk's Q.850 cause of the caller's leg (0: Asterisk gave none, as "
        "when a caller hangs up in the menu or a queue; read hangup_by for who hung up)"
    )
    hangup_by: HangupBy | None = Field(
        None,
        description="who ended the call: caller (hung up in the menu, a queue, the "
        "conversation or the survey), agent (hung up the conversation first) or system "
        "(the PBX or the service ended it: closed, call-back booked, queue time-out, the "
        "far end of a forward); null while the call is up or when a data gap hid its end",
    )
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


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


@router.get(
    "",
    response_model=CallPage,
    summary="Calls, newest first, with filters and cursor pagination",
    responses={**ERRORS, 400: {"model": ErrorOut}},
)
async def list_calls(
    sessions: Sessions,
    who: Annotated[Principal, Security(access("calls:read", "calls.list"))],
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    queue: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    outcome: Outcome | None = None,
    agent: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ] = None,
    hangup_by: Annotated[
        HangupBy | None, Query(description="who ended the call: caller, agent or system")
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
        hangup_by=hangup_by,
        taken_by=who.own_agent,  # an agent: the calls it answered (also transferred ones)
    )
    async with sessions() as session:
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
    sessions: Sessions,
    call_id: Annotated[int, Path(ge=1, le=2**62)],
    who: Annotated[Principal, Security(access("calls:read", "calls.get"))],
) -> CallDetail:
    call, visits, events, registered = await use.read_call(sessions, who, call_id)
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
    sessions: Sessions,
    work: Work,
    config: Config,
    clock: Clock,
    settings: AppSettings,
) -> DispositionOut:
    wanted = use.Registration(
        body.reason, body.resolved, body.transferred_to, body.note, body.agent
    )
    row, created, agent_id = await use.register(
        sessions,
        who,
        call_id,
        wanted,
        work=work,
        config=config,
        clock=clock,
        window_minutes=settings.disposition_window_minutes,
    )
    out = DispositionOut.model_validate(row)
    audit_note(
        request,
        agent=agent_id,
        reason=body.reason,
        resolved=out.resolved,
        transferred_to=body.transferred_to,
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
    sessions: Sessions,
    centre: Centre,
    config: Config,
    clock: Clock,
    pbx: Pbx,
    emit: Emit,
    settings: AppSettings,
) -> TransferOut:
    done = await use.transfer(
        sessions,
        who,
        call_id,
        queue=body.queue,
        destination=body.destination,
        pbx_id=settings.pbx_id,
        centre=centre,
        config=config,
        clock=clock,
        gate=pbx,
        emit=emit,
        note=lambda **detail: audit_note(request, **detail),
    )
    return TransferOut(
        call_id=call_id,
        target_type=done.target_type,
        target=done.target,
        via=done.via,
        backup=done.backup,
        at=done.at,
    )
