"""A report put together from stored per-day tallies: sums by group, the figures, each
goal against its target, the period before and the year before. Pure: the store reads
the tallies (app/reports/rollup.py), this decides what they add up to."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from app.acd.kpi import KpiConfig
from app.reports.goals import GOAL_METRICS, Agreement, GoalsConfig
from app.reports.model import (
    AgreementGoals,
    AgreementInfo,
    Centre,
    Comparison,
    DataQuality,
    Day,
    GoalResult,
    GoalValue,
    Group,
    Report,
    ReportConfig,
    Span,
    WaitDistribution,
)
from app.reports.periods import Period, days_of, slot_key, time_key
from app.reports.tally import (
    REPEAT_MAX_DAYS,
    SL_THRESHOLDS,
    WAIT_EDGES,
    ReportTally,
    report_figures,
)

WHOLE_DAY = -1
# Kinds of stored rows: "centre" (key ""), "scope", "department", "queue", "agent", "pbx"
# (key: the PBX's id), "pbx_scope" (key: ``pbx_scope_key``) and "gap" (the centre's calls
# touched by a data gap, key "").
Rows = dict[str, dict[str, dict[date, dict[int, ReportTally]]]]
TIME_CUTS = ("day", "week", "month", "quarter", "weekday")
_KEY_LENGTH = 64  # report_rollup.key


def pbx_scope_key(pbx: str, scope: str) -> str:
    """The stored key of a PBX's calls in a scope: the two names joined by a unit
    separator (U+001F), the scope's name digested where both names at their longest would
    not fit the column."""
    key = f"{pbx}\x1f{scope}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{pbx}\x1f{hashlib.sha256(scope.encode()).hexdigest()[:16]}"


class Overdue(NamedTuple):
    """A task still open past its due time at ``as_of``."""

    day: date  # the local day it was requested
    queue: str
    pbx: str | None  # the PBX whose menu (or API) took it; None on rows without one


@dataclass
class Inputs:
    """Everything a report is made of, read by the store."""

    period: Period
    by: str
    rows: Rows  # the period's, the period before's and the year before's days
    goals: GoalsConfig
    config: KpiConfig
    repeat_days: int
    callback_days: int
    timezone: str
    as_of: datetime
    queue_titles: Mapping[str, str] = field(default_factory=dict)  # catalogue order
    agent_names: Mapping[str, str] = field(default_factory=dict)
    agents: Callable[[str], bool] | None = None  # which agents the reader may see
    overdue: Sequence[Overdue] = ()  # the tasks still open past their due time
    days_from_rollup: int = 0
    days_recomputed: int = 0
    days_without_data: int = 0
    notes: list[str] = field(default_factory=list)


def total(
    rows: Rows, kind: str, key: str, days: Iterable[date], slot: int = WHOLE_DAY
) -> ReportTally:
    out = ReportTally()
    by_day = rows.get(kind, {}).get(key, {})
    for day in days:
        t = by_day.get(day, {}).get(slot)
        if t is not None:
            out.add(t)
    return out


def _slots(rows: Rows, kind: str, key: str, days: Iterable[date]) -> dict[int, ReportTally]:
    out: dict[int, ReportTally] = {}
    by_day = rows.get(kind, {}).get(key, {})
    for day in days:
        for slot, t in by_day.get(day, {}).items():
            if slot != WHOLE_DAY:
                out.setdefault(slot, ReportTally()).add(t)
    return out


class _Builder:
    def __init__(self, x: Inputs) -> None:
        self.x = x
        self.days = days_of(x.period.first, x.period.last)
        self.prev = x.period.previous()
        self.last_year = x.period.last_year()
        self.prev_days = days_of(self.prev.first, self.prev.last)
        self.ly_days = days_of(self.last_year.first, self.last_year.last)
        self.agreements = x.goals.agreements_for(x.period.first, x.period.last)
        # A tally's figures, and a group's sum over some days, are asked for many times
        # (by each goal of each agreement, for the period and its comparisons): once each.
        self._figs: dict[tuple[int, bool], dict[str, Any]] = {}
        self._totals: dict[tuple[str, str, tuple[date, ...], int], ReportTally] = {}

    # ---- figures ------------------------------------------------------------------------

    def figures(
        self, t: ReportTally, overdue: int = 0, agent: bool = False, nested: bool = True
    ) -> dict[str, Any]:
        return report_figures(
            t,
            self.x.config,
            repeat_days=self.x.repeat_days,
            overdue=overdue,
            agent=agent,
            nested=nested,
        )

    def _cached_figures(self, t: ReportTally, agent: bool) -> dict[str, Any]:
        key = (id(t), agent)
        figs = self._figs.get(key)
        if figs is None:
            figs = self._figs[key] = self.figures(t, agent=agent, nested=False)
        return figs

    def total(
        self, kind: str, key: str, days: Sequence[date], slot: int = WHOLE_DAY
    ) -> ReportTally:
        cache = (kind, key, tuple(days), slot)
        t = self._totals.get(cache)
        if t is None:
            t = self._totals[cache] = total(self.x.rows, kind, key, days, slot)
        return t

    def overdue(self, match: Callable[[Overdue], bool]) -> int:
        return sum(1 for task in self.x.overdue if match(task))

    # ---- goals --------------------------------------------------------------------------

    def value(self, t: ReportTally, metric: str, agent: bool = False) -> float | None:
        if (
            t.offered == 0
            and t.calls == 0
            and t.answered == 0
            and metric
            not in (
                "satisfaction",
                "survey_response_rate",
                "tasks_in_time_share",
            )
        ):
            return None
        figs = self._cached_figures(t, agent)
        value = figs.get(metric)
        return float(value) if value is not None else None

    def goals(
        self,
        agreements: Iterable[Agreement],
        now: Callable[[Agreement], ReportTally],
        before: Callable[[Agreement], ReportTally] | None,
        year_before: Callable[[Agreement], ReportTally] | None,
        agent: bool = False,
    ) -> dict[str, AgreementGoals]:
        out: dict[str, AgreementGoals] = {}
        for a in agreements:
            scope = self.x.goals.scope(a.scope)
            t_now = now(a)
            t_prev = before(a) if before is not None else None
            t_ly = year_before(a) if year_before is not None else None
            results: dict[str, GoalResult] = {}
            for g in a.goals:
                value = self.value(t_now, g.metric, agent)
                prev = self.value(t_prev, g.metric, agent) if t_prev is not None else None
                ly = self.value(t_ly, g.metric, agent) if t_ly is not None else None
                results[g.metric] = GoalResult(
                    metric=g.metric,
                    title=g.title,
                    unit=GOAL_METRICS[g.metric],
                    direction=g.direction,
                    target=g.target,
                    warning=g.warning,
                    ambition=g.ambition,
                    value=value,
                    status=g.status(value),
                    previous=GoalValue(value=prev, change=_change(value, prev)),
                    last_year=GoalValue(value=ly, change=_change(value, ly)),
                )
            out[a.name] = AgreementGoals(
                title=a.title,
                scope=scope.title if scope is not None else a.scope,
                comparison=a.comparison,
                goals=results,
            )
        return out

    def scope_goals(
        self, days: Sequence[date] | None, slot: int = WHOLE_DAY, pbx: str | None = None
    ) -> dict[str, AgreementGoals]:
        """The agreements measured on their own scopes' calls (the centre, a time cut), or
        on those of one PBX (``pbx``: the whole period only)."""
        rows = self.x.rows
        if pbx is not None:
            assert days is None and slot == WHOLE_DAY
            return self.goals(
                self.agreements,
                lambda a: self.total("pbx_scope", pbx_scope_key(pbx, a.scope), self.days),
                lambda a: self.total("pbx_scope", pbx_scope_key(pbx, a.scope), self.prev_days),
                lambda a: self.total("pbx_scope", pbx_scope_key(pbx, a.scope), self.ly_days),
            )
        if days is None:  # the whole period, with its comparisons
            return self.goals(
                self.agreements,
                lambda a: self.total("scope", a.scope, self.days),
                lambda a: self.total("scope", a.scope, self.prev_days),
                lambda a: self.total("scope", a.scope, self.ly_days),
            )
        if slot != WHOLE_DAY:
            return self.goals(
                self.agreements,
                lambda a: _slots(rows, "scope", a.scope, days).get(slot, ReportTally()),
                None,
                None,
            )
        return self.goals(self.agreements, lambda a: self.total("scope", a.scope, days), None, None)

    def group_goals(
        self, kind: str, key: str, queues: Sequence[str] | None
    ) -> dict[str, AgreementGoals]:
        """The agreements whose scope covers a department's or a queue's queues, measured
        on that group; an agent is measured against the agreement of the whole line."""
        if queues is None:
            primary = self.x.goals.primary(self.x.period.last)
            applies = [primary] if primary is not None else []
        else:
            applies = [
                a
                for a in self.agreements
                if queues
                and (scope := self.x.goals.scope(a.scope)) is not None
                and set(queues) <= set(scope.queues)
            ]
        agent = kind == "agent"
        return self.goals(
            applies,
            lambda a: self.total(kind, key, self.days),
            lambda a: self.total(kind, key, self.prev_days),
            lambda a: self.total(kind, key, self.ly_days),
            agent=agent,
        )

    # ---- the groups of each cut ---------------------------------------------------------

    def groups(self) -> list[Group]:
        by, x, rows = self.x.by, self.x, self.x.rows
        out: list[Group] = []
        if by == "department":
            for d in x.goals.departments:
                t = self.total("department", d.name, self.days)
                own = set(d.queues)
                overdue = self.overdue(lambda task, own=own: task.queue in own)  # type: ignore[misc]
                out.append(
                    Group(
                        key=d.name,
                        title=d.title,
                        **self.figures(t, overdue),
                        goals=self.group_goals("department", d.name, d.queues),
                    )
                )
        elif by == "queue":
            names = list(x.queue_titles)
            names += sorted(k for k in rows.get("queue", {}) if k not in x.queue_titles)
            for name in names:
                t = self.total("queue", name, self.days)
                overdue = self.overdue(lambda task, name=name: task.queue == name)  # type: ignore[misc]
                out.append(
                    Group(
                        key=name,
                        title=x.queue_titles.get(name, name),
                        **self.figures(t, overdue),
                        goals=self.group_goals("queue", name, [name]),
                    )
                )
        elif by == "agent":
            seen = {
                k
                for k, by_day in rows.get("agent", {}).items()
                if any(d in by_day for d in self.days)
            }
            for agent in sorted(seen):
                if x.agents is not None and not x.agents(agent):
                    continue
                t = self.total("agent", agent, self.days)
                out.append(
                    Group(
                        key=agent,
                        title=x.agent_names.get(agent, agent),
                        **self.figures(t, agent=True),
                        goals=self.group_goals("agent", agent, None),
                    )
                )
        elif by == "pbx":
            for pbx in self.pbxs():
                t = self.total("pbx", pbx, self.days)
                overdue = self.overdue(lambda task, pbx=pbx: task.pbx == pbx)  # type: ignore[misc]
                out.append(
                    Group(
                        key=pbx,
                        title=pbx,
                        **self.figures(t, overdue),
                        goals=self.scope_goals(None, pbx=pbx),
                    )
                )
        elif by in TIME_CUTS:
            cut: dict[str, tuple[str, list[date]]] = {}
            for day in self.days:
                key, title = time_key(by, day)
                cut.setdefault(key, (title, []))[1].append(day)
            for key in sorted(cut, key=int if by == "weekday" else str):
                title, days = cut[key]
                t = self.total("centre", "", days)
                in_days = set(days)
                overdue = self.overdue(lambda task, s=in_days: task.day in s)  # type: ignore[misc]
                out.append(
                    Group(
                        key=key,
                        title=title,
                        **self.figures(t, overdue),
                        goals=self.scope_goals(days),
                    )
                )
        elif by == "halfhour":
            slots = _slots(rows, "centre", "", self.days)
            for slot in sorted(slots):
                key, title = slot_key(slot)
                out.append(
                    Group(
                        key=key,
                        title=title,
                        **self.figures(slots[slot]),
                        goals=self.scope_goals(self.days, slot),
                    )
                )
        return out

    def pbxs(self) -> list[str]:
        """The PBXs with counts in the period, or with tasks overdue in it (by id)."""
        in_period = set(self.days)
        seen = {
            k
            for k, by_day in self.x.rows.get("pbx", {}).items()
            if not in_period.isdisjoint(by_day)
        }
        seen |= {task.pbx for task in self.x.overdue if task.pbx}
        return sorted(seen)

    # ---- the whole report ---------------------------------------------------------------

    def report(self) -> Report:
        x, rows = self.x, self.x.rows
        centre_t = self.total("centre", "", self.days)
        centre = Centre(
            **self.figures(centre_t, len(x.overdue)),
            goals=self.scope_goals(None),
        )
        by_day = rows.get("centre", {}).get("", {})
        daily = [
            Day(
                date=day,
                **self.figures(by_day.get(day, {}).get(WHOLE_DAY) or ReportTally(), nested=False),
            )
            for day in self.days
        ]
        gap_t = self.total("gap", "", self.days)
        return Report(
            from_=x.period.first,
            to=x.period.last,
            by=x.by,
            period=x.period.label,
            title=x.period.title,
            timezone=x.timezone,
            as_of=x.as_of,
            config=ReportConfig(
                short_abandon_seconds=x.config.short_abandon_seconds,
                service_level_seconds=x.config.service_level_seconds,
                service_level_thresholds=sorted(
                    {float(s) for s in SL_THRESHOLDS} | {float(x.config.service_level_seconds)}
                ),
                repeat_call_working_days=x.repeat_days,
                callback_working_days=x.callback_days,
            ),
            agreements=[self.agreement_info(a) for a in self.agreements],
            centre=centre,
            groups=self.groups(),
            daily=daily,
            wait_distribution=WaitDistribution(
                edges_seconds=[float(e) for e in WAIT_EDGES],
                answered=list(centre_t.answered_hist),
                abandoned=list(centre_t.abandoned_hist),
            ),
            comparison=Comparison(
                previous=Span(from_=self.prev.first, to=self.prev.last),
                last_year=Span(from_=self.last_year.first, to=self.last_year.last),
            ),
            data_quality=self.data_quality(centre_t, gap_t),
        )

    def agreement_info(self, a: Agreement) -> AgreementInfo:
        scope = self.x.goals.scope(a.scope)
        return AgreementInfo(
            name=a.name,
            title=a.title,
            scope=a.scope,
            scope_title=scope.title if scope is not None else a.scope,
            queues=list(scope.queues) if scope is not None else [],
            valid_from=a.valid_from,
            valid_to=a.valid_to,
            comparison=a.comparison,
        )

    def data_quality(self, centre_t: ReportTally, gap_t: ReportTally) -> DataQuality:
        x = self.x
        affected: list[str] = []
        if gap_t.calls or gap_t.offered:
            with_gaps = self.figures(centre_t)
            without = self.figures(centre_t.minus(gap_t))
            for name, value in with_gaps.items():
                scalar = isinstance(value, int | float) or value is None
                if scalar and without.get(name) != value:
                    affected.append(name)
            if gap_t.max_wait_ms and gap_t.max_wait_ms >= centre_t.max_wait_ms:
                affected.append("max_wait_seconds")
        in_period = set(self.days)
        visits_touched = sum(
            t.data_gap_calls
            for by_day in x.rows.get("queue", {}).values()
            for day, by_slot in by_day.items()
            if day in in_period
            for slot, t in by_slot.items()
            if slot == WHOLE_DAY
        )
        return DataQuality(
            gaps=centre_t.gaps,
            gap_seconds=round(centre_t.gap_ms / 1000, 1),
            calls=centre_t.calls,
            calls_touched=gap_t.calls,
            visits_touched=visits_touched,
            share_touched=round(gap_t.calls / centre_t.calls, 4) if centre_t.calls else None,
            figures_affected=sorted(set(affected)),
            figures_affected_count=len(set(affected)),
            days=len(self.days),
            days_from_rollup=x.days_from_rollup,
            days_recomputed=x.days_recomputed,
            days_without_data=x.days_without_data,
            notes=list(x.notes),
        )


def _change(value: float | None, before: float | None) -> float | None:
    if value is None or before is None:
        return None
    return round(value - before, 4)


def assemble(inputs: Inputs) -> Report:
    if inputs.repeat_days > REPEAT_MAX_DAYS:
        raise ValueError(f"repeat calls are counted up to {REPEAT_MAX_DAYS} working days")
    return _Builder(inputs).report()
