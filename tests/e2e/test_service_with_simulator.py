"""The whole product over real sockets: the simulated PBX plays an hour of a working day
through the service's FastAGI menu and AMI link into PostgreSQL; every simulated call
must have exactly one call row, with the outcome the simulator knows it had."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.acd.model import default_agent_id
from app.main import create_app
from app.settings import load_settings
from app.sim.harness import simulator, wait_logged_in
from app.sim.traffic import TrafficConfig
from app.store.db import create_engine, session_factory
from app.store.models import Call, Callback, CallEvent, SurveyResponse
from tests.auth_support import admin_headers

ROOT = Path(__file__).resolve().parents[2]


async def rows(url: str) -> list[Call]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        out = list((await s.execute(select(Call))).scalars().all())
    await engine.dispose()
    return out


@pytest.mark.parametrize(
    "hours",
    [(9.0, 10.0), (7.0, 8.5)],  # a busy morning hour; the opening (closed before 08:00)
    ids=["morning", "opening"],
)
async def test_traffic_matches_the_simulators_truth(
    pg_url: str, tmp_path: Path, unused_tcp_port: int, hours: tuple[float, float]
) -> None:
    traffic = TrafficConfig(
        date=dt.date(2014, 11, 4), seed=11, hours=hours, calls_scale=1.0 if hours[0] >= 8 else 4.0
    )
    async with simulator(ROOT / "ivr_flows", unused_tcp_port, traffic) as simulation:
        settings = load_settings(
            database_url=pg_url,
            ami_host="127.0.0.1",
            ami_port=simulation.ami_port,
            ami_secret="acdsecret",
            agi_port=unused_tcp_port,
            ivr_flows=str(ROOT / "ivr_flows"),
            spill_dir=str(tmp_path),
            caller_hash_key="e2e-caller-hash-key-0123456789",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            rt: Any = app.state.rt
            await wait_logged_in(simulation.sim)
            result = await simulation.sim.run_day(simulation.plan, simulation.keys)
            # Let the last hang-ups and wrap-ups reach the state machine and the log.
            rt.centre.tick(rt.pipeline.pbx_now() + dt.timedelta(minutes=10))
            rt.pipeline.flush()
            await rt.writer.drained(within=60)
            transport = httpx.ASGITransport(app=app)
            headers = await admin_headers(pg_url)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://acd", headers=headers
            ) as c:
                api = (await c.get("/v1/calls", params={"limit": 500})).json()
    truth = {t.linkedid: t for t in result.truth}
    got = {r.linkedid: r for r in await rows(pg_url)}
    assert len(truth) > 50
    assert set(got) == set(truth), "every simulated call has exactly one row"
    mismatches = []
    for linkedid, t in truth.items():
        r = got[linkedid]
        want_agent = default_agent_id(t.agent) if t.agent else None
        first_queue = t.queues[0] if t.queues else None
        if (r.outcome, r.queue, r.agent) != (t.outcome, first_queue, want_agent):
            mismatches.append(
                (
                    linkedid,
                    (r.outcome, r.queue, r.agent),
                    (t.outcome, first_queue, want_agent, t.detail),
                )
            )
        elif "".join(t.keys) != r.keys:
            mismatches.append((linkedid, r.keys, t.keys))
        elif r.hangup_by != t.hangup_by:
            # Who ended it: the simulated PBX sends HangupRequest as Asterisk 22 does.
            mismatches.append((linkedid, r.hangup_by, t.hangup_by, t.outcome, t.detail))
        elif t.outcome == "answered":
            assert r.wait_seconds is not None and t.wait is not None
            assert abs(r.wait_seconds - t.wait) < 0.01, (linkedid, r.wait_seconds, t.wait)
            assert r.talk_seconds is not None and t.talk is not None
            assert abs(r.talk_seconds - t.talk) < 0.01, (linkedid, r.talk_seconds, t.talk)
    assert not mismatches, mismatches[:10]
    enders = Counter((t.outcome, t.hangup_by) for t in truth.values())
    assert enders[("answered", "caller")] and enders[("answered", "agent")], enders
    assert all(r.hangup_by is not None for r in got.values())
    if hours[0] >= 8:
        assert enders[("abandoned", "caller")] and enders[("ivr_hangup", "caller")], enders
    else:
        assert enders[("closed", "system")], enders
    assert api["items"] and all("caller" in i for i in api["items"])

    # Surveys: every answer the simulated callers gave is stored with its call.
    engine = create_engine(pg_url)
    async with session_factory(engine)() as s:
        surveys = {r.linkedid: r for r in (await s.execute(select(SurveyResponse))).scalars()}
        tasks = {r.linkedid: r for r in (await s.execute(select(Callback))).scalars()}
        events = (await s.execute(select(CallEvent.kind))).scalars().all()
    await engine.dispose()
    answered_surveys = {lid: t.survey for lid, t in truth.items() if t.survey}
    for lid, scores in answered_surveys.items():
        row = surveys[lid]
        assert [x for x in (row.friendliness, row.wait, row.overall) if x is not None] == scores[
            :3
        ], (lid, scores)
        assert row.call_id == got[lid].id
    # Call-backs and messages become tasks, one per call, due within 2 working days.
    wanted = {lid for lid, t in truth.items() if t.outcome in ("callback", "message")}
    assert set(tasks) == wanted
    for lid in wanted:
        assert tasks[lid].kind == truth[lid].outcome and tasks[lid].status == "open"
        assert tasks[lid].due_at > tasks[lid].requested_at
    outcomes = Counter(t.outcome for t in truth.values())
    if hours[0] < 8:
        assert outcomes["closed"] > 0
    assert "ivr_key" in events and "queue_join" in events
