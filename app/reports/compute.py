"""A day's report tallies from its stored rows (calls, visits, registrations, surveys,
call-back tasks, data gaps): what ``report_rollup`` keeps, so a report never needs the
detail rows again (they may be purged). Pure: the store reads the rows, this counts.

Units (docs/kpis.md):
- ``queue``: per visit, on the local day the visit entered the queue (as the live
  figures); ``agent``: the visits the agent answered, likewise.
- ``centre``, ``scope``, ``department``: per call (``kpi.call_facts`` on the call's visits
  to the group's queues), on the local day of its first queue entry (or of its start, for
  a call that reached no queue). A call transferred between two queues of one group counts
  once in it, and once in each group it visited.
- Registrations count on the call (centre, scope, department: resolved when every
  registration of it in the group says settled and none transferred) or on the visit of
  the registering agent (queue, agent). Surveys count where the call was last answered.
- A repeat call: the same caller (keyed hash) calls again, k working days after the day of
  the answered call (k = 0: the same day); kept as counts by k up to ``REPEAT_MAX_DAYS``.
- Tasks (call-backs, messages) count on the local day they were requested, in the group
  of their queue.
- ``pbx``: the centre's unit (per call, every queue) over the calls of one PBX (key: its
  ``ACD_PBX_ID``); ``pbx_scope``: the same per PBX and scope (``pbx_scope_key``), what a
  PBX's goals are measured on. Calls are keyed (pbx, linkedid), so the PBXs' groups add
  up to the centre. A task counts in its PBX's groups (the menu's that took it, or the
  API's ``ACD_PBX_ID``; a row without one, in the centre and scopes only); a data gap in
  its PBX's.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.acd.calendar import is_working_day
from app.acd.kpi import CallFacts, KpiConfig, call_facts, day_bounds, local_day
from app.reports.assemble import WHOLE_DAY, Rows, pbx_scope_key
from app.reports.goals import GoalsConfig
from app.reports.tally import REPEAT_MAX_DAYS, ReportTally


@dataclass(frozen=True, slots=True)
class CallRow:
    id: int
    linkedid: str
    caller_hash: str
    started_at: datetime
    queue_entered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    transferred_to: str | None
    survey_flagged: bool
    data_gap: bool
    pbx: str = ""  # the PBX the call came through (``linkedid`` is already keyed by it)


@dataclass(frozen=True, slots=True)
class VisitRow(CallFacts):
    """A stored visit as the counting reads it: the values a ``kpi.CountedVisit`` has (as
    a call's ``CallFacts``), its agent and whether a data gap touched it; ``linkedid`` is
    the call's key across PBXes."""

    agent: str | None = None
    data_gap: bool = False


@dataclass(frozen=True, slots=True)
class Registration:
    call_id: int
    agent_id: str
    queue: str | None
    resolved: bool
    transferred_to: str | None


@dataclass(frozen=True, slots=True)
class SurveyRow:
    linkedid: str
    agent: str | None
    queue: str | None
    friendliness: int | None
    wait: int | None
    overall: int | None
    completed: bool

    @property
    def answers(self) -> dict[str, int | None]:
        return {"friendliness": self.friendliness, "wait": self.wait, "overall": self.overall}

    @property
    def answered(self) -> bool:
        return any(v is not None for v in (self.friendliness, self.wait, self.overall))


@dataclass(frozen=True, slots=True)
class TaskRow:
    kind: str  # callback | message
    queue: str
    requested_at: datetime
    due_at: datetime
    status: str
    completed_at: datetime | None
    pbx: str | None = None  # the PBX whose menu (or API) took it; None on rows without one


@dataclass(frozen=True, slots=True)
class GapRow:
    gap_from: datetime
    gap_to: datetime | None
    pbx: str | None = None


@dataclass
class DayRows:
    """The detail rows a set of days is counted from (the store reads a little around
    the days: calls started before midnight, the repeat look-ahead)."""

    calls: list[CallRow] = field(default_factory=list)
    visits: dict[str, list[VisitRow]] = field(default_factory=dict)  # by linkedid, in order
    registrations: dict[int, list[Registration]] = field(default_factory=dict)  # by call id
    surveys: dict[str, SurveyRow] = field(default_factory=dict)  # by linkedid
    tasks: list[TaskRow] = field(default_factory=list)
    gaps: list[GapRow] = field(default_factory=list)
    # Every call's start by caller hash, sorted, over the days and the look-ahead after.
    callers: dict[str, list[datetime]] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def working_days_between(first: date, later: date) -> int:
    """Working days in (first, later]: 0 the same day (or only a weekend between)."""
    n, day = 0, first
    while day < later:
        day += timedelta(days=1)
        if is_working_day(day):
            n += 1
            if n > REPEAT_MAX_DAYS:
                break
    return n


# (kind, key, queues or None for all, destinations, with half-hour slots)
_GroupSpec = tuple[str, str, frozenset[str] | None, frozenset[str], bool]


def slot_of(at: datetime, tz: ZoneInfo) -> int:
    local = at.astimezone(tz)
    return local.hour * 2 + local.minute // 30


class _Counter:
    def __init__(
        self,
        days: set[date],
        tz: ZoneInfo,
        config: KpiConfig,
        goals: GoalsConfig,
        queues: Iterable[str],
        wrapup_of: Callable[[str], int],
        now: datetime,
    ) -> None:
        self.days = days
        self.tz = tz
        self.config = config
        self.wrapup_of = wrapup_of
        self.now = now
        self.queues = set(queues)
        self.rows: Rows = {}
        # (kind, key, queues or None for all, destinations, with half-hour slots)
        self.groups: list[_GroupSpec] = [("centre", "", None, frozenset(), True)]
        for s in goals.scopes:
            self.groups.append(("scope", s.name, frozenset(s.queues), frozenset(), True))
        for d in goals.departments:
            self.groups.append(
                ("department", d.name, frozenset(d.queues), frozenset(d.destinations), False)
            )
        self.scopes = [(s.name, frozenset(s.queues)) for s in goals.scopes]
        self._of_pbx: dict[str | None, list[_GroupSpec]] = {None: self.groups}

    def groups_of(self, pbx: str | None) -> list[_GroupSpec]:
        """The groups a call (or task) of ``pbx`` counts in: the centre's, scopes' and
        departments', and its PBX's own (the whole PBX, and per scope for the goals)."""
        groups = self._of_pbx.get(pbx)
        if groups is None:
            assert pbx is not None
            groups = self._of_pbx[pbx] = [
                *self.groups,
                ("pbx", pbx, None, frozenset(), False),
                *(
                    ("pbx_scope", pbx_scope_key(pbx, name), queues, frozenset(), False)
                    for name, queues in self.scopes
                ),
            ]
        return groups

    def wrapup_ms(self, queue: str) -> int:
        return self.wrapup_of(queue) * 1000

    def tally(self, kind: str, key: str, day: date, slot: int = WHOLE_DAY) -> ReportTally:
        by_day = self.rows.setdefault(kind, {}).setdefault(key, {}).setdefault(day, {})
        t = by_day.get(slot)
        if t is None:
            t = by_day[slot] = ReportTally()
        return t

    # ---- a call, in each group it touched ----------------------------------------------

    def call(self, c: CallRow, data: DayRows) -> None:
        visits = data.visits.get(c.linkedid, [])
        first_at = c.queue_entered_at or (visits[0].entered_at if visits else None)
        day = local_day(first_at or c.started_at, self.tz)
        regs = data.registrations.get(c.id, [])
        survey = data.surveys.get(c.linkedid)
        reg_queue = self._registration_queues(regs, visits)
        transferred = c.transferred_to is not None and c.outcome == "answered"
        settled = (
            bool(regs)
            and not transferred
            and all(r.resolved and r.transferred_to is None for r in regs)
        )
        split = (
            "transferred"
            if transferred or any(r.transferred_to for r in regs)
            else ("settled" if settled else None)
        )
        repeat = self._repeat(c, data) if c.caller_hash else None
        if day in self.days:
            slot = slot_of(first_at or c.started_at, self.tz)
            gap = c.data_gap or any(v.data_gap for v in visits)
            for kind, key, queues, dests, slots in self.groups_of(c.pbx or None):
                mine = visits if queues is None else [v for v in visits if v.queue in queues]
                to_us = c.transferred_to is not None and c.transferred_to in dests
                if queues is not None and not mine and not to_us:
                    continue
                targets = [self.tally(kind, key, day)]
                if slots:
                    targets.append(self.tally(kind, key, day, slot))
                if kind == "centre" and gap:
                    targets.append(self.tally("gap", "", day))
                self._call_in_group(
                    targets, c, mine, queues, regs, reg_queue, survey, split, repeat, to_us, gap
                )
        for i, v in enumerate(visits):
            vday = local_day(v.entered_at, self.tz)
            if vday not in self.days:
                continue
            facts = (c, visits, i, regs, survey, split, repeat)
            self._visit(self.tally("queue", v.queue, vday), *facts)
            if v.outcome == "answered" and v.agent:
                self._visit(self.tally("agent", v.agent, vday), *facts)

    def _call_in_group(
        self,
        targets: Sequence[ReportTally],
        c: CallRow,
        mine: Sequence[VisitRow],
        queues: frozenset[str] | None,
        regs: Sequence[Registration],
        reg_queue: dict[int, str | None],
        survey: SurveyRow | None,
        split: str | None,
        repeat: int | None,
        to_us: bool,
        gap: bool,
    ) -> None:
        """The call as one group counts it, into each of ``targets`` (the day's, the
        half-hour's, the data gap's): worked out once, added to each."""
        counted = bool(mine) or queues is None
        outcome: str | None = None
        if queues is None:
            if c.outcome in ("closed", "forwarded", "ivr_hangup", "failed"):
                outcome = c.outcome
        elif to_us and c.outcome == "forwarded":
            outcome = "forwarded"
        facts = call_facts(mine, ended=c.ended_at is not None) if mine else None
        wrapups = 0
        if facts is not None and facts.talk_seconds is not None:
            wrapups = sum(self.wrapup_ms(v.queue) for v in mine if v.talk_seconds is not None)
        answered = facts is not None and facts.outcome == "answered"
        to_queue = external = here = False
        own: list[Registration] = []
        last_queue = ""
        if answered:
            last_queue = next(v for v in reversed(mine) if v.outcome == "answered").queue
            to_queue = any(v.outcome == "answered" for v in mine[:-1]) or self._moved_on(mine, c)
            external = (
                not to_queue
                and c.transferred_to is not None
                and c.transferred_to not in self.queues
            )
            own = [r for i, r in enumerate(regs) if queues is None or reg_queue[i] in queues]
            here = queues is None or last_queue in queues
        for t in targets:
            if counted:
                t.calls += 1
                if gap:
                    t.data_gap_calls += 1
            if outcome is not None:
                setattr(t, outcome, getattr(t, outcome) + 1)
            if to_us:
                t.transfers_received += 1
            if facts is None:
                continue
            t.decided(facts, self.config)
            if facts.talk_seconds is not None:
                t.talk_and_wrapup(facts, wrapups)
            if not answered:
                continue
            if to_queue:
                t.transferred_to_queue += 1
            elif external:
                t.transferred_external += 1
            _answered_call(t, own, repeat)
            self._survey(t, c, last_queue, survey, split, here)

    def _moved_on(self, mine: Sequence[VisitRow], c: CallRow) -> bool:
        # Answered in this group and then put through to a queue of another group.
        return (
            c.transferred_to is not None
            and c.transferred_to in self.queues
            and not any(v.queue == c.transferred_to for v in mine)
        )

    def _visit(
        self,
        t: ReportTally,
        c: CallRow,
        visits: Sequence[VisitRow],
        i: int,
        regs: Sequence[Registration],
        survey: SurveyRow | None,
        split: str | None,
        repeat: int | None,
    ) -> None:
        v = visits[i]
        if v.data_gap or c.data_gap:
            t.data_gap_calls += 1
        if v.outcome is not None:
            t.decided(v, self.config)
        if v.talk_seconds is not None:
            t.talk_and_wrapup(v, self.wrapup_ms(v.queue))
        if v.outcome != "answered":
            return
        later = i + 1 < len(visits)
        last_answered = not any(w.outcome == "answered" for w in visits[i + 1 :])
        if later:
            t.transferred_to_queue += 1
        elif c.transferred_to is not None and c.transferred_to not in self.queues:
            t.transferred_external += 1
        _answered_call(t, [r for r in regs if r.agent_id == v.agent], repeat)
        if last_answered:
            self._survey(t, c, v.queue, survey, split, True)

    def _survey(
        self,
        t: ReportTally,
        c: CallRow,
        queue: str,
        survey: SurveyRow | None,
        split: str | None,
        here: bool,
    ) -> None:
        """The survey of a call, where it was last answered (``here``)."""
        if not here:
            return
        if c.survey_flagged:
            t.survey_invited += 1
        if survey is None or not survey.answered:
            return
        t.survey_responses += 1
        t.survey_completed += int(survey.completed)
        t.survey("all", survey.answers)
        if split is not None:
            t.survey(split, survey.answers)

    @staticmethod
    def _registration_queues(
        regs: Sequence[Registration], visits: Sequence[VisitRow]
    ) -> dict[int, str | None]:
        """The queue of each registration: its own, else that of its agent's visit."""
        out: dict[int, str | None] = {}
        for i, r in enumerate(regs):
            queue = r.queue
            if queue is None:
                queue = next((v.queue for v in visits if v.agent == r.agent_id), None)
            out[i] = queue
        return out

    def _repeat(self, c: CallRow, data: DayRows) -> int | None:
        """Working days until the caller's next call (REPEAT_MAX_DAYS + 1: not within
        them), or None when the call was not answered."""
        if c.outcome != "answered":
            return None
        starts = data.callers.get(c.caller_hash, [])
        k = bisect_right(starts, c.started_at)
        if k >= len(starts):
            return REPEAT_MAX_DAYS + 1
        first = local_day(c.started_at, self.tz)
        return working_days_between(first, local_day(starts[k], self.tz))

    # ---- tasks and gaps ---------------------------------------------------------------

    def task(self, task: TaskRow) -> None:
        day = local_day(task.requested_at, self.tz)
        if day not in self.days:
            return
        slot = slot_of(task.requested_at, self.tz)
        targets = [self.tally("queue", task.queue, day)]
        for kind, key, queues, _, slots in self.groups_of(task.pbx or None):
            if queues is None or task.queue in queues:
                targets.append(self.tally(kind, key, day))
                if slots:
                    targets.append(self.tally(kind, key, day, slot))
        for t in targets:
            if task.kind == "message":
                t.messages_requested += 1
            else:
                t.callbacks_requested += 1
            if task.status == "done":
                t.tasks_returned += 1
                if task.completed_at is not None and task.completed_at <= task.due_at:
                    t.tasks_returned_in_time += 1
            elif task.status == "failed":
                t.tasks_failed += 1
            elif task.status == "cancelled":
                t.tasks_cancelled += 1

    def gap(self, gap: GapRow) -> None:
        groups = [("centre", "")] + ([("pbx", gap.pbx)] if gap.pbx else [])
        start_day = local_day(gap.gap_from, self.tz)
        if start_day in self.days:
            for kind, key in groups:
                self.tally(kind, key, start_day).gaps += 1
        until = gap.gap_to or self.now
        for day in self.days:
            start, end = day_bounds(day, self.tz)
            overlap = (min(until, end) - max(gap.gap_from, start)).total_seconds()
            if overlap > 0:
                for kind, key in groups:
                    self.tally(kind, key, day).gap_ms += round(overlap * 1000)


def _answered_call(t: ReportTally, regs: Sequence[Registration], repeat: int | None) -> None:
    """An answered call's (or visit's) registrations, and whether its caller called again."""
    if regs:
        t.registered += 1
        if all(r.resolved and r.transferred_to is None for r in regs):
            t.registered_resolved += 1
        if any(r.transferred_to for r in regs):
            t.registered_transferred += 1
    if repeat is not None:
        t.repeat_base += 1
        if repeat <= REPEAT_MAX_DAYS:
            t.repeat_hist[repeat] += 1


def count_days(
    days: Iterable[date],
    data: DayRows,
    *,
    tz: ZoneInfo,
    config: KpiConfig,
    goals: GoalsConfig,
    queues: Iterable[str],
    wrapup_of: Callable[[str], int],
    now: datetime,
) -> Rows:
    """The tallies of ``days`` from their rows: kind -> key -> day -> slot -> tally."""
    counter = _Counter(set(days), tz, config, goals, queues, wrapup_of, now)
    for c in data.calls:
        counter.call(c, data)
    for task in data.tasks:
        counter.task(task)
    for gap in data.gaps:
        counter.gap(gap)
    return counter.rows
