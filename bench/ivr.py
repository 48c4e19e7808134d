"""FastAGI benchmark: many concurrent callers walking the real menu over TCP.

    python bench/ivr.py                               # 200 concurrent, 4000 calls
    python bench/ivr.py --concurrency 200 --calls 10000 --json
    python bench/ivr.py --background "python bench/ingest.py --rate 400"

The service's FastAGI server (the real ``AgiServer`` with ``ivr_flows/jobcenter.yaml``,
a fixed clock inside opening hours, events counted and dropped) runs in a child process;
this process plays Asterisk: ``--concurrency`` callers at a time, each one call over its own
TCP connection, pressing the keys to a queue chosen by the 2014 call volumes (10 % press a
wrong key first). Before each media reply a caller waits ``--pace-ms`` on average (a prompt
playing, a finger on the keypad); ``--pace-ms 0`` floods the server instead (saturation:
then the figure is mostly queueing behind the other callers). Reported:

- key -> next command: from writing the GET DATA reply that carries a key to receiving the
  service's next command (measured here, so it includes this process's own loop delays);
- server step: the service's own time from reply received to next command sent;
- sessions/s: completed calls per second of wall time.

Goal: p99 key -> next command under 10 ms. ``--background`` runs any command (e.g. the AMI
ingest benchmark) during the load and stops it afterwards. Everything talks to 127.0.0.1
only and stops by itself (``--max-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A Tuesday at 10:30 in Copenhagen: open, and past the 09-10 Sygedagpenge rule.
BENCH_NOW = datetime(2025, 3, 4, 10, 30, tzinfo=ZoneInfo("Europe/Copenhagen")).astimezone(UTC)

ENV_TEMPLATE = (
    "agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1:{port}/ivr\n"
    "agi_channel: PJSIP/trunk-{n:08x}\nagi_language: en\nagi_type: PJSIP\n"
    "agi_uniqueid: {uniqueid}\nagi_version: 22.11.0-rc1\nagi_callerid: {caller}\n"
    "agi_calleridname: Borger\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
    "agi_callingtns: 0\nagi_dnid: 82565682\nagi_rdnis: unknown\nagi_context: from-trunk\n"
    "agi_extension: 82565682\nagi_priority: 5\nagi_enhanced: 0.0\nagi_accountcode: \n"
    "agi_threadid: 140000000000000\nagi_arg_1: jobcenter\n\n"
)


# --------------------------------------------------------------------------------------
# The service side (child process)
# --------------------------------------------------------------------------------------


class StepRecorder:
    """Stands in for the step histogram to keep every sample."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def observe(self, value: float) -> None:
        self.samples.append(value)


async def serve(flows: Path) -> None:
    from app.agi.channel import AgiLimits
    from app.agi.server import AgiServer
    from app.config.registry import ConfigRegistry
    from app.metrics import Metrics
    from app.privacy import CallerPrivacy

    events = 0

    def emit(_event: object) -> None:
        nonlocal events
        events += 1

    metrics = Metrics()
    steps = StepRecorder()
    metrics.agi_step_seconds = steps  # type: ignore[assignment]
    config = ConfigRegistry(flows, sighup=False)
    config.load()
    server = AgiServer(
        host="127.0.0.1",
        port=0,
        config=config,
        emit=emit,
        estimates=lambda queue: None,
        privacy=CallerPrivacy(b"bench-caller-hash-key-0123456789"),
        metrics=metrics,
        pbx="bench",
        tz=ZoneInfo("Europe/Copenhagen"),
        clock=lambda: BENCH_NOW,
        limits=AgiLimits(session_seconds=120),
        max_sessions=2000,
    )
    await server.start()
    print(f"READY {server.port}", flush=True)
    # Run until the parent closes our stdin, then report.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()
    print(json.dumps({"events": events, "steps": steps.samples}), flush=True)


# --------------------------------------------------------------------------------------
# The Asterisk side (this process)
# --------------------------------------------------------------------------------------


@dataclass
class Results:
    key_latency: list[float] = field(default_factory=list)
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    routes: dict[str, int] = field(default_factory=dict)


