"""The purge while a day of ten times Copenhagen's traffic is being written.

    python bench/purge.py [--db URL] [--old-days 20] [--calls 1556] [--load 10] [--keep]

Loads ``--old-days`` past days of ``--calls`` calls each (every caller with a real keyed
hash, AMI frames in the event log, call-backs with sealed numbers, voice messages on
disk), handles their tasks and counts their report tallies (final). Then writes a day of
``--load`` x ``--calls`` calls through the service's PostgreSQL writer backend as fast as
it takes them, twice: once alone, once with the purge (retention 1 day: every old day
goes) running beside it; meanwhile an API-like read (the newest 50 calls) every 50 ms.

Prints the purge's rows and rate, and for both runs the writer's batch latency (p50, p95,
max), its records/s and the read's latency: what the purge costs the writer and the API.
This 2-core box is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.messages import MessageFiles  # noqa: E402
from app.privacy import CallerPrivacy  # noqa: E402
from app.reports.rollup import ensure_days  # noqa: E402
from app.retention import RetentionConfig  # noqa: E402
from app.services import privacy as use  # noqa: E402
from app.store import callbacks as tasks  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.db import create_engine, session_factory  # noqa: E402
from app.store.models import Call, Callback  # noqa: E402
from app.store.writer import PostgresBackend, _group  # noqa: E402
from bench.day import admin  # noqa: E402
from tests.privacy_support import Day, load_day, personal, report_context, scripts_of_day  # noqa: E402
from tests.report_support import TZ, Centre, local  # noqa: E402

FIRST = date(2014, 10, 6)
BATCH = 2000  # records per writer batch (the writer's own batches are up to this size)
SHORT = RetentionConfig(
    **{k: (180 if k == "audit_log" else 1) for k in RetentionConfig.model_fields}
)


def say(*parts: object) -> None:
    print(*parts, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def records_of_day(day: date, calls: int, privacy: CallerPrivacy, msgs: Path) -> list:
    scripts, numbers = scripts_of_day(day, calls, seed=day.toordinal())
    holder = Day(day, scripts, numbers)
    centre = Centre(None, report_context().catalogue, live=False)
    for event in personal(scripts, numbers, privacy, msgs, holder):
        centre.tick(event.at)
        centre.apply(event)
    centre.tick(local(day, 23, 59))
    return centre.pending


async def ingest(url: str, records: list, stop_reads: asyncio.Event) -> dict[str, float]:
    backend = PostgresBackend(url)
    latencies: list[float] = []
    started = time.perf_counter()
    now = local(FIRST, 12)
    for i in range(0, len(records), BATCH):
        t = time.perf_counter()
        await backend.write(_group(records[i : i + BATCH]), now)
        latencies.append(time.perf_counter() - t)
        await asyncio.sleep(0)
    took = time.perf_counter() - started
    await backend.close()
    stop_reads.set()
    return {
        "records_s": len(records) / took,
        "p50": pct(latencies, 0.5),
        "p95": pct(latencies, 0.95),
        "max": max(latencies),
        "seconds": took,
    }


async def reads(url: str, stop: asyncio.Event) -> list[float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    out: list[float] = []
    try:
        while not stop.is_set():
            t = time.perf_counter()
            async with sessions() as session:
                await session.execute(
                    select(Call).order_by(Call.started_at.desc(), Call.id.desc()).limit(50)
                )
            out.append(time.perf_counter() - t)
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    return out


async def measure(url: str, args: argparse.Namespace, msgs: Path) -> None:
    privacy = CallerPrivacy(b"bench-purge-key-0123456789abcdef")
    ctx = report_context()
    old_days = [FIRST + timedelta(days=i) for i in range(args.old_days)]
    started = time.perf_counter()
    for day in old_days:
        await load_day(url, day, privacy, msgs, callers=args.calls)
    engine = create_engine(url)
    sessions = session_factory(engine)
    today = FIRST + timedelta(days=120)
    now = local(today, 20)  # the 10x days are today and tomorrow: not purged
    async with sessions.begin() as session:
        for row in (await session.execute(select(Callback))).scalars():
            tasks.complete(row, "reached", None, local(FIRST + timedelta(days=30), 12))
        await ensure_days(session, old_days, ctx, now)
    say(f"loaded {args.old_days} old days x {args.calls} calls in "
        f"{time.perf_counter() - started:.0f} s (tallies counted, final)")  # fmt: skip
    big = int(args.calls * args.load)
    load_a = await records_of_day(today, big, privacy, msgs)
    load_b = await records_of_day(today + timedelta(days=1), big, privacy, msgs)
    say(f"a {args.load}x day: {big:,} calls, {len(load_a):,} records to write")

    stop = asyncio.Event()
    read_task = asyncio.create_task(reads(url, stop))
    alone = await ingest(url, load_a, stop)
    alone_reads = await read_task

    stop = asyncio.Event()
    read_task = asyncio.create_task(reads(url, stop))
    files = MessageFiles(None, lambda: [str(msgs)])
    purge_task = asyncio.create_task(
        use.purge(
            sessions, retention=SHORT, now=now, tz=TZ, files=files,
            spill_dir=msgs / "spill", ctx=ctx,
        )
    )  # fmt: skip
    beside = await ingest(url, load_b, stop)
    with_reads = await read_task
    result = await purge_task
    await engine.dispose()
    rows = sum(result.counts.values())
    say(f"\npurge: {rows:,} rows/files in {result.seconds:.1f} s "
        f"({rows / max(result.seconds, 1e-9):,.0f}/s): "
        + ", ".join(f"{k} {v:,}" for k, v in result.counts.items() if v))  # fmt: skip
    say(
        "\nwriting the 10x day          records/s   batch p50   p95      max    "
        "read p50  p99     max"
    )
    for label, w, r in (("alone", alone, alone_reads), ("with the purge", beside, with_reads)):
        say(f"  {label:<26} {w['records_s']:>9,.0f}   {w['p50'] * 1e3:6.0f} ms "
            f"{w['p95'] * 1e3:5.0f} ms {w['max'] * 1e3:6.0f} ms  "
            f"{pct(r, 0.5) * 1e3:5.1f} ms {pct(r, 0.99) * 1e3:5.1f} ms "
            f"{(max(r) if r else 0) * 1e3:6.1f} ms")  # fmt: skip
    ratio = alone["records_s"] / beside["records_s"]
    say(
        f"\nthe writer ran at {1 / ratio:.0%} of its speed alone while the purge ran "
        f"(read p50 x{statistics.median(with_reads) / statistics.median(alone_reads):.2f})"
    )


async def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--db",
        default=os.environ.get(
            "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--old-days", type=int, default=20, help="past days to purge")
    p.add_argument("--calls", type=int, default=1556, help="calls a normal day")
    p.add_argument("--load", type=float, default=10.0, help="the day written meanwhile: x calls")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args()
    server = make_url(args.db.replace("postgresql://", "postgresql+asyncpg://", 1))
    name = f"acd_bench_purge_{uuid.uuid4().hex[:8]}"
    url = server.set(database=name).render_as_string(hide_password=False)
    admin_url = server.render_as_string(hide_password=False)
    await admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        await migrate.upgrade(url)
        with tempfile.TemporaryDirectory() as tmp:
            await measure(url, args, Path(tmp))
    finally:
        if args.keep:
            say(f"\nkept database {name}")
        else:
            await admin(admin_url, f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
