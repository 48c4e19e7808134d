"""Outages around the service (issue 14): a simulated morning hour through the real
service (its own process, PostgreSQL) with PostgreSQL stopped (a server of the test's
own), Redis stopped (the same), or the PBX sending hostile values; then every call row
compared with the simulator's truth (tests/outage_support.py, app/sim/compare.py): none
lost, none doubled, none left open, none wrong without ``data_gap``.

The simulated PBX runs in fast mode (as fast as the service reads its events); an outage
lasts wall seconds while the morning goes on, so most of its calls happen during it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.sim.traffic import TrafficConfig
from tests.conftest import OwnPostgres
from tests.fault_support import ServiceProcess
from tests.outage_support import Outage, OutageRun, OwnRedis, hostile, run_day

DAY = dt.date(2014, 11, 4)
TZ = ZoneInfo("Europe/Copenhagen")


def at(hh: int, mm: int) -> float:
    return dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=TZ).timestamp()


def morning(seed: int) -> TrafficConfig:
    return TrafficConfig(date=DAY, seed=seed, hours=(9.0, 10.0), calls_scale=1.0)


def assert_clean(run: OutageRun, least: int = 150) -> None:
    c = run.comparison
    print(run.summary())
    assert c.calls >= least, c.summary()
    assert not c.lost, c.summary()
    assert not c.duplicated, c.summary()
    assert not c.open, c.summary()
    assert not c.wrong_unflagged, c.summary()


async def test_postgresql_stopped_loses_nothing_and_gets_nothing_wrong(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def stop() -> None:
        own_postgres.stop()

    async def after(service: ServiceProcess) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{service.http_port}/ready")
        return {"ready": ready.status_code}

    run = await run_day(
        own_postgres.url,
        morning(11),
        workdir=tmp_path,
        outages=[Outage("postgresql", at(9, 10), 10.0, stop, own_postgres.start)],
        after=after,
    )
    seen.update(run.figures)
    assert_clean(run)
    assert run.outages and run.outages[0][2] - run.outages[0][1] >= 10.0
    assert run.during() >= 100  # the morning went on while the database was away
    assert seen["ready"] == 200  # written back: the writer is ready again
    assert run.log_path is not None
    log = run.log_path.read_text(errors="replace")
    assert "spill" in log  # it did spill, and said so
    # The lease went unconfirmed (10 s > its 3 s): no menu event may be dropped for it.
    assert "lease unconfirmed" in log and "not relayed" not in log


async def test_redis_stopped_touches_no_call(pg_url: str, tmp_path: Path) -> None:
    own = await asyncio.to_thread(OwnRedis)
    try:
        run = await run_day(
            pg_url,
            morning(12),
            workdir=tmp_path,
            redis_url=own.url,
            outages=[Outage("redis", at(9, 10), 6.0, own.stop, own.start)],
        )
    finally:
        await asyncio.to_thread(own.close)
    assert_clean(run)
    assert run.outages and run.outages[0][0] == "redis"
    assert run.during() >= 50


async def test_hostile_ami_values_all_day_lose_and_corrupt_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    run = await run_day(pg_url, morning(7), workdir=tmp_path, prepare=hostile)
    assert_clean(run)
    seen = run.figures["hostile"]
    # The values really came: long ids, impossible causes, long names, huge positions.
    assert seen["long_ids"] >= 50 and seen["causes"] >= 50, seen
    assert seen["names"] >= 150 and seen["positions"] >= 100, seen
    assert sum(len(t.linkedid) > 64 for t in run.day.truth) >= 10  # calls of long Linkedid
