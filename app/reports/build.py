"""``build_report``: the use case behind ``GET /v1/reports`` and ``acd report``. Makes the
stored tallies of the period (and of the period before and the year before, for the
goals' changes) usable, reads them, and assembles the report. Takes its session; the
caller commits (the tallies it counted are kept for the next report)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.acd.callbacks import WORKING_DAYS_TO_RETURN
from app.acd.kpi import figures
from app.reports.assemble import TIME_CUTS, Inputs, assemble, total
from app.reports.model import By, Report
from app.reports.periods import Period, days_of
from app.reports.rollup import Context, ensure_days, overdue_tasks, read_rows
from app.reports.tally import WAIT_EDGES
from app.store.models import Agent

# Which stored kinds each cut reads ("gap" for the data quality, "scope" for the goals).
_KINDS: dict[str, tuple[str, ...]] = {
    "centre": ("centre", "scope", "gap", "queue"),
    "department": ("centre", "scope", "gap", "queue", "department"),
    "queue": ("centre", "scope", "gap", "queue"),
    "agent": ("centre", "scope", "gap", "queue", "agent"),
    "halfhour": ("centre", "scope", "gap", "queue"),
    "pbx": ("centre", "scope", "gap", "queue", "pbx", "pbx_scope"),
    **dict.fromkeys(TIME_CUTS, ("centre", "scope", "gap", "queue")),
}
assert all(e > 0 for e in WAIT_EDGES)


async def build_report(
    session: AsyncSession,
    *,
    period: Period,
    by: By,
    ctx: Context,
    now: datetime,
    agents: Callable[[str, str | None], bool] | None = None,
) -> Report:
    """The report of ``period`` cut ``by``, as of ``now`` (the PBX's time: "today" and
    overdue tasks are measured against it). ``agents(id, team)``: which agents' own
    figures the reader may see (None: all)."""
    main = days_of(period.first, period.last)
    prev, last_year = period.previous(), period.last_year()
    compare = days_of(prev.first, prev.last) + days_of(last_year.first, last_year.last)
    done = await ensure_days(session, main, ctx, now)
    await ensure_days(session, compare, ctx, now)
    rows = await read_rows(session, _KINDS[by], sorted(set(main + compare)), slots=by == "halfhour")
    names: dict[str, str] = {}
    teams: dict[str, str | None] = {}
    if by == "agent":
        for agent_id, name, team in await session.execute(select(Agent.id, Agent.name, Agent.team)):
            names[agent_id] = name
            teams[agent_id] = team
    notes = []
    if done.kept_other_definitions:
        notes.append(
            f"{len(done.kept_other_definitions)} dage er opgjort med tidligere definitioner "
            "(detaljerne er slettet)"
        )
    if by == "pbx":
        # Days kept as counted before the PBXs had rows of their own (their detail rows
        # purged): in the centre, in no PBX's group.
        pbx_days = {d for by_day in rows.get("pbx", {}).values() for d in by_day}
        without = [d for d in main if d not in pbx_days and total(rows, "centre", "", [d]).calls]
        if without:
            notes.append(
                f"{len(without)} dage er talt før opdelingen pr. telefonanlæg og detaljerne "
                "er slettet: deres opkald er med i centrets tal, ikke i telefonanlæggenes"
            )
    if period.last >= now.astimezone(ctx.tz).date():
        notes.append("Perioden er ikke slut: tallene er foreløbige")
    catalogue = ctx.catalogue
    return assemble(
        Inputs(
            period=period,
            by=by,
            rows=rows,
            goals=ctx.goals,
            config=ctx.config,
            repeat_days=ctx.repeat_days,
            callback_days=WORKING_DAYS_TO_RETURN,
            timezone=ctx.tz.key,
            as_of=now,
            queue_titles={q.name: q.title for q in catalogue.queues} if catalogue else {},
            agent_names=names,
            agents=(lambda a: agents(a, teams.get(a))) if agents is not None else None,
            overdue=await overdue_tasks(session, period.first, period.last, ctx.tz, now),
            days_from_rollup=done.from_rollup,
            days_recomputed=done.counted,
            days_without_data=done.without_data,
            notes=notes,
        )
    )


async def day_figures(
    session: AsyncSession, day: date, ctx: Context, now: datetime
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A past day's figures as ``/v1/queues`` shows today's: the centre's (per call) and
    each queue's (per visit), from the stored tallies (counted first if need be)."""
    await ensure_days(session, [day], ctx, now)
    rows = await read_rows(session, ("centre", "queue"), [day])
    centre = total(rows, "centre", "", [day])
    queues = {key: total(rows, "queue", key, [day]) for key in rows.get("queue", {})}
    return figures(centre).as_dict(), {k: figures(t).as_dict() for k, t in queues.items()}
