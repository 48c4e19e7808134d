"""Several service processes for one PBX (app/ha), as real processes over real TCP: the
simulated PBX (in this process) spreads its FastAGI sessions over every replica and counts
the AMI logins; one PostgreSQL, one Redis.

- two and three processes through a morning: never two AMI sessions at once, one owner,
  every call right against the simulator's truth, the survey's every-5th shared;
- kill -9 of the owner mid-day: a standby takes over within 5 s, no call lost, none
  doubled, no call-back dialled twice;
- fencing: the owner paused (SIGSTOP) until a standby has taken over, then resumed: it
  writes nothing after the handover and steps down (exit code 3)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal
import time
from pathlib import Path

from zoneinfo import ZoneInfo

import pytest

from app.sim.harness import Simulation, simulator
from app.sim.traffic import TrafficConfig
from tests.e2e.ha_support import (
    ROOT,
    Cluster,
    audit_rows,
    duplicated_events,
    event_count,
    install_audit,
    judge,
    lease_row,
    remove_audit,
    wait_recorded,
)

DAY = dt.date(2014, 11, 4)
# The simulated PBX plays the morning at 10x real time (the agents' logins before it as
# fast as the service takes them): the menu's events relayed between processes take a
# few real milliseconds, as they would with a real PBX; the simulator's fast mode would
# make them minutes of the PBX's time.
SPEED = 10.0
OPENING = dt.datetime(2014, 11, 4, 9, 0, tzinfo=ZoneInfo("Europe/Copenhagen")).timestamp()


def morning(seed: int = 11, scale: float = 1.5) -> TrafficConfig:
    return TrafficConfig(date=DAY, seed=seed, hours=(9.0, 10.0), calls_scale=scale)


def first_minutes(simulation: Simulation, minutes: float) -> None:
    """Only the calls of the first ``minutes`` after 09:00 (the traffic model plans
    whole hours)."""
    end = OPENING + minutes * 60
    plan = simulation.plan
    simulation.plan = dataclasses.replace(
        plan, arrivals=tuple(a for a in plan.arrivals if a.at < end), end=end
    )


async def first_login_after(sim: object, t0: float, within: float = 30.0) -> float:
    """Seconds from ``t0`` (monotonic) to the first AMI login after it."""
    server = sim.ami  # type: ignore[attr-defined]
    end = time.monotonic() + within
    while time.monotonic() < end:
        later = [at for at, _ in server.logins if at > t0]
        if later:
            return min(later) - t0
        await asyncio.sleep(0.02)
    raise TimeoutError("no AMI login after the owner's death")


@pytest.mark.parametrize("n", [2, 3])
async def test_replicas_one_owner_every_call_right(
    pg_url: str, redis_url: str, tmp_path: Path, n: int
) -> None:
    cluster_ports: list[int] = []
    async with simulator(
        ROOT / "ivr_flows", 0, morning(), mode="real", speed=SPEED, fast_until=OPENING
    ) as simulation:
        first_minutes(simulation, 12)
        cluster = Cluster(
            n, pg_url=pg_url, redis_url=redis_url, ami_port=simulation.ami_port, tmp=tmp_path
        )
        simulation.sim.pbx.globals["ACD_AGI_ADDRESS"] = cluster.agi_addresses
        cluster_ports = [s.agi_port for s in cluster.services]
        cluster.start()
        try:
            owner = await cluster.settled(90)
            result = await simulation.sim.run_day(simulation.plan, simulation.keys, shifts=False)
            rows = await wait_recorded(pg_url, result.truth, within=90)
            roles = await cluster.roles()
            owners_gauge = [await s.metric('acd_owner{pbx="pbx1"}') for s in cluster.services]
            relayed = [await s.metric("acd_relayed_events_total") for s in cluster.services]
        finally:
            codes = cluster.stop()
            logs = cluster.logs()
        server = simulation.sim.ami
        assert server is not None
    assert len(cluster_ports) == n
    assert server.most_at_once == 1, logs
    assert len(server.logins) == 1, server.logins
    assert list(roles.values()).count("owner") == 1 and roles[owner.name] == "owner"
    assert sorted(owners_gauge) == [0.0] * (n - 1) + [1.0]
    assert sum(relayed) > 0  # standbys ran menus and their events reached the owner
    assert all(code == 0 for code in codes), (codes, logs)
    verdict = judge(result.truth, rows, await duplicated_events(pg_url))
    assert verdict.calls > 50
    assert verdict.summary() | {"calls": 0, "rows": 0} == {
        "calls": 0,
        "rows": 0,
        "lost": 0,
        "extra": 0,
        "wrong": 0,
        "data_gap": 0,
        "wrong_unflagged": 0,
        "duplicated_events": 0,
    }, (verdict.wrong[:5], verdict.lost[:5])
    # Every 5th caller the menu routes to a queue is flagged, counted across replicas:
    # the flags are the simulator's, and one in five (not one in five per process).
    flagged = {r.linkedid for r in rows if r.survey_flagged}
    assert flagged == {t.linkedid for t in result.truth if t.survey_flag}
    routed = await event_count(pg_url, "ivr_routed")
    assert len(flagged) == routed // 5, (len(flagged), routed)
