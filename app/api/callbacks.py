"""``/v1/callbacks``: call-back and message tasks (from the menu, or created here), due
within 2 working days (Danish holidays excluded); assign them, complete them.

Caller numbers never leave the service: a task shows ``caller`` (masked); the number is
sealed at rest and only the dialer unseals it, into its Originate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from app.acd.access import Principal
from app.acd.callbacks import callback_due
from app.api.auth import access, audit_note
from app.api.common import ERRORS, AgentId, Note, QueueName
from app.api.deps import (
    Ami,
    AppSettings,
    Clock,
    Config,
    Messages,
    MetricsDep,
    Privacy,
    Sessions,
)
from app.api.errors import ErrorOut, bad_parameter
from app.dialer import dial_for_agent
from app.messages import MEDIA_TYPES
from app.privacy import canonical_number
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.store import agents as roster
from app.store import callbacks as store
from app.store import repo
from app.store.models import Agent, Callback

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])

Status = Literal["open", "assigned", "dialling", "done", "failed", "cancelled"]
Kind = Literal["callback", "message"]
TaskPath = Annotated[int, Path(ge=1, le=2**62, description="callbacks.id")]


class CallbackOut(BaseModel):
    id: int = Field(description="The task's id.")
    kind: str = Field(
        description="`callback` (call the citizen back) or `message` (pass a message on).",
    )
    queue: str = Field(description="The queue whose agents handle the task.")
    caller: str = Field(
        description="The citizen's number, masked (e.g. `+45 12 xx xx 78`); the number itself"
        " is never shown.",
    )
    requested_at: datetime = Field(
        description="When the citizen asked; tasks are handled in this order.",
    )
    due_at: datetime = Field(description="When the task must be done by (2 working days).")
    overdue: bool = Field(description="Still open and past `due_at`.")
    status: str = Field(description="open, assigned, dialling, done, failed or cancelled.")
    assigned_to: str | None = Field(description="The agent who has taken the task, or null.")
    attempts: int = Field(description="Call-back attempts made so far.")
    last_attempt_at: datetime | None = Field(description="When the last attempt was made, or null.")
    outcome: str | None = Field(
        description="How the task ended (reached, forwarded, unreachable, ...), or null while"
        " open.",
    )
    completed_at: datetime | None = Field(description="When it ended, or null while open.")
    note: str | None = Field(description="The agents' note, if any.")
    from_menu: bool = Field(
        description="Created by the menu (the caller asked there) rather than through the API.",
    )
    has_message: bool = Field(
        False,
        description="A voice message is kept for this task: listen through "
        "GET /v1/callbacks/{id}/message (audited)",
    )

    @classmethod
    def of(cls, row: Callback, now: datetime) -> CallbackOut:
        return cls(
            id=row.id,
            kind=row.kind,
            queue=row.queue,
            caller=row.caller_display,
            requested_at=row.requested_at,
            due_at=row.due_at,
            overdue=row.status in store.LIVE and row.due_at < now,
            status=row.status,
            assigned_to=row.assigned_to,
            attempts=row.attempts,
            last_attempt_at=row.last_attempt_at,
            outcome=row.outcome,
            completed_at=row.completed_at,
            note=row.note,
            from_menu=row.linkedid is not None,
            has_message=row.recording is not None,
        )


class CallbackPage(BaseModel):
    items: list[CallbackOut] = Field(description="The tasks of this page, oldest request first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page.",
    )


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(
        "callback",
        description="`callback` (call the citizen back) or `message` (pass a message on).",
    )
    queue: QueueName = Field(description="The queue whose agents handle the task.")
    number: str = Field(
        pattern=r"^\+?[0-9 ]{8,20}$", max_length=20, description="the citizen's number"
    )
    note: Note | None = Field(None, description="For the agents; no CPR numbers.")


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: AgentId | None = Field(None, description="default: yourself (agents)")


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal[
        "reached", "forwarded", "unreachable", "wrong_number", "duplicate", "cancelled"
    ] = Field(
        description="How the task ended: reached, forwarded, unreachable, wrong_number, "
        "duplicate or cancelled."
    )
    note: Note | None = Field(None, description="For the agents; no CPR numbers.")


@router.get(
    "",
    response_model=CallbackPage,
    summary="Call-back and message tasks, oldest request first, with filters",
    responses={**ERRORS, 400: {"model": ErrorOut}},
)
async def list_callbacks(
    who: Annotated[Principal, Security(access("callbacks:read", "callbacks.list"))],
    sessions: Sessions,
    clock: Clock,
    status: Annotated[Status | None, Query(description="Only tasks in this status.")] = None,
    queue: Annotated[
        str | None,
        Query(pattern=r"^[a-z][a-z0-9_]{1,40}$", description="Only this queue's tasks."),
    ] = None,
    kind: Annotated[
        Kind | None, Query(description="Only call-backs (`callback`) or messages.")
    ] = None,
    assigned_to: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            description="Only tasks this agent has taken.",
        ),
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="true: only open tasks past their due time.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The most items on a page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200, description="`next_cursor` of the page before; absent: the first page."
        ),
    ] = None,
) -> CallbackPage:
    """Call-back and message tasks, oldest request first (the order to handle them in), one
    page at a time. Callers' numbers are masked; the number is only ever dialled by the PBX."""
    mine = None
    if who.role == "agent":
        assert who.agent_id is not None
        async with sessions() as session:
            mine = (await roster.skills_of(session, who.agent_id), who.agent_id)
    flt = store.TaskFilter(
        status=status,
        queue=queue,
        kind=kind,
        assigned_to=assigned_to,
        overdue=overdue,
        queues_or_assignee=mine,
    )
    now = clock.now()
    async with sessions() as session:
        try:
            rows, next_cursor = await store.list_tasks(session, flt, now, limit, cursor)
        except repo.BadCursor as exc:
            raise bad_parameter("query", "cursor", str(exc)) from exc
    return CallbackPage(items=[CallbackOut.of(r, now) for r in rows], next_cursor=next_cursor)


