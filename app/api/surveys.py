"""``/v1/surveys``: the 1-9 keypad survey after the call (every 5th caller): the answers,
and their averages and response rate per agent and per queue. An agent sees its own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel, ConfigDict, Field

from app.acd.access import Principal
from app.api.auth import access
from app.api.common import ERRORS, Instant
from app.api.deps import Sessions
from app.api.errors import ErrorOut, bad_parameter
from app.services.errors import Forbidden
from app.store import repo, reports

router = APIRouter(prefix="/v1/surveys", tags=["surveys"])

QueueQuery = Annotated[
    str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,40}$", description="Only this queue's calls.")
]
AgentQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Only this agent's calls (an agent: itself only).",
    ),
]
SinceQuery = Annotated[Instant | None, Query(description="started at or after (ISO 8601)")]
UntilQuery = Annotated[Instant | None, Query(description="started before (ISO 8601)")]


class SurveyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The survey's id.")
    call_id: int | None = Field(description="The surveyed call's id, or null.")
    agent: str | None = Field(description="The agent who answered the call, or null.")
    queue: str | None = Field(description="The queue the call was answered in, or null.")
    started_at: datetime = Field(description="When the survey started.")
    friendliness: int | None = Field(
        description="Imødekommenhed: the answer 1-9, or null (not answered).",
    )
    wait: int | None = Field(description="Ventetid: the answer 1-9, or null.")
    overall: int | None = Field(description="Tilfredshed: the answer 1-9, or null.")
    completed: bool = Field(description="All three questions answered.")


class SurveyPage(BaseModel):
    items: list[SurveyOut] = Field(description="The surveys of this page, newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page.",
    )


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
    completed: Annotated[
        bool | None, Query(description="true: only completed surveys; false: only incomplete.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The most items on a page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200, description="`next_cursor` of the page before; absent: the first page."
        ),
    ] = None,
) -> SurveyPage:
    """The after-call survey's answers (1-9 to three questions), newest first, one page at a
    time. An agent sees the answers about its own calls."""
    flt = reports.SurveyFilter(since, until, queue, _agent_filter(who, agent), completed)
    async with sessions() as session:
        try:
            rows, next_cursor = await reports.list_surveys(session, flt, limit, cursor)
        except repo.BadCursor as exc:
            raise bad_parameter("query", "cursor", str(exc)) from exc
    return SurveyPage(items=[SurveyOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/summary",
    operation_id="getSurveySummary",
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
    """Averages of the survey's three questions and the response rate over a period, for the
    total, per agent and per queue."""
    flt = reports.SurveyFilter(since, until, queue, _agent_filter(who, agent))
    async with sessions() as session:
        return await reports.survey_summary(session, flt)
