"""``GET /v1/reports/archive``: the weekly, monthly and quarterly reports the service made
and kept when each period ended (app/reports/archive.py), listed and served as stored:
the same bytes every time they are fetched. Every read is audited, like a report's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, Security
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.acd.access import Principal
from app.api.auth import access, audit_note
from app.api.common import ERRORS
from app.api.deps import Sessions
from app.api.errors import ErrorOut
from app.reports.model import By
from app.services.errors import NotFound
from app.store.models import StoredReport

router = APIRouter(prefix="/v1/reports/archive", tags=["reports"])

PERIOD = r"^\d{4}-(W\d{2}|\d{2}|Q[1-4])$"


class StoredReportOut(BaseModel):
    period: str = Field(
        description="The period: 2014-W45 (ISO week), 2014-11 (month) or 2014-Q4 (quarter).",
    )
    kind: Literal["week", "month", "quarter"] = Field(description="week, month or quarter.")
    by: str = Field(description="How the report is cut (queue, department, agent, ...).")
    format: str = Field(description="The document's format: pdf, xlsx, html or csv.")
    first: date = Field(description="The period's first day (local).")
    last: date = Field(description="The period's last day (local, inclusive).")
    media_type: str = Field(description="The document's media type.")
    size: int = Field(description="The document's size in bytes.")
    sha256: str = Field(
        description="The document's SHA-256 (hex): the same data gives the same bytes.",
    )
    made_at: datetime = Field(description="When the document was made.")
    href: str = Field(description="Where to fetch the document.")


def _href(row: StoredReport | StoredReportOut) -> str:
    return f"/v1/reports/archive/{row.period}/{row.format}?by={row.by}"


@router.get(
    "",
    operation_id="listArchivedReports",
    summary="The reports made and kept when their period ended (newest first)",
    response_model=list[StoredReportOut],
    responses=ERRORS,
)
async def list_archive(
    request: Request,
    sessions: Sessions,
    who: Annotated[Principal, Security(access("reports:read", "reports.archive.list"))],
    kind: Annotated[
        Literal["week", "month", "quarter"] | None,
        Query(description="Only weekly, monthly or quarterly reports."),
    ] = None,
    since: Annotated[date | None, Query(description="periods ending on or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The most documents listed.")] = 200,
) -> list[StoredReportOut]:
    """The weekly, monthly and quarterly report documents made and kept when their period
    ended, newest first, each with where to fetch it and its SHA-256."""
    audit_note(request, kind=kind)
    query = select(
        StoredReport.period, StoredReport.kind, StoredReport.by, StoredReport.format,
        StoredReport.first, StoredReport.last, StoredReport.media_type, StoredReport.size,
        StoredReport.sha256, StoredReport.made_at,
    )  # fmt: skip
    if kind is not None:
        query = query.where(StoredReport.kind == kind)
    if since is not None:
        query = query.where(StoredReport.last >= since)
    query = query.order_by(
        StoredReport.last.desc(), StoredReport.first.desc(), StoredReport.by, StoredReport.format
    ).limit(limit)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    out = []
    for r in rows:
        item = StoredReportOut.model_validate({**r._mapping, "href": ""})
        item.href = _href(item)
        out.append(item)
    return out


@router.get(
    "/{period}/{format}",
    operation_id="getArchivedReport",
    summary="One kept report document, as it was made",
    responses={
        **ERRORS,
        200: {
            "description": "The document",
            "content": {
                "application/pdf": {},
                "text/html": {},
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        },
        404: {"model": ErrorOut, "description": "not made (yet)"},
    },
)
async def get_archived(
    request: Request,
    sessions: Sessions,
    who: Annotated[Principal, Security(access("reports:read", "reports.archive.read"))],
    period: Annotated[str, Path(pattern=PERIOD, description="2014-W45, 2014-11 or 2014-Q4")],
    format: Annotated[str, Path(pattern=r"^[a-z]{2,8}$", description="pdf, xlsx, html, csv")],
    by: Annotated[
        By, Query(description="The report's cut (anything else is a 422, never a query).")
    ] = "department",
) -> Response:
    """One kept report document as it was made at its period's end (the same bytes every time)."""
    audit_note(request, target=f"report:{period}", by=by, format=format)
    async with sessions() as session:
        row = await session.scalar(
            select(StoredReport).where(
                StoredReport.period == period, StoredReport.by == by, StoredReport.format == format
            )
        )
    if row is None:
        raise NotFound(f"no {format} report of {period} by {by} is kept")
    return Response(
        row.content,
        media_type=row.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="rapport-{period}-{by}.{format}"',
            "ETag": f'"{row.sha256}"',
            "Cache-Control": "private, no-cache",
        },
    )
