"""Who may do what: roles, scopes and the per-resource rule. Pure: no I/O.

Four roles (issue 7):
- ``agent``: acts only on itself and on the calls it took;
- ``supervisor`` (team leader): on the agents of its team(s) and their calls;
- ``admin``: on everything;
- ``integration`` (another system): reads everything, writes only what it was granted.

An endpoint names the scope it needs (``agents:write``, ...); the role decides whether
the principal has it (``has``) and, for a given agent, whether it reaches that agent
(``reaches``); for a call, ``may_act_on_call`` is the one rule (app/services/calls.py asks
it for every read and action on a call). Reads of call-level reports by an agent are
narrowed to its own calls by the use cases, with ``own_agent``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["agent", "supervisor", "admin", "integration"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin", "integration")

# scope -> what it allows (docs/api.md shows this table)
SCOPES: dict[str, str] = {
    "calls:read": "read calls (an agent: the calls it took)",
    "calls:write": "register and transfer calls (an agent: its own; a supervisor: its teams')",
    "agents:read": "agent scorecards (an agent: itself; a supervisor: its teams)",
    "agents:write": "log agents in and out, pause and unpause them (same reach)",
    "agents:admin": "create and change agent profiles and skills (a supervisor: its teams)",
    "callbacks:read": "read call-back and message tasks",
    "callbacks:write": "create, assign and complete call-back tasks",
    "surveys:read": "read survey answers and averages (an agent: its own)",
    "ivr:admin": "reload the configuration files (menu, queues, work data)",
    "live:read": "the live picture: queues, agents, calls in progress, the stream",
    "reports:read": "reports against the service goals (by agent: as agents:read reaches)",
    "planning:read": "forecasts and staffing plans (a supervisor: all queues)",
    "messages:listen": "listen to a caller's voice message (an agent: its queues' tasks)",
    "privacy:admin": "a citizen's request (export, erase of their data) and the purge",
}
READ_SCOPES = frozenset(s for s in SCOPES if s.endswith(":read"))
WRITE_SCOPES = frozenset(SCOPES) - READ_SCOPES

_AGENT = frozenset(
    {
        "live:read",  # agents see the live situation too and plan their breaks by it
        "calls:read",
        "calls:write",
        "agents:read",
        "agents:write",
        "callbacks:read",
        "callbacks:write",
        "surveys:read",
        "reports:read",  # the centre's figures; its own among the agents'
        "messages:listen",  # the messages of its own queues' tasks, audited
    }
)
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    "agent": _AGENT,
    "supervisor": _AGENT | {"agents:admin", "planning:read"},
    "admin": frozenset(SCOPES),
    "integration": READ_SCOPES,
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    name: str
    role: Role
    agent_id: str | None = None
    teams: frozenset[str] = frozenset()
    grants: frozenset[str] = frozenset()
    token_id: str = ""

    @property
    def scopes(self) -> frozenset[str]:
        base = ROLE_SCOPES[self.role]
        return base | (self.grants & WRITE_SCOPES) if self.role == "integration" else base

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def reaches(self, agent_id: str, team: str | None) -> bool:
        """May act on (or read the person-level figures of) agent ``agent_id``?"""
        if self.role in ("admin", "integration"):
            return True
        if self.role == "supervisor":
            return team is not None and team in self.teams
        return self.agent_id is not None and self.agent_id == agent_id

    @property
    def own_agent(self) -> str | None:
        """An agent sees call-level data of its own calls only: the agent id to filter on."""
        return self.agent_id if self.role == "agent" else None


def may_act_on_call(
    principal: Principal, agents: Mapping[str, str | None], *, read: bool = False
) -> bool:
    """May ``principal`` read (``read``) or act on (register, transfer) a call handled by
    ``agents`` (agent id -> team: the agents who took it, or the one talking now)?

    - ``admin``, ``integration``: yes (the endpoint's scope was checked already);
    - an agent: only when it is one of ``agents`` (a call it took, or is talking on);
    - a supervisor: reads every call; acts when one of ``agents`` is in its teams.
    """
    if principal.role == "agent":
        return principal.agent_id is not None and principal.agent_id in agents
    if principal.role == "supervisor" and not read:
        return any(principal.reaches(agent, team) for agent, team in agents.items())
    return True


def check_user(
    role: str, agent_id: str | None, teams: Iterable[str], grants: Iterable[str]
) -> list[str]:
    """Problems with a user definition (``acd users add``); empty when it is sound."""
    problems: list[str] = []
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}")
        return problems
    teams, grants = list(teams), list(grants)
    if role == "agent" and not agent_id:
        problems.append("an agent user needs --agent (the agent id it is)")
    if role != "agent" and agent_id:
        problems.append("--agent is only for the agent role")
    if role == "supervisor" and not teams:
        problems.append("a supervisor needs at least one --team")
    if role != "supervisor" and teams:
        problems.append("--team is only for the supervisor role")
    if grants and role != "integration":
        problems.append("--grant is only for the integration role (others have their scopes)")
    for g in grants:
        if g not in WRITE_SCOPES:
            problems.append(f"unknown grant {g!r}; one of {', '.join(sorted(WRITE_SCOPES))}")
    return problems
