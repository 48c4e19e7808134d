"""``/v1/agents/{id}``: profiles and skills, login/logout/pause/unpause on the PBX, the
agent's scorecard for the day.

Thin: the PBX side is ``app.ami.agent_actions`` (each action confirmed by its AMI event
before the answer), the roster ``app.store.agents``, the scorecard ``app.store.reports``.
``GET /v1/agents`` (the live list) belongs to the live-state router, not here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field

from app.acd.access import Principal
from app.acd.agents import view
from app.acd.state import CallCentre
from app.ami import agent_actions as actions
from app.ami.confirm import StepsResult
from app.api.auth import access, audit_note
from app.api.common import ERRORS, PATH_AGENT, Code, Interface, Name, QueueName, Team
from app.api.deps import Clock, Config, Pbx, RosterDep, Sessions, Work
from app.api.errors import ErrorOut
from app.config.snapshot import ConfigSnapshot
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.services.pbx import PbxGate
from app.store import agents as roster
from app.store import reports

router = APIRouter(prefix="/v1/agents", tags=["agents"])

AgentPath = Annotated[str, Path(pattern=PATH_AGENT, max_length=64, description="agent id")]
ACTION_ERRORS: dict[int | str, dict[str, object]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "unknown agent or queue"},
    409: {"model": ErrorOut, "description": "wrong state (e.g. pause while logged out)"},
    502: {"model": ErrorOut, "description": "the PBX refused the action"},
    503: {"model": ErrorOut, "description": "no PBX configured, or the AMI link is down"},
    504: {"model": ErrorOut, "description": "the PBX did not confirm in time"},
}


# ---- schemas -------------------------------------------------------------------------


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueName = Field(description="A queue of the centre the agent takes calls from.")
    penalty: int = Field(0, ge=0, le=100, description="skill level: lower is preferred")


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="The agent's name as supervisors and the wallboard show it.")
    interface: Interface = Field(description="the agent's phone, e.g. PJSIP/agent1")
    team: Team | None = Field(
        None,
        description="The team the agent belongs to (a supervisor manages its teams); none: no"
        " team.",
    )
    active: bool = Field(
        True,
        description="False: the agent may not log in (kept for its history).",
    )
    skills: list[Skill] = Field(
        default_factory=list,
        max_length=50,
        description="The queues the agent may log in to, each once.",
    )


class ProfileOut(BaseModel):
    id: str = Field(description="The agent's id (as in the path).")
    name: str = Field(description="The agent's name.")
    interface: str = Field(description="The agent's phone on the PBX (e.g. `PJSIP/agent101`).")
    team: str | None = Field(description="The agent's team, or null.")
    active: bool = Field(description="False: the agent may not log in.")
    skills: list[Skill] = Field(description="The queues the agent may log in to.")


class LoginQueue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueName = Field(description="A queue to log in to (one of the agent's skills).")
    penalty: int | None = Field(None, ge=0, le=100, description="default: the profile's")


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queues: list[LoginQueue] | None = Field(
        None, min_length=1, max_length=50, description="default: every skill of the profile"
    )


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Code = Field(description="a pause reason of work.yaml (lunch, meeting, ...)")
    queue: QueueName | None = Field(None, description="default: every queue of the agent")


class UnpauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueName | None = Field(
        None,
        description="Unpause in this queue only; absent: in every queue.",
    )


class QueueStateOut(BaseModel):
    queue: str = Field(description="The queue.")
    penalty: int = Field(
        description="The agent's penalty in the queue (lower is offered calls first).",
    )
    paused: bool = Field(description="Paused in this queue.")
    reason: str | None = Field(description="The pause reason code, or null when not paused.")


class AgentStateOut(BaseModel):
    agent_id: str = Field(description="The agent's id.")
    name: str = Field(description="The agent's name.")
    interface: str = Field(description="The agent's phone on the PBX.")
    state: str = Field(
        description="The agent's state after the action: logged_out, available, ringing, "
        "on_call, wrapup, paused or unavailable.",
    )
    since: datetime | None = Field(
        description="When the agent entered that state (PBX time), or null.",
    )
    reason: str | None = Field(description="The pause reason code when paused, else null.")
    queues: list[QueueStateOut] = Field(
        description="The agent's queues now, with penalty and pause.",
    )
    confirmed: list[str] = Field(default_factory=list, description="queues the PBX confirmed")


# ---- helpers -------------------------------------------------------------------------


def _profile_out(p: roster.Profile) -> ProfileOut:
    return ProfileOut(
        id=p.id,
        name=p.name,
        interface=p.interface,
        team=p.team,
        active=p.active,
        skills=[Skill(queue=q, penalty=pen) for q, pen in p.skills],
    )


async def _profile(sessions: Sessions, who: Principal, agent_id: str) -> roster.Profile:
    if who.role == "agent" and who.agent_id != agent_id:
        raise Forbidden("an agent acts only on itself")
    async with sessions() as session:
        profile = await roster.get_profile(session, agent_id)
    if profile is None:
        raise NotFound(f"no agent {agent_id!r}")
    if not who.reaches(profile.id, profile.team):
        raise Forbidden(f"agent {agent_id!r} is not in your team(s)")
    return profile


def _known_queue(config: ConfigSnapshot, queue: str | None) -> None:
    if queue is not None and config.queue(queue) is None:
        raise NotFound(f"no queue {queue!r}")


def _state(centre: CallCentre, profile: roster.Profile, confirmed: list[str]) -> AgentStateOut:
    v = view(centre, profile.interface)
    return AgentStateOut(
        agent_id=profile.id,
        name=profile.name,
        interface=profile.interface,
        state=v.state,
        since=v.since,
        reason=v.reason,
        queues=[
            QueueStateOut(queue=q.queue, penalty=q.penalty, paused=q.paused, reason=q.reason)
            for q in v.queues
        ],
        confirmed=confirmed,
    )


async def _act(
    pbx: PbxGate,
    request: Request,
    action: str,
    profile: roster.Profile,
    run: Awaitable[StepsResult],
) -> AgentStateOut:
    def note(**detail: Any) -> None:
        audit_note(request, **detail)

    result = await pbx.run(action, f"agent {profile.id!r}", run, note)
    return _state(pbx.pbx.centre, profile, result.confirmed)


# ---- profiles ------------------------------------------------------------------------


@router.put(
    "/{agent_id}",
    operation_id="putAgentProfile",
    response_model=ProfileOut,
    summary="Create or replace an agent's profile and skills (queues with penalty)",
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def put_agent(
    request: Request,
    agent_id: AgentPath,
    body: ProfileIn,
    who: Annotated[Principal, Security(access("agents:admin", "agent.profile"))],
    sessions: Sessions,
    config: Config,
    agents: RosterDep,
) -> ProfileOut:
    """Creates or replaces an agent's profile: name, team, active, and the queues it may log in
    to (skills). A supervisor manages the agents of its teams."""
    for skill in body.skills:
        _known_queue(config, skill.queue)
    if len({s.queue for s in body.skills}) != len(body.skills):
        raise Invalid("each queue may be listed once in skills", ("body", "skills"))
    await agents.ensure_loaded()
    async with sessions.begin() as session:
        existing = await roster.get_profile(session, agent_id)
        if who.role == "supervisor":
            if existing is not None and not who.reaches(agent_id, existing.team):
                raise Forbidden(f"agent {agent_id!r} is not in your team(s)")
            if not who.reaches(agent_id, body.team):
                raise Forbidden("a supervisor keeps agents within its own team(s)")
        try:
            profile, created = await roster.put_profile(
                session,
                agent_id,
                name=body.name,
                interface=body.interface,
                team=body.team,
                active=body.active,
                skills=[(s.queue, s.penalty) for s in body.skills],
            )
        except roster.RosterError as exc:
            raise Conflict(str(exc)) from exc
    agents.set(profile.interface, profile.id)
    audit_note(request, created=created, skills=[q for q, _ in profile.skills])
    return _profile_out(profile)


# ---- actions on the PBX --------------------------------------------------------------


@router.post(
    "/{agent_id}/login",
    operation_id="loginAgent",
    response_model=AgentStateOut,
    summary="Log in to queues (the profile's skills, or those given): AMI QueueAdd",
    responses=ACTION_ERRORS,
)
async def login(
    request: Request,
    agent_id: AgentPath,
    who: Annotated[Principal, Security(access("agents:write", "agent.login"))],
    sessions: Sessions,
    config: Config,
    pbx: Pbx,
    body: Annotated[LoginIn | None, Body()] = None,
) -> AgentStateOut:
    """Logs the agent in to its queues (or the ones given) on the PBX (AMI QueueAdd) and
    answers once the PBX has confirmed each. An agent logs itself in; a supervisor the
    agents of its teams."""
    profile = await _profile(sessions, who, agent_id)
    if not profile.active:
        raise Conflict(f"agent {agent_id!r} is deactivated")
    skills = dict(profile.skills)
    if body is not None and body.queues is not None:
        wanted: list[tuple[str, int]] = []
        for item in body.queues:
            _known_queue(config, item.queue)
            if item.queue not in skills:
                raise Conflict(
                    f"agent {agent_id!r} has no skill for {item.queue!r}; add it to the profile"
                )
            wanted.append(
                (item.queue, skills[item.queue] if item.penalty is None else item.penalty)
            )
    else:
        wanted = list(profile.skills)
    if not wanted:
        raise Conflict(f"agent {agent_id!r} has no queues in its profile")
    audit_note(request, queues=[q for q, _ in wanted])
    run = actions.login(pbx.pbx, profile.interface, profile.name, wanted)
    return await _act(pbx, request, "login", profile, run)


@router.post(
    "/{agent_id}/logout",
    operation_id="logoutAgent",
    response_model=AgentStateOut,
    summary="Log out of every queue: AMI QueueRemove",
    responses=ACTION_ERRORS,
)
async def logout(
    request: Request,
    agent_id: AgentPath,
    who: Annotated[Principal, Security(access("agents:write", "agent.logout"))],
    sessions: Sessions,
    pbx: Pbx,
) -> AgentStateOut:
    """Logs the agent out of every queue on the PBX (AMI QueueRemove), once confirmed."""
    profile = await _profile(sessions, who, agent_id)
    return await _act(pbx, request, "logout", profile, actions.logout(pbx.pbx, profile.interface))


@router.post(
    "/{agent_id}/pause",
    operation_id="pauseAgent",
    response_model=AgentStateOut,
    summary="Pause with a reason from work.yaml: AMI QueuePause",
    responses=ACTION_ERRORS,
)
async def pause(
    request: Request,
    agent_id: AgentPath,
    body: PauseIn,
    who: Annotated[Principal, Security(access("agents:write", "agent.pause"))],
    sessions: Sessions,
    work: Work,
    config: Config,
    pbx: Pbx,
) -> AgentStateOut:
    """Pauses the agent with a reason from work.yaml (AMI QueuePause), in every queue or in
    one; the pause and its reason show on the wallboard and count against the ready share."""
    if work.pause_reason(body.reason) is None:
        raise Invalid(
            f"unknown pause reason {body.reason!r}; one of "
            + ", ".join(c.code for c in work.pause_reasons),
            ("body", "reason"),
        )
    _known_queue(config, body.queue)
    profile = await _profile(sessions, who, agent_id)
    audit_note(request, reason=body.reason, queue=body.queue)
    run = actions.pause(pbx.pbx, profile.interface, body.reason, body.queue)
    return await _act(pbx, request, "pause", profile, run)


@router.post(
    "/{agent_id}/unpause",
    operation_id="unpauseAgent",
    response_model=AgentStateOut,
    summary="End the pause: AMI QueuePause Paused=false",
    responses=ACTION_ERRORS,
)
async def unpause(
    request: Request,
    agent_id: AgentPath,
    who: Annotated[Principal, Security(access("agents:write", "agent.unpause"))],
    sessions: Sessions,
    config: Config,
    pbx: Pbx,
    body: Annotated[UnpauseIn | None, Body()] = None,
) -> AgentStateOut:
    """Ends the agent's pause, in every queue or in one (AMI QueuePause Paused=false)."""
    queue = body.queue if body is not None else None
    _known_queue(config, queue)
    profile = await _profile(sessions, who, agent_id)
    run = actions.unpause(pbx.pbx, profile.interface, queue)
    return await _act(pbx, request, "unpause", profile, run)


