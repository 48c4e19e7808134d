"""A running app without a PBX, with API users of every role and calls in the record, for
the integration tests of the agents' endpoints (real SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.main import create_app
from app.settings import load_settings
from app.store.db import create_engine, session_factory
from app.store.models import Agent, AgentSkill, AuditLog, Call, QueueVisit, SurveyResponse
from tests.auth_support import bearer, key, make_user

ROOT = Path(__file__).resolve().parents[1]

# name -> (role, agent id, teams, grants)
PRINCIPALS: dict[str, tuple[str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "agent1": ("agent", "agent1", (), ()),
    "agent2": ("agent", "agent2", (), ()),
    "sup_nord": ("supervisor", None, ("nord",), ()),
    "sup_syd": ("supervisor", None, ("syd",), ()),
    "admin": ("admin", None, (), ()),
    "integ": ("integration", None, (), ()),
    "integ_rw": ("integration", None, (), ("callbacks:write", "calls:write")),
}


@dataclass
class Office:
    app: FastAPI
    http: httpx.AsyncClient
    db_url: str
    who: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # name -> calls.id

    @property
    def rt(self) -> Any:
        return self.app.state.rt

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.rt.sessions() as s:
            return list((await s.execute(select(model).where(*where))).scalars().all())

    async def audit(self) -> list[AuditLog]:
        async with self.rt.sessions() as s:
            return list((await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars())


async def seed(db_url: str, now: datetime) -> dict[str, int]:
    """Agents agent1 (team nord, dagpenge) and agent2 (team syd, kontanthjaelp), and calls:
    ``mine`` answered by agent1 10 min ago, ``old`` answered by agent1 3 h ago, ``theirs``
    answered by agent2, ``lost`` abandoned, ``both`` answered by agent1 then agent2."""
    engine = create_engine(db_url)
    ids: dict[str, int] = {}
    try:
        async with session_factory(engine).begin() as s:
            from app.store.models import Queue

            for name in ("dagpenge", "kontanthjaelp"):
                s.add(Queue(name=name, title=name.title(), strategy="rrmemory", wrapup_seconds=30))
            await s.flush()
            for agent_id, team, queue in (
                ("agent1", "nord", "dagpenge"),
                ("agent2", "syd", "kontanthjaelp"),
            ):
                s.add(
                    Agent(
                        id=agent_id,
                        name=agent_id.title(),
                        interface=f"PJSIP/{agent_id}",
                        team=team,
                        active=True,
                    )
                )
                await s.flush()
                s.add(AgentSkill(agent_id=agent_id, queue=queue, penalty=0))
            specs: dict[str, tuple[timedelta, list[tuple[str, str | None]]]] = {
                "mine": (timedelta(minutes=10), [("dagpenge", "agent1")]),
                "old": (timedelta(hours=3), [("dagpenge", "agent1")]),
                "theirs": (timedelta(minutes=10), [("kontanthjaelp", "agent2")]),
                "lost": (timedelta(minutes=10), [("dagpenge", None)]),
                "both": (
                    timedelta(minutes=5),
                    [("dagpenge", "agent1"), ("kontanthjaelp", "agent2")],
                ),
            }
            for name, (ago, legs) in specs.items():
                start = now - ago - timedelta(minutes=4)
                answered = start + timedelta(seconds=30) if legs[0][1] else None
                call = Call(
                    pbx="pbx1",
                    linkedid=f"seed.{name}",
                    caller_hash="h" * 32,
                    caller_display="+45 ••••••01",
                    dialled="82565682",
                    keys="2",
                    queue=legs[0][0],
                    started_at=start,
                    queue_entered_at=start + timedelta(seconds=10),
                    answered_at=answered,
                    ended_at=now - ago,
                    wait_seconds=20.0,
                    talk_seconds=180.0 if answered else None,
                    agent=legs[-1][1],
                    outcome="answered" if answered else "abandoned",
                    survey_flagged=name == "mine",
                )
                s.add(call)
                await s.flush()
                ids[name] = call.id
                for seq, (queue, agent) in enumerate(legs, start=1):
                    s.add(
                        QueueVisit(
                            pbx="pbx1",
                            linkedid=call.linkedid,
                            seq=seq,
                            queue=queue,
                            entered_at=start + timedelta(seconds=10 + seq),
                            answered_at=answered + timedelta(seconds=seq) if answered else None,
                            left_at=start + timedelta(seconds=30),
                            ended_at=now - ago if agent else None,
                            wait_seconds=20.0,
                            talk_seconds=90.0 if agent else None,
                            agent=agent,
                            outcome="answered" if agent else "abandoned",
                        )
                    )
            s.add(
                SurveyResponse(
                    pbx="pbx1",
                    linkedid="seed.mine",
                    call_id=ids["mine"],
                    agent="agent1",
                    queue="dagpenge",
                    started_at=now - timedelta(minutes=9),
                    friendliness=8,
                    wait=5,
                    overall=7,
                    completed=True,
                )
            )
    finally:
        await engine.dispose()
    return ids


@contextlib.asynccontextmanager
async def office(db_url: str, tmp: Path, **settings: Any) -> AsyncIterator[Office]:
    ids = await seed(db_url, datetime.now(UTC))
    who: dict[str, dict[str, str]] = {}
    for name, (role, agent_id, teams, grants) in PRINCIPALS.items():
        who[name] = key(
            await make_user(db_url, name, role, agent_id=agent_id, teams=teams, grants=grants)
        )
    who["bearer_admin"] = bearer(
        await make_user(
            db_url,
            "bearer-admin",
            "admin",
            kind="bearer",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    )
    who["expired"] = bearer(
        await make_user(
            db_url,
            "expired",
            "admin",
            kind="bearer",
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
    )
    who["bad_key"] = {"X-API-Key": "acdk_0000000000000000_" + "x" * 43}
    who["anonymous"] = {}
    app = create_app(
        load_settings(
            database_url=db_url,
            spill_dir=str(tmp),
            ivr_flows=str(ROOT / "ivr_flows"),
            caller_hash_key="test-caller-hash-key-0123456789",
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        await app.state.rt.roster.ensure_loaded()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://acd") as http:
            yield Office(app, http, db_url, who, ids)
