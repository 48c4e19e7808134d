"""Planning against a real database (SQLite and PostgreSQL): the reads that sum the log,
GET /v1/forecast and /v1/staffing (JSON, CSV, XLSX read back), who may read them, bad
input; and the intraday projection in the live board, /v1/queues' model and the gauges.

The log: ten weeks of the traffic model at a tenth of Copenhagen's volume (~150 calls a
working day), written as queue visits, and two agents a day with 42 minutes of pause in
7 hours (shrinkage 10 %)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from prometheus_client.core import CollectorRegistry

from app.acd.board import QueueInfo, build_board
from app.acd.ewt import HandleTimes
from app.acd.kpi import DayBook, KpiConfig
from app.acd.plan import PlanTargets
from app.acd.state import CallCentre
from app.api.live import QueuesOut
from app.config.loader import load_config
from app.live import queries
from app.live.collector import LiveCollector
from app.live.store import LiveStore
from app.main import create_app
from app.planning import IntradayMonitor, Planner, schedule_of_flows
from app.reports.goals import live_goals, load_goals
from app.settings import load_settings
from app.sim.history import history_rows
from app.sim.runner import load_queues
from app.sim.traffic import TrafficConfig
from app.store.db import create_engine, session_factory
from app.store.planning import load_history, patience_samples, shrinkage_sample
from tests.auth_support import key, make_user
from tests.planning_support import TZ, agent_day, visit_rows, write_log
from tests.unit.test_kpi import visit

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "ivr_flows"
FIRST, DAY = dt.date(2014, 8, 25), dt.date(2014, 11, 4)  # a Tuesday, planned from Nov 3
TRAFFIC = TrafficConfig(seed=4, calls_scale=0.1)
_rows = list(history_rows(load_queues(FLOWS / "queues.yaml"), TRAFFIC, FIRST, DAY))
DAYS = sorted({r.day for r in _rows})


async def seed(url: str) -> None:
    states = [s for d in DAYS for a in ("agent1", "agent2") for s in agent_day(d, a, 42)]
    await write_log(url, visit_rows(_rows), states)


@asynccontextmanager
async def service(
    url: str, tmp: Path, tag: str = ""
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    who = {
        "admin": key(await make_user(url, f"admin{tag}", "admin")),
        "lead": key(await make_user(url, f"lead{tag}", "supervisor", teams=["nord"])),
        "agent": key(await make_user(url, f"anne{tag}", "agent", agent_id="agent1")),
    }
    app = create_app(load_settings(database_url=url, spill_dir=str(tmp), ivr_flows=str(FLOWS)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://acd") as http:
            yield http, who


async def test_the_planning_reads_sum_the_log(db_url: str) -> None:
    await seed(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as s:
            h = await load_history(s, FIRST, DAY, TZ)
            start = dt.datetime.combine(FIRST, dt.time(), TZ)
            end = dt.datetime.combine(DAY, dt.time(), TZ)
            patience = await patience_samples(s, start, end, 5.0)
            shrink = await shrinkage_sample(s, DAYS[-20:], TZ)
    finally:
        await engine.dispose()
    assert h.observed == set(DAYS)
    for r in _rows[:: max(1, len(_rows) // 200)]:  # a sample of (queue, day, half hour)
        log = h.queues[r.queue][r.day]
        assert log.offered[r.slot] == r.offered and log.handled[r.slot] == r.handled
        assert log.handle_seconds[r.slot] == pytest.approx(r.handle_seconds, rel=1e-6)
    assert sum(d.total for q in h.queues.values() for d in q.values()) == sum(
        r.offered for r in _rows
    )
    abandons = sum(r.offered - r.handled for r in _rows)
    assert sum(p.abandons for p in patience.values()) == abandons
    assert shrink.agent_days == 40 and shrink.share == pytest.approx(0.1, abs=1e-6)


async def test_forecast_and_staffing_over_http(db_url: str, tmp_path: Path) -> None:
    await seed(db_url)
    async with service(db_url, tmp_path) as (http, who):
        r = await http.get("/v1/forecast", params={"date": DAY.isoformat()}, headers=who["lead"])
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["origin"] == "2014-11-03" and doc["history"]["days"] == len(DAYS)
        acc = doc["accuracy"]
        assert acc["horizon_days"] == 1 and acc["centre"]["days"] >= 15
        assert 0 < acc["centre"]["wape_day"] < 0.2 and acc["centre"]["wape_half_hour"] < 0.5
        (day,) = doc["days"]
        assert day["closed"] is None and len(day["queues"]) == 11
        weekly_mean = sum(r.offered for r in _rows) / len(DAYS)
        assert day["calls"] == pytest.approx(weekly_mean, rel=0.25)
        assert [s["start"] for s in day["queues"][0]["slots"]][:2] == ["08:00", "08:30"]

        one = await http.get(
            "/v1/forecast",
            params={"date": "2014-11-10", "days": 5, "queue": "dagpenge"},
            headers=who["admin"],
        )
        assert one.status_code == 200
        assert [len(d["queues"]) for d in one.json()["days"]] == [1] * 5

        r = await http.get("/v1/staffing", params={"date": DAY.isoformat()}, headers=who["admin"])
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["shrinkage"] == {"share": 0.1, "source": "measured", "measured": 0.1,
                                     "agent_days": 40}  # fmt: skip
        # The staffing targets are the agreement's in force (ivr_flows/goals.yaml).
        goals = live_goals(load_goals(ROOT / "ivr_flows"), DAY)
        assert plan["targets"]["answer_rate"] == goals.answer_rate
        assert plan["patience"]["centre_seconds"] > 0
        hours = plan["days"][0]["agent_hours"]
        assert 0 < hours["erlang_a"] <= hours["erlang_c"] < hours["rostered"] + hours["erlang_c"]
        assert hours["plan"] == hours["erlang_a"]

        r = await http.get(
            "/v1/staffing",
            params={"date": DAY.isoformat(), "format": "csv", "shrinkage": "0.25"},
            headers=who["admin"],
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 11 * 14  # Tuesday 08:00-15:00, every queue
        busy = [x for x in rows if x["agents"]]
        assert all(int(x["rostered"]) >= int(x["agents"]) / 0.75 - 1e-9 for x in busy)

        r = await http.get(
            "/v1/staffing",
            params={
                "date": DAY.isoformat(),
                "format": "xlsx",
                "pool": "erhverv=virksomhed,ni_by,erhvervshuset",
            },
            headers=who["admin"],
        )
        assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
        wb = load_workbook(io.BytesIO(r.content))
        assert wb.sheetnames == ["Bemanding", "Dage", "Nøjagtighed", "Mål"]
        sheet = wb["Bemanding"]
        assert sheet["A1"].value == "Dato" and sheet["K1"].value == "Agenter"
        groups = {row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
        assert "erhverv" in groups and "ni_by" not in groups and len(groups) == 9
        assert wb["Nøjagtighed"]["A2"].value == "_all"


async def test_bad_requests_get_clear_answers(sqlite_url: str, tmp_path: Path) -> None:
    async with service(sqlite_url, tmp_path) as (http, who):
        # an empty log: nothing to forecast from
        r = await http.get("/v1/forecast", params={"date": "2014-11-04"}, headers=who["admin"])
        assert r.status_code == 409 and "no calls" in r.json()["detail"]
    await seed(sqlite_url)
    async with service(sqlite_url, tmp_path, "2") as (http, who):
        h = who["admin"]
        cases = [
            ("/v1/forecast", {"date": "2014-13-01"}, 422),
            ("/v1/forecast", {"date": "2014-11-04", "days": 0}, 422),
            ("/v1/forecast", {"date": "2014-11-04", "days": 43}, 422),
            ("/v1/forecast", {"date": "2014-11-04", "queue": "nope"}, 404),
            ("/v1/staffing", {"date": "2014-11-04", "shrinkage": "1"}, 422),
            ("/v1/staffing", {"date": "2014-11-04", "format": "pdf"}, 422),
            ("/v1/staffing", {"date": "2014-11-04", "pool": "x=nope"}, 404),
            ("/v1/staffing", {"date": "2014-11-04", "pool": "bad pool"}, 422),
            ("/v1/staffing", {"date": "2014-11-04", "max_occupancy": "0"}, 422),
        ]
        for path, params, status in cases:
            r = await http.get(path, params=params, headers=h)
            assert r.status_code == status, (path, params, r.text)
            assert r.json()["detail"]
        # Christmas: closed days, no staffing, no error
        r = await http.get("/v1/staffing", params={"date": "2014-12-24", "days": 3}, headers=h)
        assert r.status_code == 200
        assert [d["closed"] for d in r.json()["days"]] == [
            "helligdag: Juleaftensdag", "helligdag: Juledag", "helligdag: 2. juledag",
        ]  # fmt: skip
        # who may read plans: not an agent, not without credentials
        r = await http.get("/v1/staffing", params={"date": "2014-11-04"}, headers=who["agent"])
        assert r.status_code == 403
        r = await http.get("/v1/forecast", params={"date": "2014-11-04"})
        assert r.status_code == 401


async def test_the_projection_reaches_the_board_the_api_and_the_gauges(sqlite_url: str) -> None:
    await seed(sqlite_url)
    config = load_config(FLOWS)
    catalogue = config.queues
    assert catalogue is not None
    schedule = schedule_of_flows(config.flows)
    now = dt.datetime.combine(DAY, dt.time(10, 0), TZ)  # two hours into the day
    engine = create_engine(sqlite_url)
    try:
        planner = Planner(
            session_factory(engine),
            tz=TZ,
            queues=lambda: catalogue.names,
            wrapup=lambda: {q.name: float(q.wrapup_seconds) for q in catalogue.queues},
            schedule=lambda: schedule,
            targets=PlanTargets(),
            short_abandon_seconds=5.0,
            clock=lambda: now,
        )
        monitor = IntradayMonitor(planner)
        await monitor.load(DAY)
    finally:
        await engine.dispose()
    assert monitor.today is not None and monitor.today.day == DAY
    forecast = monitor.today.forecasts["kontanthjaelp"]
    so_far = sum(s.calls for s in forecast.slots if s.slot < 20)
    # Twice the forecast's calls so far in kontanthjaelp, each answered after 60 s.
    book = DayBook(TZ, KpiConfig())
    start = now - dt.timedelta(hours=2)
    for i in range(round(2 * so_far)):
        at = start + dt.timedelta(seconds=i * 7200 / (2 * so_far))
        book.decided(visit(i, "answered", 60.0, queue="kontanthjaelp", at=at.astimezone(dt.UTC)))
    infos = [QueueInfo(q.name, q.title, q.wrapup_seconds) for q in catalogue.queues]
    board = build_board(CallCentre("pbx1", catalogue), book, HandleTimes(), now.astimezone(dt.UTC),
                        infos, config=KpiConfig())  # fmt: skip
    monitor.decorate(board, now)
    p = board["queues"]["kontanthjaelp"]["projection"]
    n = round(2 * so_far)
    assert p["factor"] == pytest.approx((n + 20) / (so_far + 20), abs=1e-3)  # damped surprise
    assert p["expected_calls"] > p["forecast_calls"]
    # nobody is staffed now in kontanthjaelp: the day is at risk though it is fine so far
    assert board["queues"]["kontanthjaelp"]["today"]["answer_rate"] == 1.0
    assert "answer_rate" in p["at_risk"]
    assert board["centre"]["projection"]["forecast_calls"] > p["forecast_calls"]
    store = LiveStore(first_version=1)
    store.publish(board, 0.0)
    QueuesOut.model_validate_json(queries.queues(store) or b"")
    registry = CollectorRegistry()
    registry.register(LiveCollector(store, lambda: catalogue.names))
    rate = registry.get_sample_value("acd_projected_answer_rate", {"queue": "kontanthjaelp"})
    assert rate == p["answer_rate"]
    assert (
        registry.get_sample_value(
            "acd_goal_at_risk", {"queue": "kontanthjaelp", "goal": "answer_rate"}
        )
        == 1.0
    )
    assert registry.get_sample_value("acd_forecast_calls_today", {"queue": "_all"}) > 0
    # another day's board (or no plan) carries no projection, and no gauge
    monitor.decorate(board, now + dt.timedelta(days=1))
    assert board["queues"]["kontanthjaelp"]["projection"] is None
