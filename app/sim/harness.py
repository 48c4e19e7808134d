"""The service and the simulated PBX together, in one process: for ``acd demo``, the
end-to-end tests and ``bench/day.py``.

The simulator listens for AMI on a free port and calls the service's FastAGI port; the
service's AMI link logs in to the simulator as it would to Asterisk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.acd.calendar import is_working_day
from app.acd.model import default_agent_id
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.simulate import key_planner
from app.sim.traffic import DayPlan, KeyPlanner, TrafficConfig, plan_day
from app.store.demo import DemoProfile

SECRET = "acdsecret"


@dataclass
class Simulation:
    sim: SimulatedPbx
    plan: DayPlan
    keys: KeyPlanner
    ami_port: int


@contextlib.asynccontextmanager
async def simulator(
    flows_dir: Path,
    agi_port: int,
    traffic: TrafficConfig,
    *,
    mode: str = "fast",
    speed: float = 1.0,
    backpressure: bool = True,
    noise: bool = False,
    username: str = "acd",
    secret: str = SECRET,
    start: float | None = None,
    fast_until: float | None = None,
) -> AsyncIterator[Simulation]:
    """A simulated PBX for the catalogue in ``flows_dir``, calling ``agi_port``.

    ``start`` (epoch seconds) starts the virtual clock later than the plan's first login;
    agents' plans before it (logging in, breaks) happen at once, calls before it are not
    made. ``fast_until`` (mode ``real``): up to that moment as fast as the service takes
    it, then at ``speed``.
    """
    queues = load_queues(flows_dir / "queues.yaml")
    plan = plan_day(queues, traffic)
    if start is not None:
        plan = dataclasses.replace(plan, arrivals=tuple(a for a in plan.arrivals if a.at >= start))
    config = PbxConfig(
        queues=queues,
        start=plan.start if start is None else max(plan.start, start),
        timezone=traffic.timezone,
        timestampevents=True,
        agi_address=f"127.0.0.1:{agi_port}",
        seed=traffic.seed,
        noise=noise,
        late_complete_share=0.1,
    )
    sim = SimulatedPbx(
        config,
        mode=mode,  # type: ignore[arg-type]
        speed=speed,
        ami_port=0,
        ami_backpressure=backpressure,
        users={username: ManagerUser(username, secret)},
        fast_until=fast_until,
    )
    async with sim:
        assert sim.ami is not None
        yield Simulation(sim, plan, key_planner(queues, None, flows_dir), sim.ami_port)


# A demo whose centre is closed now plays a recent working day from here, the morning so
# far at once: the busiest hours (08-10) leave figures and queues behind to look at.
DEMO_LIVE_FROM = dt.time(9, 30)
# ... and so does one started early or late in an open day: before 09:00 the morning so
# far is thin, after 14:00 the rest of the day is short.
DEMO_TODAY = (dt.time(9, 0), dt.time(14, 0))


@dataclass(frozen=True)
class DemoDay:
    """What ``acd demo`` plays: a day of traffic, where its clock starts (None: the plan's
    first instant, before the agents log in) and from when it plays at the asked pace
    (before that: as fast as the service takes it)."""

    traffic: TrafficConfig
    start: float | None
    live_from: float


def demo_day(
    now: dt.datetime, tz: str, seed: int, scale: float, resume: dt.datetime | None = None
) -> DemoDay:
    """The day a demo plays, so that a centre at work is on screen within seconds at any
    hour: today, up to now at once, on a working day between 09:00 and 14:00; else the
    most recent working day, up to 09:30 at once. ``resume`` (``--continue``): the last
    moment the previous run recorded; its day goes on from there, or the next working day
    when that day was over."""
    zone = ZoneInfo(tz)
    if resume is not None:
        local = resume.astimezone(zone)
        if is_working_day(local.date()) and local.time() < DEMO_TODAY[1]:
            at = resume.timestamp() + 1.0
            return DemoDay(_traffic(local.date(), seed, scale, tz), at, at)
        day = _next_working_day(local.date())
        return DemoDay(_traffic(day, seed, scale, tz), None, _at(day, DEMO_LIVE_FROM, zone))
    local = now.astimezone(zone)
    if is_working_day(local.date()) and DEMO_TODAY[0] <= local.time() < DEMO_TODAY[1]:
        return DemoDay(_traffic(local.date(), seed, scale, tz), None, now.timestamp())
    day = local.date() - dt.timedelta(days=1)
    while not is_working_day(day):
        day -= dt.timedelta(days=1)
    return DemoDay(_traffic(day, seed, scale, tz), None, _at(day, DEMO_LIVE_FROM, zone))


def _traffic(day: dt.date, seed: int, scale: float, tz: str) -> TrafficConfig:
    return TrafficConfig(date=day, seed=seed, calls_scale=scale, timezone=tz)


def _at(day: dt.date, time: dt.time, zone: ZoneInfo) -> float:
    return dt.datetime.combine(day, time, tzinfo=zone).timestamp()


def _next_working_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def demo_roster(plan: DayPlan) -> list[DemoProfile]:
    """The agent profiles of the simulated room, as the roster must have them for the
    agents' API to act on them: id from the interface (``PJSIP/agent101`` ->
    ``agent101``), the team named after the agent's main queue, its skills."""
    return [
        DemoProfile(
            id=default_agent_id(a.interface),
            name=a.name,
            interface=a.interface,
            team=a.skills[0][0],
            skills=a.skills,
        )
        for a in plan.agents
    ]


async def wait_logged_in(sim: SimulatedPbx, within: float = 20.0) -> None:
    """Until the service's AMI client has logged in to the simulator."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not _has_client(sim):
        if loop.time() > end:
            raise TimeoutError("the service did not log in to the simulated PBX")
        await asyncio.sleep(0.05)


def _has_client(sim: SimulatedPbx) -> bool:
    server: Any = sim.ami
    return any(
        c.session is not None and c.session.authenticated and not c.closed for c in server.clients
    )
