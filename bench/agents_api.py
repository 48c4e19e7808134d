"""Agents' API benchmark: what authentication, the audit log and AMI confirmation cost.

    python bench/agents_api.py [--db postgresql://postgres@127.0.0.1/test] [--n 400]

On a scratch PostgreSQL database (created and dropped here) and the simulated PBX over
TCP on 127.0.0.1:
- requests/s and latency of an open endpoint (``/health``) and of an authenticated,
  audited one (``GET /v1/work``: key lookup + audit row), in-process ASGI, sequential;
- latency of pause/unpause through the API: AMI QueuePause out, QueueMemberPause back,
  state moved, answer (p50/p95 over ``--n`` actions);
- the call-back dialer's decision for 5,000 open tasks and 100 free agents, and its
  database query for candidates.

Talks only to 127.0.0.1; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy.engine import make_url

from app.acd.dialer import Candidate, plan_dials
from app.main import create_app
from app.settings import load_settings, normalise_database_url
from app.sim.harness import wait_logged_in
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.store import auth, migrate
from app.store import callbacks as cbstore
from app.store.models import Callback

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, int(q * (len(s) - 1)))]


async def admin(sessions: object) -> str:
    async with sessions.begin() as s:  # type: ignore[attr-defined]
        await auth.add_user(s, "bench", "admin")
        _, secret = await auth.issue(s, "bench", "key", None)
    return secret


async def run(db: str, n: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    server = db.replace("postgresql+asyncpg://", "postgresql://")
    name = f"acd_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = normalise_database_url(
        make_url(server).set(database=name).render_as_string(hide_password=False)
    )
    try:
        await migrate.upgrade(url)
        await bench(url, n)
    finally:
        conn = await asyncpg.connect(server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def bench(url: str, n: int) -> None:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    agi = 0
    with tempfile.TemporaryDirectory() as tmp:
        config = PbxConfig(queues=queues, timestampevents=True, agi_address="127.0.0.1:1")
        users = {"acd": ManagerUser("acd", "acdsecret")}
        async with SimulatedPbx(config, mode="real", ami_port=0, users=users) as sim:
            settings = load_settings(
                database_url=url,
                ami_host="127.0.0.1",
                ami_port=sim.ami_port,
                ami_secret="acdsecret",
                agi_port=agi or _free_port(),
                ivr_flows=str(ROOT / "ivr_flows"),
                spill_dir=tmp,
                caller_hash_key="bench-caller-hash-key-0123456789",
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                rt = app.state.rt
                await wait_logged_in(sim)
                await rt.ami.wait_ready()
                headers = {"X-API-Key": await admin(rt.sessions)}
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as http:
                    for label, path, h in (
                        ("GET /health (open)", "/health", {}),
                        ("GET /v1/work (key + audit)", "/v1/work", headers),
                    ):
                        lat = []
                        t0 = time.perf_counter()
                        for _ in range(n):
                            t = time.perf_counter()
                            r = await http.get(path, headers=h)
                            lat.append(time.perf_counter() - t)
                            assert r.status_code == 200
                        wall = time.perf_counter() - t0
                        print(
                            f"{label:<30} {n / wall:>8.0f} req/s  p50 {pct(lat, 0.5):6.2f} ms"
                            f"  p95 {pct(lat, 0.95):6.2f} ms"
                        )
                    profile = {
                        "name": "Agent One",
                        "interface": "PJSIP/agent1",
                        "skills": [{"queue": "dagpenge"}, {"queue": "kontanthjaelp"}],
                    }
                    await http.put("/v1/agents/agent1", headers=headers, json=profile)
                    r = await http.post("/v1/agents/agent1/login", headers=headers)
                    assert r.status_code == 200, r.text
                    lat = []
                    for i in range(n):
                        path, body = (
                            ("/v1/agents/agent1/pause", {"reason": "lunch"})
                            if i % 2 == 0
                            else ("/v1/agents/agent1/unpause", None)
                        )
                        t = time.perf_counter()
                        r = await http.post(path, headers=headers, json=body)
                        lat.append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text
                    print(
                        f"{'pause/unpause, 2 queues':<30} {n:>5} actions  p50 "
                        f"{pct(lat, 0.5):6.2f} ms  p95 {pct(lat, 0.95):6.2f} ms  "
                        f"(AMI out, events back, state moved)"
                    )
                # The dialer: its decision, and its query over many open tasks.
                now = datetime.now(UTC)
                tasks = [
                    Candidate(
                        i,
                        "dagpenge" if i % 2 else "kontanthjaelp",
                        f"n{i % 3000}",
                        now - timedelta(seconds=i),
                    )
                    for i in range(5000)
                ]
                free = {f"PJSIP/a{i}": {"dagpenge", "kontanthjaelp"} for i in range(100)}
                t = time.perf_counter()
                picks = plan_dials(tasks, free, {"dagpenge": 3})
                decide = time.perf_counter() - t
                async with rt.sessions.begin() as s:
                    for c in tasks:
                        s.add(
                            Callback(
                                kind="callback", pbx="pbx1", linkedid=f"b{c.task_id}",
                                queue=c.queue, caller_hash=c.caller_hash, caller_display="x",
                                number_sealed="s", requested_at=c.requested_at,
                                due_at=now + timedelta(days=2), status="open", attempts=0,
                            )
                        )  # fmt: skip
                t = time.perf_counter()
                async with rt.sessions() as s:
                    found = await cbstore.dial_candidates(
                        s, ["dagpenge", "kontanthjaelp"], now, 3, timedelta(minutes=30)
                    )
                query = time.perf_counter() - t
                print(
                    f"{'dialer decision':<30} {len(tasks)} tasks, {len(free)} free agents: "
                    f"{len(picks)} dials in {1000 * decide:.1f} ms; candidate query "
                    f"({len(found)} rows) {1000 * query:.1f} ms"
                )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--db",
        default=os.environ.get(
            "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    p.add_argument("--n", type=int, default=400)
    args = p.parse_args()
    asyncio.run(run(args.db, args.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
