"""The privacy API against PostgreSQL: voice messages heard only through an authorised,
audited call (a team leader any, an agent its own queues'), the message folder checked at
start (``/ready``), a citizen's export and erasure through the admin API, audited with the
reason and never the number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.store.db import create_engine, session_factory
from app.store.models import AuditLog, Callback
from tests.work_support import office

NUMBER = "+4520557788"


async def _message_task(url: str, folder: Path, queue: str, name: str) -> int:
    """A message task from the menu, with its recording on disk."""
    (folder / f"{name}.wav").write_bytes(b"RIFF....WAVEfmt " + name.encode())
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            row = Callback(
                kind="message", pbx="pbx1", linkedid=f"17000000{len(name)}.{name}", queue=queue,
                caller_hash="c" * 32, caller_display="+45 ••••••88", number_sealed=None,
                requested_at=now, due_at=now + timedelta(days=2), status="open",
                recording=f"/var/spool/asterisk/acd-messages/{name}",
            )  # fmt: skip
            session.add(row)
            await session.flush()
            return row.id
    finally:
        await engine.dispose()


async def _audit(url: str, action: str) -> list[AuditLog]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(AuditLog).where(AuditLog.action == action))
            return list(rows.scalars())
    finally:
        await engine.dispose()


async def test_a_voice_message_is_heard_only_by_whom_it_is_for(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "messages"
    folder.mkdir()
    async with office(pg_url, tmp_path, message_dir=str(folder)) as o:
        ready = (await o.http.get("/ready")).json()
        assert ready["parts"]["messages"]["ok"] is True
        mine = await _message_task(pg_url, folder, "dagpenge", "1700000001_1")
        other = await _message_task(pg_url, folder, "sygedagpenge", "1700000002_2")
        listed = await o.http.get(f"/v1/callbacks/{mine}", headers=o.who["agent1"])
        assert listed.json()["has_message"] is True and listed.json()["note"] is None
        heard = await o.http.get(f"/v1/callbacks/{mine}/message", headers=o.who["agent1"])
        assert heard.status_code == 200, heard.text
        assert heard.content.endswith(b"1700000001_1")
        assert heard.headers["content-type"] == "audio/wav"
        assert heard.headers["cache-control"] == "no-store"
        # Not its queue: refused; a team leader of another team hears any.
        refused = await o.http.get(f"/v1/callbacks/{other}/message", headers=o.who["agent1"])
        assert refused.status_code == 403
        led = await o.http.get(f"/v1/callbacks/{other}/message", headers=o.who["sup_syd"])
        assert led.status_code == 200
        # An integration that only reads may not listen.
        integ = await o.http.get(f"/v1/callbacks/{mine}/message", headers=o.who["integ"])
        assert integ.status_code == 403
        # No path of the folder is served: only a task's id reaches a file.
        for guess in ("/messages/1700000001_1.wav", "/v1/callbacks/1700000001_1.wav"):
            assert (await o.http.get(guess, headers=o.who["admin"])).status_code in (404, 422)
    rows = await _audit(pg_url, "callback.message")
    assert [(r.actor, r.status_code, r.target) for r in rows] == [
        ("agent1", 200, f"callback:{mine}"),
        ("agent1", 403, f"callback:{other}"),
        ("sup_syd", 200, f"callback:{other}"),
        ("integ", 403, f"callback:{mine}"),
    ]


async def test_a_missing_message_folder_is_found_at_start(pg_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    async with office(pg_url, tmp_path, message_dir=str(missing)) as o:
        r = await o.http.get("/ready")
        assert r.status_code == 503
        part = r.json()["parts"]["messages"]
        assert part["ok"] is False and part["state"] == "missing" and part["required"] is True
        assert part["detail"]["problems"] == {str(missing): "missing"}


async def test_export_and_erase_through_the_admin_api(pg_url: str, tmp_path: Path) -> None:
    async with office(pg_url, tmp_path) as o:
        made = await o.http.post(
            "/v1/callbacks",
            headers=o.who["admin"],
            json={"queue": "dagpenge", "number": NUMBER, "note": "ring efter kl. 10"},
        )
        assert made.status_code == 201
        body = {"caller": "20 55 77 88", "reason": "sag 2026-0042"}
        r = await o.http.post("/v1/privacy/export", headers=o.who["admin"], json=body)
        assert r.status_code == 200, r.text
        assert r.json()["caller"] == "+45 ••••••88"
        assert [t["note"] for t in r.json()["callbacks"]] == ["ring efter kl. 10"]
        bad = await o.http.post(
            "/v1/privacy/erase", headers=o.who["admin"], json={"caller": "20557788"}
        )
        assert bad.status_code == 422  # no reason, nothing erased
        r = await o.http.post("/v1/privacy/erase", headers=o.who["admin"], json=body)
        assert r.status_code == 200 and r.json()["counts"]["callbacks"] == 1
        again = await o.http.post("/v1/privacy/export", headers=o.who["admin"], json=body)
        assert again.json()["callbacks"] == [] and again.json()["calls"] == []
        task = await o.http.get(f"/v1/callbacks/{made.json()['id']}", headers=o.who["admin"])
        assert task.json()["caller"] == "slettet" and task.json()["status"] == "cancelled"
        purge = await o.http.post(
            "/v1/privacy/purge", headers=o.who["admin"], json={"dry_run": True}
        )
        assert purge.status_code == 200 and purge.json()["dry_run"] is True
    rows = await _audit(pg_url, "privacy.erase")
    assert [(r.actor, r.status_code) for r in rows] == [("admin", 422), ("admin", 200)]
    assert rows[1].detail is not None and rows[1].detail["reason"] == "sag 2026-0042"
    assert rows[1].detail["counts"]["callbacks"] == 1
    everything = str([(r.target, r.detail) for r in await _audit(pg_url, "privacy.export")])
    assert "20557788" not in everything and "557788" not in everything + str(rows[1].detail)


def test_serve_refuses_to_start_without_a_caller_hash_key(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    env["ACD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'k.db'}"
    for name in ("ACD_HTTP_PORT", "ACD_AGI_PORT"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            env[name] = str(s.getsockname()[1])
    migrated = subprocess.run([sys.executable, "-m", "app", "migrate"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    run = subprocess.run([sys.executable, "-m", "app", "serve"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.startswith("acd: ACD_CALLER_HASH_KEY is not set"), run.stderr
    assert run.stdout == ""
