"""Personal data over time, in the database: purge in bounded batches, and a citizen's
data found, exported and erased through the keyed hash of their number.

Plain functions taking their sessions; the use cases (app/services/privacy.py) decide the
cut-offs, the files and the audit. Every purge step works in batches of ``batch`` rows,
each its own short transaction, with a pause between, so the event writer and the API
are never held behind a long delete; a batch is chosen by a time index and walked by id
so that a step always ends.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from app.acd.kpi import day_bounds
from app.store.callbacks import LIVE
from app.store.models import (
    AgentStateChange,
    AuditLog,
    Base,
    Call,
    Callback,
    CallEvent,
    DeadLetter,
    Disposition,
    QueueVisit,
    ReportDay,
    StoredReport,
    SurveyResponse,
)

Sessions = async_sessionmaker[AsyncSession]

ERASED = "slettet"  # the display form of an erased caller (agents read it: Danish)


# --------------------------------------------------------------------------------------
# Purge
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One kind of data to purge: the rows of ``model`` matching ``where`` (walked by
    ``id``), deleted, or updated with ``values`` where a column alone goes."""

    name: str
    model: type[Base]
    where: ColumnElement[bool]
    values: dict[str, Any] | None = None  # None: delete the rows
    # Before a batch is deleted or updated: what else goes with it (its ids given).
    before: Callable[[AsyncSession, list[int]], Awaitable[int]] | None = None


@dataclass
class Batching:
    batch: int = 2000
    pause: float = 0.02  # seconds between two batches: the writer's and the API's turn


async def count(sessions: Sessions, step: Step) -> int:
    async with sessions() as session:
        n = await session.scalar(select(func.count()).select_from(step.model).where(step.where))
    return int(n or 0)


async def run_step(sessions: Sessions, step: Step, batching: Batching) -> tuple[int, int]:
    """Purge ``step`` in batches; (rows, rows of ``before``)."""
    ident: InstrumentedAttribute[int] = step.model.id  # type: ignore[attr-defined]
    after = 0
    done = extra = 0
    while True:
        async with sessions.begin() as session:
            ids = list(
                (
                    await session.execute(
                        select(ident)
                        .where(step.where, ident > after)
                        .order_by(ident)
                        .limit(batching.batch)
                    )
                ).scalars()
            )
            if not ids:
                break
            if step.before is not None:
                extra += await step.before(session, ids)
            if step.values is None:
                await session.execute(delete(step.model).where(ident.in_(ids)))
            else:
                await session.execute(
                    update(step.model).where(ident.in_(ids)).values(**step.values)
                )
        done += len(ids)
        after = ids[-1]
        if len(ids) < batching.batch:
            break
        await asyncio.sleep(batching.pause)
    return done, extra


async def _with_calls(session: AsyncSession, ids: list[int]) -> int:
    """What goes with a batch of calls: their queue visits and registrations; their
    survey answers lose the link (the answers have their own period)."""
    keys = (await session.execute(select(Call.pbx, Call.linkedid).where(Call.id.in_(ids)))).all()
    gone = 0
    for pbx, linkedids in _by_pbx(keys).items():
        result = await session.execute(
            delete(QueueVisit).where(QueueVisit.pbx == pbx, QueueVisit.linkedid.in_(linkedids))
        )
        gone += int(getattr(result, "rowcount", 0) or 0)
    await session.execute(delete(Disposition).where(Disposition.call_id.in_(ids)))
    await session.execute(
        update(SurveyResponse).where(SurveyResponse.call_id.in_(ids)).values(call_id=None)
    )
    return gone


