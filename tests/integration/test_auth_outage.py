"""Credentials while PostgreSQL is away (issue 14 §3): a read with a credential the
database confirmed recently is let through from memory, so the live views and the
wallboard keep answering; a write, a credential never confirmed and one the database
refused at its last check are not. Against a PostgreSQL server of the test's own, stopped
and started by the test."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.acd.access import Principal
from app.main import create_app
from app.settings import load_settings
from app.store import auth as store
from app.store.db import create_engine, session_factory
from tests.auth_support import key, make_user
from tests.conftest import OwnPostgres

ROOT = Path(__file__).resolve().parents[2]
LIVE_VIEWS = ("/v1/queues", "/v1/queues/dagpenge", "/v1/agents", "/v1/calls/live")


def app_on(url: str, spill: Path, **extra: Any) -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        agi_port = s.getsockname()[1]
    settings = load_settings(
        database_url=url,
        agi_port=agi_port,
        ivr_flows=str(ROOT / "ivr_flows"),
        spill_dir=str(spill),
        caller_hash_key="auth-outage-test-key-0123456789",
        **extra,
    )
    return create_app(settings)


async def revoke(url: str, name: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            await store.revoke(session, name, datetime.now(UTC))
    finally:
        await engine.dispose()


async def test_live_views_answer_through_a_postgresql_outage_and_nothing_else_gets_in(
    own_postgres: OwnPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_postgres.url
    viewer = key(await make_user(url, "wall", "integration"))
    admin = key(await make_user(url, "ops", "admin"))
    revoked = key(await make_user(url, "gone", "integration"))
    unseen = key(await make_user(url, "unseen", "integration"))
    soon = datetime.now(UTC) + timedelta(seconds=3)
    expiring = key(await make_user(url, "brief", "integration", expires_at=soon))
    app = app_on(url, tmp_path)
    async with app.router.lifespan_context(app):
        rt: Any = app.state.rt
        rt.credentials.poll_seconds = 0.0  # every request asks the database while it is up
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://acd") as c:
            for headers in (viewer, admin, revoked, expiring):
                assert (await c.get("/v1/queues", headers=headers)).status_code == 200
            await revoke(url, "gone")
            # Up: the database refuses the revoked key (and the memory forgets it).
            assert (await c.get("/v1/queues", headers=revoked)).status_code == 401

            own_postgres.stop()
            try:
                during = {p: (await c.get(p, headers=viewer)).status_code for p in LIVE_VIEWS}
                board = await c.get("/wallboard")
                admin_read = await c.get("/v1/agents", headers=admin)
                write = await c.post(
                    "/v1/agents/agent1/pause", headers=admin, json={"reason": "frokost"}
                )
                from_db = await c.get("/v1/calls", headers=viewer)
                refused = await c.get("/v1/queues", headers=revoked)
                never = await c.get("/v1/queues", headers=unseen)
                wrong = await c.get("/v1/queues", headers=key("acdk_0123456789abcdef_" + "x" * 43))
                # The expiring key's own expiry passes during the outage: refused then.
                late = await _after(soon, lambda: c.get("/v1/queues", headers=expiring))
                metrics = (await c.get("/metrics")).text
            finally:
                own_postgres.start()
            after = await c.get("/v1/queues", headers=viewer)
            write_after = await c.get("/v1/calls", headers=admin)

    assert during == dict.fromkeys(LIVE_VIEWS, 200), during
    assert board.status_code == 200
    assert admin_read.status_code == 200
    assert write.status_code == 503, write.text
    assert "cannot check credentials" in write.json()["detail"]
    assert from_db.status_code == 503  # let in; the call list itself needs the database
    assert refused.status_code == 503 and never.status_code == 503 and wrong.status_code == 503
    assert late.status_code == 503
    assert 'acd_auth_database_unreachable_total{result="remembered"} 6.0' in metrics
    # The write and GET /v1/calls could not be audited: counted.
    audit_errors = re.search(r"^acd_audit_write_errors_total (\S+)$", metrics, re.M)
    assert audit_errors is not None and float(audit_errors.group(1)) >= 2, audit_errors
    # An outage is a few log lines, not a traceback per request.
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("app.api")]
    assert after.status_code == 200 and write_after.status_code == 200


async def _after(moment: datetime, request: Any) -> httpx.Response:
    import asyncio

    wait = (moment - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.1)
    response: httpx.Response = await request()
    return response


def test_the_memory_is_bounded_in_time_and_size_and_keeps_no_secret() -> None:
    now = [100.0]
    memory = store.CredentialMemory(60, poll_seconds=2, max_entries=3, clock=lambda: now[0])
    who = Principal(name="wall", role="integration")
    wall = datetime(2026, 1, 1, tzinfo=UTC)
    memory.remember("secret-a", who, None)
    memory.remember("secret-b", who, wall + timedelta(seconds=30))
    assert memory.fresh("secret-a", wall) == who
    now[0] += 2.5
    assert memory.fresh("secret-a", wall) is None  # a poll asks the database again
    assert memory.during_outage("secret-a", wall) == (who, 2.5)
    assert memory.during_outage("secret-b", wall + timedelta(seconds=31)) is None  # expired
    now[0] += 58
    assert memory.during_outage("secret-a", wall) is None  # confirmed too long ago
    memory.remember("secret-a", who, None)
    assert memory.during_outage("secret-a", wall) is not None
    memory.forget("secret-a")
    assert memory.during_outage("secret-a", wall) is None
    for n in range(5):
        memory.remember(f"s{n}", who, None)
    assert len(memory) == 3 and memory.during_outage("s1", wall) is None
    assert memory.during_outage("s4", wall) is not None
    assert all("s4" not in k and "secret" not in k for k in memory._entries)
    off = store.CredentialMemory(0, clock=lambda: now[0])
    off.remember("k", who, None)
    now[0] += 0.001
    assert off.during_outage("k", wall) is None
