"""The event writer through a long database outage: how much memory it takes, and gives
back.

    python bench/outage.py [--rate 3000] [--outage 60] [--before 10] [--after 20]

A throwaway PostgreSQL server (initdb + pg_ctl, on a free port, removed at the end) takes
the service's own writer (``EventWriter`` + ``PostgresBackend``, the spill file in a
temporary folder). Records, the recorded captures' mix of events, calls, visits and agent
states under fresh keys, are submitted at ``--rate`` a second throughout. After
``--before`` seconds the server is stopped (``pg_ctl stop -m fast``) for ``--outage``
seconds, then started again; the run ends ``--after`` seconds after the spill file has
been written back.

Prints the process's resident memory (VmRSS) before, at its peak during the outage, at the
end of the outage, and after the catch-up; the figures as ratios of the one before; how
often the spill file was read while the database was away; and checks that every record
submitted is in the database exactly once (events and agent states counted).

Talks only to 127.0.0.1; stops the server it started (by its data folder) and itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.acd.records import (  # noqa: E402
    AgentStateRecord,
    CallRecord,
    EventRecord,
    Record,
    VisitRecord,
)
from app.metrics import Metrics  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store import writer as writer_module  # noqa: E402
from app.store.writer import EventWriter, PostgresBackend, SpillFile  # noqa: E402
from tests.ami_replay import SCENARIOS, replay_pure  # noqa: E402
from tests.conftest import OwnPostgres  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def template() -> list[Record]:
    """The captures' records, each event and agent state once (some captures share
    frames, which the log stores once)."""
    out: list[Record] = []
    seen: set[tuple[type, str]] = set()
    for name in SCENARIOS:
        for r in replay_pure(name).records:
            if isinstance(r, EventRecord | AgentStateRecord):
                if (type(r), r.event_key) in seen:
                    continue
                seen.add((type(r), r.event_key))
            out.append(r)  # type: ignore[arg-type]
    return out


def copy_of(records: list[Record], n: int) -> list[Record]:
    """The template under fresh keys: copy ``n`` is new rows everywhere."""
    out: list[Record] = []
    shift = timedelta(minutes=n)
    for r in records:
        if isinstance(r, EventRecord):
            out.append(
                r._replace(
                    event_key=f"{n}.{r.event_key}"[:64],
                    linkedid=None if r.linkedid is None else f"{n}.{r.linkedid}",
                    at=r.at + shift,
                    # Each event its own dicts, as the normaliser makes them.
                    data=dict(r.data),
                    raw=None if r.raw is None else dict(r.raw),
                )
            )
        elif isinstance(r, AgentStateRecord):
            out.append(replace(r, event_key=f"{n}.{r.event_key}"[:64], at=r.at + shift))
        elif isinstance(r, CallRecord | VisitRecord):
            out.append(replace(r, linkedid=f"{n}.{r.linkedid}"))
        else:
            out.append(r)
    return [r for r in out if not isinstance(r, CallRecord | VisitRecord) or r.linkedid]


async def counts(url: str) -> tuple[int, int]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        events = await conn.fetchval("SELECT count(*) FROM call_events")
        agents = await conn.fetchval("SELECT count(*) FROM agent_state_changes")
    finally:
        await conn.close()
    return int(events), int(agents)


class ReadCounter:
    """Counts the spill file's reads (each decodes up to a batch of records)."""

    def __init__(self) -> None:
        self.reads = 0
        self.during = 0
        self.outage = False
        original = SpillFile.read

        def read(spill: SpillFile, *args: Any, **kw: Any) -> Any:
            self.reads += 1
            if self.outage:
                self.during += 1
            return original(spill, *args, **kw)

        SpillFile.read = read  # type: ignore[method-assign]


