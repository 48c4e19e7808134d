"""The live picture: ``/v1/queues``, ``/v1/agents``, ``/v1/calls/live``, ``/v1/stream``.

Thin on purpose: the documents are built by ``app.live.queries`` from the process's
``LiveStore`` (its own state on the process that owns the AMI link, the Redis mirror on
a replica); the models below document them (and a test validates the responses against
them). Authorisation will be added as a dependency on the router when roles exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, Security
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.access import Principal
from app.acd.glossary import describe_figures
from app.acd.kpi import Tally, figures
from app.acd.presence import AgentStateName
from app.api.auth import AUDIT_KEY, access, audit_note
from app.api.common import ERRORS
from app.api.deps import Clock, Live, MaybeReports, Sessions
from app.api.errors import ErrorOut
from app.clock import PbxClock
from app.live import queries
from app.live.store import LiveStore, Subscriber, TooManyClients
from app.reports.build import day_figures
from app.reports.goals import goals_on
from app.reports.rollup import Context as ReportContext
from app.services.errors import Invalid, Unavailable

# Every live view needs credentials with live:read; looking is not audited (a wallboard
# looks every second), a refusal is.
router = APIRouter(prefix="/v1", tags=["live"], responses=ERRORS)


def live_view(action: str) -> Any:
    return Security(access("live:read", action, quiet=True))


HEARTBEAT_SECONDS = 15.0


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TodayOut(_Out):
    """Today's figures of a queue (per visit) or the centre (per call); definitions in
    docs/kpis.md."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_figures)

    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    timeout: int
    empty: int
    transferred: int
    answered_within_sl: int
    abandoned_within_sl: int
    abandoned_after_sl: int
    answer_rate: float | None
    answer_rate_raw: float | None
    abandon_rate: float | None
    avg_wait_seconds: float | None
    asa_seconds: float | None
    service_level: float | None
    service_level_abandons: float | None
    service_level_offered: float | None
    service_level_sl2: float | None
    avg_talk_seconds: float | None
    max_wait_seconds: float | None
    talked: int
    ewt_samples: int
    ewt_mean_error_seconds: float | None
    ewt_mean_abs_error_seconds: float | None


class AgentCounts(_Out):
    logged_in: int = Field(
        description="Agents logged in to the queue (every state but logged_out).",
    )
    available: int = Field(description="Ready for a call.")
    ringing: int = Field(description="Being offered a call.")
    on_call: int = Field(description="Talking.")
    wrapup: int = Field(description="In wrap-up after a call.")
    paused: int = Field(description="Paused.")
    unavailable: int = Field(description="Logged in but their phone cannot be reached.")
    paused_reasons: dict[str, int] = Field(description="The paused agents by pause reason code.")


class ProjectionOut(_Out):
    """Today projected to its end (docs/planning.md): the morning forecast, the calls
    expected now (so far + the re-forecast rest), and the day's figures if the rest of the
    day is staffed as planned (now: as staffed); ``at_risk`` names the goals it misses."""

    forecast_calls: float = Field(
        description="Calls the morning forecast expected for the whole of today.",
    )
    expected_calls: float = Field(
        description="Calls expected today now: so far plus the re-forecast rest of the day.",
    )
    factor: float = Field(
        description="Re-forecast / forecast for the rest of the day (above 1: busier than "
        "forecast).",
    )
    answer_rate: float | None = Field(
        description="Today's availability projected to the end of the day, staffed as planned.",
    )
    avg_wait_seconds: float | None = Field(
        description="Today's average wait projected to the end of the day, staffed as planned.",
    )
    service_level: float | None = Field(
        description="Today's service level projected to the end of the day, staffed as planned.",
    )
    at_risk: list[Literal["answer_rate", "avg_wait", "service_level"]] = Field(
        description="The goals the projection misses (answer_rate, avg_wait, service_level).",
    )


class QueueOut(_Out):
    name: str = Field(description="The queue's name (as in queues.yaml).")
    title: str = Field(description="The queue's title (Danish).")
    waiting: int = Field(description="Callers waiting now.")
    longest_wait_seconds: float = Field(
        description="The wait so far of the caller waiting longest (0: nobody waits).",
    )
    estimated_wait_seconds: float | None = Field(
        description="Expected wait for a caller joining now; null: no agent staffed.",
    )
    agents: AgentCounts = Field(description="The queue's agents by state.")
    today: TodayOut = Field(description="Today's figures of the queue so far (per visit).")
    projection: ProjectionOut | None = Field(
        None,
        description="Today projected to its end; null: no forecast for today (yet).",
    )


