"""``/v1/surveys``: the 1-9 keypad survey after the call (every 5th caller): the answers,
and their averages and response rate per agent and per queue. An agent sees its own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel, ConfigDict

from app.acd.access import Principal
from app.api.auth import access
from app.api.common import ERRORS, Instant
from app.api.deps import Sessions
from app.api.errors import ErrorOut, bad_parameter
from app.services.errors import Forbidden
from app.store import repo, reports

router = APIRouter(prefix="/v1/surveys", tags=["surveys"])

QueueQuery = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
AgentQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
SinceQuery = Annotated[Instant | None, Query(description="started at or after (ISO 8601)")]
UntilQuery = Annotated[Instant | None, Query(description="started before (ISO 8601)")]


class SurveyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_id: int | None
    agent: str | None
    queue: str | None
    started_at: datetime
    friendliness: int | None  # imødekommenhed, 1-9
    wait: int | None  # ventetid, 1-9
    overall: int | None  # tilfredshed, 1-9
    completed: bool


class SurveyPage(BaseModel):
    items: list[SurveyOut]
    next_cursor: str | None


def _agent_filter(who: Principal, agent: str | None) -> str | None:
    if who.own_agent is None:
        return agent
    if agent is not None and agent != who.own_agent:
        raise Forbidden("an agent sees its own survey answers only")
    return who.own_agent


@router.get(
    "",
    response_model=SurveyPage,
    summary="Survey answers, newest first, with filters",
    responses={**ERRORS, 400: {"model": ErrorOut}},
)
async def list_surveys(
    sessions: Sessions,
    who: Annotated[Principal, Security(access("surveys:read", "surveys.list"))],
    since: SinceQuery = None,
    until: UntilQuery = None,
    queue: QueueQuery = None,
    agent: AgentQuery = None,
    completed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SurveyPage:
    flt = reports.SurveyFilter(since, until, queue, _agent_filter(who, agent), completed)
    async with sessions() as session:
        try:
            rows, next_cursor = await reports.list_surveys(session, flt, limit, cursor)
        except repo.BadCursor as exc:
            raise bad_parameter("query", "cursor", str(exc)) from exc
    return SurveyPage(items=[SurveyOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/summary",
    response_model=reports.SurveySummary,
    summary="Averages of the three questions and the response rate, per agent and per queue",
    responses=ERRORS,
)
async def summary(
    sessions: Sessions,
    who: Annotated[Principal, Security(access("surveys:read", "surveys.summary"))],
    since: SinceQuery = None,
    until: UntilQuery = None,
    queue: QueueQuery = None,
    agent: AgentQuery = None,
) -> reports.SurveySummary:
    flt = reports.SurveyFilter(since, until, queue, _agent_filter(who, agent))
    async with sessions() as session:
        return await reports.survey_summary(session, flt)
