"""Ingest benchmark: AMI over TCP -> parse -> normalise -> state -> PostgreSQL.

    python bench/ingest.py [--events 200000] [--db postgresql://postgres@127.0.0.1/test]

For a stream built from the captures (>= --events events, fresh ids per copy, Timestamp
headers), filtered as manager.conf filters it and unfiltered (read = all, no filter):
- panoramisk's raw parse rate on the same bytes (its AMIProtocol.data_received);
- the service's end-to-end rate: from the first byte sent to every event durable in
  PostgreSQL (a scratch database), through the real AmiLink, Pipeline and EventWriter;
- their ratio (goal: >= 0.5 filtered, >= 0.25 unfiltered);
- event-to-durable latency percentiles (receive time to commit);
- lost events: rows in call_events vs the events the normaliser made (must be 0).

Talks only to 127.0.0.1; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser
from app.privacy import CallerPrivacy
from app.runtime import build_runtime, settle_heap
from app.settings import load_settings
from app.store import migrate
from bench.streams import build

CHUNK = 65536


def panoramisk_rate(data: bytes) -> tuple[float, int]:
    """Frames per second through panoramisk's own protocol parser."""
    from panoramisk.ami_protocol import AMIProtocol

    class Counter:
        n = 0

        def dispatch(self, message: Any) -> None:
            Counter.n += 1

    async def run() -> float:
        proto = AMIProtocol()
        proto.connection_made(None)
        proto.factory = Counter()
        proto.encoding = "utf-8"
        start = time.perf_counter()
        for i in range(0, len(data), CHUNK):
            proto.data_received(data[i : i + CHUNK])
        return time.perf_counter() - start

    best = min(asyncio.run(run()) for _ in range(3))
    Counter.n //= 3
    return Counter.n / best, Counter.n


def expected_events(data: bytes) -> int:
    """How many events the normaliser makes of this stream (what must land)."""
    parser = AmiParser()
    normaliser = Normaliser("bench", CallerPrivacy(b"b" * 32))
    now = datetime.now(UTC)
    return sum(
        1
        for item in parser.feed(data)
        if isinstance(item, AmiFrame) and normaliser.normalise(item, now) is not None
    )