class CentreOut(_Out):
    waiting: int = Field(description="Callers waiting now, in every queue.")
    longest_wait_seconds: float = Field(
        description="The longest wait so far of anyone waiting now.",
    )
    agents: dict[str, int] = Field(description="The agents by state (each agent once).")
    today: TodayOut = Field(description="Today's figures of the centre so far (per call).")
    projection: ProjectionOut | None = Field(
        None,
        description="Today projected to its end; null: no forecast for today (yet).",
    )


class KpiConfigOut(_Out):
    short_abandon_seconds: float = Field(
        description="S: an abandon with a shorter wait is a short abandon "
        "(ACD_SHORT_ABANDON_SECONDS).",
    )
    service_level_seconds: float = Field(
        description="T: the service-level threshold, wait at most T (ACD_SERVICE_LEVEL_SECONDS).",
    )


class GoalsOut(_Out):
    """The goals of the agreement in force (ivr_flows/goals.yaml) with their early-warning
    levels; the wallboard colours by them."""

    answer_rate: float = Field(description="Goal for availability (share 0-1, at least).")
    answer_rate_ambition: float = Field(
        description="The higher availability aimed for beyond the goal.",
    )
    answer_rate_warning: float = Field(description="Availability below which the goal is at risk.")
    avg_wait_seconds: float = Field(description="Goal for the average wait (seconds, at most).")
    avg_wait_warning_seconds: float = Field(
        description="Average wait above which the goal is at risk.",
    )
    service_level: float | None = Field(
        description="Goal for the service level (share 0-1), or null when the agreement has none.",
    )
    service_level_warning: float | None = Field(
        description="Service level below which the goal is at risk, or null.",
    )


class _Head(_Out):
    version: int = Field(description="The snapshot's number; it grows by one with each change.")
    as_of: datetime = Field(description="The PBX's time of this snapshot.")
    day: date = Field(description="The local day 'today' means.")
    history_loaded: bool = Field(
        description="False until today's earlier calls are read back after a restart (today's"
        " figures are incomplete until then).",
    )
    pbxs: list[str] = Field(
        description="The PBXs this picture is made of (one with ?pbx=, else every PBX of the "
        "centre whose picture is there).",
    )
    missing_pbxs: list[str] = Field(
        description="The centre's PBXs whose picture is missing (no owner publishes it): the "
        "figures leave their calls out. Empty when the picture is whole.",
    )


class QueuesOut(_Head):
    config: KpiConfigOut = Field(description="The settings the figures are counted with.")
    goals: GoalsOut | None = Field(description="The goals in force, or null without goals.yaml.")
    centre: CentreOut = Field(description="The whole centre now.")
    queues: list[QueueOut] = Field(description="Each queue now.")


class QueueDayOut(_Out):
    name: str = Field(description="The queue's name.")
    title: str = Field(description="The queue's title (Danish).")
    figures: TodayOut = Field(description="The queue's figures of that day (per visit).")


class CentreDayOut(_Out):
    figures: TodayOut = Field(description="The centre's figures of that day (per call).")


class QueuesDayOut(_Out):
    """A past day's figures (``?date=``): the same figures as ``today``, of that day."""

    day: date = Field(description="The local day the figures are of.")
    as_of: datetime = Field(description="The PBX's time they were read at.")
    config: KpiConfigOut = Field(description="The settings the figures are counted with.")
    goals: GoalsOut | None = Field(description="The goals in force, or null without goals.yaml.")
    centre: CentreDayOut = Field(description="The whole centre that day.")
    queues: list[QueueDayOut] = Field(description="Each queue that day.")


class LiveCallOut(_Out):
    pbx: str = Field(description="The PBX the call is on.")
    linkedid: str = Field(
        description="Asterisk's linkedid: name the call by it in `/v1/calls/{call_id}/...` "
        "(registration, transfer).",
    )
    started_at: datetime = Field(description="When the call reached the PBX.")
    caller: str = Field(
        description="The caller's number, masked; the number itself is never shown.",
    )
    keys: str = Field(description="The keys pressed in the menu so far.")
    state: Literal["ivr", "waiting", "talking", "after_queue"] = Field(
        description="ivr (in the menu), waiting (in a queue), talking, or after_queue (left "
        "the queue, still up).",
    )
    queue: str | None = Field(description="The queue, or null in the menu.")
    position: int | None = Field(description="Position in the queue (1 = next), or null.")
    entered_at: datetime | None = Field(description="When the caller joined the queue, or null.")
    waited_seconds: float | None = Field(
        description="The wait so far, or the whole wait once answered.",
    )
    estimated_wait_seconds: float | None = Field(
        description="Expected rest of the wait (position-aware), or null.",
    )
    ringing: list[str] = Field(description="The agents whose phones ring for the call now.")
    agent: str | None = Field(description="The agent talking, or null.")
    answered_at: datetime | None = Field(description="When an agent answered, or null.")
    data_gap: bool = Field(
        description="Picked up after a gap in the PBX's event stream; its times may be incomplete.",
    )


