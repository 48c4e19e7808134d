"""Memory over time: simulated working days one after the other through one service
process, its memory and open calls after each day.

    python bench/soak.py [--days 3] [--scale 1] [--speed 0] [--seed 7] [--date 2014-11-03]
                         [--db URL] [--redis URL]

The service runs as its own process (``python -m app serve``, PostgreSQL in a scratch
database, Redis); one simulated PBX in this process plays ``--days`` consecutive working
days (every call through the real menu, queues and agents), the nights in between
included. ``--speed 0`` (default) plays as fast as the service takes it (the simulator
waits for the service to read its AMI events); ``--speed N`` plays at N times real time,
nights too (a week at 10x takes about 17 hours).

After each day (once every call of the day has its row with an outcome, or 10 minutes
have passed) prints: the day, its calls, the wall time, the service's resident memory
(VmRSS) now and at its peak (VmHWM), the call rows still without an outcome in the
database, the calls the service still holds as live (``/v1/calls/live``), and the
database's calls against the simulator's truth (missing). At the end: the memory growth
per day after the first ``--warmup`` days (flat means under 2 % of the memory a day).

Talks only to 127.0.0.1; stops the service it started (by its handle) and drops its
scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.acd.calendar import is_working_day  # noqa: E402
from app.sim import TrafficConfig  # noqa: E402
from app.sim.harness import simulator, wait_logged_in  # noqa: E402
from app.sim.runner import load_queues  # noqa: E402
from app.sim.traffic import plan_day  # noqa: E402
from app.store import auth  # noqa: E402
from app.store.db import create_engine, session_factory  # noqa: E402
from app.store.models import Call  # noqa: E402
from tests.fault_support import (  # noqa: E402
    FLOWS,
    ServiceProcess,
    free_port,
    scratch_database,
    service_env,
)

SERVER_DEFAULT = os.environ.get(
    "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_DEFAULT = os.environ.get("ACD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def proc_mb(pid: int | None, field_name: str) -> float:
    """VmRSS / VmHWM of a process, in MB."""
    with contextlib.suppress(OSError, TypeError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def count_rows(db: str) -> tuple[int, int]:
    """(call rows, of them without an outcome)."""
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as s:
            total = (await s.execute(select(func.count()).select_from(Call))).scalar_one()
            no_outcome = Call.outcome.is_(None)
            open_ = (
                await s.execute(select(func.count()).select_from(Call).where(no_outcome))
            ).scalar_one()
        return int(total), int(open_)
    finally:
        await engine.dispose()


async def settled(db: str, expected: int, within: float) -> bool:
    """Until ``expected`` calls have a row with an outcome (or the time is up)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows, open_ = await count_rows(db)
        if rows - open_ >= expected:
            return True
        await asyncio.sleep(0.5)
    return False


def working_days(first: dt.date, n: int) -> list[dt.date]:
    out, day = [], first
    while len(out) < n:
        if is_working_day(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


async def viewer_key(db: str) -> str:
    engine = create_engine(db)
    try:
        async with session_factory(engine).begin() as session:
            await auth.add_user(session, "soak", "integration")
            _, secret = await auth.issue(session, "soak", "key", None)
    finally:
        await engine.dispose()
    return secret


async def live_calls(base: str, key: str) -> int:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=10) as c:
        r = await c.get("/v1/calls/live")
        return len(r.json()["calls"]) if r.status_code == 200 else -1


async def run(args: argparse.Namespace) -> int:
    days = working_days(dt.date.fromisoformat(args.date), args.days)
    queues = load_queues(FLOWS / "queues.yaml")
    plans = [
        plan_day(queues, TrafficConfig(date=d, seed=args.seed + i, calls_scale=args.scale))
        for i, d in enumerate(days)
    ]
    mode = "fast" if args.speed <= 0 else "real"
    speed = 1.0 if args.speed <= 0 else args.speed
    print(
        f"{args.days} working days from {days[0]}, scale {args.scale:g}, "
        f"{'as fast as the service takes it' if mode == 'fast' else f'speed {speed:g}x'}",
        flush=True,
    )
    print(
        f"{'day':>3} {'date':>10} {'calls':>6} {'wall s':>7} {'RSS MB':>7} {'peak MB':>8} "
        f"{'open rows':>9} {'live':>5} {'missing':>7}",
        flush=True,
    )
    rss: list[float] = []
    failed = False
    workdir = Path(tempfile.mkdtemp(prefix="acd-soak-"))
    async with scratch_database(args.db) as db:
        key = await viewer_key(db)
        agi_port, http_port = free_port(), free_port()
        async with simulator(
            FLOWS, agi_port, plans[0].config, mode=mode, speed=speed
        ) as simulation:
            env = service_env(
                db,
                ami_port=simulation.ami_port,
                agi_port=agi_port,
                http_port=http_port,
                spill_dir=workdir,
                redis_url=args.redis,
                extra={"ACD_LOG_LEVEL": "WARNING", "ACD_REPORT_ARCHIVE": "false"},
            )
            service = ServiceProcess(env, http_port, workdir / "service.log")
            base = f"http://127.0.0.1:{http_port}"
            try:
                await service.start()
                await wait_logged_in(simulation.sim, within=60)
                await service.ready()
                pid = service.proc.pid if service.proc else None
                before = proc_mb(pid, "VmRSS")
                print(f"  0 {'start':>10} {'':>6} {'':>7} {before:7.0f}", flush=True)
                for n, plan in enumerate(plans, 1):
                    t0 = time.perf_counter()
                    result = await simulation.sim.run_day(plan, simulation.keys)
                    total = len(result.truth)
                    ok = await settled(db, total, within=600)
                    wall = time.perf_counter() - t0
                    rows, open_rows = await count_rows(db)
                    await asyncio.sleep(2.5)  # the live picture is rebuilt every second
                    live = await live_calls(base, key)
                    now_mb = proc_mb(pid, "VmRSS")
                    rss.append(now_mb)
                    missing = total - (rows - open_rows)
                    failed |= not ok or missing != 0 or open_rows != 0
                    print(
                        f"{n:>3} {plan.day.isoformat():>10} {result.calls:>6,} {wall:>7.1f} "
                        f"{now_mb:>7.0f} {proc_mb(pid, 'VmHWM'):>8.0f} {open_rows:>9} "
                        f"{live:>5} {missing:>7}",
                        flush=True,
                    )
            finally:
                await service.stop()
    print(f"service log: {workdir / 'service.log'}")
    if len(rss) > args.warmup:
        settled_rss = rss[args.warmup - 1 :] if args.warmup > 0 else rss
        per_day = (settled_rss[-1] - settled_rss[0]) / max(len(settled_rss) - 1, 1)
        share = per_day / settled_rss[0]
        flat = share < 0.02
        print(
            f"after {args.warmup} warm-up day(s): {per_day:+.1f} MB a day ({share:+.1%}); "
            f"{'flat' if flat else 'GROWING'}"
        )
    return 1 if failed else 0


def main() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--days", type=int, default=3, help="working days to play (default 3)")
    p.add_argument("--scale", type=float, default=1.0, help="calls scale (1 = ~1,550 a day)")
    p.add_argument("--speed", type=float, default=0.0, help="0: as fast as possible; N: N x")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--date", default="2014-11-03", help="the first day (working days on)")
    p.add_argument("--warmup", type=int, default=1, help="days before memory must be flat")
    p.add_argument("--db", default=SERVER_DEFAULT, help="PostgreSQL server (a scratch db)")
    p.add_argument("--redis", default=REDIS_DEFAULT)
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
