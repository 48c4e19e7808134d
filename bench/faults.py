"""The simulated day through the service on PostgreSQL with, in turn, each fault a real
week brings; after each, every call row compared with the simulator's truth.

    python bench/faults.py [--faults postgresql,ami_cut,kill9,redis,hostile]
                           [--scale 1] [--hours 9-11] [--seed 7]
                           [--pg-outage 120] [--redis-outage 60] [--cut 30] [--down 150]
                           [--db URL] [--redis URL] [--json FILE]

Each fault gets a fresh database and a fresh service process (``python -m app serve``);
the simulated PBX plays the day in this process, as fast as the service reads its AMI
events:

``postgresql``  the database is on a PostgreSQL server of the run's own, stopped
                (``pg_ctl stop -m fast``) for ``--pg-outage`` wall seconds a quarter into
                the day, then started again; the day goes on meanwhile;
``ami_cut``     the AMI link is cut for ``--cut`` virtual seconds a quarter into the day
                (a TCP proxy between service and PBX refuses it meanwhile; FastAGI goes
                on);
``kill9``       the service gets SIGKILL a quarter into the day and is started again;
                it cannot see the PBX for ``--down`` virtual seconds;
``redis``       the live mirror's Redis (a server of the run's own) is stopped for
                ``--redis-outage`` wall seconds;
``hostile``     all day, the PBX sends values no column holds as they are: 100-character
                Linkedids (a long systemname), ``Cause: 99999``, 200-character caller
                names, 23-digit queue positions.

For each: the calls, how many arrived during the fault, and every row against the truth:
lost, duplicated, open (no outcome), wrong flagged ``data_gap`` / NOT flagged, right; the
service's peak memory; a few examples of each kind of silent error. The goal for every
fault: 0 lost, 0 duplicated, 0 open, 0 wrong without the flag. Exit status 1 if a fault
misses it.

Talks only to 127.0.0.1; stops every server and service it started (by PID or data
folder) and drops its databases.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.sim.compare import Comparison  # noqa: E402
from app.sim.runner import load_queues  # noqa: E402
from app.sim.traffic import TrafficConfig, plan_day  # noqa: E402
from app.store import migrate  # noqa: E402
from tests.conftest import OwnPostgres  # noqa: E402
from tests.fault_support import Fault, run_fault_day, scratch_database  # noqa: E402
from tests.outage_support import Outage, OwnRedis, hostile, run_day  # noqa: E402

FAULTS = ("postgresql", "ami_cut", "kill9", "redis", "hostile")
FLOWS = ROOT / "ivr_flows"


def first_quarter(traffic: TrafficConfig) -> float:
    """A quarter into the day's arrivals (virtual epoch seconds)."""
    plan = plan_day(load_queues(FLOWS / "queues.yaml"), traffic)
    first, last = plan.arrivals[0].at, plan.arrivals[-1].at
    return first + (last - first) / 4


def row(name: str, c: Comparison, during: int | str, wall: float, peak: float) -> str:
    return (
        f"{name:<11} {c.calls:>6} {during!s:>7} {len(c.lost):>5} {len(c.duplicated):>5} "
        f"{len(c.open):>5} {len(c.wrong_flagged):>8} {len(c.wrong_unflagged):>8} "
        f"{c.right:>6} {wall:>7.0f} {peak:>7.0f}"
    )


HEADER = (
    f"{'fault':<11} {'calls':>6} {'during':>7} {'lost':>5} {'dup':>5} {'open':>5} "
    f"{'wrong:gap':>8} {'wrong:NO':>8} {'right':>6} {'wall s':>7} {'peak MB':>7}"
)


