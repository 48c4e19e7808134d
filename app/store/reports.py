"""Report reads: the agent scorecard and the survey figures. Plain functions taking their
session; the arithmetic on state intervals is pure (``time_in_states``).

Definitions (docs/api.md):
- calls answered: queue visits the agent answered that day (a call transferred between
  two agents counts once for each);
- handle time: talk time plus wrap-up time (the real ``wrapup`` state), per answered call;
- registration rate: answered calls the agent registered / answered calls;
- first-contact resolution: registered ``resolved`` / registered (DOMAIN.md: settled
  without transfer);
- satisfaction: average of the survey's ``overall`` (tilfredshed) answers of the agent's
  calls; friendliness and wait are shown beside it;
- ready share: logged-in time not paused and not unavailable / logged-in time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.acd.kpi import day_bounds
from app.acd.presence import AGENT_STATES
from app.acd.work import Goals
from app.store.models import AgentStateChange, Call, Disposition, QueueVisit, SurveyResponse
from app.store.repo import decode_cursor, encode_cursor

_PER_AGENT = or_(
    AgentStateChange.queue.is_(None),
    AgentStateChange.state.in_(("ringing", "on_call", "wrapup")),
)


def time_in_states(
    before: str | None, changes: Iterable[tuple[datetime, str]], start: datetime, until: datetime
) -> dict[str, float]:
    """Seconds in each agent state within [start, until), from the state in force at
    ``start`` (``before``; None = logged out) and the changes after it, in order."""
    out: dict[str, float] = dict.fromkeys(AGENT_STATES, 0.0)
    state, since = before or "logged_out", start
    for at, new in changes:
        at = min(max(at, start), until)
        out[state] = out.get(state, 0.0) + (at - since).total_seconds()
        state, since = new, at
    if until > since:
        out[state] = out.get(state, 0.0) + (until - since).total_seconds()
    return {k: round(v, 3) for k, v in out.items()}


LocalDay = date  # for fields named ``date``: pydantic cannot have a field share its type's name


class Kpi(BaseModel):
    value: float | None = Field(
        description="The agent's figure, or null when there is nothing to measure.",
    )
    goal: float = Field(description="The goal (work.yaml).")
    direction: Literal["at_least", "above", "at_most"] = Field(
        description="at_least, above or at_most the goal.",
    )
    met: bool | None = Field(description="Whether the goal is met; null: nothing to measure yet.")

    @classmethod
    def of(
        cls, value: float | None, goal: float, direction: Literal["at_least", "above", "at_most"]
    ) -> Kpi:
        if value is None:
            return cls(value=None, goal=goal, direction=direction, met=None)
        met = {
            "at_least": value >= goal,
            "above": value > goal,
            "at_most": value <= goal,
        }[direction]
        return cls(value=round(value, 4), goal=goal, direction=direction, met=met)


class Scorecard(BaseModel):
    agent_id: str = Field(description="The agent's id.")
    name: str = Field(description="The agent's name.")
    date: LocalDay = Field(description="The local day.")
    period_start: datetime = Field(description="The start of the day counted.")
    period_end: datetime = Field(
        description="The end counted: the end of the day, or now for today.",
    )
    calls_answered: int = Field(description="Calls the agent answered.")
    talk_seconds: float = Field(description="The agent's talk time.")
    wrapup_seconds: float = Field(description="The agent's wrap-up time.")
    registered: int = Field(description="Calls the agent registered.")
    resolved: int = Field(description="Of which settled at first contact.")
    transferred: int = Field(description="Of which transferred.")
    survey_answers: int = Field(
        description="Surveys of the agent's calls with at least one answer.",
    )
    friendliness: float | None = Field(description="Mean 'friendliness' answer (1-9), or null.")
    wait: float | None = Field(description="Mean 'wait' answer (1-9), or null.")
    average_handle_seconds: Kpi = Field(
        description="Average handling time (talk plus wrap-up) against its goal.",
    )
    first_contact_resolution: Kpi = Field(description="Resolved / registered against its goal.")
    registration_rate: Kpi = Field(description="Registered / answered against its goal.")
    satisfaction: Kpi = Field(description="Mean 'overall' answer against its goal.")
    ready_share: Kpi = Field(
        description="Share of logged-in time ready for calls (not paused, not unavailable) "
        "against its goal.",
    )
    seconds_in_state: dict[str, float] = Field(
        description="Seconds in each agent state during the period.",
    )


def _avg(values: Sequence[float | int | None]) -> float | None:
    got = [float(v) for v in values if v is not None]
    return round(sum(got) / len(got), 3) if got else None


async def scorecard(
    session: AsyncSession,
    *,
    agent_id: str,
    interface: str,
    name: str,
    day: date,
    tz: ZoneInfo,
    now: datetime,
    goals: Goals,
    wrapup_seconds: Callable[[str], int] | None = None,
) -> Scorecard:
    start, end = day_bounds(day, tz)
    until = max(start, min(end, now))
    visits = (
        await session.execute(
            select(QueueVisit, Call.id, Call.ended_at)
            .join(Call, and_(Call.pbx == QueueVisit.pbx, Call.linkedid == QueueVisit.linkedid))
            .where(
                QueueVisit.agent == agent_id,
                QueueVisit.answered_at >= start,
                QueueVisit.answered_at < end,
            )
        )
    ).all()
    call_ids = {cid for _, cid, _ in visits}
    talk = 0.0
    for v, _, call_ended in visits:
        if v.talk_seconds is not None:
            talk += v.talk_seconds
        elif v.answered_at is not None and call_ended is None:
            # Still talking: up to now (the PBX's), within the day. A call that ended
            # without its talk's end (a data gap) has no known talk.
            talk += max(0.0, (until - v.answered_at).total_seconds())

    mine = or_(AgentStateChange.interface == interface, AgentStateChange.agent_id == agent_id)
    prior = (
        await session.execute(
            select(AgentStateChange.state)
            .where(mine, _PER_AGENT, AgentStateChange.at < start)
            .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    changes = (
        await session.execute(
            select(AgentStateChange.at, AgentStateChange.state)
            .where(
                mine,
                _PER_AGENT,
                AgentStateChange.state.in_(AGENT_STATES),
                AgentStateChange.at >= start,
                AgentStateChange.at < until,
            )
            .order_by(AgentStateChange.at, AgentStateChange.id)
        )
    ).all()
    states = time_in_states(prior, [(at, st) for at, st in changes], start, until)
    wrapup = states["wrapup"]

    dispositions = (
        (
            await session.execute(
                select(Disposition).where(
                    Disposition.agent_id == agent_id, Disposition.call_id.in_(call_ids)
                )
            )
        )
        .scalars()
        .all()
        if call_ids
        else []
    )
    registered = len({d.call_id for d in dispositions})
    resolved = sum(1 for d in dispositions if d.resolved)
    transferred = sum(1 for d in dispositions if d.transferred_to)

    surveys = (
        await session.execute(
            select(SurveyResponse.friendliness, SurveyResponse.wait, SurveyResponse.overall).where(
                SurveyResponse.agent == agent_id,
                SurveyResponse.started_at >= start,
                SurveyResponse.started_at < end,
            )
        )
    ).all()
    answered_surveys = [s for s in surveys if any(x is not None for x in s)]

    n_calls = len(call_ids)
    logged_in = sum(v for k, v in states.items() if k != "logged_out")
    ready = logged_in - states["paused"] - states["unavailable"]
    return Scorecard(
        agent_id=agent_id,
        name=name,
        date=day,
        period_start=start,
        period_end=until,
        calls_answered=len(visits),
        talk_seconds=round(talk, 3),
        wrapup_seconds=round(wrapup, 3),
        registered=registered,
        resolved=resolved,
        transferred=transferred,
        survey_answers=len(answered_surveys),
        friendliness=_avg([s[0] for s in answered_surveys]),
        wait=_avg([s[1] for s in answered_surveys]),
        average_handle_seconds=Kpi.of(
            (talk + wrapup) / len(visits) if visits else None,
            goals.average_handle_seconds,
            "at_most",
        ),
        first_contact_resolution=Kpi.of(
            resolved / registered if registered else None,
            goals.first_contact_resolution,
            "at_least",
        ),
        registration_rate=Kpi.of(
            registered / n_calls if n_calls else None, goals.registration_rate, "at_least"
        ),
        satisfaction=Kpi.of(_avg([s[2] for s in answered_surveys]), goals.satisfaction, "above"),
        ready_share=Kpi.of(ready / logged_in if logged_in else None, goals.ready_share, "at_least"),
        seconds_in_state=states,
    )


# --------------------------------------------------------------------------------------
# Surveys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyFilter:
    since: datetime | None = None
    until: datetime | None = None
    queue: str | None = None
    agent: str | None = None
    completed: bool | None = None


def _survey_where(stmt: Select[Any], flt: SurveyFilter) -> Select[Any]:
    s = SurveyResponse
    if flt.since is not None:
        stmt = stmt.where(s.started_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(s.started_at < flt.until)
    if flt.queue is not None:
        stmt = stmt.where(s.queue == flt.queue)
    if flt.agent is not None:
        stmt = stmt.where(s.agent == flt.agent)
    if flt.completed is not None:
        stmt = stmt.where(s.completed == flt.completed)
    return stmt


async def list_surveys(
    session: AsyncSession, flt: SurveyFilter, limit: int, cursor: str | None
) -> tuple[Sequence[SurveyResponse], str | None]:
    s = SurveyResponse
    stmt = _survey_where(select(s), flt)
    if cursor is not None:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(s.started_at < at, and_(s.started_at == at, s.id < ident)))
    rows = (
        (await session.execute(stmt.order_by(s.started_at.desc(), s.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].started_at, rows[-1].id)
    return rows, None


class SurveyFigures(BaseModel):
    key: str | None = Field(description="The agent or queue; null for the total.")
    responses: int = Field(description="Surveys with at least one answer.")
    completed: int = Field(description="Surveys with all three answered.")
    flagged_calls: int = Field(description="Answered calls flagged for the survey (every 5th).")
    response_rate: float | None = Field(description="responses / flagged_calls.")
    friendliness: float | None = Field(
        description="Mean 'friendliness' (imødekommenhed) answer, 1-9.",
    )
    wait: float | None = Field(description="Mean 'wait' (ventetid) answer, 1-9.")
    overall: float | None = Field(description="Mean 'overall' (tilfredshed) answer, 1-9.")


class SurveySummary(BaseModel):
    total: SurveyFigures = Field(description="Every survey of the period.")
    by_agent: list[SurveyFigures] = Field(description="Per agent.")
    by_queue: list[SurveyFigures] = Field(description="Per queue.")


async def survey_summary(session: AsyncSession, flt: SurveyFilter) -> SurveySummary:
    s = SurveyResponse
    answered = or_(s.friendliness.is_not(None), s.wait.is_not(None), s.overall.is_not(None))

    async def figures(group: Any) -> dict[str | None, dict[str, Any]]:
        cols = [
            func.count(),
            func.count().filter(s.completed.is_(True)),
            func.avg(s.friendliness),
            func.avg(s.wait),
            func.avg(s.overall),
        ]
        stmt = _survey_where(select(group, *cols) if group is not None else select(*cols), flt)
        stmt = stmt.where(answered)
        if group is not None:
            stmt = stmt.group_by(group)
        out: dict[str | None, dict[str, Any]] = {}
        for row in (await session.execute(stmt)).all():
            key = row[0] if group is not None else None
            vals = row[1:] if group is not None else row
            out[key] = {
                "responses": int(vals[0]),
                "completed": int(vals[1]),
                "friendliness": None if vals[2] is None else round(float(vals[2]), 3),
                "wait": None if vals[3] is None else round(float(vals[3]), 3),
                "overall": None if vals[4] is None else round(float(vals[4]), 3),
            }
        return out

    async def flagged(group: Any) -> dict[str | None, int]:
        c = Call
        stmt = select(group, func.count()) if group is not None else select(func.count())
        stmt = stmt.where(c.survey_flagged.is_(True), c.outcome == "answered")
        if flt.since is not None:
            stmt = stmt.where(c.started_at >= flt.since)
        if flt.until is not None:
            stmt = stmt.where(c.started_at < flt.until)
        if flt.queue is not None:
            stmt = stmt.where(c.queue == flt.queue)
        if flt.agent is not None:
            stmt = stmt.where(c.agent == flt.agent)
        if group is not None:
            stmt = stmt.group_by(group)
            return {row[0]: int(row[1]) for row in (await session.execute(stmt)).all()}
        return {None: int((await session.execute(stmt)).scalar_one())}

    def merge(
        figs: dict[str | None, dict[str, Any]], flags: dict[str | None, int]
    ) -> list[SurveyFigures]:
        out = []
        for key in sorted(set(figs) | set(flags), key=lambda k: (k is None, k or "")):
            f = figs.get(key, {})
            n_flagged = flags.get(key, 0)
            responses = f.get("responses", 0)
            out.append(
                SurveyFigures(
                    key=key,
                    responses=responses,
                    completed=f.get("completed", 0),
                    flagged_calls=n_flagged,
                    response_rate=round(min(1.0, responses / n_flagged), 4) if n_flagged else None,
                    friendliness=f.get("friendliness"),
                    wait=f.get("wait"),
                    overall=f.get("overall"),
                )
            )
        return out

    total = merge(await figures(None), await flagged(None))
    return SurveySummary(
        total=total[0],
        by_agent=merge(await figures(s.agent), await flagged(Call.agent)),
        by_queue=merge(await figures(s.queue), await flagged(Call.queue)),
    )