async def run(args: argparse.Namespace, own: OwnPostgres) -> int:
    reads = ReadCounter()
    if args.keep_heap:  # to see what giving the memory back does
        writer_module.release_memory = lambda: None
    await migrate.upgrade(own.url)
    base = template()
    tmp = Path(tempfile.mkdtemp(prefix="acd-outage-"))
    writer = EventWriter(PostgresBackend(own.url), Metrics(), tmp / "spill.jsonl")
    await writer.start()
    submitted_events = submitted_agents = 0
    n = 0
    stop = False

    async def feed() -> None:
        nonlocal n, submitted_events, submitted_agents
        tick = 0.05
        per_tick = args.rate * tick
        due = 0.0
        pool: list[Record] = []
        while not stop:
            due += per_tick
            while due >= 1:
                if not pool:
                    pool = copy_of(base, n)
                    n += 1
                take = min(len(pool), int(due))
                chunk, pool = pool[:take], pool[take:]
                submitted_events += sum(isinstance(r, EventRecord) for r in chunk)
                submitted_agents += sum(isinstance(r, AgentStateRecord) for r in chunk)
                writer.submit(chunk)
                due -= take
            await asyncio.sleep(tick)

    samples: list[tuple[float, str, float]] = []
    t0 = time.monotonic()

    async def sample(phase: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append((time.monotonic() - t0, phase, rss_mb()))
            await asyncio.sleep(0.5)

    feeder = asyncio.create_task(feed())
    await sample("before", args.before)
    before = samples[-1][2]
    await asyncio.to_thread(own.stop)
    reads.outage = True
    await sample("outage", args.outage)
    end_of_outage = samples[-1][2]
    reads.outage = False
    await asyncio.to_thread(own.start)
    while writer.depth > 0 or writer.spilling:
        await sample("catch-up", 1.0)
    stop = True
    await feeder
    await writer.drained(within=120)
    await sample("after", args.after)
    after = samples[-1][2]
    await writer.stop()
    peak = max(s[2] for s in samples if s[1] == "outage")
    catch_up = max((s[2] for s in samples if s[1] == "catch-up"), default=end_of_outage)
    catch_up_s = sum(1 for s in samples if s[1] == "catch-up") * 0.5
    events, agents = await counts(own.url)
    print(
        f"rate {args.rate}/s, outage {args.outage:.0f} s, "
        f"{submitted_events + submitted_agents:,} event/agent rows submitted"
    )
    print(f"RSS before     {before:7.1f} MB")
    print(f"RSS peak       {peak:7.1f} MB  ({peak / before:.2f}x) during the outage")
    print(f"RSS at its end {end_of_outage:7.1f} MB  ({end_of_outage / before:.2f}x)")
    print(
        f"RSS catch-up  {catch_up:7.1f} MB  ({catch_up / before:.2f}x) at its peak, "
        f"{catch_up_s:.0f} s to write the spill file back"
    )
    print(f"RSS after      {after:7.1f} MB  ({after / before:.2f}x), {args.after:.0f} s after")
    print(f"spill file reads while the database was away: {reads.during}")
    lost = (submitted_events - events) + (submitted_agents - agents)
    print(
        f"rows: call_events {events:,} of {submitted_events:,}, agent_state_changes "
        f"{agents:,} of {submitted_agents:,}; missing {lost}"
    )
    if args.trace:
        for t, phase, mb in samples:
            print(f"  {t:6.1f} s {phase:9s} {mb:7.1f} MB")
    return 0 if lost == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=3000.0, help="records submitted a second")
    p.add_argument("--outage", type=float, default=60.0, help="seconds the database is away")
    p.add_argument("--before", type=float, default=10.0)
    p.add_argument("--after", type=float, default=20.0)
    p.add_argument("--trace", action="store_true", help="print every RSS sample")
    p.add_argument(
        "--keep-heap",
        action="store_true",
        help="do not give memory back after the catch-up (to compare)",
    )
    args = p.parse_args()
    own = OwnPostgres()  # before the loop: it creates its database with asyncio.run
    try:
        return asyncio.run(run(args, own))
    finally:
        own.close()


if __name__ == "__main__":
    raise SystemExit(main())