@router.post(
    "",
    response_model=CallbackOut,
    status_code=201,
    summary="Create a call-back or message task (the number is sealed, never shown again)",
    responses={**ERRORS, 404: {"model": ErrorOut}},
)
async def create_callback(
    request: Request,
    body: CallbackIn,
    who: Annotated[Principal, Security(access("callbacks:write", "callback.create"))],
    sessions: Sessions,
    config: Config,
    clock: Clock,
    privacy: Privacy,
    settings: AppSettings,
) -> CallbackOut:
    """Creates a task for a queue's agents: call a citizen back, or pass a message on. The
    number is stored sealed and never shown again, only its masked form."""
    if config.queue(body.queue) is None:
        raise NotFound(f"no queue {body.queue!r}")
    number = canonical_number(body.number)
    if not number:
        raise Invalid("number holds no phone number", ("body", "number"))
    caller = privacy.caller(number)
    now = clock.now()  # the PBX's: "today" and the due day are its (the demo's other day)
    async with sessions.begin() as session:
        row = await store.create(
            session,
            kind=body.kind,
            pbx=settings.pbx_id,
            queue=body.queue,
            caller_hash=caller.hash,
            caller_display=caller.display,
            number_sealed=privacy.seal(number),
            now=now,
            due_at=callback_due(now, clock.tz),
            note=body.note,
            created_by=who.name,
        )
        out = CallbackOut.of(row, now)
    audit_note(request, target=f"callback:{out.id}", queue=body.queue, kind=body.kind)
    return out


@router.get(
    "/{callback_id}",
    response_model=CallbackOut,
    summary="One task",
    responses={**ERRORS, 404: {"model": ErrorOut}},
)
async def get_callback(
    callback_id: TaskPath,
    who: Annotated[Principal, Security(access("callbacks:read", "callback.get"))],
    sessions: Sessions,
    clock: Clock,
) -> CallbackOut:
    """One call-back or message task."""
    async with sessions() as session:
        row = await store.get(session, callback_id)
        if row is None:
            raise NotFound(f"no call-back task {callback_id}")
        if who.role == "agent" and row.assigned_to != who.agent_id:
            assert who.agent_id is not None
            if row.queue not in await roster.skills_of(session, who.agent_id):
                raise Forbidden(f"task {callback_id} is not for your queues")
    return CallbackOut.of(row, clock.now())


