"""`acd users add/list/revoke/rotate/reactivate`, the demo's keys and database, and what
any command says about a database that is not migrated, on a real database."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.store import auth
from app.store import demo as demo_db
from app.store.agents import put_profile
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


def _agent(url: str, agent_id: str) -> None:
    async def go() -> None:
        engine = create_engine(url)
        try:
            async with session_factory(engine).begin() as s:
                await put_profile(s, agent_id, name="Anne", interface=f"PJSIP/{agent_id}",
                                  team=None, active=True, skills=())  # fmt: skip
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_users_add_list_revoke(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    _agent(sqlite_url, "agent1")
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
            return await auth.demo_key(sessions), await auth.demo_key(sessions)
        finally:
            await engine.dispose()

    first, second = asyncio.run(go())
    assert _principal(sqlite_url, first) is None  # re-keying revoked the older key
    admin = _principal(sqlite_url, second)
    assert admin is not None and admin.role == "admin"  # type: ignore[attr-defined]


def test_an_agent_user_names_an_agent_of_the_roster(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    assert main(["users", "add", "anne", "--role", "agent", "--agent", "agent9"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "no agent 'agent9' in the roster" in err and "PUT /v1/agents/agent9" in err
    assert main(["users", "list"]) == 0 and "anne" not in capsys.readouterr().out


def test_a_revoked_user_is_reactivated_and_a_key_is_rotated(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    assert main(["users", "add", "crm", "--role", "integration"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["users", "revoke", "crm"]) == 0
    capsys.readouterr()
    # A revoked user is not rotated by surprise; reactivate says what it does.
    assert main(["users", "rotate", "crm"]) == 2
    assert "`acd users reactivate crm`" in capsys.readouterr().err
    assert main(["users", "reactivate", "crm"]) == 0
    out, err = capsys.readouterr()
    second = out.strip()
    assert "reactivated" in err and _principal(sqlite_url, second) is not None
    assert _principal(sqlite_url, first) is None  # the old key stays dead
    assert main(["users", "reactivate", "crm"]) == 2
    assert "is active" in capsys.readouterr().err
    # Rotation: a new key, every older credential (key and bearer tokens) revoked.
    assert main(["users", "rotate", "crm", "--bearer"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "1 older credential(s) revoked" in err
    assert main(["users", "rotate", "crm", "--expires-days", "30"]) == 0
    third = capsys.readouterr().out.strip()
    assert _principal(sqlite_url, second) is None
    assert _principal(sqlite_url, token, "bearer") is None
    assert _principal(sqlite_url, third) is not None
    assert main(["users", "rotate", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_a_bearer_token_lives_as_long_as_the_token_endpoint_gives(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("ACD_TOKEN_TTL_MINUTES", "90")
    before = datetime.now(UTC)
    assert main(["users", "add", "ops", "--role", "admin", "--bearer"]) == 0
    assert "expires" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out
    until = datetime.fromisoformat(listing.split("expires ")[1].split()[0])
    assert timedelta(minutes=89) < until - before < timedelta(minutes=91)
    # Longer than the endpoint's tokens: refused, with the way to a long-lived key.
    assert main(["users", "rotate", "ops", "--bearer", "--expires-hours", "2"]) == 2
    err = capsys.readouterr().err
    assert "ACD_TOKEN_TTL_MINUTES (90 min)" in err and "without --bearer" in err
    assert main(["users", "rotate", "ops", "--bearer", "--expires-hours", "1"]) == 0


def test_commands_on_a_database_that_is_not_migrated_say_so_in_one_line(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    for url, says in (
        (f"sqlite:///{tmp_path / 'none.db'}", "does not exist"),
        (f"sqlite:///{empty}", "is not migrated (it has no schema)"),
    ):
        monkeypatch.setenv("ACD_DATABASE_URL", url)
        assert main(["users", "list"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert says in err and "acd migrate`" in err
    assert not (tmp_path / "none.db").exists()  # not created by looking
    # One revision behind (PostgreSQL): the revision it is at and the one needed.
    from alembic.script import ScriptDirectory

    from app.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(pg_url)).get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    monkeypatch.setenv("ACD_DATABASE_URL", pg_url)
    try:
        assert main(["migrate", "--downgrade", head.down_revision]) == 0
        capsys.readouterr()
        assert main(["users", "add", "x", "--role", "admin"]) == 2
        err = capsys.readouterr().err
        says = f"at revision {head.down_revision}, this version needs {head.revision}"
        assert says in err and err.count("\n") == 1, err
    finally:
        # The session's database is shared by the tests after this one.
        assert main(["migrate"]) == 0
    # A database that is not there at all: one line too.
    monkeypatch.setenv("ACD_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["users", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acd: cannot reach the database") and err.count("\n") == 1, err


def test_serve_on_a_database_that_is_not_migrated_stops_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    env["ACD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'new.db'}"
    for name in ("ACD_HTTP_PORT", "ACD_AGI_PORT"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            env[name] = str(s.getsockname()[1])
    run = subprocess.run([sys.executable, "-m", "app", "serve"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"acd: the database sqlite+aiosqlite:///{tmp_path / 'new.db'} does not exist: run "
        f"`ACD_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'new.db'} acd migrate` "
        "(or start with `acd serve --migrate`)"
    ]


def test_a_demo_wipes_only_its_own_database(sqlite_url: str, tmp_path: Path) -> None:
    path = Path(sqlite_url.split("///", 1)[1])
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(demo_db.DemoDatabaseError, match="not a demo database"):
        demo_db.wipe(path, spill)  # migrated, but no demo-admin: someone else's
    assert path.exists() and spill.exists()

    async def make_demo() -> None:
        engine = create_engine(sqlite_url)
        try:
            await auth.demo_key(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(make_demo())
    assert demo_db.is_demo_database(path)
    demo_db.wipe(path, spill)
    assert not path.exists() and not spill.exists()
    assert not Path(f"{path}-wal").exists()
    demo_db.wipe(path, spill)  # nothing there: nothing to do
