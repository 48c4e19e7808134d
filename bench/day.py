"""A working day through the whole service: simulated PBX -> AMI + FastAGI -> PostgreSQL.

    python bench/day.py [--scales 1,10,100] [--seed 7] [--db URL] [--redis URL]

For each scale (1 = Copenhagen's ~1,550 calls a day) the service runs as its own process
(`python -m app serve`, PostgreSQL in a scratch database, Redis), the simulator in this
process plays the day in fast mode with back-pressure (virtual time waits for the service
to read its AMI events), so the day goes exactly as fast as the service takes it.

Reports: wall time, calls/s, AMI events/s, the service's peak memory (VmHWM), the
simulator-alone throughput on the same plan (the trivial stub FastAGI service, no AMI
client) and the ratio, and lost calls: every simulated call must have exactly one call
row with the outcome the simulator knows it had.

Talks only to 127.0.0.1; stops the service it started (by PID) and itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.acd.model import default_agent_id  # noqa: E402
from app.sim import StubIvr, TrafficConfig  # noqa: E402
from app.sim.harness import simulator, wait_logged_in  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.db import create_engine, session_factory  # noqa: E402
from app.store.models import Call  # noqa: E402

FLOWS = ROOT / "ivr_flows"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def admin(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Run:
    scale: float
    calls: int
    wall: float
    events: int
    peak_mb: float
    lost: int
    wrong: int
    examples: list[Any]


async def sim_alone(traffic: TrafficConfig) -> float:
    """Calls/s of the simulator on the same plan with the stub FastAGI service and no
    AMI client: what the simulator can do by itself."""
    from app.sim.simulate import flow_key_planner

    stub = StubIvr(flow_key_planner(FLOWS).mapping)
    await stub.start()
    try:
        async with simulator(FLOWS, stub.port, traffic, backpressure=False) as simulation:
            result = await simulation.sim.run_day(simulation.plan, simulation.keys)
        return result.calls / result.real_seconds
    finally:
        await stub.stop()


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def one_day(
    scale: float,
    seed: int,
    pg_server: str,
    redis_url: str,
    hours: tuple[float, float] | None = None,
) -> Run:
    name = f"acd_day_{uuid.uuid4().hex[:8]}"
    await admin(pg_server, f'CREATE DATABASE "{name}"')
    db = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    db = db.replace("postgresql://", "postgresql+asyncpg://")
    proc: asyncio.subprocess.Process | None = None
    logdir = Path(tempfile.mkdtemp(prefix="acd-day-"))
    try:
        await migrate.upgrade(db)
        traffic = TrafficConfig(seed=seed, calls_scale=scale, hours=hours)
        agi_port, http_port = free_port(), free_port()
        async with simulator(FLOWS, agi_port, traffic) as simulation:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
            env.update(
                {
                    "ACD_DATABASE_URL": db,
                    "ACD_REDIS_URL": redis_url,
                    "ACD_AMI_HOST": "127.0.0.1",
                    "ACD_AMI_PORT": str(simulation.ami_port),
                    "ACD_AMI_USERNAME": "acd",
                    "ACD_AMI_SECRET": "acdsecret",
                    "ACD_AGI_PORT": str(agi_port),
                    "ACD_HTTP_PORT": str(http_port),
                    "ACD_IVR_FLOWS": str(FLOWS),
                    "ACD_CALLER_HASH_KEY": "bench-day-key-0123456789",
                    "ACD_SPILL_DIR": str(logdir),
                    "ACD_LOG_LEVEL": "WARNING",
                }
            )
            with (logdir / "service.log").open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "app",
                    "serve",
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
            await wait_logged_in(simulation.sim, within=60)
            await ready(http_port)
            started = time.perf_counter()
            result = await simulation.sim.run_day(simulation.plan, simulation.keys)
            truth = {t.linkedid: t for t in result.truth}
            await settled(db, len(truth), within=600)
            wall = time.perf_counter() - started
            peak = peak_rss_mb(proc.pid)
        rows = await call_rows(db)
        lost = len(set(truth) - set(rows)) + len(set(rows) - set(truth))
        wrong = 0
        examples: list[Any] = []
        for lid, t in truth.items():
            r = rows.get(lid)
            if r is None:
                continue
            want = (
                t.outcome,
                t.queues[0] if t.queues else None,
                default_agent_id(t.agent) if t.agent else None,
            )
            if (r.outcome, r.queue, r.agent) != want:
                wrong += 1
                if len(examples) < 5:
                    examples.append((lid, (r.outcome, r.queue, r.agent), want, t.detail))
        return Run(scale, len(truth), wall, result.events, peak, lost, wrong, examples)
    finally:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # the service we started, by its handle
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def ready(port: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError("the service did not become ready")


async def settled(db: str, expected: int, within: float) -> None:
    """Until every call has its row with an outcome (or the time is up)."""
    engine = create_engine(db)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with session_factory(engine)() as s:
                n = (
                    await s.execute(
                        select(func.count()).select_from(Call).where(Call.outcome.is_not(None))
                    )
                ).scalar_one()
            if n >= expected:
                return
            await asyncio.sleep(0.25)
    finally:
        await engine.dispose()


async def call_rows(db: str) -> dict[str, Call]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as s:
            return {r.linkedid: r for r in (await s.execute(select(Call))).scalars()}
    finally:
        await engine.dispose()


def main() -> int:
    # SIGTERM as Ctrl-C: the run unwinds, stops the service it started and drops its
    # scratch database (a plain SIGTERM would leave both behind).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scales", default="1,10,100")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--db",
        default=os.environ.get(
            "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    p.add_argument(
        "--redis", default=os.environ.get("ACD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    p.add_argument(
        "--no-alone",
        action="store_true",
        help="skip the simulator-alone run (its column shows '-'); for long scales",
    )
    p.add_argument(
        "--hours",
        metavar="FROM-TO",
        help="only the arrivals of these local hours, e.g. 9-10 (the busiest hour)",
    )
    args = p.parse_args()
    hours: tuple[float, float] | None = None
    if args.hours:
        start, _, end = args.hours.partition("-")
        hours = (float(start), float(end))
    print(
        f"{'scale':>5} {'calls':>8} {'wall s':>8} {'calls/s':>8} {'events/s':>9} "
        f"{'sim alone c/s':>13} {'ratio':>6} {'peak MB':>8} {'lost':>5} {'wrong':>6}"
    )
    failed = False
    for scale in (float(x) for x in args.scales.split(",")):
        traffic = TrafficConfig(seed=args.seed, calls_scale=scale, hours=hours)
        alone = None if args.no_alone else asyncio.run(sim_alone(traffic))
        run = asyncio.run(one_day(scale, args.seed, args.db, args.redis, hours))
        rate = run.calls / run.wall
        alone_s = "-" if alone is None else f"{alone:.1f}"
        ratio_s = "-" if alone is None else f"{rate / alone:.2f}"
        print(
            f"{scale:>5g} {run.calls:>8,} {run.wall:>8.1f} {rate:>8.1f} "
            f"{run.events / run.wall:>9,.0f} {alone_s:>13} {ratio_s:>6} "
            f"{run.peak_mb:>8.0f} {run.lost:>5} {run.wrong:>6}",
            flush=True,
        )
        for example in run.examples:
            print("      mismatch:", example)
        failed |= run.lost > 0 or run.wrong > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