async def one_call(
    port: int, n: int, keys: list[str], results: Results, pace: float, rng: random.Random
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    uniqueid = f"1795400000.{n}"
    writer.write(
        ENV_TEMPLATE.format(port=port, n=n, uniqueid=uniqueid, caller=f"2{n % 10**7:07d}").encode()
    )
    pending = list(keys)
    key_sent_at: float | None = None
    variables: dict[str, str] = {}
    try:
        while True:
            line = await reader.readline()
            now = time.perf_counter()
            if key_sent_at is not None and line:
                results.key_latency.append(now - key_sent_at)
            key_sent_at = None
            if not line:
                break
            command = line.decode()
            if pace and command.startswith(("ANSWER", "STREAM FILE", "GET DATA", "RECORD")):
                # A prompt playing / the caller reaching for the keypad.
                await asyncio.sleep(pace * rng.uniform(0.5, 1.5))
            if command.startswith("GET DATA"):
                if pending:
                    writer.write(f"200 result={pending.pop(0)}\n".encode())
                    key_sent_at = time.perf_counter()
                else:
                    writer.write(b"200 result= (timeout)\n")
            elif command.startswith("GET FULL VARIABLE"):
                writer.write(f"200 result=1 ({uniqueid})\n".encode())
            elif command.startswith("STREAM FILE"):
                writer.write(b"200 result=0 endpos=8000\n")
            elif command.startswith("SET VARIABLE"):
                name, _, value = command[len("SET VARIABLE ") :].strip().partition(" ")
                variables[name] = value.strip('"')
                writer.write(b"200 result=1\n")
            elif command.startswith("RECORD FILE"):
                writer.write(b"200 result=0 (timeout) endpos=8000\n")
            else:
                writer.write(b"200 result=0\n")
    finally:
        writer.close()
    route = variables.get("ACD_QUEUE") or variables.get("ACD_ROUTE") or "none"
    results.routes[route] = results.routes.get(route, 0) + 1
    if "ACD_ROUTE" not in variables:
        results.errors.append(f"call {n}: no route")
    results.completed += 1


async def drive(
    port: int, concurrency: int, calls: int, seed: int, deadline: float, pace: float
) -> Results:
    from app.config.loader import load_config
    from app.ivr.graph import key_paths

    config = load_config(ROOT / "ivr_flows")
    assert config.queues is not None
    paths = key_paths(config.flows["jobcenter"])
    volumes = {q.name: max(q.calls_per_year, 500) for q in config.queues.queues}
    queues = sorted(paths)
    rng = random.Random(seed)
    plan = []
    for _ in range(calls):
        queue = rng.choices(queues, weights=[volumes[q] for q in queues])[0]
        keys = list(paths[queue])
        if rng.random() < 0.1:
            keys.insert(0, "9")  # a wrong key first: the menu is replayed
        plan.append(keys)
    results = Results()
    semaphore = asyncio.Semaphore(concurrency)

    async def run(n: int, keys: list[str]) -> None:
        async with semaphore:
            if time.monotonic() > deadline:
                return
            try:
                call = one_call(port, n, keys, results, pace, random.Random(seed + n))
                await asyncio.wait_for(call, 30)
            except Exception as exc:  # a failed call is a result, not a crash
                results.errors.append(f"call {n}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(run(n, keys) for n, keys in enumerate(plan)))
    return results


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, default=200, help="callers at once (default 200)")
    p.add_argument("--calls", type=int, default=4000, help="calls in total (default 4000)")
    p.add_argument(
        "--pace-ms",
        type=float,
        default=500.0,
        help="mean delay before each media reply: prompt playing, caller pressing "
        "(default 500, ten times faster than real prompts; 0 = flood, a saturation test)",
    )
    p.add_argument("--seed", type=int, default=4582565682 % 2**32)
    p.add_argument("--background", metavar="CMD", help="run CMD during the load, stop it after")
    p.add_argument("--max-seconds", type=float, default=120, help="stop by itself (default 120)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(ROOT / "ivr_flows"))
        return 0

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    background: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None and server.stdin is not None
        ready = server.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "READY":
            print("the FastAGI server did not start", file=sys.stderr)
            return 2
        port = int(ready[1])
        if args.background:
            background = subprocess.Popen(shlex.split(args.background), start_new_session=True)
        deadline = time.monotonic() + args.max_seconds
        t0 = time.perf_counter()
        pace = args.pace_ms / 1000
        results = asyncio.run(drive(port, args.concurrency, args.calls, args.seed, deadline, pace))
        elapsed = time.perf_counter() - t0
        server.stdin.close()
        report = json.loads(server.stdout.readline() or "{}")
        server.wait(timeout=30)
    finally:
        if background is not None and background.poll() is None:
            os.killpg(background.pid, signal.SIGTERM)
            try:
                background.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(background.pid, signal.SIGKILL)
                background.wait()
        if server.poll() is None:
            server.kill()
            server.wait()

    lat = results.key_latency
    steps = report.get("steps", [])
    figures = {
        "concurrency": args.concurrency,
        "pace_ms": args.pace_ms,
        "calls": results.completed,
        "seconds": round(elapsed, 3),
        "sessions_per_second": round(results.completed / elapsed, 1) if elapsed else 0.0,
        "keys": len(lat),
        "key_to_next_command_ms": {
            "p50": round(pct(lat, 0.50) * 1000, 3),
            "p99": round(pct(lat, 0.99) * 1000, 3),
            "max": round(max(lat) * 1000, 3) if lat else None,
            "mean": round(statistics.fmean(lat) * 1000, 3) if lat else None,
        },
        "server_step_ms": {
            "p50": round(pct(steps, 0.50) * 1000, 3),
            "p99": round(pct(steps, 0.99) * 1000, 3),
        },
        "events": report.get("events"),
        "errors": len(results.errors),
        "background": args.background or None,
        "goal_p99_under_10ms": bool(lat) and pct(lat, 0.99) < 0.010,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        k, s = figures["key_to_next_command_ms"], figures["server_step_ms"]
        print(f"IVR FastAGI benchmark: {args.concurrency} concurrent callers, "
              f"{results.completed} calls in {elapsed:.2f} s, pace {args.pace_ms:g} ms"
              + (f", background: {args.background}" if args.background else ""))  # fmt: skip
        print(f"  sessions/s            {figures['sessions_per_second']:.1f}")
        print(f"  key -> next command   p50 {k['p50']:.3f} ms   p99 {k['p99']:.3f} ms   "
              f"max {k['max']} ms   ({len(lat)} keys, measured by the caller side)")  # fmt: skip
        print(f"  server step           p50 {s['p50']:.3f} ms   p99 {s['p99']:.3f} ms   "
              f"({len(steps)} steps, inside the service)")  # fmt: skip
        print(f"  events emitted        {figures['events']}")
        print(f"  errors                {len(results.errors)}")
        print(f"  goal p99 < 10 ms      {'PASS' if figures['goal_p99_under_10ms'] else 'FAIL'}")
    for error in results.errors[:5]:
        print(f"  ! {error}", file=sys.stderr)
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
