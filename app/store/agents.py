"""The agent roster: profiles (id, name, interface, team), skills (queue + penalty), the
queue table, and the in-memory interface -> agent id map the state machine uses.

Plain functions taking their session, and ``Roster``: a component that keeps the map and
the ``queues`` table in step with the catalogue (the skills' foreign key needs the rows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.model import default_agent_id
from app.acd.queues import QueueCatalogue
from app.components import Health, cancel_tasks
from app.store.models import Agent, AgentSkill, Queue

log = logging.getLogger(__name__)


class RosterError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    name: str
    interface: str
    team: str | None
    active: bool
    skills: tuple[tuple[str, int], ...]  # (queue, penalty), by queue name


async def get_profile(session: AsyncSession, agent_id: str) -> Profile | None:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        return None
    rows = (
        await session.execute(
            select(AgentSkill.queue, AgentSkill.penalty)
            .where(AgentSkill.agent_id == agent_id)
            .order_by(AgentSkill.queue)
        )
    ).all()
    return Profile(
        agent.id,
        agent.name,
        agent.interface,
        agent.team,
        agent.active,
        tuple((q, int(p)) for q, p in rows),
    )


async def skills_of(session: AsyncSession, agent_id: str) -> tuple[str, ...]:
    rows = await session.execute(select(AgentSkill.queue).where(AgentSkill.agent_id == agent_id))
    return tuple(rows.scalars())


async def put_profile(
    session: AsyncSession,
    agent_id: str,
    *,
    name: str,
    interface: str,
    team: str | None,
    active: bool,
    skills: Sequence[tuple[str, int]],
) -> tuple[Profile, bool]:
    """Create or replace an agent's profile and skills; (profile, created)."""
    other = (
        await session.execute(
            select(Agent.id).where(Agent.interface == interface, Agent.id != agent_id)
        )
    ).scalar_one_or_none()
    if other is not None:
        raise RosterError(f"interface {interface} belongs to agent {other!r}")
    agent = await session.get(Agent, agent_id)
    created = agent is None
    if agent is None:
        agent = Agent(id=agent_id, name=name, interface=interface, team=team, active=active)
        session.add(agent)
    else:
        agent.name, agent.interface, agent.team, agent.active = name, interface, team, active
    await session.flush()
    await session.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent_id))
    for queue, penalty in skills:
        session.add(AgentSkill(agent_id=agent_id, queue=queue, penalty=penalty))
    await session.flush()
    profile = await get_profile(session, agent_id)
    assert profile is not None
    return profile, created


async def sync_queues(session: AsyncSession, catalogue: QueueCatalogue) -> None:
    """The ``queues`` table = the catalogue (queues no longer in it stay, inactive)."""
    existing = {q.name: q for q in (await session.execute(select(Queue))).scalars()}
    for q in catalogue.queues:
        row = existing.get(q.name)
        if row is None:
            session.add(
                Queue(
                    name=q.name,
                    title=q.title,
                    strategy=q.strategy,
                    wrapup_seconds=q.wrapup_seconds,
                    active=True,
                )
            )
        else:
            row.title, row.strategy, row.wrapup_seconds, row.active = (
                q.title,
                q.strategy,
                q.wrapup_seconds,
                True,
            )
    for name, row in existing.items():
        if catalogue.get(name) is None:
            row.active = False
    await session.flush()


class Roster:
    """Component: interface -> agent id for the state machine, from the ``agents`` table.

    Until the table is read (and for interfaces it does not list) the id is the
    interface's last part (``PJSIP/agent1`` -> ``agent1``), as before there was a roster.
    """

    name = "roster"
    required = False

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalogue: Callable[[], QueueCatalogue | None],
    ) -> None:
        self.sessions = sessions
        self.catalogue = catalogue  # the running queues (app/config/registry.py)
        self._synced: QueueCatalogue | None = None  # the queues the table was last given
        self.by_interface: dict[str, str] = {}
        self.loaded = False
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def agent_of(self, interface: str) -> str:
        return self.by_interface.get(interface.lower()) or default_agent_id(interface)

    def set(self, interface: str, agent_id: str) -> None:
        for iface, aid in list(self.by_interface.items()):
            if aid == agent_id and iface != interface.lower():
                del self.by_interface[iface]
        self.by_interface[interface.lower()] = agent_id

    async def load(self) -> None:
        async with self._lock:
            for attempt in (1, 2):
                try:
                    catalogue = self.catalogue()
                    async with self.sessions.begin() as session:
                        if catalogue is not None:
                            await sync_queues(session, catalogue)
                        rows = (await session.execute(select(Agent.interface, Agent.id))).all()
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise
                    # Another process inserted the same queue rows just now: read again.
            self.by_interface = {iface.lower(): aid for iface, aid in rows}
            self._synced = catalogue
            self.loaded = True

    async def ensure_loaded(self) -> None:
        """Before writing skills: the queue rows they point to must exist (those of the
        running catalogue: after a reload that added a queue, its row is written now)."""
        if not self.loaded or self._synced is not self.catalogue():
            await self.load()

    async def _keep_trying(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.load()
                log.info("agent roster: %d agents", len(self.by_interface))
                return
            except (SQLAlchemyError, OSError) as exc:
                log.warning("agent roster: database not reachable (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_trying(), name="acd-roster")

    async def stop(self) -> None:
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        state = "up" if self.loaded else "loading"
        return Health(self.loaded, state, {"agents": len(self.by_interface)})