async def _admin(url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def end_to_end(
    data: bytes, frames: int, server_url: str, rate: float = 0.0
) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    expected = expected_events(data)  # before the clock starts: it is a parse of its own
    name = f"acd_bench_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    db = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    db = db.replace("postgresql://", "postgresql+asyncpg://")
    try:
        await migrate.upgrade(db)
        # The previous run's rows out of PostgreSQL's buffers before this one starts, so
        # its checkpoint does not land on this run's clock.
        await _admin(server_url, "CHECKPOINT")
        return await _run(data, frames, db, expected, rate)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fake_asterisk(data: bytes, port_out: Any, started_out: Any, rate: float) -> None:
    """Child process: speaks just enough AMI, then streams ``data`` as fast as TCP takes
    it (``rate`` 0) or at ``rate`` events a second, from its own process as a real
    Asterisk would, answering actions (pings) between frames meanwhile."""

    streams: list[object] = []  # the stream is sent once, on the first link (a reconnect
    # after a missed ping must not send it again)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            fields = dict(x.split(": ", 1) for x in raw.decode().split("\r\n") if ": " in x)
            aid = fields.get("ActionID", "")
            action = fields.get("Action")
            head = f"Response: Success\r\nActionID: {aid}\r\n"
            if action == "Login":
                writer.write(f"{head}Message: Authentication accepted\r\n\r\n".encode())
            elif action in ("QueueStatus", "CoreShowChannels"):
                done = (
                    f"{action}Complete" if action == "QueueStatus" else "CoreShowChannelsComplete"
                )
                writer.write(
                    f"{head}EventList: start\r\n\r\nEvent: {done}\r\nActionID: {aid}\r\n"
                    "EventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                )
                if action == "CoreShowChannels" and not streams:
                    await writer.drain()
                    started_out.send(time.perf_counter())
                    if rate > 0:  # the stream beside the actions: pings are answered
                        streams.append(asyncio.create_task(_paced(writer, data, rate)))
                    else:
                        streams.append(asyncio.create_task(_blast(writer, data)))
            else:
                writer.write(f"{head}\r\n".encode())
            await writer.drain()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


async def _blast(writer: asyncio.StreamWriter, data: bytes) -> None:
    """As fast as TCP takes it, in blocks of whole frames of about CHUNK bytes, from a task
    of its own: the action loop beside it answers the service's pings between two blocks,
    as Asterisk does, however long the stream takes."""
    i = 0
    while i < len(data):
        if i + CHUNK >= len(data):
            end = len(data)
        else:  # the last frame end within the block (or after it, for a longer frame)
            end = data.rfind(b"\r\n\r\n", i, i + CHUNK)
            end = (end if end >= 0 else data.find(b"\r\n\r\n", i)) + 4
        writer.write(data[i:end])
        await writer.drain()
        i = end


async def _paced(writer: asyncio.StreamWriter, data: bytes, rate: float) -> None:
    """Whole frames at ``rate`` a second, a slice every 20 ms on an absolute schedule."""
    frames = data.split(b"\r\n\r\n")[:-1]
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k, i in enumerate(range(0, len(frames), per_tick)):
        await asyncio.sleep(max(0.0, start + k * per_tick / rate - loop.time()))
        writer.write(b"".join(f + b"\r\n\r\n" for f in frames[i : i + per_tick]))
        await writer.drain()


async def _run(
    data: bytes, frames: int, db: str, expected: int, rate: float = 0.0
) -> dict[str, Any]:
    # A spill directory of its own: a file left by an earlier, interrupted run would be
    # written into this run's database and spoil its counts.
    with tempfile.TemporaryDirectory(prefix="acd-bench-spill-") as spill_dir:
        return await _run_in(data, frames, db, expected, spill_dir, rate)


async def _run_in(
    data: bytes, frames: int, db: str, expected: int, spill_dir: str, rate: float
) -> dict[str, Any]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    port_rx, port_tx = ctx.Pipe(duplex=False)
    start_rx, start_tx = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_fake_asterisk, args=(data, port_tx, start_tx, rate), daemon=True)
    child.start()
    port = port_rx.recv()
    settings = load_settings(
        database_url=db,
        ami_host="127.0.0.1",
        ami_port=port,
        ami_secret="x",
        caller_hash_key="bench-hash-key-0123456789",
        spill_dir=spill_dir,
        agi_port=_free_port(),
        log_level="WARNING",
    )
    rt = build_runtime(settings)
    latencies: list[float] = []
    committed = 0
    all_durable = asyncio.Event()

    def on_commit(records: Any, _seconds: float) -> None:
        nonlocal committed
        now = datetime.now(UTC)
        for r in records:
            if type(r).__name__ == "EventRecord":
                committed += 1
                latencies.append((now - r.received_at).total_seconds())
        if committed >= expected:
            all_durable.set()

    rt.writer.on_commit = on_commit
    for c in rt.components:
        await c.start()
    settle_heap()  # as the service does once it is up
    try:
        loop = asyncio.get_running_loop()
        started = await asyncio.wait_for(loop.run_in_executor(None, start_rx.recv), 600)
        cpu0, pg0 = _own_cpu(), _postgres_cpu()
        # Durable = committed by the writer (counted in on_commit, no query: polling
        # COUNT(*) would load the database it measures); checked against the table below.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_durable.wait(), 600)
        elapsed = time.perf_counter() - started
        cpu, pg = _own_cpu() - cpu0, _postgres_cpu() - pg0
        await asyncio.sleep(0.5)
        rows = await _count(rt)
        spilled = rt.metrics.store_spilled._value.get()
    finally:
        for c in reversed(rt.components):
            with contextlib.suppress(Exception):
                await c.stop()
        child.terminate()  # our own child, by its handle
        child.join(5)
        # The service freezes what it has when it is up (settle_heap); a service process
        # runs once, but this one runs again: what this run froze must not stay frozen
        # (never collected) under the next (--repeat runs came out 5-15 % slower each).
        gc.unfreeze()
        gc.collect()
    lat = sorted(latencies)
    return {
        "elapsed": elapsed,
        "events_per_s": frames / elapsed,
        "expected": expected,
        "rows": rows,
        "lost": expected - rows,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
        "peak_rss_mb": _peak_rss_mb(),
        "service_us": 1e6 * cpu / frames,
        "postgres_us": 1e6 * pg / frames if pg >= 0 else float("nan"),
        "spilled": int(spilled),
    }


async def _count(rt: Any) -> int:
    from sqlalchemy import func, select

    from app.store.models import CallEvent

    async with rt.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(CallEvent))).scalar_one())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (backends, WAL writer,
    checkpointer), from /proc; -1 where that cannot be read."""
    total = 0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                    stat = fh.read()
            except OSError:
                continue
            head, _, tail = stat.rpartition(")")
            if head.endswith("(postgres"):
                fields = tail.split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError):
        return -1.0
    return total / tick


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument(
        "--db",
        default=os.environ.get(
            "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    p.add_argument("--only", choices=("filtered", "unfiltered"))
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="end-to-end runs per stream (a fresh database each); the fastest is reported, "
        "all are listed (a shared 2-core machine varies by some 10%% run to run)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="instead: send the filtered stream at this many events a second and report "
        "the event-to-durable latency and CPU at that load (e.g. 2000, the 100x day)",
    )
    args = p.parse_args()
    if args.rate > 0:
        return paced(args.events, args.rate, args.db)
    goals = {"filtered": 0.5, "unfiltered": 0.25}
    print(
        f"{'stream':<11} {'events':>8} {'MB':>6} {'panoramisk ev/s':>16} "
        f"{'end-to-end ev/s':>16} {'ratio':>6} {'goal':>5} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'lost':>5}"
    )
    failed = False
    for kind in ("filtered", "unfiltered"):
        if args.only and kind != args.only:
            continue
        data, frames = build(args.events, filtered=kind == "filtered")
        raw_rate, _ = panoramisk_rate(data)
        runs = [asyncio.run(end_to_end(data, frames, args.db)) for _ in range(args.repeat)]
        result = max(runs, key=lambda r: r["events_per_s"])
        if args.repeat > 1:
            print(
                f"{kind:<11} runs (ev/s): "
                + ", ".join(f"{r['events_per_s']:,.0f}" for r in runs)
                + f"; lost {max(r['lost'] for r in runs)}"
            )
        ratio = result["events_per_s"] / raw_rate
        ok = ratio >= goals[kind] and all(r["lost"] == 0 for r in runs)
        failed |= not ok
        print(
            f"{kind:<11} {frames:>8} {len(data) / 1e6:>6.1f} {raw_rate:>16,.0f} "
            f"{result['events_per_s']:>16,.0f} {ratio:>6.2f} {goals[kind]:>5.2f} "
            f"{result['p50_ms']:>7.1f} {result['p99_ms']:>7.1f} {result['lost']:>5}"
            f"  {'ok' if ok else 'BELOW GOAL'}"
        )
        print(
            f"{'':<11} normalised events written {result['rows']:,} of "
            f"{result['expected']:,}; wall {result['elapsed']:.1f} s; "
            f"peak RSS {result['peak_rss_mb']:.0f} MB; spilled {result['spilled']:,}"
        )
        print(
            f"{'':<11} CPU per event: service {result['service_us']:.1f} us, PostgreSQL "
            f"{result['postgres_us']:.1f} us; panoramisk's parse alone "
            f"{1e6 / raw_rate:.1f} us"
        )
    return 1 if failed else 0


def paced(events: int, rate: float, db: str) -> int:
    """The filtered stream at a steady ``rate``: how soon each event is durable."""
    data, frames = build(events, filtered=True)
    r = asyncio.run(end_to_end(data, frames, db, rate))
    print(
        f"paced at {rate:,.0f} ev/s: {frames:,} events in {r['elapsed']:.1f} s; "
        f"event-to-durable p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; "
        f"lost {r['lost']}; CPU per event: service {r['service_us']:.1f} us, "
        f"PostgreSQL {r['postgres_us']:.1f} us ({r['service_us'] * rate / 1e4:.1f} % of a "
        f"core for the service)"
    )
    return 1 if r["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