@router.post(
    "/{callback_id}/assign",
    operation_id="assignCallback",
    response_model=CallbackOut,
    summary="Give the task to an agent (agents: to themselves)",
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def assign(
    request: Request,
    callback_id: TaskPath,
    body: AssignIn,
    who: Annotated[Principal, Security(access("callbacks:write", "callback.assign"))],
    sessions: Sessions,
    clock: Clock,
) -> CallbackOut:
    """Gives the task to an agent; an agent takes tasks for itself only. A task someone else
    has is a 409."""
    agent_id = body.agent or who.agent_id
    if agent_id is None:
        raise Invalid("say which agent in 'agent'", ("body", "agent"))
    if who.role == "agent" and agent_id != who.agent_id:
        raise Forbidden("an agent takes tasks for itself only")
    now = clock.now()
    async with sessions.begin() as session:
        row = await store.get(session, callback_id, lock=True)
        if row is None:
            raise NotFound(f"no call-back task {callback_id}")
        profile = await session.get(Agent, agent_id)
        if profile is None:
            raise NotFound(f"no agent {agent_id!r}")
        if who.role == "supervisor" and not who.reaches(agent_id, profile.team):
            raise Forbidden(f"agent {agent_id!r} is not in your team(s)")
        if (
            row.status == "assigned"
            and row.assigned_to not in (None, agent_id)
            and (who.role == "agent")
        ):
            raise Conflict(f"task {callback_id} is assigned to {row.assigned_to}")
        try:
            store.assign(row, agent_id)
        except store.TaskError as exc:
            raise Conflict(str(exc)) from exc
        out = CallbackOut.of(row, now)
    audit_note(request, agent=agent_id)
    return out


@router.post(
    "/{callback_id}/complete",
    operation_id="completeCallback",
    response_model=CallbackOut,
    summary="Close the task with an outcome (reached, forwarded, unreachable, ...)",
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def complete(
    request: Request,
    callback_id: TaskPath,
    body: CompleteIn,
    who: Annotated[Principal, Security(access("callbacks:write", "callback.complete"))],
    sessions: Sessions,
    clock: Clock,
) -> CallbackOut:
    """Closes the task with how it ended (reached, forwarded, unreachable, wrong_number,
    duplicate, cancelled) and an optional note."""
    now = clock.now()
    async with sessions.begin() as session:
        row = await store.get(session, callback_id, lock=True)
        if row is None:
            raise NotFound(f"no call-back task {callback_id}")
        if who.role == "agent":
            assert who.agent_id is not None
            if row.assigned_to not in (None, who.agent_id):
                raise Forbidden(f"task {callback_id} is assigned to someone else")
            if row.assigned_to is None and row.queue not in await roster.skills_of(
                session, who.agent_id
            ):
                raise Forbidden(f"task {callback_id} is not for your queues")
            if row.status == "open":
                row.assigned_to = who.agent_id
        try:
            store.complete(row, body.outcome, body.note, now)
        except store.TaskError as exc:
            raise Conflict(str(exc)) from exc
        out = CallbackOut.of(row, now)
    audit_note(request, outcome=body.outcome)
    return out


class DialOut(BaseModel):
    task: CallbackOut = Field(description="The task after the attempt.")
    agent_answered: bool = Field(
        description="The agent's phone answered; the PBX is dialling the citizen.",
    )
    result: str = Field(
        description="answered, no_answer, busy, congestion, failed or timeout (the agent's leg).",
    )


@router.post(
    "/{callback_id}/dial",
    operation_id="dialCallback",
    response_model=DialOut,
    summary="Click-to-dial: ring the agent's phone, then the citizen (number never shown)",
    responses={
        **ERRORS,
        404: {"model": ErrorOut},
        409: {"model": ErrorOut, "description": "not dialable now, or the phone did not answer"},
        503: {"model": ErrorOut, "description": "no PBX configured, or the AMI link is down"},
    },
)
async def dial(
    request: Request,
    callback_id: TaskPath,
    who: Annotated[Principal, Security(access("callbacks:write", "callback.dial"))],
    ami: Ami,
    sessions: Sessions,
    clock: Clock,
    privacy: Privacy,
    metrics: MetricsDep,
    settings: AppSettings,
) -> DialOut:
    """Click-to-dial: the PBX rings the agent's phone, then the citizen's number (which neither
    the agent nor the API ever sees). Answers once the agent's phone has answered or not."""
    if who.agent_id is None:
        raise Forbidden("only an agent can call back from its own phone")
    now = clock.now()
    async with sessions.begin() as session:
        row = await store.get(session, callback_id, lock=True)
        if row is None:
            raise NotFound(f"no call-back task {callback_id}")
        profile = await session.get(Agent, who.agent_id)
        if profile is None:
            raise NotFound(f"no agent {who.agent_id!r}")
        if row.assigned_to not in (None, who.agent_id):
            raise Forbidden(f"task {callback_id} is assigned to someone else")
        if row.assigned_to is None and row.queue not in await roster.skills_of(
            session, who.agent_id
        ):
            raise Forbidden(f"task {callback_id} is not for your queues")
        link = ami
        if link is None or link.state != "logged_in":
            raise Unavailable("no PBX is configured, or the AMI link to it is down")
        try:
            store.start_manual_attempt(row, who.agent_id, now)
        except store.TaskError as exc:
            raise Conflict(str(exc)) from exc
        sealed, interface = row.number_sealed, profile.interface
    assert sealed is not None
    result, linkedid = await dial_for_agent(
        link,
        interface=interface,
        number=privacy.unseal(sealed),
        task_id=callback_id,
        caller_id=settings.dialer_caller_id,
    )
    answered = result == "answered"
    async with sessions.begin() as session:
        row = await store.get(session, callback_id)
        assert row is not None
        row.outcome = "dialled" if answered else f"agent_{result}"
        row.call_linkedid = linkedid or row.call_linkedid
        out = CallbackOut.of(row, now)
    metrics.dialer_originations.labels("agent_" + result).inc()
    audit_note(request, result=result)
    if not answered:
        raise Conflict(f"your phone ({interface}) did not answer ({result}); nothing was dialled")
    return DialOut(task=out, agent_answered=True, result=result)


@router.get(
    "/{callback_id}/message",
    operation_id="getCallbackMessage",
    summary="Listen to a message task's voice message (a team leader: any; an agent: its "
    "queues'); every listening audited",
    response_class=FileResponse,
    responses={
        **ERRORS,
        200: {
            "content": {"audio/wav": {}, "audio/x-gsm": {}},
            "description": "The recording, as Asterisk wrote it",
        },
        404: {"model": ErrorOut, "description": "no such task, or no message kept for it"},
    },
)
async def message(
    request: Request,
    callback_id: TaskPath,
    who: Annotated[Principal, Security(access("messages:listen", "callback.message"))],
    sessions: Sessions,
    messages: Messages,
) -> FileResponse:
    """The voice message a caller left in the menu for a message task, as Asterisk recorded
    it (WAV or GSM). A team leader may listen to any; an agent to those of its queues' tasks
    or the ones it has taken. Every listening is an audit row."""
    # Found by the task only: never by a path a client names, so no file is reachable by
    # guessing its name, and every listening is one audit row.
    async with sessions() as session:
        row = await store.get(session, callback_id)
        if row is None:
            raise NotFound(f"no call-back task {callback_id}")
        if who.role == "agent" and row.assigned_to != who.agent_id:
            assert who.agent_id is not None
            if row.queue not in await roster.skills_of(session, who.agent_id):
                raise Forbidden(f"task {callback_id} is not for your queues")
    files = messages.files_of(row.recording)
    if not files:
        raise NotFound(f"no voice message is kept for task {callback_id}")
    path = files[0]
    audit_note(request, target=f"callback:{callback_id}", bytes=path.stat().st_size)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream"),
        headers={"Cache-Control": "no-store"},
    )