def _by_pbx(keys: Iterable[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pbx, linkedid in keys:
        out.setdefault(pbx, []).append(linkedid)
    return out


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these go (UTC). ``report`` is the start of the first day whose
    report tallies are not final: detail the reports read is kept from it on."""

    raw_frames: datetime
    events: datetime
    calls: datetime
    surveys: datetime
    callbacks: datetime
    sealed_numbers: datetime
    voice_messages: datetime
    agent_states: datetime
    audit_log: datetime
    dead_letters: datetime
    stored_reports: datetime
    report: datetime | None  # None: no final tallies, report detail is not purged


def purge_steps(
    cut: Cutoffs,
    delete_files: Callable[[AsyncSession, list[int]], Awaitable[int]],
) -> list[Step]:
    """What the purge does, in order. ``delete_files`` deletes the voice messages of a
    batch of tasks (ids given) and answers how many files went."""
    steps = [
        Step(
            "raw_frames",
            CallEvent,
            and_(CallEvent.at < cut.raw_frames, CallEvent.raw.is_not(None)),
            {"raw": null()},
        ),
        Step(
            "voice_messages",
            Callback,
            and_(
                Callback.recording.is_not(None),
                Callback.status.not_in(LIVE),
                Callback.completed_at < cut.voice_messages,
            ),
            {"recording": None},
            before=delete_files,
        ),
        Step(
            "sealed_numbers",
            Callback,
            and_(
                Callback.number_sealed.is_not(None),
                Callback.status.not_in(LIVE),
                Callback.completed_at < cut.sealed_numbers,
            ),
            {"number_sealed": None},
        ),
        Step("agent_states", AgentStateChange, AgentStateChange.at < cut.agent_states),
        Step("audit_log", AuditLog, AuditLog.at < cut.audit_log),
        Step("dead_letters", DeadLetter, DeadLetter.at < cut.dead_letters),
        Step("stored_reports", StoredReport, StoredReport.made_at < cut.stored_reports),
    ]
    if cut.report is None:
        return steps
    final = cut.report
    return [
        *steps,
        Step("events", CallEvent, CallEvent.at < min(cut.events, final)),
        Step(
            "surveys",
            SurveyResponse,
            SurveyResponse.started_at < min(cut.surveys, final),
        ),
        Step(
            "calls",
            Call,
            and_(Call.started_at < min(cut.calls, final), Call.ended_at.is_not(None)),
            before=_with_calls,
        ),
        Step(
            "callbacks",
            Callback,
            and_(
                Callback.status.not_in(LIVE),
                Callback.completed_at < cut.callbacks,
                Callback.requested_at < final,
            ),
            before=delete_files,
        ),
    ]


async def first_uncounted(
    session: AsyncSession, first: date, before: date, tz: ZoneInfo
) -> date | None:
    """The first day in [first, before) that has calls but no stored report tallies: the
    reports would count it from its detail, so its detail must stay."""
    stored = set(
        (
            await session.execute(
                select(ReportDay.day).where(ReportDay.day >= first, ReportDay.day < before)
            )
        ).scalars()
    )
    day = first
    while day < before:
        if day not in stored:
            start, end = day_bounds(day, tz)
            hit = await session.scalar(
                select(Call.id).where(Call.started_at >= start, Call.started_at < end).limit(1)
            )
            if hit is not None:
                return day
        day += timedelta(days=1)
    return None


async def oldest_call(session: AsyncSession) -> datetime | None:
    value: datetime | None = await session.scalar(select(func.min(Call.started_at)))
    return value


# --------------------------------------------------------------------------------------
# A citizen's data
# --------------------------------------------------------------------------------------


@dataclass
class Found:
    """Everything of one caller, found through their hashes."""

    calls: list[Call] = field(default_factory=list)
    visits: list[QueueVisit] = field(default_factory=list)
    surveys: list[SurveyResponse] = field(default_factory=list)
    registrations: list[Disposition] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    events: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(c.pbx, c.linkedid) for c in self.calls]

    @property
    def displays(self) -> set[str]:
        return {c.caller_display for c in self.calls} | {t.caller_display for t in self.callbacks}


def _keyed(
    pbx_col: InstrumentedAttribute[Any],
    lid_col: InstrumentedAttribute[Any],
    keys: Sequence[tuple[str, str]],
) -> ColumnElement[bool]:
    parts = [
        and_(pbx_col == pbx, lid_col.in_(linkedids)) for pbx, linkedids in _by_pbx(keys).items()
    ]
    return or_(*parts) if parts else false()


async def find(session: AsyncSession, hashes: Sequence[str], *, lock: bool = False) -> Found:
    """The caller's calls (and the call-back calls made to them), queue visits, survey
    answers, registrations, tasks, event count and refused records."""
    out = Found()
    if not hashes:
        return out
    stmt = select(Callback).where(Callback.caller_hash.in_(hashes)).order_by(Callback.id)
    out.callbacks = list(
        (await session.execute(stmt.with_for_update() if lock else stmt)).scalars()
    )
    returned = [t.call_linkedid for t in out.callbacks if t.call_linkedid]
    conds = [Call.caller_hash.in_(hashes)]
    if returned:
        conds.append(Call.linkedid.in_(returned))
    stmt2 = select(Call).where(or_(*conds)).order_by(Call.started_at, Call.id)
    out.calls = list((await session.execute(stmt2.with_for_update() if lock else stmt2)).scalars())
    keys = out.keys
    ids = [c.id for c in out.calls]
    if keys:
        out.visits = list(
            (
                await session.execute(
                    select(QueueVisit)
                    .where(_keyed(QueueVisit.pbx, QueueVisit.linkedid, keys))
                    .order_by(QueueVisit.entered_at, QueueVisit.id)
                )
            ).scalars()
        )
        out.surveys = list(
            (
                await session.execute(
                    select(SurveyResponse)
                    .where(
                        or_(
                            _keyed(SurveyResponse.pbx, SurveyResponse.linkedid, keys),
                            SurveyResponse.call_id.in_(ids),
                        )
                    )
                    .order_by(SurveyResponse.id)
                )
            ).scalars()
        )
        out.registrations = list(
            (
                await session.execute(
                    select(Disposition).where(Disposition.call_id.in_(ids)).order_by(Disposition.id)
                )
            ).scalars()
        )
        out.events = int(
            await session.scalar(
                select(func.count())
                .select_from(CallEvent)
                .where(_keyed(CallEvent.pbx, CallEvent.linkedid, keys))
            )
            or 0
        )
    needles = [*hashes, *(lid for _, lid in keys)]
    out.dead_letters = list(
        (
            await session.execute(
                select(DeadLetter).where(
                    or_(*(cast(DeadLetter.record, Text).contains(n) for n in needles))
                )
            )
        ).scalars()
    )
    return out


def scrub_value(
    value: Any,
    hashes: Sequence[str],
    displays: set[str],
    pseudonym: str,
    renames: dict[str, str] | None = None,
) -> Any:
    """A logged value with the caller taken out: hashes replaced by ``pseudonym``, the
    masked number by ``ERASED``, the call ids by their new ones (``renames``), a
    message's path and a sealed number dropped."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in ("recording", "number_sealed"):
                out[k] = None
            else:
                out[k] = scrub_value(v, hashes, displays, pseudonym, renames)
        return out
    if isinstance(value, list):
        return [scrub_value(v, hashes, displays, pseudonym, renames) for v in value]
    if isinstance(value, str):
        if value in displays:
            return ERASED
        for h in hashes:
            if h in value:
                value = value.replace(h, pseudonym)
        return _renamed(value, renames)
    return value


def _renamed(value: str, renames: dict[str, str] | None) -> str:
    for old, new in (renames or {}).items():
        if old in value:
            value = value.replace(old, new)
    return value


def new_call_id() -> str:
    """A random id for an erased call: no longer than an Asterisk linkedid (a spill
    file's record is rewritten in its own length), never one (those are digits)."""
    return "e" + secrets.token_hex(6)


@dataclass
class Erased:
    counts: dict[str, int]
    recordings: list[str]  # the tasks' voice messages, for their files to be deleted
    pseudonym: str  # what the caller's hash became
    displays: set[str]  # the masked numbers the caller had
    renamed: dict[tuple[str, str], str]  # (pbx, linkedid) -> the call's new id


async def erase(session: AsyncSession, hashes: Sequence[str], now: datetime) -> Erased:
    """Remove or irreversibly anonymise everything of the caller (in the caller's
    transaction). Rows the reports count stay, anonymised: the caller's hash becomes a
    random pseudonym (the same for all their rows, so a repeat call still counts as one,
    and no key leads to it), the masked number ``ERASED``, each call's id a random one;
    survey answers, registration notes, sealed numbers, raw frames, message recordings
    and refused records go."""
    found = await find(session, hashes, lock=True)
    pseudonym = secrets.token_hex(16)
    displays = found.displays - {ERASED, ""}
    counts: dict[str, int] = {
        "calls": len(found.calls),
        "queue_visits": len(found.visits),
        "call_events": 0,
        "survey_responses": len(found.surveys),
        "dispositions": len(found.registrations),
        "callbacks": len(found.callbacks),
        "dead_letters": len(found.dead_letters),
    }
    new_lid = {(c.pbx, c.linkedid): new_call_id() for c in found.calls}
    for s in found.surveys:
        await session.delete(s)
    for r in found.registrations:
        r.note = None
    for d in found.dead_letters:
        await session.delete(d)
    for v in found.visits:
        v.linkedid = new_lid.get((v.pbx, v.linkedid), v.linkedid)
    recordings: list[str] = []
    for t in found.callbacks:
        if t.recording:
            recordings.append(t.recording)
        t.caller_hash, t.caller_display = pseudonym, ERASED
        t.number_sealed = t.note = t.recording = None
        if t.pbx is not None and t.linkedid is not None:
            t.linkedid = new_lid.get((t.pbx, t.linkedid), t.linkedid)
        if t.call_linkedid is not None and t.pbx is not None:
            t.call_linkedid = new_lid.get((t.pbx, t.call_linkedid), t.call_linkedid)
        if t.status in LIVE:
            t.status, t.outcome, t.completed_at = "cancelled", "erased", now
    keys = found.keys
    renames = {old: new for (_, old), new in new_lid.items()}
    if keys:
        # A FastAGI event's key holds the channel's id (the call's, for the caller's).
        for (pbx, old), new in new_lid.items():
            await session.execute(
                update(AgentStateChange)
                .where(AgentStateChange.pbx == pbx, AgentStateChange.event_key.contains(old))
                .values(event_key=func.replace(AgentStateChange.event_key, old, new))
            )
        events = (
            await session.execute(
                select(CallEvent).where(_keyed(CallEvent.pbx, CallEvent.linkedid, keys))
            )
        ).scalars()
        for e in events:
            old = e.linkedid or ""
            e.data = scrub_value(e.data, hashes, displays, pseudonym, renames)
            e.raw = None
            e.linkedid = new_lid.get((e.pbx, old), old)
            e.event_key = _renamed(e.event_key, renames)
            if e.uniqueid is not None:
                e.uniqueid = _renamed(e.uniqueid, renames)
            counts["call_events"] += 1
    for c in found.calls:  # theirs, and the call-back calls made to them
        if c.caller_hash in hashes:
            c.caller_hash = pseudonym  # others' hashes (a call-back's) count as they did
        if c.caller_hash == pseudonym or c.caller_display in displays:
            c.caller_display = ERASED
        c.linkedid = new_lid[(c.pbx, c.linkedid)]
    await session.flush()
    return Erased(counts, recordings, pseudonym, displays, new_lid)
