"""``acd simulate``: one simulated day against a running service.

The simulated PBX listens for the service's AMI connection (like Asterisk's manager
port) and sends every call of the day through the service's FastAGI server, exactly as
the production dialplan does (docs/dialplan-contract.md). It stops by itself when the
day is over and prints a summary; ``--truth`` writes what really happened per call.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.acd.calendar import is_working_day
from app.sim.clock import Mode
from app.sim.conf import QueuesConfig
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, default_queues, load_queues
from app.sim.traffic import (
    DayPlan,
    KeyPlanner,
    MappingKeyPlanner,
    TrafficConfig,
    catalogue_key_planner,
    plan_day,
)

log = logging.getLogger("app.sim.simulate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", default="2014-11-04", help="the day to simulate (YYYY-MM-DD)")
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="virtual seconds per real second (60: a 7-hour day in 7 minutes); "
        "0 = as fast as possible",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same day)")
    p.add_argument("--ami-host", default="127.0.0.1", help="AMI listen address")
    p.add_argument("--ami-port", type=int, default=5038, help="AMI listen port (0: any)")
    p.add_argument(
        "--agi",
        metavar="HOST:PORT",
        help="the service's FastAGI address (default: ACD_AGI_HOST:ACD_AGI_PORT)",
    )
    p.add_argument(
        "--calls-scale",
        type=float,
        default=1.0,
        help="multiply the day's call volume (~1,549 calls at 1.0)",
    )
    p.add_argument("--truth", metavar="FILE", help="write the ground truth as JSON lines")
    p.add_argument(
        "--noise",
        action="store_true",
        help="also emit VarSet/Newexten/RTCPSent like a real Asterisk",
    )
    p.add_argument(
        "--timestampevents",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Timestamp header (virtual clock) on every event (default on)",
    )
    p.add_argument(
        "--queues",
        metavar="FILE",
        help="queues.conf or queues.yaml (default: asterisk_config/queues.conf, "
        "else <ACD_IVR_FLOWS>/queues.yaml)",
    )
    p.add_argument(
        "--keys",
        metavar="FILE",
        help="JSON {queue: [digits]} of the menu paths (default: catalogue order)",
    )
    p.add_argument(
        "--wait-ami",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="wait this long for the service to log in to AMI before the day starts",
    )


def key_planner(
    queues: QueuesConfig,
    keys_file: str | None,
    flows_dir: Path | None = None,
    flow: str = "jobcenter",
) -> KeyPlanner:
    """The menu paths callers follow: a JSON map if given, else the real menu's shortest
    key path to each queue (``app.ivr.graph.key_paths``), else catalogue order."""
    if keys_file:
        data = json.loads(Path(keys_file).read_text(encoding="utf-8"))
        return MappingKeyPlanner({k: tuple(str(d) for d in v) for k, v in data.items()})
    if flows_dir is not None and (flows_dir / f"{flow}.yaml").is_file():
        return flow_key_planner(flows_dir, flow)
    return catalogue_key_planner([q.name for q in queues.queues])


def flow_key_planner(flows_dir: Path, flow: str = "jobcenter") -> MappingKeyPlanner:
    """Every queue's shortest key path in the flow the service runs."""
    from app.config.loader import load_config
    from app.ivr.graph import key_paths

    paths = key_paths(load_config(flows_dir).flows[flow])
    return MappingKeyPlanner({queue: tuple(keys) for queue, keys in paths.items()})


async def _wait_for_login(sim: SimulatedPbx, seconds: float) -> bool:
    assert sim.ami is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if any(c.session is not None and c.session.authenticated for c in sim.ami.clients):
            return True
        await asyncio.sleep(0.1)
    return False


@dataclass
class Prepared:
    day: dt.date
    plan: DayPlan
    planner: KeyPlanner
    config: PbxConfig
    users: dict[str, ManagerUser]
    agi: str
    timezone: str
    ami_username: str


def prepare(args: argparse.Namespace, settings: Any) -> Prepared:
    """Everything that reads files, before the event loop runs."""
    day = dt.date.fromisoformat(args.date)
    if args.queues:
        queues = load_queues(args.queues)
    elif Path("asterisk_config/queues.conf").exists():
        queues = default_queues(Path())
    else:
        queues = load_queues(Path(settings.ivr_flows) / "queues.yaml")
    agi = args.agi
    if not agi:
        host = settings.agi_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        agi = f"{host}:{settings.agi_port}"
    traffic = TrafficConfig(
        date=day, seed=args.seed, calls_scale=args.calls_scale, timezone=settings.timezone
    )
    plan = plan_day(queues, traffic)
    secret = settings.ami_secret.get_secret_value() if settings.ami_secret else "acdsecret"
    config = PbxConfig(
        queues=queues,
        start=plan.start,
        timezone=settings.timezone,
        noise=args.noise,
        timestampevents=args.timestampevents,
        agi_address=agi,
        seed=args.seed,
        late_complete_share=0.1,
    )
    return Prepared(
        day=day,
        plan=plan,
        planner=key_planner(queues, args.keys, Path(settings.ivr_flows)),
        config=config,
        users={settings.ami_username: ManagerUser(settings.ami_username, secret)},
        agi=agi,
        timezone=settings.timezone,
        ami_username=settings.ami_username,
    )


async def run_simulate(args: argparse.Namespace, prep: Prepared) -> int:
    plan = prep.plan
    mode: Mode = "fast" if args.speed <= 0 else "real"
    sim = SimulatedPbx(
        prep.config,
        mode=mode,
        speed=args.speed if args.speed > 0 else 1.0,
        ami_host=args.ami_host,
        ami_port=args.ami_port,
        users=prep.users,
    )
    tz = ZoneInfo(prep.timezone)
    async with sim:
        span = (plan.end - plan.start) / 3600.0
        kind = "working day" if is_working_day(prep.day) else "closed day"
        pace = "as fast as possible" if mode == "fast" else f"x{args.speed:g}"
        if mode == "real":
            pace += f"  (~{span * 60 / args.speed:.1f} min for {span:.1f} h)"
        print(
            f"Simulated PBX for {prep.day.isoformat()} ({kind}): {len(plan.arrivals)} calls, "
            f"{len(plan.agents)} agents, seed {args.seed}\n"
            f"  AMI        {args.ami_host}:{sim.ami_port}  (user {prep.ami_username})\n"
            f"  FastAGI -> {prep.agi}\n"
            f"  speed      {pace}",
            flush=True,
        )
        if args.wait_ami > 0 and not await _wait_for_login(sim, args.wait_ami):
            print(f"  (no AMI login within {args.wait_ami:g} s; running anyway)", flush=True)
        step = max(1, len(plan.arrivals) // 10)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                at = dt.datetime.fromtimestamp(sim.now(), tz).strftime("%H:%M")
                print(f"  {at}  {done}/{total} calls started", file=sys.stderr, flush=True)

        result = await sim.run_day(plan, prep.planner, on_progress=progress)
    print(json.dumps(result.summary(), indent=2, ensure_ascii=False))
    if args.truth:
        n = await asyncio.to_thread(result.truth.write_jsonl, args.truth)
        print(f"ground truth: {n} calls written to {args.truth}")
    return 0
