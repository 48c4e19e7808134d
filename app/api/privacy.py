"""``/v1/privacy``: a citizen's request to see (export) or erase their data, and the purge
of what is past its retention, for the data-protection officer's systems (scope
``privacy:admin``: admins, or an integration granted it). Each request is audited with who
asked and the reason given, and counts; never the number (it travels in the body, which
the audit does not keep). The rules are app/services/privacy.py's (docs/privacy.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from app.acd.access import Principal
from app.api.auth import access, audit_note
from app.api.common import ERRORS
from app.api.deps import AppSettings, Clock, MaybeReports, Messages, Privacy, Retention, Sessions
from app.api.errors import ErrorOut
from app.services import privacy as use

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

Number = Annotated[
    str,
    Field(
        pattern=r"^\+?[0-9 ()-]{8,24}$",
        max_length=24,
        description="The citizen's phone number (any usual Danish form: 20123456, "
        "+45 20 12 34 56, 004520123456); found through its keyed hash, never stored",
    ),
]
Reason = Annotated[
    str,
    Field(
        pattern=r"^[^\x00-\x1f\x7f]+$",
        min_length=3,
        max_length=200,
        description="Why: the request's case number or basis; kept in the audit log",
    ),
]


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caller: Number
    reason: Reason


class SubjectExport(BaseModel):
    """Everything stored about one caller (docs/privacy.md lists each field)."""

    caller: str = Field(description="The number's masked form (as agents see it)")
    calls: list[dict[str, Any]] = Field(description="Their calls, oldest first")
    queue_visits: list[dict[str, Any]] = Field(description="Each stay of their calls in a queue")
    survey_answers: list[dict[str, Any]] = Field(description="Their 1-9 survey answers")
    registrations: list[dict[str, Any]] = Field(
        description="What agents registered about their calls (reason, settled, note)"
    )
    callbacks: list[dict[str, Any]] = Field(
        description="Their call-back and message tasks (the number itself never shown)"
    )
    messages: list[dict[str, Any]] = Field(
        description="Their voice messages (listen through GET /v1/callbacks/{id}/message)"
    )
    events: int = Field(description="Rows of the event log about their calls")
    refused_records: int = Field(
        description="Records of theirs the database refused and set aside (dead letters)"
    )


class ErasureOut(BaseModel):
    counts: dict[str, int] = Field(
        description="Rows (or files) removed or anonymised, per table: calls, queue_visits, "
        "call_events, survey_responses, dispositions, callbacks, dead_letters, "
        "message_files, spill_records"
    )


class PurgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Count what would go; delete nothing")


class PurgeOut(BaseModel):
    dry_run: bool = Field(description="Nothing was deleted: the counts are what would go")
    counts: dict[str, int] = Field(description="Rows (or files) purged, per kind of data")
    report_detail_before: str | None = Field(
        description="Calls, visits, answers and tasks were purged only before this local "
        "day: the first whose report tallies are not final (null: none are stored)"
    )
    held: str | None = Field(None, description="Why report detail was not purged at all")
    seconds: float = Field(description="How long the purge took")


@router.post(
    "/export",
    response_model=SubjectExport,
    operation_id="exportCallerData",
    summary="A citizen's data: every call, visit, survey answer, message and task of a caller",
    responses={**ERRORS, 422: {"model": ErrorOut}},
)
async def export(
    request: Request,
    body: SubjectIn,
    who: Annotated[Principal, Security(access("privacy:admin", "privacy.export"))],
    sessions: Sessions,
    privacy: Privacy,
    messages: Messages,
) -> SubjectExport:
    """A citizen's request to see their data (GDPR art. 15): everything stored about the
    caller whose number is given, found through its keyed hash (the number itself is never
    stored). The number travels in the body so that no log or audit row keeps it; the
    reason is kept in the audit log."""
    out = await use.export(sessions, privacy, body.caller, messages)
    audit_note(
        request,
        reason=body.reason,
        found={k: len(v) if isinstance(v, list) else v for k, v in out.items() if k != "caller"},
    )
    return SubjectExport.model_validate(out)


@router.post(
    "/erase",
    response_model=ErasureOut,
    operation_id="eraseCallerData",
    summary="Erase a citizen's data: removed or irreversibly anonymised, files included",
    responses={**ERRORS, 422: {"model": ErrorOut}},
)
async def erase(
    request: Request,
    body: SubjectIn,
    who: Annotated[Principal, Security(access("privacy:admin", "privacy.erase"))],
    sessions: Sessions,
    privacy: Privacy,
    messages: Messages,
    clock: Clock,
    settings: AppSettings,
) -> ErasureOut:
    """A citizen's request to be forgotten (GDPR art. 17): the caller's survey answers,
    registration and task notes, sealed numbers, raw PBX frames, refused records and voice
    messages are deleted; their calls, visits, events and tasks irreversibly anonymised so
    the reports still add up (docs/privacy.md). The answer counts what was done per table.
    Cannot be undone."""
    counts = await use.erase(
        sessions,
        privacy,
        body.caller,
        now=clock.now(),
        files=messages,
        spill_dir=settings.spill_dir,
    )
    audit_note(request, reason=body.reason, counts=counts)
    return ErasureOut(counts=counts)


@router.post(
    "/purge",
    response_model=PurgeOut,
    operation_id="purgeExpiredData",
    summary="Purge now what is past its retention (retention.yaml), or count it (dry run)",
    responses={**ERRORS},
)
async def purge(
    request: Request,
    body: PurgeIn,
    who: Annotated[Principal, Security(access("privacy:admin", "privacy.purge"))],
    sessions: Sessions,
    retention: Retention,
    messages: Messages,
    clock: Clock,
    settings: AppSettings,
    ctx: MaybeReports,
) -> PurgeOut:
    """Runs the retention purge now (it also runs on its own schedule): deletes or
    anonymises what is older than retention.yaml keeps it, in bounded batches. With
    `dry_run` it only counts what would go. Report detail is kept until the days' report
    tallies are final (`report_detail_before`)."""
    result = await use.purge(
        sessions,
        retention=retention,
        now=clock.now(),
        tz=clock.tz,
        files=messages,
        spill_dir=settings.spill_dir,
        ctx=ctx,
        dry_run=body.dry_run,
    )
    audit_note(request, **result.as_dict())
    return PurgeOut.model_validate(result.as_dict())