class QueueDetailOut(QueueOut, _Head):
    config: KpiConfigOut = Field(description="The settings the figures are counted with.")
    goals: GoalsOut | None = Field(description="The goals in force, or null without goals.yaml.")
    waiting_calls: list[LiveCallOut] = Field(description="The callers waiting, in line order.")


class AgentCallOut(_Out):
    linkedid: str = Field(
        description="The call's Asterisk linkedid: name the call by it in "
        "`/v1/calls/{call_id}/...` (registration, transfer).",
    )
    queue: str | None = Field(description="The queue the call came from, or null.")
    answered_at: datetime | None = Field(
        description="When the agent answered, or null while ringing.",
    )
    caller: str = Field(description="The caller's number, masked.")


class MembershipOut(_Out):
    queue: str = Field(description="The queue.")
    paused: bool = Field(description="Paused in this queue.")
    reason: str | None = Field(description="The pause reason code, or null.")
    penalty: int = Field(
        description="The agent's penalty in the queue (lower is offered calls first).",
    )


class AgentOut(_Out):
    pbx: str = Field(description="The PBX the agent's phone is on.")
    id: str = Field(description="The agent's id.")
    name: str = Field(description="The agent's name.")
    interface: str = Field(description="The agent's phone on the PBX (e.g. `PJSIP/agent101`).")
    state: AgentStateName = Field(
        description="logged_out, available, ringing, on_call, wrapup, paused or unavailable "
        "(docs/kpis.md, 'Agent states').",
    )
    since: datetime | None = Field(description="When the agent entered the state, or null.")
    reason: str | None = Field(description="The pause reason code when paused, else null.")
    call: AgentCallOut | None = Field(
        description="The call the agent is on or is offered, or null.",
    )
    wrapup_until: datetime | None = Field(description="When the wrap-up ends, or null.")
    queues: list[MembershipOut] = Field(description="The queues the agent is logged in to.")


class AgentsOut(_Head):
    agents: list[AgentOut] = Field(description="Every agent the PBX or the roster knows.")


class LiveCallsOut(_Head):
    calls: list[LiveCallOut] = Field(description="Every call in progress.")


NOT_YET: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "no live picture yet (or the owner is gone)"}
}


def _json(body: bytes | None) -> Response:
    if body is None:
        raise HTTPException(503, "no live picture yet")
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/queues",
    response_model=QueuesOut | QueuesDayOut,
    responses={
        **NOT_YET,
        422: {"model": ErrorOut, "description": "date in the future, or not a date"},
    },
    summary="Every queue now: waiting, longest wait, agents by state, expected wait, today; "
    "or, with ?date=, a past day's figures",
)
async def list_queues(
    request: Request,
    _: Annotated[Principal, live_view("queues.list")],
    store: Live,
    clock: Clock,
    sessions: Sessions,
    ctx: MaybeReports,
    day: Annotated[
        date | None,
        Query(
            alias="date",
            description="a past local day: its figures (QueuesDayOut) instead of the live "
            "picture; today's date gives the live picture",
        ),
    ] = None,
) -> Response:
    """The live picture of every queue and the centre, as the wallboard shows it, from the
    state the PBX reports (refreshed every ACD_LIVE_INTERVAL seconds). With `date=` a past
    local day's figures instead (QueuesDayOut). 503 until the first picture is made after a
    start."""
    if day is None:
        return _json(queries.queues(store))
    if request.query_params.get("pbx") is not None:
        raise Invalid(
            "a past day's figures are the centre's; per PBX: /v1/reports?by=pbx",
            ("query", "pbx"),
        )
    return await _past_day(request, store, clock, sessions, ctx, day)


