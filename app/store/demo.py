"""The demo's own database (``acd demo``): started clean, or continued; its roster and keys.

Never for a production database: ``wipe`` refuses a file the demo did not make, and
``seed`` hands out keys without asking anyone.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.queues import QueueCatalogue
from app.store.agents import put_profile, sync_queues
from app.store.auth import demo_key
from app.store.models import CallEvent

ADMIN = "demo-admin"
AGENT_USER = "demo-agent"


class DemoDatabaseError(RuntimeError):
    """The file is not the demo's to wipe; the message says what to do."""


@dataclass(frozen=True)
class DemoProfile:
    id: str
    name: str
    interface: str
    team: str
    skills: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class DemoKeys:
    admin: str
    agent: str
    agent_id: str


def is_demo_database(path: Path) -> bool:
    """A SQLite file with the demo's admin user in it (read-only look, no migration)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT 1 FROM api_users WHERE name = ?", (ADMIN,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def wipe(path: Path, spill_dir: Path) -> None:
    """Remove the demo's database (and its WAL files and spill folder) for a clean start;
    refuse a file that is not a demo database."""
    if path.exists() and not is_demo_database(path):
        raise DemoDatabaseError(
            f"{path} is not a demo database (it has no {ADMIN} user); a demo starts by "
            "deleting its database, so name another file with --db"
        )
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    shutil.rmtree(spill_dir, ignore_errors=True)


async def last_moment(sessions: async_sessionmaker[AsyncSession]) -> datetime | None:
    """When the previous run's last call event happened (PBX clock), for ``--continue``."""
    async with sessions() as session:
        at: datetime | None = (await session.execute(select(func.max(CallEvent.at)))).scalar()
    return at


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    catalogue: QueueCatalogue | None,
    agents: Sequence[DemoProfile],
) -> DemoKeys:
    """The simulated room's agents as the roster's profiles (so the agents' API can act on
    them) and two fresh keys: the admin's and the first agent's (older ones revoked)."""
    async with sessions.begin() as session:
        if catalogue is not None:
            await sync_queues(session, catalogue)  # the skills point at these rows
        for agent in agents:
            await put_profile(
                session,
                agent.id,
                name=agent.name,
                interface=agent.interface,
                team=agent.team,
                active=True,
                skills=agent.skills,
            )
    if not agents:
        raise ValueError("a demo day without agents")
    first = agents[0].id
    admin_key = await demo_key(sessions, ADMIN, "admin")
    agent_key = await demo_key(sessions, AGENT_USER, "agent", agent_id=first)
    return DemoKeys(admin_key, agent_key, first)
