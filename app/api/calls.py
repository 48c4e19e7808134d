"""``/v1/calls``: the call record, for reports and integrations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from app.store import repo

router = APIRouter(prefix="/v1/calls", tags=["calls"])

OutcomeName = Literal[
    "answered",
    "abandoned",
    "ivr_hangup",
    "closed",
    "forwarded",
    "message",
    "callback",
    "failed",
]


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
    hangup_cause: int | None
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


class CallDetail(CallOut):
    visits: list[VisitOut]
    events: list[EventOut]


class ErrorOut(BaseModel):
    detail: str


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


@router.get(
    "",
    response_model=CallPage,
    summary="Calls, newest first, with filters and cursor pagination",
    responses={400: {"model": ErrorOut}},
)
async def list_calls(
    request: Request,
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    outcome: OutcomeName | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CallPage:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(400, f"{name} needs a time zone (e.g. 2014-11-04T08:00:00+01:00)")
    flt = repo.CallFilter(since=since, until=until, queue=queue, outcome=outcome, agent=agent)
    async with request.app.state.rt.sessions() as session:
        try:
            rows, next_cursor = await repo.list_calls(session, flt, limit, cursor)
        except repo.BadCursor as exc:
            raise HTTPException(400, str(exc)) from exc
    return CallPage(items=[CallOut.of(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{call_id}",
    response_model=CallDetail,
    summary="One call with its queue visits and its events in order",
    responses={404: {"model": ErrorOut}},
)
async def get_call(request: Request, call_id: Annotated[int, Path(ge=1, le=2**62)]) -> CallDetail:
    async with request.app.state.rt.sessions() as session:
        found = await repo.get_call(session, call_id)
    if found is None:
        raise HTTPException(404, f"no call with id {call_id}")
    call, visits, events = found
    return CallDetail.model_validate(
        {
            **CallOut.of(call).model_dump(),
            "visits": [VisitOut.model_validate(v) for v in visits],
            "events": [EventOut.model_validate(e) for e in events],
        }
    )