async def _past_day(
    request: Request,
    store: LiveStore,
    clock: PbxClock,
    sessions: async_sessionmaker[AsyncSession],
    ctx: ReportContext | None,
    day: date,
) -> Response:
    now = clock.now()
    snap = store.snapshot
    today = date.fromisoformat(snap["day"]) if snap is not None else clock.today()
    if day > today:
        raise Invalid(f"date {day} is in the future (today is {today})", ("query", "date"))
    if day == today:
        return _json(queries.queues(store))
    # A report read, not a look at the live picture: audited.
    audit_note(request, target=f"day:{day.isoformat()}")
    mark = request.scope.get(AUDIT_KEY)
    if mark is not None:
        mark.quiet = False
    if ctx is None:
        raise Unavailable("no goals.yaml loaded: past days are not kept")
    async with sessions.begin() as session:
        centre, queues = await day_figures(session, day, ctx, now)
    catalogue = ctx.catalogue
    titles = {q.name: q.title for q in catalogue.queues} if catalogue is not None else {}
    names = [*titles, *sorted(q for q in queues if q not in titles)]
    empty = figures(Tally()).as_dict()
    goals = goals_on(ctx.goals, day)
    body = QueuesDayOut(
        day=day,
        as_of=now,
        config=KpiConfigOut(
            short_abandon_seconds=ctx.config.short_abandon_seconds,
            service_level_seconds=ctx.config.service_level_seconds,
        ),
        goals=GoalsOut(**goals.as_dict()) if goals is not None else None,
        centre=CentreDayOut(figures=TodayOut(**centre)),
        queues=[
            QueueDayOut(
                name=name,
                title=titles.get(name, name),
                figures=TodayOut(**queues.get(name, empty)),
            )
            for name in names
        ],
    )
    return Response(
        body.model_dump_json().encode(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/queues/{name}",
    response_model=QueueDetailOut,
    responses={404: {"model": ErrorOut}, **NOT_YET},
    summary="One queue now, with its waiting callers in line order",
)
async def get_queue(
    name: Annotated[
        str, Path(max_length=64, pattern=r"^[a-z0-9_]+$", description="The queue's name.")
    ],
    _: Annotated[Principal, live_view("queues.get")],
    store: Live,
) -> Response:
    """One queue's live picture plus the callers waiting in it, in line order (masked numbers,
    position, wait so far, expected rest of the wait)."""
    if store.snapshot is None:
        raise HTTPException(503, "no live picture yet")
    body = queries.queue(store, name)
    if body is None:
        raise HTTPException(404, f"no queue {name!r}")
    return _json(body)


@router.get(
    "/agents",
    response_model=AgentsOut,
    responses=NOT_YET,
    summary="Every agent now: state, since when, current call, queues",
)
async def list_agents(_: Annotated[Principal, live_view("agents.list")], store: Live) -> Response:
    """Every agent's state now, with the call it is on (its `linkedid`: name the call by it to
    register or transfer it) and its queues. Unknown query parameters are refused: there are
    no filters here."""
    return _json(queries.agents(store))


@router.get(
    "/calls/live",
    response_model=LiveCallsOut,
    responses=NOT_YET,
    summary="Calls in progress: in the menu, waiting (position, expected wait) or talking",
)
async def list_live_calls(
    _: Annotated[Principal, live_view("calls.live")], store: Live
) -> Response:
    """Every call in progress: in the menu, waiting in a queue (position, expected wait) or
    talking. Each call's `linkedid` names it in `/v1/calls/{call_id}/...` (registration,
    transfer) while it is live and after."""
    return _json(queries.live_calls(store))


def _dropped(sub: Subscriber) -> bool:
    return sub.dropped


def _last_id(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is None:
        return None
    try:
        return int(header.strip())
    except ValueError:
        return None  # not one of ours: start from a snapshot


@router.get(
    "/stream",
    operation_id="streamLive",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: `snapshot` (the whole picture, as the REST "
            "documents show it), then `update` events numbered by `id:` with what changed "
            "(changed queues/agents/calls, removed ones as null). Reconnect with "
            "`Last-Event-ID` to get the missed updates, or a snapshot if they are too old.",
        },
        503: {"model": ErrorOut, "description": "too many stream clients"},
    },
    summary="Live updates (SSE): a snapshot, then numbered updates",
)
async def stream(
    _: Annotated[Principal, live_view("stream.open")],
    store: Live,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=40,
            description="The `id:` of the last update received: the missed ones follow.",
        ),
    ] = None,
    since: Annotated[int | None, Query(ge=0, description="as Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events: first a `snapshot` event (queues, agents, calls as the REST views
    show them), then numbered `update` events with what changed. Reconnect with
    `Last-Event-ID` (or `since`) to receive the updates missed, or a fresh snapshot when
    they are too old."""
    try:
        sub, first = store.subscribe(_last_id(last_event_id, since))
    except TooManyClients as exc:
        raise HTTPException(503, str(exc)) from exc

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            for frame in first:
                yield frame
            while True:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    frame = b": keepalive\n\n"
                if _dropped(sub):
                    break  # too far behind: the client reconnects and catches up by number
                yield frame
        finally:
            store.unsubscribe(sub)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