async def one(name: str, args: argparse.Namespace, traffic: TrafficConfig) -> dict[str, Any]:
    at = first_quarter(traffic)
    workdir = Path(tempfile.mkdtemp(prefix=f"acd-fault-{name}-"))
    print(f"--- {name} (service log {workdir / 'service.log'})", flush=True)
    t0 = time.perf_counter()
    if name == "postgresql":
        own = await asyncio.to_thread(OwnPostgres)
        try:
            await migrate.upgrade(own.url)
            run = await run_day(
                own.url,
                traffic,
                workdir=workdir,
                redis_url=args.redis,
                outages=[Outage(name, at, args.pg_outage, own.stop, own.start)],
                settle_within=args.settle,
            )
        finally:
            await asyncio.to_thread(own.close)
        c, during, peak, summary = run.comparison, run.during(), run.peak_mb, run.summary()
    elif name == "redis":
        own_redis = await asyncio.to_thread(OwnRedis)
        try:
            async with scratch_database(args.db) as db:
                run = await run_day(
                    db,
                    traffic,
                    workdir=workdir,
                    redis_url=own_redis.url,
                    outages=[Outage(name, at, args.redis_outage, own_redis.stop, own_redis.start)],
                    settle_within=args.settle,
                )
        finally:
            await asyncio.to_thread(own_redis.close)
        c, during, peak, summary = run.comparison, run.during(), run.peak_mb, run.summary()
    elif name == "hostile":
        async with scratch_database(args.db) as db:
            run = await run_day(
                db,
                traffic,
                workdir=workdir,
                redis_url=args.redis,
                prepare=hostile,
                settle_within=args.settle,
            )
        c, during, peak = run.comparison, "all", run.peak_mb
        summary = f"{run.summary()}\n  hostile values sent: {run.figures.get('hostile')}"
    else:
        fault = (
            Fault("ami_cut", at, args.cut) if name == "ami_cut" else Fault("kill9", at, args.down)
        )
        async with scratch_database(args.db) as db:
            fault_run = await run_fault_day(
                db, traffic, fault, workdir=workdir, redis_url=args.redis
            )
        c, peak, summary = fault_run.comparison, float("nan"), fault_run.summary()
        lo = fault.at
        hi = fault_run.gap[1] if fault_run.gap else fault.at + fault.seconds
        during = sum(1 for t in fault_run.day.truth if lo <= t.arrived <= hi)
        if fault_run.unknowable:
            summary += (
                "\n  unknowable (began and ended while the service was down): "
                f"{len(fault_run.unknowable)}"
            )
    wall = time.perf_counter() - t0
    print(summary, flush=True)
    return {
        "fault": name,
        "line": row(name, c, during, wall, peak),
        "clean": c.clean,
        "during": during,
        "wall_seconds": round(wall, 1),
        "peak_mb": None if peak != peak else round(peak, 1),
        **c.as_dict(),
    }


async def run(args: argparse.Namespace) -> int:
    hours = None
    if args.hours:
        lo, _, hi = args.hours.partition("-")
        hours = (float(lo), float(hi))
    traffic = TrafficConfig(
        date=dt.date.fromisoformat(args.date), seed=args.seed, calls_scale=args.scale, hours=hours
    )
    tz = ZoneInfo(traffic.timezone)
    start = dt.datetime.fromtimestamp(first_quarter(traffic), tz)
    print(
        f"the day {traffic.date} (scale {args.scale:g}, hours {args.hours or 'all'}, seed "
        f"{args.seed}); each fault begins at {start:%H:%M} (a quarter into the day)",
        flush=True,
    )
    results = []
    for name in args.faults.split(","):
        if name not in FAULTS:
            raise SystemExit(f"unknown fault {name!r}; one of {', '.join(FAULTS)}")
        try:
            results.append(await one(name, args, traffic))
        except Exception as exc:  # one fault's failure must not hide the others' figures
            print(f"{name}: the run failed: {type(exc).__name__}: {exc}", flush=True)
            results.append({"fault": name, "line": f"{name:<11} run failed", "clean": False})
    print()
    print(HEADER)
    for r in results:
        print(r["line"])
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(results, indent=2) + "\n")
    return 0 if all(r["clean"] for r in results) else 1


def main() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--faults", default=",".join(FAULTS))
    p.add_argument("--date", default="2014-11-04")
    p.add_argument("--scale", type=float, default=1.0, help="calls scale (1 = ~1,550 a day)")
    p.add_argument("--hours", metavar="FROM-TO", help="only these local hours' arrivals")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--pg-outage", type=float, default=120.0, help="wall seconds")
    p.add_argument("--redis-outage", type=float, default=60.0, help="wall seconds")
    p.add_argument("--cut", type=float, default=30.0, help="virtual seconds of AMI cut")
    p.add_argument("--down", type=float, default=150.0, help="virtual seconds down after kill -9")
    p.add_argument("--settle", type=float, default=300.0, help="seconds to wait for the rows")
    p.add_argument(
        "--db",
        default=os.environ.get(
            "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL server for the scratch databases (not the postgresql fault's)",
    )
    p.add_argument(
        "--redis", default=os.environ.get("ACD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    p.add_argument("--json", help="write the figures here too")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
