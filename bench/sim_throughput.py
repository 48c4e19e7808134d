"""Simulator-alone throughput: a whole day as fast as possible.

    .venv/bin/python bench/sim_throughput.py [--scale 1.0] [--seed 7] [--noise] [--no-ami]

The FastAGI side is the trivial in-process responder (app/sim/stub_ivr.py) over loopback
TCP; unless ``--no-ami``, one AMI client is logged in and reads every event. Prints calls
per second and AMI events per second of wall clock (one process, one core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.stub_ivr import StubIvr
from app.sim.traffic import TrafficConfig, catalogue_key_planner, plan_day

ROOT = Path(__file__).resolve().parents[1]


async def drain(port: int, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"Action: Login\r\nUsername: acd\r\nSecret: acdsecret\r\n\r\n")
    while data := await reader.read(1 << 16):
        counter[0] += data.count(b"\r\n\r\n")


async def main(args: argparse.Namespace) -> dict[str, object]:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    planner = catalogue_key_planner(queues.names)
    ivr = StubIvr(planner.mapping)
    await ivr.start()
    plan = plan_day(queues, TrafficConfig(seed=args.seed, calls_scale=args.scale))
    config = PbxConfig(
        queues=queues,
        start=plan.start,
        agi_address=ivr.address,
        noise=args.noise,
        seed=args.seed,
        late_complete_share=0.1,
    )
    sim = SimulatedPbx(config, mode="fast", ami_port=None if args.no_ami else 0)
    received = [0]
    async with sim:
        reader = None if args.no_ami else asyncio.create_task(drain(sim.ami_port, received))
        await asyncio.sleep(0.1)
        t0 = time.perf_counter()
        result = await sim.run_day(plan, planner)
        wall = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        if reader is not None:
            reader.cancel()
    await ivr.stop()
    return {
        "calls": result.calls,
        "agi_commands": ivr.commands,
        "events": result.events,
        "ami_messages_read": received[0],
        "virtual_hours": round(result.virtual_seconds / 3600, 2),
        "wall_seconds": round(wall, 3),
        "calls_per_second": round(result.calls / wall, 1),
        "events_per_second": round(result.events / wall, 1),
        "speedup": round(result.virtual_seconds / wall, 1),
        "noise": args.noise,
        "ami_client": not args.no_ami,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--noise", action="store_true")
    p.add_argument("--no-ami", action="store_true")
    print(json.dumps(asyncio.run(main(p.parse_args())), indent=2))
