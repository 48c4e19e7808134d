"""``GET /v1/reports``: the centre's figures against its service goals over a period, cut
by centre, department, queue, agent, day, week, month, quarter, weekday, half-hour or PBX, as
JSON, CSV or the documents (HTML, PDF, XLSX) where installed. Every read is audited.

Thin: the period is parsed here, the report built by ``app.reports.build`` and rendered by
``app.reports.render``.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, Security

from app.acd.access import Principal
from app.api.auth import access, audit_note
from app.api.common import ERRORS
from app.api.deps import Clock, Reports, Sessions
from app.api.errors import ErrorOut
from app.reports import render
from app.reports.build import build_report
from app.reports.model import By, Report
from app.reports.periods import Period, PeriodError, parse_period, span
from app.services.errors import Invalid

router = APIRouter(prefix="/v1", tags=["reports"])

Format = render.Format


def report_period(first: date | None, last: date | None, period: str | None) -> Period:
    """The period asked for: ``period`` or both ``from`` and ``to``; else a clear 422."""
    try:
        if period is not None:
            if first is not None or last is not None:
                raise PeriodError("give either period or from and to, not both")
            return parse_period(period)
        if first is None or last is None:
            raise PeriodError(
                "give from and to (local dates, inclusive) or period (2014-W45, 2014-11, "
                "2014-Q4, 2014)"
            )
        return span(first, last)
    except PeriodError as exc:
        where = "period" if period is not None else ("from" if first is None else "to")
        raise Invalid(str(exc), ("query", where)) from None


def filename(report: Report, fmt: str) -> str:
    what = report.period or f"{report.from_.isoformat()}_{report.to.isoformat()}"
    return f"rapport-{what}-{report.by}.{render.extension(fmt)}"


@router.get(
    "/reports",
    summary="Figures against the service goals over a period, by centre, department, queue, "
    "agent, day, week, month, quarter, weekday, half-hour or PBX",
    response_model=Report,
    responses={
        **ERRORS,
        200: {
            "description": "The report: JSON (the model below), or the document asked for",
            "content": {
                "text/csv": {},
                "text/html": {},
                "application/pdf": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        },
        422: {"model": ErrorOut, "description": "bad period, cut or format"},
        501: {"model": ErrorOut, "description": "the format is not installed here"},
        503: {"model": ErrorOut, "description": "no goals.yaml"},
    },
)
async def get_report(
    request: Request,
    who: Annotated[Principal, Security(access("reports:read", "reports.read"))],
    sessions: Sessions,
    clock: Clock,
    ctx: Reports,
    first: Annotated[date | None, Query(alias="from", description="first local day")] = None,
    last: Annotated[
        date | None, Query(alias="to", description="last local day (inclusive)")
    ] = None,
    period: Annotated[
        str | None,
        Query(max_length=10, description="instead of from/to: 2014-W45, 2014-11, 2014-Q4, 2014"),
    ] = None,
    by: Annotated[By, Query(description="How the groups are cut.")] = "centre",
    format: Annotated[
        Format, Query(description="json (the Report schema), csv, xlsx, html or pdf.")
    ] = "json",
) -> Response:
    """Figures against the service goals over a period (`from`/`to` or `period`), cut by
    centre, department, queue, agent, day, week, month, quarter, weekday, half-hour or PBX
    (`pbx`: one group per PBX, the centre's figures of its calls); as JSON (the Report
    schema) or as a document (csv, xlsx, html, pdf). docs/kpis.md defines every figure."""
    wanted = report_period(first, last, period)
    audit_note(
        request,
        target=f"report:{wanted.label or f'{wanted.first}..{wanted.last}'}",
        by=by,
        format=format,
    )
    if format not in render.available():
        raise HTTPException(501, f"format {format!r} is not installed in this service")

    def may_see(agent_id: str, team: str | None) -> bool:
        return who.reaches(agent_id, team)

    async with sessions.begin() as session:
        report = await build_report(
            session, period=wanted, by=by, ctx=ctx, now=clock.now(), agents=may_see
        )
    # In a worker thread: a quarter's PDF is about a second of CPU, which the event loop
    # (and the AMI reader on it) must not wait for.
    body, media_type = await asyncio.to_thread(render.render, report, format)
    headers = {"Cache-Control": "no-store"}
    if format != "json":
        headers["Content-Disposition"] = f'attachment; filename="{filename(report, format)}"'
    return Response(body, media_type=media_type, headers=headers)
