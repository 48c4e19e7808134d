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
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.access import Principal
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
    logged_in: int
    available: int
    ringing: int
    on_call: int
    wrapup: int
    paused: int
    unavailable: int
    paused_reasons: dict[str, int]


class ProjectionOut(_Out):
    """Today projected to its end (docs/planning.md): the morning forecast, the calls
    expected now (so far + the re-forecast rest), and the day's figures if the rest of the
    day is staffed as planned (now: as staffed); ``at_risk`` names the goals it misses."""

    forecast_calls: float
    expected_calls: float
    factor: float
    answer_rate: float | None
    avg_wait_seconds: float | None
    service_level: float | None
    at_risk: list[Literal["answer_rate", "avg_wait", "service_level"]]


class QueueOut(_Out):
    name: str
    title: str
    waiting: int
    longest_wait_seconds: float
    estimated_wait_seconds: float | None  # for a caller joining now; None = no agent staffed
    agents: AgentCounts
    today: TodayOut
    projection: ProjectionOut | None = None  # None: no forecast for today (yet)


class CentreOut(_Out):
    waiting: int
    longest_wait_seconds: float
    agents: dict[str, int]
    today: TodayOut
    projection: ProjectionOut | None = None


class KpiConfigOut(_Out):
    short_abandon_seconds: float
    service_level_seconds: float


class GoalsOut(_Out):
    """The goals of the agreement in force (ivr_flows/goals.yaml) with their early-warning
    levels; the wallboard colours by them."""

    answer_rate: float
    answer_rate_ambition: float
    answer_rate_warning: float
    avg_wait_seconds: float
    avg_wait_warning_seconds: float
    service_level: float | None
    service_level_warning: float | None


class _Head(_Out):
    version: int
    as_of: datetime  # the PBX's time of this snapshot
    day: date  # the local day "today" means
    history_loaded: bool  # False until today's earlier visits are read back after a restart


class QueuesOut(_Head):
    config: KpiConfigOut
    goals: GoalsOut | None  # None: no goals.yaml
    centre: CentreOut
    queues: list[QueueOut]


class QueueDayOut(_Out):
    name: str
    title: str
    figures: TodayOut


class CentreDayOut(_Out):
    figures: TodayOut


class QueuesDayOut(_Out):
    """A past day's figures (``?date=``): the same figures as ``today``, of that day."""

    day: date
    as_of: datetime  # the PBX's time they were read at
    config: KpiConfigOut
    goals: GoalsOut | None
    centre: CentreDayOut
    queues: list[QueueDayOut]


class LiveCallOut(_Out):
    linkedid: str
    started_at: datetime
    caller: str  # masked
    keys: str
    state: Literal["ivr", "waiting", "talking", "after_queue"]
    queue: str | None
    position: int | None
    entered_at: datetime | None
    waited_seconds: float | None
    estimated_wait_seconds: float | None  # expected rest of the wait, position-aware
    ringing: list[str]
    agent: str | None
    answered_at: datetime | None
    data_gap: bool


class QueueDetailOut(QueueOut, _Head):
    config: KpiConfigOut
    goals: GoalsOut | None
    waiting_calls: list[LiveCallOut]


class AgentCallOut(_Out):
    linkedid: str
    queue: str | None
    answered_at: datetime | None
    caller: str


class MembershipOut(_Out):
    queue: str
    paused: bool
    reason: str | None
    penalty: int


class AgentOut(_Out):
    id: str
    name: str
    interface: str
    state: AgentStateName
    since: datetime | None
    reason: str | None
    call: AgentCallOut | None
    wrapup_until: datetime | None
    queues: list[MembershipOut]


class AgentsOut(_Head):
    agents: list[AgentOut]


class LiveCallsOut(_Head):
    calls: list[LiveCallOut]


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
    if day is None:
        return _json(queries.queues(store))
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
    name: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9_]+$")],
    _: Annotated[Principal, live_view("queues.get")],
    store: Live,
) -> Response:
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
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    since: Annotated[int | None, Query(ge=0, description="as Last-Event-ID")] = None,
) -> StreamingResponse:
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
