"""Reports over a year of Copenhagen's traffic in PostgreSQL.

    python bench/reports.py [--db URL] [--scale 1.0] [--seed 7] [--keep] [--reuse NAME]

Loads 2014 as the service would have written it: ~389,000 calls with the 2014 area mix of
DOMAIN.md (menu hang-ups, closed, Sygedagpenge 09-10 forwarded to JKA, call-backs and
messages, transfers between queues and to the job centres, every 5th answered call
flagged for the survey), each call's domain events run through the real state machine
(``CallCentre``) and its records written by the service's PostgreSQL writer backend;
November's events are kept in ``call_events`` (for ``acd recompute``), the other months'
are not written (a year of events is ~10 GB the reports never read). Registrations
(85 % of answered visits) and call-back outcomes are then set in SQL.

Then it times, on this 2-core box shared with others (figures are noisy: read the ratios):
- counting the report tallies of the year (what the service's hourly job and the first
  reports do, and what ``acd recompute`` redoes), per day and per written call;
- the quarterly report by department and the yearly report by month (JSON; PDF where the
  documents are installed): first run, then the median of 5 (goals: < 1 s and < 3 s);
- ``acd recompute`` over November (the month's events replayed and compared);
- the size of the tallies against the calls they summarise.

Talks only to the PostgreSQL at --db (default: ACD_TEST_DATABASE_URL or the local one);
works in a scratch database it drops at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections import deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.acd.calendar import is_working_day  # noqa: E402
from app.acd.kpi import KpiConfig  # noqa: E402
from app.config.kinds import GOALS  # noqa: E402
from app.config.loader import load_config  # noqa: E402
from app.reports import render  # noqa: E402
from app.reports.build import build_report  # noqa: E402
from app.reports.periods import parse_period  # noqa: E402
from app.reports.recompute import recompute  # noqa: E402
from app.reports.rollup import Context, count_and_store  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.db import create_engine, session_factory  # noqa: E402
from app.store.models import Call, CallEvent, QueueVisit  # noqa: E402
from app.store.writer import PostgresBackend  # noqa: E402
from bench.day import admin  # noqa: E402
from tests.report_support import TZ, Centre, Leg, Script, events, local  # noqa: E402

FLOWS = ROOT / "ivr_flows"
YEAR = 2014
EVENTS_MONTH = 11  # the month whose events are kept for acd recompute
NOW = datetime(2015, 3, 2, 12, tzinfo=UTC)  # every day of 2014 is final by then
# Share of the day's calls starting in each hour (calls concentrate in the morning).
HOURS = {8: 0.17, 9: 0.21, 10: 0.18, 11: 0.14, 12: 0.12, 13: 0.10, 14: 0.08}
UNITS = ("jc_amager", "jc_nord", "jc_vest")


def say(*parts: object) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------------------
# The year's traffic
# --------------------------------------------------------------------------------------


class Traffic:
    """Scripted calls of the year, day by day (seeded: the same year every run)."""

    def __init__(self, seed: int, scale: float) -> None:
        self.rnd = random.Random(seed)
        catalogue = load_config(FLOWS).queues
        assert catalogue is not None
        self.areas = [q.name for q in catalogue.queues if q.calls_per_year]
        self.weights = [q.calls_per_year for q in catalogue.queues if q.calls_per_year]
        self.per_year = sum(self.weights) * scale
        self.days = [
            d
            for d in (date(YEAR, 1, 1) + timedelta(days=i) for i in range(365))
            if is_working_day(d)
        ]
        self.recent: deque[str] = deque(maxlen=5000)
        self.callers = 0
        self.flag_counter = 0
        self.agents = {a: [f"a{a[:4]}{i}" for i in range(6)] for a in self.areas}

    def caller(self) -> str:
        if self.recent and self.rnd.random() < 0.12:
            return self.rnd.choice(self.recent)  # calls again within days
        self.callers += 1
        h = f"{self.callers:016x}{self.rnd.getrandbits(64):016x}"
        self.recent.append(h)
        return h

    def day(self, day: date) -> list[Script]:
        n = round(self.per_year / len(self.days) * (1.15 if day.weekday() == 0 else 0.96))
        out = []
        for i in range(n):
            hour = self.rnd.choices(list(HOURS), list(HOURS.values()))[0]
            start = local(day, hour, 0, self.rnd.uniform(0, 3600))
            out.append(self.call(f"{day:%m%d}-{i:05d}", start))
        # After hours: the line is closed.
        for i in range(round(n * 0.03)):
            out.append(
                Script(
                    f"{day:%m%d}-c{i:04d}",
                    local(day, 16, 0, self.rnd.uniform(0, 7200)),
                    self.caller(),
                    route="closed",
                )
            )
        return out

    def call(self, cid: str, start: datetime) -> Script:
        r = self.rnd
        area = r.choices(self.areas, self.weights)[0]
        caller = self.caller()
        local_hour = start.astimezone(TZ).hour
        if area == "sygedagpenge" and local_hour == 9:
            return Script(cid, start, caller, route="forwarded")
        roll = r.random()
        if roll < 0.03:
            return Script(cid, start, caller, route="ivr_hangup", menu=r.uniform(3, 40))
        if roll < 0.04:
            kind = "callback" if roll < 0.035 else "message"
            return Script(cid, start, caller, route=kind, legs=[Leg(area, 0)])  # type: ignore[arg-type]
        wait = min(r.expovariate(1 / 110), 1790.0)
        legs: list[Leg] = []
        agent = r.choice(self.agents[area])
        if r.random() < 0.02:  # moved to another queue while waiting
            other = r.choice(self.areas)
            legs.append(Leg(area, round(wait / 3, 3), "moved"))
            area, wait = other, wait * 2 / 3
            agent = r.choice(self.agents[area])
        p_abandon = 0.02 + 0.10 * min(1.0, wait / 600)
        if r.random() < p_abandon:
            short = r.random() < 0.25
            legs.append(Leg(area, round(r.uniform(0.5, 4.9) if short else wait, 3), "abandoned"))
            return Script(cid, start, caller, legs=legs, menu=r.uniform(8, 40))
        talk = round(min(r.lognormvariate(5.3, 0.6), 3600), 3)
        self.flag_counter += 1
        flagged = self.flag_counter % 5 == 0
        survey = None
        if flagged and r.random() < 0.025:
            survey = (r.randint(5, 9), r.randint(3, 9), r.randint(3, 9))
        external = None
        if area == "sygedagpenge" and r.random() < 0.44:
            external = r.choice(("jka", *UNITS))
        elif r.random() < 0.03:
            external = r.choice(UNITS)
        if external is None and r.random() < 0.04:  # put through to another queue
            other = r.choice(self.areas)
            legs.append(Leg(area, round(wait, 3), talk=talk, agent=agent, then="transfer"))
            legs.append(
                Leg(
                    other,
                    round(r.expovariate(1 / 60), 3),
                    talk=round(talk / 2, 3),
                    agent=r.choice(self.agents[other]),
                )
            )
        else:
            legs.append(Leg(area, round(wait, 3), talk=talk, agent=agent))
        return Script(
            cid, start, caller, legs=legs, menu=r.uniform(8, 40), flagged=flagged,
            survey=survey, external=external,
        )  # fmt: skip


async def load_year(url: str, seed: int, scale: float) -> dict[str, float]:
    catalogue = load_config(FLOWS).queues
    backend = PostgresBackend(url)
    centre = Centre(backend, catalogue, live=False)
    traffic = Traffic(seed, scale)
    started = time.perf_counter()
    calls = events_total = 0
    for day in traffic.days:
        scripts = traffic.day(day)
        calls += len(scripts)
        evs = [e for s in scripts for e in events(s)]
        evs.sort(key=lambda e: e.at)
        events_total += len(evs)
        for e in evs:
            centre.cc.apply(e, e.at)
        centre.tick(local(day + timedelta(days=1), 6))
        centre._drain()
        await centre.flush(local(day, 23), events_too=day.month == EVENTS_MONTH)
        if day.day == 1 or day == traffic.days[-1]:
            rate = calls / (time.perf_counter() - started)
            say(
                f"  loaded to {day}: {calls:,} calls, {events_total:,} events ({rate:,.0f} calls/s)"
            )
    await backend.close()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # Registrations: 85 % of answered visits; settled unless the call was put
            # through (60 % of the others settled). Deterministic (hashes, not random()).
            await conn.execute(
                text(
                    """
                    INSERT INTO dispositions (call_id, agent_id, queue, reason, resolved,
                                              transferred_to, created_at, updated_at)
                    SELECT c.id, v.agent, v.queue, 'payment',
                           c.transferred_to IS NULL
                             AND abs(hashtext(v.linkedid || 'r')) % 100 < 70,
                           c.transferred_to, v.answered_at, v.answered_at
                    FROM queue_visits v JOIN calls c ON c.pbx = v.pbx AND c.linkedid = v.linkedid
                    WHERE v.outcome = 'answered' AND v.agent IS NOT NULL
                      AND abs(hashtext(v.linkedid || v.seq::text)) % 100 < 85
                    ON CONFLICT DO NOTHING
                    """
                )
            )
            # Call-backs and messages: 88 % returned (most within 2 working days), 5 %
            # given up, the rest left open.
            await conn.execute(
                text(
                    """
                    UPDATE callbacks SET
                      status = CASE WHEN abs(hashtext(linkedid)) % 100 < 88 THEN 'done'
                                    WHEN abs(hashtext(linkedid)) % 100 < 93 THEN 'failed'
                                    ELSE 'open' END,
                      completed_at = CASE WHEN abs(hashtext(linkedid)) % 100 < 93
                        THEN requested_at
                             + make_interval(hours => abs(hashtext(linkedid || 'c')) % 80)
                        END
                    """
                )
            )
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return {
        "calls": calls,
        "events": events_total,
        "load_seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------


def context() -> Context:
    snapshot = load_config(FLOWS)
    goals = snapshot[GOALS]
    assert goals is not None
    return Context(tz=TZ, config=KpiConfig(), goals=goals, catalogue=snapshot.queues, repeat_days=3)


async def timed_report(url: str, ctx: Context, period: str, by: str, fmt: str) -> tuple[float, int]:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        async with session_factory(engine).begin() as session:
            report = await build_report(
                session,
                period=parse_period(period),
                by=by,
                ctx=ctx,
                now=NOW,  # type: ignore[arg-type]
            )
        body, _ = render.render(report, fmt)
        return time.perf_counter() - started, len(body)
    finally:
        await engine.dispose()


async def measure(url: str, repeat: int) -> None:
    ctx = context()
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as s:
        n_calls = (await s.execute(select(func.count()).select_from(Call))).scalar_one()
        n_visits = (await s.execute(select(func.count()).select_from(QueueVisit))).scalar_one()
        n_events = (await s.execute(select(func.count()).select_from(CallEvent))).scalar_one()
        n_days = len({d for (d,) in await s.execute(
            select(func.date(func.timezone("Europe/Copenhagen", Call.started_at))).distinct()
        )})  # fmt: skip
    say(f"\ndata: {n_calls:,} calls, {n_visits:,} visits, {n_events:,} logged events (November)")

    # 1. Counting the tallies: the year in monthly runs (a first report, a recompute), and
    # single days (what the hourly job does for the last weeks' days).
    await admin(url, "TRUNCATE report_rollup, report_days")
    started, cpu = time.perf_counter(), time.process_time()
    for month in range(1, 13):
        first = date(YEAR, month, 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        async with sessions.begin() as s:
            await count_and_store(s, days, ctx, NOW)
    year_s, year_cpu = time.perf_counter() - started, time.process_time() - cpu
    singles = []
    for d in (
        date(YEAR, 3, 4),
        date(YEAR, 6, 10),
        date(YEAR, 9, 16),
        date(YEAR, 11, 4),
        date(YEAR, 12, 1),
    ):
        t0 = time.perf_counter()
        async with sessions.begin() as s:
            done = await count_and_store(s, [d], ctx, NOW)
        singles.append((time.perf_counter() - t0, done.calls))
    per_day = statistics.median(t for t, _ in singles)
    calls_day = statistics.median(c for _, c in singles)
    async with sessions() as s:
        rows = (await s.execute(text("SELECT count(*) FROM report_rollup"))).scalar_one()
        size = (
            await s.execute(text("SELECT pg_total_relation_size('report_rollup')"))
        ).scalar_one()
        calls_size = (await s.execute(text(
            "SELECT pg_total_relation_size('calls') + pg_total_relation_size('queue_visits')"
        ))).scalar_one()  # fmt: skip
    # A day is counted once per hour while it is recent and not final: by the job, about
    # once a day for its 10-working-day repeat window (~14 days), plus today's reports.
    counts_until_final = 14
    say("\ncounting the report tallies (report_rollup), no cost on the write path:")
    say(
        f"  the year in monthly runs: {year_s:.1f} s ({year_s / n_calls * 1e6:.0f} us per call; "
        f"this process's CPU {year_cpu:.1f} s, the rest is the database and waiting for a core)"
    )
    say(f"  one day ({calls_day:,.0f} calls): {per_day * 1000:.0f} ms "
        f"({per_day / max(1, calls_day) * 1e6:.0f} us per call); counted ~{counts_until_final} "
        f"times until final: ~{counts_until_final * per_day / max(1, calls_day) * 1e3:.1f} ms "
        "of database and CPU time per written call, off the write path")  # fmt: skip
    say(
        f"  stored: {rows:,} rows, {size / 1e6:.1f} MB for {n_days} days "
        f"({size / max(1, calls_size):.1%} of calls + queue_visits, "
        f"{size / n_calls:.0f} B per call)"
    )

    # 2. The reports.
    say("\nreports (build + render; first run, then the median of the next ones):")
    goals = {("2014-Q4", "department"): 1.0, ("2014", "month"): 3.0}
    formats = ["json"] + (["pdf"] if "pdf" in render.available() else [])
    for (period, by), goal in goals.items():
        for fmt in formats:
            first_s, size_b = await timed_report(url, ctx, period, by, fmt)
            runs = [(await timed_report(url, ctx, period, by, fmt))[0] for _ in range(repeat)]
            median = statistics.median(runs)
            verdict = (
                f"goal < {goal:g} s: {'met' if median < goal else 'MISSED'}"
                if fmt == "json"
                else ""
            )
            say(f"  {period} by {by:<10} {fmt:<4} first {first_s:.3f} s, median {median:.3f} s "
                f"({size_b:,} bytes) {verdict}")  # fmt: skip
    if "pdf" not in render.available():
        say("  (no PDF: the documents are not installed in this tree)")

    # 3. acd recompute over the month whose events are kept.
    first = date(YEAR, EVENTS_MONTH, 1)
    last = date(YEAR, EVENTS_MONTH, 30)
    backend = PostgresBackend(url)
    started, cpu = time.perf_counter(), time.process_time()
    result = await recompute(
        sessions, backend, first=first, last=last, tz=TZ, catalogue=ctx.catalogue, ctx=ctx,
        now=NOW,
    )  # fmt: skip
    took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
    await backend.close()
    say(
        f"\nacd recompute {first}..{last}: {took:.1f} s ({result.events / took:,.0f} events/s; "
        f"this process's CPU {took_cpu:.1f} s, {took_cpu / max(1, result.events) * 1e6:.0f} us "
        "per event)"
    )
    for line in result.lines():
        say("  " + line)
    await engine.dispose()


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
    p.add_argument("--scale", type=float, default=1.0, help="share of Copenhagen's volume")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=5, help="timed runs of each report")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--reuse", metavar="NAME", help="a database kept by an earlier --keep run")
    args = p.parse_args()
    server = make_url(args.db.replace("postgresql://", "postgresql+asyncpg://", 1))
    name = args.reuse or f"acd_bench_reports_{uuid.uuid4().hex[:8]}"
    url = server.set(database=name).render_as_string(hide_password=False)
    admin_url = server.render_as_string(hide_password=False)
    if not args.reuse:
        await admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        if not args.reuse:
            await migrate.upgrade(url)
            say(f"loading {YEAR} (scale {args.scale}) into {name} ...")
            loaded = await load_year(url, args.seed, args.scale)
            say(f"loaded {loaded['calls']:,.0f} calls, {loaded['events']:,.0f} events "
                f"in {loaded['load_seconds']:.0f} s")  # fmt: skip
        await measure(url, args.repeat)
    finally:
        if args.keep or args.reuse:
            say(f"\nkept database {name} (--reuse {name})")
        else:
            await admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
