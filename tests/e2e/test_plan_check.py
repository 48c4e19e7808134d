"""`acd plan --date D --check` on a simulated day: the plan is played in the simulated PBX
(real TCP between it and the FastAGI menu) and the checked plan meets every goal there.

The log is ten weeks of the traffic model at 15 % of Copenhagen's volume, written into a
SQLite database; the plan and the simulation then run as the command does."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from app.cli import main
from app.sim.history import history_rows
from app.sim.runner import load_queues
from app.sim.traffic import TrafficConfig
from tests.planning_support import agent_day, visit_rows, write_log

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2014, 11, 4)


@pytest.mark.slow
def test_the_checked_plan_meets_every_goal_in_the_simulation(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    rows = list(
        history_rows(queues, TrafficConfig(seed=9, calls_scale=0.15), dt.date(2014, 8, 25), DAY)
    )
    states = [s for d in sorted({r.day for r in rows}) for s in agent_day(d, "agent1", 30)]
    asyncio.run(write_log(sqlite_url, visit_rows(rows), states))
    monkeypatch.setenv("ACD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("ACD_IVR_FLOWS", str(ROOT / "ivr_flows"))
    out = tmp_path / "plan.json"
    code = main(["plan", "--date", DAY.isoformat(), "--check", "--format", "json",
                 "--output", str(out), "--rounds", "5"])  # fmt: skip
    doc = json.loads(out.read_text(encoding="utf-8"))
    check = doc["check"][DAY.isoformat()]
    assert code == 0 and check["met"] is True
    hours = check["agent_hours"]
    assert hours["erlang_c"] >= hours["erlang_a"] > 0
    assert hours["simulated_optimal"] is not None and hours["simulated_optimal"] > 0
    assert 1 <= len(check["rounds"]) <= 5
    # every judged unit of the checked staffing meets every goal
    centre = check["centre"]
    assert centre["met"] is True and centre["offered"] > 150
    assert centre["answer_rate"] >= 0.92 and centre["avg_wait_seconds"] <= 150
    assert centre["service_level"] >= 0.93
    assert all(v["met"] is not False for v in check["centre_half_hours"].values())
    for g in check["groups"].values():
        assert g["day"] is None or g["day"]["met"] is not False
        assert all(h.get("met") is not False for h in g["half_hours"])
    # the checked staffing is the one reported with the fewest agent-hours that passed
    best = min(r["agent_hours"] for r in check["rounds"] if r["passed"])
    assert hours["simulated_optimal"] == best
