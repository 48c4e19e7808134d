"""``acd recompute``: rebuild the calls and queue visits of a period from the event log.

After a definition changes or a bug in the state machine is fixed, the stored rows of
past calls can be wrong while their events (``call_events``) are right. This replays the
period's events through a fresh ``CallCentre`` (``app.acd.replay``: the code the live
service runs), compares every call, visit and survey it makes with the stored row, and
writes the differences with the service's own writer backend; then the report tallies of
the affected days are counted again. Running it twice changes nothing the second time.

Left alone, and said so: calls the replay does not see end (their end was lost in a
data gap: the stored row, closed by the AMI resync, knows more than the log), calls still
up, and stored calls the log does not have (their events were purged, or never logged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.callbacks import callback_due
from app.acd.kpi import day_bounds, local_day
from app.acd.model import default_agent_id
from app.acd.queues import QueueCatalogue
from app.acd.records import CallRecord, Record, SurveyRecord, VisitRecord
from app.acd.replay import Replay
from app.acd.state import CallCentre
from app.live.history import logged_events
from app.reports.rollup import Context, count_and_store
from app.reports.tally import REPEAT_MAX_DAYS
from app.store.models import Agent, Call, CallEvent, QueueVisit, SurveyResponse
from app.store.writer import Backend, _group

# A call's events can start this long before its day, and end this long after it.
MARGIN = timedelta(hours=12)
_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))
_VISIT_FIELDS = tuple(f.name for f in fields(VisitRecord))
_SURVEY_FIELDS = tuple(f.name for f in fields(SurveyRecord))


@dataclass
class Result:
    first: date
    last: date
    events: int = 0
    skipped_events: int = 0  # rows of a kind this version does not know
    calls_in_log: int = 0  # calls of the period the replay saw end
    calls_stored: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    not_in_log: int = 0  # stored, but no events: left alone
    not_ended: int = 0  # the log does not say how they ended (a gap, or still up): left alone
    visits_added: int = 0
    visits_changed: int = 0
    surveys_written: int = 0
    fields_changed: Counter[str] = field(default_factory=Counter)
    days_recounted: int = 0
    written: bool = False

    def lines(self) -> list[str]:
        changed = ", ".join(f"{name} {n}" for name, n in sorted(self.fields_changed.items()))
        verb = "rebuilt" if self.written else "would rebuild (dry run)"
        return [
            f"{self.first}..{self.last}: {self.events} events replayed"
            + (f" ({self.skipped_events} of unknown kinds skipped)" if self.skipped_events else ""),
            f"calls: {self.calls_in_log} in the log, {self.calls_stored} stored; {verb}: "
            f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged",
            f"  left alone: {self.not_ended} whose end the log does not have (data gap or "
            f"still up), {self.not_in_log} stored without events",
            f"visits: {self.visits_added} added, {self.visits_changed} changed"
            + (f"; fields changed: {changed}" if changed else ""),
            f"report tallies: {self.days_recounted} days counted again",
        ]


def _differs(stored: Any, record: Any, names: Sequence[str]) -> list[str]:
    return [n for n in names if getattr(stored, n) != getattr(record, n)]


async def _agents(session: AsyncSession) -> Callable[[str], str]:
    rows = (await session.execute(select(Agent.interface, Agent.id))).all()
    by_interface = {iface.lower(): aid for iface, aid in rows}
    return lambda iface: by_interface.get(iface.lower()) or default_agent_id(iface)


async def recompute(
    sessions: async_sessionmaker[AsyncSession],
    backend: Backend,
    *,
    first: date,
    last: date,
    tz: ZoneInfo,
    catalogue: QueueCatalogue | None,
    ctx: Context | None,
    now: datetime,
    dry_run: bool = False,
    batch: int = 5000,
) -> Result:
    """Rebuild the calls that started on local days ``first``..``last`` (see the module)."""
    out = Result(first, last, written=not dry_run)
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    async with sessions() as session:
        agent_of = await _agents(session)
        pbxes = (
            (
                await session.execute(
                    select(CallEvent.pbx)
                    .where(CallEvent.at >= start - MARGIN, CallEvent.at < end + MARGIN)
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
    records: dict[tuple[Any, ...], Record] = {}
    for pbx in sorted(pbxes):
        replay = Replay(
            CallCentre(pbx, catalogue, agent_of=agent_of, due_at=lambda at: callback_due(at, tz))
        )
        async for part in logged_events(sessions, pbx, start - MARGIN, end + MARGIN, batch):
            out.events += len(part)
            for record in replay.records_of(part):
                _keep(records, record)
        for record in replay.records_of([]):
            _keep(records, record)
        out.skipped_events += replay.skipped

    calls = {
        (r.pbx, r.linkedid): r
        for r in records.values()
        if isinstance(r, CallRecord) and start <= r.started_at < end
    }
    ended = {k: r for k, r in calls.items() if r.outcome is not None}
    out.calls_in_log = len(ended)
    out.not_ended = len(calls) - len(ended)

    async with sessions() as session:
        stored_calls = {
            (c.pbx, c.linkedid): c
            for c in (
                await session.execute(
                    select(*Call.__table__.columns).where(
                        Call.started_at >= start, Call.started_at < end
                    )
                )
            )
        }
        stored_visits = {
            (v.pbx, v.linkedid, v.seq): v
            for v in (
                await session.execute(
                    select(*QueueVisit.__table__.columns)
                    .join(
                        Call, and_(Call.pbx == QueueVisit.pbx, Call.linkedid == QueueVisit.linkedid)
                    )
                    .where(Call.started_at >= start, Call.started_at < end)
                )
            )
        }
        stored_surveys = {
            (s.pbx, s.linkedid): s
            for s in (
                await session.execute(
                    select(*SurveyResponse.__table__.columns)
                    .join(
                        Call,
                        and_(
                            Call.pbx == SurveyResponse.pbx, Call.linkedid == SurveyResponse.linkedid
                        ),
                    )
                    .where(Call.started_at >= start, Call.started_at < end)
                )
            )
        }
    out.calls_stored = len(stored_calls)
    out.not_in_log = sum(1 for k in stored_calls if k not in calls)

    visits_of: dict[tuple[str, str], list[VisitRecord]] = {}
    for r in records.values():
        if isinstance(r, VisitRecord):
            visits_of.setdefault((r.pbx, r.linkedid), []).append(r)
    write: list[Record] = []
    for key, record in ended.items():
        stored = stored_calls.get(key)
        if stored is None:
            out.added += 1
            write.append(record)
            out.visits_added += len(visits_of.get(key, []))
            write.extend(visits_of.get(key, []))
            continue
        diff = _differs(stored, record, _CALL_FIELDS)
        call_changed = bool(diff)
        out.fields_changed.update(f"calls.{n}" for n in diff)
        if diff:
            write.append(record)
        for visit in visits_of.get(key, []):
            old = stored_visits.get((*key, visit.seq))
            if old is None:
                out.visits_added += 1
                call_changed = True
                write.append(visit)
                continue
            vdiff = _differs(old, visit, _VISIT_FIELDS)
            if vdiff:
                out.visits_changed += 1
                out.fields_changed.update(f"queue_visits.{n}" for n in vdiff)
                call_changed = True
                write.append(visit)
        survey = records.get(("survey", *key))
        if isinstance(survey, SurveyRecord):
            old_survey = stored_surveys.get(key)
            sdiff = (
                list(_SURVEY_FIELDS)
                if old_survey is None
                else _differs(old_survey, survey, _SURVEY_FIELDS)
            )
            if sdiff:
                out.fields_changed.update(f"survey_responses.{n}" for n in sdiff)
                out.surveys_written += 1
                call_changed = True
                write.append(survey)
        if call_changed:
            out.changed += 1
        else:
            out.unchanged += 1
    for key in ended:
        if key not in stored_calls:
            survey = records.get(("survey", *key))
            if isinstance(survey, SurveyRecord):
                out.surveys_written += 1
                write.append(survey)

    if dry_run or not write:
        return out
    await backend.write(_group(write), now)
    await backend.close()
    if ctx is not None:
        # The period's days, and those before it whose repeat calls it holds.
        days = [first - timedelta(days=i) for i in range(1, 2 * REPEAT_MAX_DAYS + 1)]
        days += [first + timedelta(days=i) for i in range((last - first).days + 1)]
        today = local_day(now, tz)
        async with sessions.begin() as session:
            done = await count_and_store(session, [d for d in days if d <= today], ctx, now)
        out.days_recounted = done.days
    return out


def _keep(records: dict[tuple[Any, ...], Record], record: Record) -> None:
    """The latest record of each call, visit and survey (upserts: the last state wins)."""
    if isinstance(record, CallRecord):
        records[("call", record.pbx, record.linkedid)] = record
    elif isinstance(record, VisitRecord):
        records[("visit", record.pbx, record.linkedid, record.seq)] = record
    elif isinstance(record, SurveyRecord):
        records[("survey", record.pbx, record.linkedid)] = record
