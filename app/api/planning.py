"""Planning: ``GET /v1/forecast`` (calls and handle time per queue and half hour of coming
days, with the forecast's measured accuracy) and ``GET /v1/staffing`` (Erlang C and A
agents per half hour to the goals; JSON, CSV or XLSX). Thin: ``app.planning`` does the
work; bad input is a 4xx saying what is wrong."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, Security
from sqlalchemy.exc import SQLAlchemyError

from app.acd.access import Principal
from app.acd.staffing import StaffingError
from app.api.auth import access
from app.api.common import ERRORS, QueueName
from app.api.deps import Rt
from app.api.errors import ErrorOut
from app.jsoncodec import dumps_bytes
from app.planning import MAX_DAYS, Planner, PlanningError, PlanOptions, plan_csv, plan_xlsx
from app.services.errors import Conflict, DomainError, Invalid, NotFound, Unavailable

router = APIRouter(prefix="/v1", tags=["planning"], responses=ERRORS)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NO_PLAN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such queue"},
    409: {"model": ErrorOut, "description": "nothing in the log to forecast from yet"},
    422: {"model": ErrorOut, "description": "a bad date, number of days or option"},
    503: {"model": ErrorOut, "description": "the log cannot be read now"},
}

Day = Annotated[date, Query(alias="date", description="first day (YYYY-MM-DD)")]
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="days from it (5: a working week)")]


def _planner(rt: Rt) -> Planner:
    if rt.planner is None:
        raise Unavailable("planning is not part of this service")
    return rt.planner


PlannerDep = Annotated[Planner, Depends(_planner)]


async def _answer(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The document, or the 4xx/503 that says why not."""
    try:
        return await work
    except (PlanningError, StaffingError) as exc:
        raise _refuse(exc) from exc
    except SQLAlchemyError as exc:
        raise Unavailable(f"the log cannot be read now ({type(exc).__name__})") from exc


def _refuse(exc: Exception) -> DomainError:
    text = str(exc)
    if text.startswith("no queue"):
        return NotFound(text)
    if "no calls" in text or "nothing to forecast" in text:
        return Conflict(text)
    return Invalid(text)


@router.get(
    "/forecast",
    responses=NO_PLAN,
    summary="Forecast calls and handle time per queue and half hour, with its accuracy",
)
async def get_forecast(
    _: Annotated[Principal, Security(access("planning:read", "forecast.get"))],
    planner: PlannerDep,
    day: Day,
    days: Days = 1,
    queue: Annotated[QueueName | None, Query(description="one queue only")] = None,
) -> dict[str, Any]:
    """Forecast calls and handle time per queue and half hour for the days asked, from the
    calls of the weeks before, with how accurate the method was on past days."""
    return await _answer(planner.forecast_doc(day, days, queue))


@router.get(
    "/staffing",
    responses={
        **NO_PLAN,
        200: {
            "content": {"application/json": {}, "text/csv": {}, XLSX: {}},
            "description": "The plan: per day and group (a queue, or queues sharing agents) "
            "the agents per half hour under Erlang C and Erlang A, rostered with shrinkage, "
            "agent-hours and the figures expected; as JSON, CSV (one row per half hour) or "
            "an XLSX workbook",
        },
    },
    summary="Agents per queue and half hour to meet the goals (Erlang C and A)",
)
async def get_staffing(
    _: Annotated[Principal, Security(access("planning:read", "staffing.get"))],
    planner: PlannerDep,
    day: Day,
    days: Days = 1,
    format: Annotated[
        Literal["json", "csv", "xlsx"], Query(description="json, or a csv or xlsx sheet.")
    ] = "json",
    shrinkage: Annotated[float | None, Query(ge=0, lt=1, description="default: measured")] = None,
    max_occupancy: Annotated[
        float | None,
        Query(
            gt=0,
            le=1,
            description="A cap on occupancy (share of time busy with calls); default: none.",
        ),
    ] = None,
    patience: Annotated[
        float | None, Query(gt=0, le=86400, description="seconds; default: measured")
    ] = None,
    pool: Annotated[
        list[Annotated[str, Query(max_length=400, pattern=r"^[a-z][a-z0-9_]{0,40}=[a-z0-9_,]+$")]]
        | None,
        Query(description="queues sharing agents: NAME=QUEUE1,QUEUE2 (repeatable)"),
    ] = None,
) -> Response:
    """Agents needed per queue (or pool of queues sharing agents) and half hour to meet the
    goals (Erlang C and Erlang A), as JSON or a csv/xlsx sheet."""
    groups: dict[str, list[str]] = {}
    for spec in pool or []:
        name, _sep, members = spec.partition("=")
        unknown = [m for m in members.split(",") if m and m not in planner.queues]
        if unknown:
            raise NotFound(f"no queue {unknown[0]!r}")
        groups[name] = [m for m in members.split(",") if m]
    options = PlanOptions(
        shrinkage=shrinkage, max_occupancy=max_occupancy, patience=patience, groups=groups
    )
    doc = await _answer(planner.staffing_doc(day, days, options))
    name = f"bemanding-{day.isoformat()}"
    if format == "csv":
        return Response(
            plan_csv(doc),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "xlsx":
        return Response(
            plan_xlsx(doc),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(dumps_bytes(doc), media_type="application/json")
