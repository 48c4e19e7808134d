"""``/v1/calls``: the call record for reports and integrations, and what agents do with a
call: register it (henvendelsesregistrering) and transfer it.

An agent sees and acts on the calls it took; supervisors on their teams' (reads of the
record: every role but the agent sees every call). Thin: the rules are the use cases of
``app/services/calls.py``; their domain errors become status codes in app/api/errors.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.acd.access import Principal
from app.acd.model import Outcome
from app.acd.records import HangupBy
from app.api.auth import access, audit_note, forbidden
from app.api.common import ERRORS, AgentId, Code, Instant, Note, QueueName
from app.api.deps import AppSettings, Centre, Clock, Config, Emit, Pbx, Sessions, Work
from app.api.errors import ErrorOut, bad_parameter
from app.services import calls as use
from app.settings import PBX_ID
from app.store import repo

router = APIRouter(prefix="/v1/calls", tags=["calls"])


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(
        description="The call's id in this service; `/v1/calls/{call_id}` also takes the "
        "`linkedid`.",
    )
    pbx: str = Field(description="The PBX the call came through (ACD_PBX_ID).")
    linkedid: str = Field(
        description="Asterisk's linkedid (as the live views and the PBX's CDRs show it).",
    )
    started_at: datetime = Field(description="When the call reached the PBX.")
    ended_at: datetime | None = Field(description="When it ended; null while it is up.")
    caller: str = Field(
        description="The caller's number, masked (e.g. `+45 12 xx xx 78`); the number itself "
        "is never shown.",
    )
    dialled: str = Field(description="The number called (e.g. `82565682`).")
    keys: str = Field(description="The keys pressed in the menu, in order.")
    queue: str | None = Field(description="The last queue the call was in, or null.")
    outcome: str | None = Field(
        description="What became of the call (answered, abandoned, closed, ... : "
        "docs/kpis.md); null while it is up.",
    )
    wait_seconds: float | None = Field(
        description="Wait in the queue(s) before it was answered or left.",
    )
    ring_seconds: float | None = Field(description="Time an agent's phone rang before the answer.")
    talk_seconds: float | None = Field(description="Talk time with agents.")
    agent: str | None = Field(description="The agent who answered last, or null.")
    transferred_to: str | None = Field(
        description="The queue or unit the call was put through to, or null.",
    )
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
    data_gap: bool = Field(
        description="The call was touched by a gap in the PBX's event stream; its times may "
        "be incomplete.",
    )

    @classmethod
    def of(cls, call: Any) -> CallOut:
        return cls.model_validate({**_columns(call), "caller": call.caller_display})


class CallPage(BaseModel):
    items: list[CallOut] = Field(description="The calls of this page, newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page.",
    )


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(description="The visit's number within the call (1, 2, ... in order).")
    queue: str = Field(description="The queue visited.")
    entered_at: datetime = Field(description="When the caller joined the queue.")
    position: int | None = Field(
        description="The caller's position on joining (1 = first), or null.",
    )
    left_at: datetime | None = Field(
        description="When the caller left the queue (answered or not), or null.",
    )
    answered_at: datetime | None = Field(description="When an agent answered, or null.")
    ended_at: datetime | None = Field(description="When the visit ended (talk included), or null.")
    wait_seconds: float | None = Field(description="Wait in this queue.")
    ring_seconds: float | None = Field(description="Time the agent's phone rang before the answer.")
    talk_seconds: float | None = Field(description="Talk time of this visit.")
    agent: str | None = Field(description="The agent who answered, or null.")
    outcome: str | None = Field(
        description="answered, abandoned, timeout, empty or transferred; null while waiting.",
    )
    data_gap: bool = Field(
        description="Touched by a gap in the PBX's event stream; its times may be incomplete.",
    )


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime = Field(description="When it happened (PBX time).")
    kind: str = Field(description="What happened (e.g. `queue_join`, `agent_connect`, `hangup`).")
    source: str = Field(description="Where the event came from: ami, agi, api or sim.")
    uniqueid: str | None = Field(description="The Asterisk channel the event is about, or null.")
    data: dict[str, Any] = Field(description="The event's own fields (no caller numbers).")


class RegistrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agent_id: str = Field(description="The agent whose registration it is.")
    queue: str | None = Field(description="The queue the agent took the call in.")
    reason: str = Field(description="The registration reason's code (work.yaml).")
    resolved: bool = Field(description="Settled at first contact (straksafklaret).")
    transferred_to: str | None = Field(
        description="The queue or unit the call was sent on to, or null.",
    )
    updated_at: datetime = Field(description="When the registration was last changed.")


class CallDetail(CallOut):
    visits: list[VisitOut] = Field(description="The call's queue visits, in order.")
    events: list[EventOut] = Field(description="The call's events, in order.")
    registrations: list[RegistrationOut] = Field(
        description="The registrations (henvendelsesregistrering), one per agent who took the"
        " call.",
    )


CALL_REF = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


async def _call_id(
    call_id: Annotated[
        str,
        Path(
            pattern=CALL_REF,
            max_length=64,
            description="The call: its `id` (as `/v1/calls` gives it) or its `linkedid` "
            "(as `/v1/calls/live` and `/v1/agents` show it, e.g. `1415088000.123`).",
            examples=["1415088000.123", "4711"],
        ),
    ],
    sessions: Sessions,
    settings: AppSettings,
) -> int:
    if call_id.isdigit() and not 1 <= int(call_id) <= 2**62:
        raise bad_parameter("path", "call_id", "a call id is between 1 and 2^62")
    return await use.call_row_id(sessions, call_id, settings.pbx_id)


# Every /v1/calls/{call_id}/... route names the call by id or linkedid through this.
CallRef = Annotated[int, Depends(_call_id)]


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
    since: Annotated[
        Instant | None, Query(description="Started at or after (ISO 8601 with a time zone).")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Started before (ISO 8601 with a time zone).")
    ] = None,
    queue: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z][a-z0-9_]{0,63}$",
            description="Only calls whose last queue is this one.",
        ),
    ] = None,
    outcome: Annotated[Outcome | None, Query(description="Only calls with this outcome.")] = None,
    agent: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            description="Only calls this agent answered (an agent: itself only).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The most items on a page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200, description="`next_cursor` of the page before; absent: the first page."
        ),
    ] = None,
    hangup_by: Annotated[
        HangupBy | None, Query(description="who ended the call: caller, agent or system")
    ] = None,
    pbx: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=f"^{PBX_ID.pattern}$",
            description="Only calls that came through this PBX (its ACD_PBX_ID, e.g. `pbx1`).",
        ),
    ] = None,
) -> CallPage:
    """The call record, newest first, one page at a time: pass `next_cursor` back as `cursor`.
    An agent sees the calls it answered. `since` and `until` need a time zone (a time
    without one is a 422, as everywhere in this API)."""
    if who.own_agent is not None and agent is not None and agent != who.own_agent:
        raise forbidden("an agent sees only the calls it took")
    flt = repo.CallFilter(
        since=since,
        until=until,
        queue=queue,
        outcome=outcome,
        agent=agent,
        hangup_by=hangup_by,
        pbx=pbx,
        taken_by=who.own_agent,  # an agent: the calls it answered (also transferred ones)
    )
    async with sessions() as session:
        try:
            rows, next_cursor = await repo.list_calls(session, flt, limit, cursor)
        except repo.BadCursor as exc:
            raise bad_parameter("query", "cursor", str(exc)) from exc
    return CallPage(items=[CallOut.of(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{call_id}",
    response_model=CallDetail,
    summary="One call with its queue visits and its events in order",
    responses={**ERRORS, 404: {"model": ErrorOut}},
)
async def get_call(
    sessions: Sessions,
    call_id: CallRef,
    who: Annotated[Principal, Security(access("calls:read", "calls.get"))],
) -> CallDetail:
    """One call by its `id` or its `linkedid`: its queue visits, its events in order and its
    registrations. An agent reads only the calls it answered."""
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
    resolved: bool | None = Field(
        None,
        description="True: settled at first contact; false: neither settled nor transferred "
        "(follow-up). Leave out with `transferred_to`.",
    )
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

    call_id: int = Field(description="The call's id.")
    agent_id: str = Field(description="The agent whose registration it is.")
    queue: str | None = Field(description="The queue the agent took the call in.")
    reason: str = Field(description="The registration reason's code.")
    resolved: bool = Field(description="Settled at first contact.")
    transferred_to: str | None = Field(
        description="The queue or unit the call was sent on to, or null.",
    )
    note: str | None = Field(description="The note, if any.")
    created_at: datetime = Field(description="When the call was first registered.")
    updated_at: datetime = Field(description="When the registration was last changed.")


@router.put(
    "/{call_id}/disposition",
    operation_id="registerCall",
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
    call_id: CallRef,
    body: DispositionIn,
    who: Annotated[Principal, Security(access("calls:write", "call.disposition"))],
    sessions: Sessions,
    work: Work,
    config: Config,
    clock: Clock,
    settings: AppSettings,
) -> DispositionOut:
    """The call's registration (henvendelsesregistrering) by the agent who took it: a reason
    from work.yaml and either `resolved` or `transferred_to`. Name the call by the
    `linkedid` the live views show, or by its `id`. Allowed until
    ACD_DISPOSITION_WINDOW_MINUTES after the call ended; a second PUT replaces the first
    (200), the first creates (201). A supervisor may register for its teams' agents
    (`agent`)."""
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
    call_id: int = Field(description="The call's id.")
    target_type: Literal["queue", "destination"] = Field(
        description="`queue` or `destination` (a named unit of work.yaml).",
    )
    target: str = Field(description="The queue's or the unit's name.")
    via: str = Field(description="How the PBX moved the call: `blind_transfer` or `redirect`.")
    backup: bool = Field(
        description="Outside the unit's best hours: sent to its back-up line (bagvagt).",
    )
    at: Instant = Field(description="When the PBX confirmed the transfer.")


@router.post(
    "/{call_id}/transfer",
    operation_id="transferCall",
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
    call_id: CallRef,
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
    """Moves a live call, named by its `linkedid` or `id`, to another queue or to a named unit
    of work.yaml; outside the unit's best hours to its back-up line. The PBX must confirm
    the transfer (504 if it does not in time, 502 or 409 if it refuses)."""
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