# ---- the scorecard -------------------------------------------------------------------


@router.get(
    "/{agent_id}/today",
    operation_id="getScorecard",
    response_model=reports.Scorecard,
    summary="The agent's day: calls, handle time, FCR, registration, satisfaction, states",
    responses={**ERRORS, 404: {"model": ErrorOut}},
)
async def today(
    agent_id: AgentPath,
    who: Annotated[Principal, Security(access("agents:read", "agent.scorecard"))],
    sessions: Sessions,
    clock: Clock,
    config: Config,
    day: Annotated[
        date | None,
        Query(alias="date", description="another day (local date); default today"),
    ] = None,
) -> reports.Scorecard:
    """The agent's scorecard for today (or `date=`): calls answered, talk and wrap-up time,
    registrations, first-contact resolution, satisfaction and ready share, each against its
    goal. An agent reads its own; a supervisor its teams'."""
    profile = await _profile(sessions, who, agent_id)
    work = config.work
    if work is None:
        raise Unavailable("no work.yaml loaded: the scorecard's goals are not configured")
    now = clock.now()  # "today" is the PBX's, as the calls' times are
    local_today = clock.today()
    if day is not None and not (date(2000, 1, 1) <= day <= local_today):
        raise Invalid("date must be between 2000-01-01 and today", ("query", "date"))
    async with sessions() as session:
        return await reports.scorecard(
            session,
            agent_id=profile.id,
            interface=profile.interface,
            name=profile.name,
            day=day or local_today,
            tz=clock.tz,
            now=now,
            goals=work.goals,
        )
