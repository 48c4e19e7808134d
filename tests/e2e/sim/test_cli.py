"""``acd simulate`` as a newcomer runs it: a process, a FastAGI service, a summary."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from app.sim.runner import load_queues
from app.sim.stub_ivr import StubIvr
from app.sim.traffic import catalogue_key_planner
from app.sim.truth import OUTCOMES, read_jsonl

ROOT = Path(__file__).resolve().parents[3]


def test_acd_simulate_runs_a_day_and_writes_the_truth(tmp_path: Path) -> None:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    ivr = StubIvr(catalogue_key_planner(queues.names).mapping)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(ivr.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    truth = tmp_path / "truth.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "simulate",
                "--date",
                "2014-11-04",
                "--speed",
                "0",
                "--seed",
                "3",
                "--calls-scale",
                "0.05",
                "--ami-port",
                "0",
                "--wait-ami",
                "0",
                "--agi",
                ivr.address,
                "--truth",
                str(truth),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert proc.returncode == 0, proc.stderr
    assert "Simulated PBX for 2014-11-04 (working day)" in proc.stdout
    summary = json.loads(proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1])
    rows = read_jsonl(truth)
    assert summary["calls"] == len(rows) > 40
    assert sum(summary["outcomes"].values()) == len(rows)
    assert {r["outcome"] for r in rows} <= set(OUTCOMES)
    assert ivr.sessions >= len(rows) - sum(1 for r in rows if r["outcome"] == "ivr_hangup")
