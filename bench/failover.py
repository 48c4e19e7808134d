"""Failover: owner kills during a simulated day, and what the lease and its fence cost.

    python bench/failover.py [--kills 20] [--minutes 480] [--speed 10] [--replicas 2]

A scratch database on the PostgreSQL of ``ACD_TEST_DATABASE_URL`` (as the tests make
theirs; dropped at the end) and the Redis database of ``ACD_TEST_REDIS_URL`` (flushed).
The simulated PBX (this process) plays ``--minutes`` of a working day from 08:00 at
``--speed`` times real time over real TCP to ``--replicas`` service processes
(``python -m app serve`` with ``ACD_LEASE=on``; FastAGI spread over all of them, the
call-back dialer on). ``--kills`` times, evenly through the day, the owner is killed with
SIGKILL and started again at once (as its supervisor would: it comes back as a standby).

Prints:
- the takeover time of each kill (the owner's death -> the next AMI login on the PBX),
  p50, p99 and max; the most AMI sessions ever logged in at once (must be 1);
- the day against the simulator's truth: calls, lost (no row or no outcome), extra rows,
  wrong (outcome, first queue, agent or keys differ), of them flagged ``data_gap`` (the
  service could not see the whole call: it ended or changed while no process had the
  AMI link), events logged twice, call-backs originated more than once;
- the cost of the lease and the fence: the writer's time per event with and without
  ``acd_fence`` in each transaction (the same batches, fresh keys), and the lease's
  renewals per second (one UPDATE each) per event at the day's event rate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from app.ha.lease import Lease  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.sim.harness import simulator  # noqa: E402
from app.sim.traffic import TrafficConfig  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.writer import EventWriter, PostgresBackend  # noqa: E402
from bench.outage import copy_of, template  # noqa: E402
from tests.conftest import _pg_admin, _pg_server_url  # noqa: E402
from tests.e2e.ha_support import (  # noqa: E402
    Cluster,
    duplicated_events,
    judge,
    wait_recorded,
)

DAY = dt.date(2014, 11, 4)
TZ = ZoneInfo("Europe/Copenhagen")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def first_login_after(server: object, t0: float, within: float = 30.0) -> float:
    end = time.monotonic() + within
    while time.monotonic() < end:
        later = [at for at, _ in server.logins if at > t0]  # type: ignore[attr-defined]
        if later:
            return min(later) - t0
        await asyncio.sleep(0.01)
    return float("inf")


async def day_with_kills(args: argparse.Namespace, url: str, redis_url: str) -> None:
    opening = dt.datetime.combine(DAY, dt.time(8, 0), TZ).timestamp()
    hours = (8.0, min(24.0, 8.0 + -(-args.minutes // 60)))
    traffic = TrafficConfig(date=DAY, seed=args.seed, hours=hours, calls_scale=args.scale)
    tmp = Path(tempfile.mkdtemp(prefix="acd-failover-"))
    async with simulator(
        ROOT / "ivr_flows", 0, traffic, mode="real", speed=args.speed, fast_until=opening
    ) as simulation:
        end = opening + args.minutes * 60
        plan = simulation.plan
        import dataclasses

        simulation.plan = dataclasses.replace(
            plan, arrivals=tuple(a for a in plan.arrivals if a.at < end), end=end
        )
        sim = simulation.sim
        cluster = Cluster(
            args.replicas,
            pg_url=url,
            redis_url=redis_url,
            ami_port=simulation.ami_port,
            tmp=tmp,
            env={
                "ACD_DIALER_ENABLED": "true",
                "ACD_DIALER_INTERVAL": "1",
                "ACD_LOG_LEVEL": "WARNING",
            },
        )
        sim.pbx.globals["ACD_AGI_ADDRESS"] = cluster.agi_addresses
        cluster.start()
        takeovers: list[float] = []
        blind: list[tuple[float, float]] = []  # PBX time: from the kill to the resync
        try:
            await cluster.settled(120)
            await cluster.clock_shared(redis_url)
            print(
                f"day: {len(simulation.plan.arrivals)} calls in {args.minutes} min at "
                f"{args.speed:g}x, {args.replicas} replicas, {args.kills} kills",
                flush=True,
            )
            day = asyncio.create_task(sim.run_day(simulation.plan, simulation.keys, shifts=False))
            for k in range(args.kills):
                at = opening + (k + 1) * args.minutes * 60 / (args.kills + 1)
                while sim.now() < at and not day.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                if day.done():
                    break
                owner = await cluster.settled(60)
                t0, blind_from = time.monotonic(), sim.now()
                owner.kill()
                took = await first_login_after(sim.ami, t0)
                takeovers.append(took)
                blind.append((blind_from, sim.now() + 2.0))  # + the resync, at 10x
                owner.start()  # its supervisor starts it again: a standby now
                print(f"  kill {k + 1}: {owner.name} -> takeover {took:.2f} s", flush=True)
            # The day ends with its last call; a call still up ``--tail`` minutes after the
            # last arrival is left out of the judgement (and said so).
            cap = end + args.tail * 60
            while not day.done() and sim.now() < cap:
                await asyncio.wait({day}, timeout=15)
                if not day.done():
                    local = dt.datetime.fromtimestamp(sim.now(), TZ).strftime("%H:%M:%S")
                    up = [t for t in sim.truth.records.values() if t.outcome is None]
                    print(f"  ... PBX time {local}, {len(up)} calls up", flush=True)
                    if len(up) <= 2:
                        for t in up:
                            print(f"      up: {t.linkedid} {t.origin} {t.queues} {t.agi_status}")
            if day.done():
                truth = list(day.result().truth)
            else:
                day.cancel()
                truth = [t for t in sim.truth.records.values() if t.outcome is not None]
                left = len(sim.truth.records) - len(truth)
                print(f"  {left} calls still up {args.tail} min after the last arrival: not judged")
            print("  day over; waiting for the log", flush=True)
            still_up = {lid for lid, t in sim.truth.records.items() if t.outcome is None}
            rows = [
                r for r in await wait_recorded(url, truth, within=120) if r.linkedid not in still_up
            ]
        finally:
            cluster.stop()
        server = sim.ami
        assert server is not None
        verdict = judge(truth, rows, await duplicated_events(url))
        twice = {k: n for k, n in sim.pbx.callbacks_originated.items() if n > 1}
        events = sim.pbx.event_count
    print(
        f"takeover: p50 {pct(takeovers, 0.5):.2f} s, p99 {pct(takeovers, 0.99):.2f} s, "
        f"max {max(takeovers, default=float('nan')):.2f} s over {len(takeovers)} kills "
        f"(goal: p99 < 5 s)"
    )
    print(f"AMI sessions logged in at once, at most: {server.most_at_once} (goal 1)")
    s = verdict.summary()
    print(
        f"calls {s['calls']}: lost {s['lost']}, extra {s['extra']}, wrong {s['wrong']} "
        f"(of them flagged data_gap {s['wrong'] - s['wrong_unflagged']}, unflagged "
        f"{s['wrong_unflagged']}), rows flagged data_gap {s['data_gap']}, events logged "
        f"twice {s['duplicated_events']}, call-backs originated "
        f"{sum(sim.pbx.callbacks_originated.values())} (more than once: {len(twice)})"
    )
    by_id = {t.linkedid: t for t in truth}
    overlapping = {
        lid
        for lid, t in by_id.items()
        if any(t.arrived <= b and (t.ended is None or t.ended >= a) for a, b in blind)
    }
    seen_whole = [w for w in verdict.wrong if w[0] not in overlapping]
    print(
        f"calls up while no process had the AMI link: {len(overlapping)}; wrong among "
        f"them {len(verdict.wrong) - len(seen_whole)}; wrong among the calls seen whole "
        f"{len(seen_whole)} (goal 0)"
    )
    for w in verdict.wrong[:12]:
        print(f"  wrong: {w[0]} logged {w[1]}, truth {w[2]}")
    print(f"simulated PBX events: {events}")
    args.event_rate = events / max(1.0, args.minutes * 60 / args.speed)


async def fence_cost(url: str, batches: int = 40, batch: int = 500) -> tuple[float, float]:
    """Seconds per event written, without and with the fence (alternating batches)."""
    base = template()
    lease = Lease(url, "bench", ttl=60)
    await lease.try_acquire()
    plain = EventWriter(PostgresBackend(url), Metrics(), Path(tempfile.mkdtemp()) / "a.jsonl")
    fenced = EventWriter(
        PostgresBackend(url, fence=lease.token), Metrics(), Path(tempfile.mkdtemp()) / "b.jsonl"
    )
    times: dict[str, list[float]] = {"plain": [], "fenced": []}
    n = 10_000
    try:
        for writer in (plain, fenced):
            await writer.backend.open()  # type: ignore[attr-defined]
        for _ in range(batches):
            for name, writer in (("plain", plain), ("fenced", fenced)):
                records = []
                while len(records) < batch:
                    n += 1
                    records += copy_of(base, n)
                records = records[:batch]
                t0 = time.perf_counter()
                await writer._write(records)
                times[name].append((time.perf_counter() - t0) / len(records))
    finally:
        for writer in (plain, fenced):
            await writer.backend.close()
        await lease.close()
    return statistics.median(times["plain"]), statistics.median(times["fenced"])


async def run(args: argparse.Namespace) -> int:
    server = _pg_server_url()
    name = f"acd_failover_{uuid.uuid4().hex[:8]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    redis_url = os.environ.get("ACD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    try:
        await migrate.upgrade(url)
        if args.kills > 0:
            await day_with_kills(args, url, redis_url)
        plain, fenced = await fence_cost(url)
        print(
            f"writer per event: {plain * 1e6:.1f} us plain, {fenced * 1e6:.1f} us with the "
            f"fence (+{(fenced - plain) * 1e6:.1f} us, {100 * (fenced - plain) / plain:+.1f}%; "
            f"batches of 500, median of 40)"
        )
        rate = getattr(args, "event_rate", 0.0)
        renewals = 1 / 0.75
        if rate:
            print(
                f"lease: {renewals:.2f} renewals a second (one UPDATE each) = "
                f"{renewals / rate:.4f} queries per PBX event at this day's "
                f"{rate:.0f} events a second"
            )
        else:
            print(f"lease: {renewals:.2f} renewals a second (one UPDATE each)")
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--minutes", type=int, default=480, help="of the day, from 08:00")
    p.add_argument("--speed", type=float, default=10.0)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--scale", type=float, default=1.0, help="calls per hour, x the model")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--tail", type=float, default=15, help="minutes after the last arrival to wait")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
