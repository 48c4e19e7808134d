"""`acd users add/list/revoke` and the demo's admin key, on a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.cli import main
from app.store import auth
from app.store.db import create_engine, session_factory


def _principal(url: str, secret: str, kind: auth.TokenKind = "key") -> object:
    async def go() -> object:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as s:
                return await auth.authenticate(s, secret, kind, datetime.now(UTC))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_users_add_list_revoke(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    assert main(["users", "add", "anne", "--role", "agent", "--agent", "agent1"]) == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("acdk_") and secret not in err and "X-API-Key" in err
    p = _principal(sqlite_url, secret)
    assert p is not None and p.role == "agent" and p.agent_id == "agent1"  # type: ignore[attr-defined]

    assert main(["users", "add", "sara", "--role", "supervisor", "--team", "nord",
                 "--bearer", "--expires-hours", "2"]) == 0  # fmt: skip
    token = capsys.readouterr().out.strip()
    assert token.startswith("acdt_") and _principal(sqlite_url, token, "bearer") is not None

    assert main(["users", "add", "anne", "--role", "admin"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["users", "add", "crm", "--role", "integration", "--agent", "x"]) == 2
    assert "only for the agent role" in capsys.readouterr().err

    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "anne" in listing and "sara" in listing and "teams=nord" in listing
    assert secret not in listing and token not in listing

    assert main(["users", "revoke", "anne"]) == 0
    assert "1 live credential" in capsys.readouterr().out
    assert _principal(sqlite_url, secret) is None


def test_demo_admin_key_is_fresh_each_time(sqlite_url: str) -> None:
    async def go() -> tuple[str, str]:
        engine = create_engine(sqlite_url)
        try:
            sessions = session_factory(engine)
            return await auth.demo_admin_key(sessions), await auth.demo_admin_key(sessions)
        finally:
            await engine.dispose()

    first, second = asyncio.run(go())
    assert _principal(sqlite_url, first) is None  # re-keying revoked the older key
    admin = _principal(sqlite_url, second)
    assert admin is not None and admin.role == "admin"  # type: ignore[attr-defined]
