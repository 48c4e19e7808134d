"""The service and the simulated PBX together, in one process: for ``acd demo``, the
end-to-end tests and ``bench/day.py``.

The simulator listens for AMI on a free port and calls the service's FastAGI port; the
service's AMI link logs in to the simulator as it would to Asterisk.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.ivr.calendar import is_working_day
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.simulate import key_planner
from app.sim.traffic import DayPlan, KeyPlanner, TrafficConfig, plan_day

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
) -> AsyncIterator[Simulation]:
    """A simulated PBX for the catalogue in ``flows_dir``, calling ``agi_port``.

    ``start`` (epoch seconds) starts the virtual clock later than the plan's first login;
    what was planned before it (agents logging in) happens at once.
    """
    queues = load_queues(flows_dir / "queues.yaml")
    plan = plan_day(queues, traffic)
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
    )
    async with sim:
        assert sim.ami is not None
        yield Simulation(sim, plan, key_planner(queues, None, flows_dir), sim.ami_port)


def demo_day(now: dt.datetime, tz: str, seed: int, scale: float) -> tuple[TrafficConfig, float]:
    """The day a demo plays: today from now on if the centre is open now, else the most
    recent working day from 09:00 (a busy morning), so there is traffic at once."""
    local = now.astimezone(ZoneInfo(tz))
    day = local.date()
    if is_working_day(day) and 8 <= local.hour < 15:
        hour = local.hour
        start = local.timestamp()
    else:
        day -= dt.timedelta(days=1)
        while not is_working_day(day):
            day -= dt.timedelta(days=1)
        hour = 9
        start = dt.datetime.combine(day, dt.time(9), tzinfo=ZoneInfo(tz)).timestamp()
    traffic = TrafficConfig(
        date=day, seed=seed, calls_scale=scale, timezone=tz, hours=(float(hour), 15.0)
    )
    return traffic, start - 60.0


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
