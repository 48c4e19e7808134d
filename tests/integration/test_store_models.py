"""The same storage behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.store.db import create_engine, session_factory
from app.store.models import Agent, AgentSkill, Call, CallEvent, Disposition, Queue

T0 = datetime(2014, 11, 4, 8, 30, tzinfo=UTC)


def _event(key: str, **kw: object) -> CallEvent:
    fields: dict[str, object] = {
        "pbx": "pbx1",
        "event_key": key,
        "at": T0,
        "received_at": T0,
        "linkedid": "1.1",
        "uniqueid": "1.1",
        "source": "ami",
        "kind": "queue_caller_join",
        "data": {"queue": "dagpenge", "position": 1},
        "raw": {"Event": "QueueCallerJoin"},
    }
    fields.update(kw)
    return CallEvent(**fields)


async def test_call_event_roundtrip_keeps_utc_and_json(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    cph = timezone(timedelta(hours=1))
    async with sessions.begin() as s:
        s.add(_event("a", at=T0.astimezone(cph), data={"name": "Søren Ærø", "n": [1, 2]}))
    async with sessions() as s:
        row = (await s.execute(select(CallEvent))).scalar_one()
    await engine.dispose()
    assert row.at == T0 and row.at.tzinfo is not None
    assert row.at.utcoffset() == timedelta(0)
    assert row.data == {"name": "Søren Ærø", "n": [1, 2]}


async def test_event_key_is_unique_per_pbx(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        s.add(_event("same"))
        s.add(_event("same", pbx="pbx2"))  # another box may reuse the key
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(_event("same"))
    async with sessions() as s:
        assert len((await s.execute(select(CallEvent))).scalars().all()) == 2
    await engine.dispose()


async def test_one_call_row_per_pbx_and_linkedid(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        s.add(Call(pbx="pbx1", linkedid="1.1", started_at=T0, outcome="answered"))
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(Call(pbx="pbx1", linkedid="1.1", started_at=T0))
    await engine.dispose()


async def test_naive_datetime_is_refused(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    with pytest.raises(Exception, match="naive"):
        async with sessions.begin() as s:
            s.add(Call(pbx="pbx1", linkedid="9.9", started_at=datetime(2014, 1, 1)))
    await engine.dispose()


async def test_foreign_keys_cascade(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        s.add(Queue(name="dagpenge", title="Dagpenge"))
        s.add(Agent(id="a1", name="Agent One", interface="PJSIP/agent1"))
        await s.flush()
        s.add(AgentSkill(agent_id="a1", queue="dagpenge", penalty=1))
        call = Call(pbx="pbx1", linkedid="2.2", started_at=T0)
        s.add(call)
        await s.flush()
        s.add(Disposition(call_id=call.id, agent_id="a1", reason="status", resolved=True))
    async with sessions.begin() as s:
        await s.delete(await s.get(Agent, "a1"))
        await s.delete((await s.execute(select(Call))).scalar_one())
    async with sessions() as s:
        assert (await s.execute(select(AgentSkill))).first() is None
        assert (await s.execute(select(Disposition))).first() is None
    await engine.dispose()
