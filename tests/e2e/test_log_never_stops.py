"""What stopped the event log for good on a real Asterisk (issue 14), through the real
service over TCP into PostgreSQL: a start with agents logged in to every queue (the
resync's agent-state keys were 86 characters long), and hostile AMI values (a 100-
character Linkedid, Cause 99999, over-long names). Every row fits, nothing is set aside,
and the calls after them are recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.acd.records import fit, fit_id
from app.main import create_app
from app.settings import load_settings
from app.sim.behaviour import Reply, ScriptedCaller, Talk
from app.sim.harness import wait_logged_in
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.store.db import create_engine, session_factory
from app.store.models import AgentStateChange, Call, DeadLetter
from tests.ami_replay import T0, ReplayServer, load_capture, stream
from tests.auth_support import admin_headers
from tests.e2e.test_ami_service import service, wait_for
from tests.unit.test_bounds import substitute

ROOT = Path(__file__).resolve().parents[2]
COPENHAGEN = dt.timezone(dt.timedelta(hours=1))
START = dt.datetime(2014, 11, 4, 9, 5, tzinfo=COPENHAGEN).timestamp()


async def select_all(url: str, query: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return list((await s.execute(query)).all())
    finally:
        await engine.dispose()


async def test_a_start_with_4_agents_logged_in_to_all_11_queues_is_logged_and_goes_on(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    names = [q.name for q in queues.queues]
    assert len(names) == 11
    config = PbxConfig(
        queues=queues,
        start=START,
        timestampevents=True,
        agi_address=f"127.0.0.1:{unused_tcp_port}",
        seed=3,
    )
    sim = SimulatedPbx(
        config, mode="real", speed=20.0, ami_port=0, users={"acd": ManagerUser("acd", "acdsecret")}
    )
    headers = await admin_headers(pg_url)
    async with sim:
        # Logged in before the service starts: its first resync finds them all.
        interfaces = [f"PJSIP/agent{n}" for n in (1001, 1002, 1003, 1004)]
        for interface in interfaces:
            for queue in names:
                sim.pbx.add_member(
                    queue, interface, membername=interface[6:], state_interface=interface
                )
        settings = load_settings(
            database_url=pg_url,
            ami_host="127.0.0.1",
            ami_port=sim.ami_port,
            ami_secret="acdsecret",
            agi_port=unused_tcp_port,
            ivr_flows=str(ROOT / "ivr_flows"),
            spill_dir=str(tmp_path),
            caller_hash_key="e2e-caller-hash-key-0123456789",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            rt: Any = app.state.rt
            await wait_logged_in(sim)
            await rt.ami.wait_ready()

            async def logged_in() -> bool:
                rt.pipeline.flush()
                await rt.writer.drained(within=30)
                rows = await select_all(
                    pg_url,
                    select(AgentStateChange.interface, AgentStateChange.queue).where(
                        AgentStateChange.state == "logged_in"
                    ),
                )
                return len(rows) >= 44

            await wait_for(logged_in)
            # The log goes on: a caller after the start is recorded, answered by one of them.
            caller = ScriptedCaller(
                number="4520001", replies=[Reply("digits", "2", 1.0)], talks=[Talk(30.0, True)]
            )
            truth = await asyncio.wait_for(sim.call(caller), 60)
            rt.centre.tick(rt.pipeline.pbx_now() + dt.timedelta(minutes=5))
            rt.pipeline.flush()
            await rt.writer.drained(within=30)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://acd", headers=headers
            ) as client:
                ready = await client.get("/ready")
                calls = (await client.get("/v1/calls")).json()["items"]
            health = await rt.writer.check()

    assert ready.status_code == 200, ready.text
    assert health.ok and health.detail["set_aside"] == 0
    logins = await select_all(
        pg_url,
        select(AgentStateChange.interface, AgentStateChange.queue, AgentStateChange.event_key)
        .where(AgentStateChange.state == "logged_in"),
    )  # fmt: skip
    assert {(i, q) for i, q, _ in logins} == {(i, q) for i in interfaces for q in names}
    long_keys = [k for _, q, k in logins if q == "andre_forvaltninger"]
    assert all(len(k) == 64 and "~" in k for k in long_keys), long_keys  # fitted, hashed
    assert len({k for _, _, k in logins}) == len(logins)
    assert [c["linkedid"] for c in calls] == [truth.linkedid]
    assert calls[0]["outcome"] == truth.outcome == "answered"
    assert (await select_all(pg_url, select(func.count()).select_from(DeadLetter)))[0][0] == 0


async def test_hostile_ami_values_end_to_end_fit_and_the_next_call_is_recorded(
    pg_url: str, tmp_path: Path
) -> None:
    long_linkedid = "1795362316.8" + "7" * 88  # 100 characters
    long_queue = "q" * 100
    hostile = {
        "Linkedid": long_linkedid,
        "Cause": "99999",
        "Queue": long_queue,
        "Interface": "PJSIP/" + "a" * 200,
        "MemberName": "Agent\x00 " + "n" * 150,
        "CallerIDName": "x" * 300,
        "Position": "99999999999999999999999",
    }
    first = b"".join(
        substitute(frame, hostile) + b"\r\n\r\n"
        for frame in stream(load_capture("01_answered"), timestamps=True).split(b"\r\n\r\n")
        if frame
    )
    second = stream(load_capture("03_abandon"), timestamps=True, base=T0 + dt.timedelta(minutes=5))
    member = (
        "Event: QueueMember\r\nQueue: " + long_queue + "\r\nName: " + "m" * 200
        + "\r\nLocation: PJSIP/" + "b" * 200 + "\r\nMembership: dynamic\r\nPenalty: 0"
        + "\r\nStatus: 1\r\nPaused: 1\r\nPausedReason: frokost\x00" + "z" * 100
    ).encode()  # fmt: skip
    server = ReplayServer(payloads=[first + second])
    server.list_items["QueueStatus"] = [member]
    async with server as pbx, service(pg_url, pbx.port, tmp=tmp_path) as svc:

        async def both() -> bool:
            rows = await select_all(pg_url, select(Call.linkedid).where(Call.outcome.is_not(None)))
            return len(rows) >= 2

        await wait_for(both)
        await svc.rt.writer.drained()
        ready = await svc.client.get("/ready")
        metrics = (await svc.client.get("/metrics")).text
        api = (await svc.client.get("/v1/calls")).json()["items"]
    assert ready.status_code == 200, ready.text
    rows = {
        r.linkedid: r
        for (r,) in await select_all(pg_url, select(Call).where(Call.outcome.is_not(None)))
    }
    hostile_row = rows[fit_id(long_linkedid)]
    assert hostile_row.outcome == "answered" and hostile_row.hangup_cause is None
    assert hostile_row.queue == fit(long_queue, 64)
    assert len(rows) == 2 and {c["linkedid"] for c in api} == set(rows)
    assert (await select_all(pg_url, select(func.count()).select_from(DeadLetter)))[0][0] == 0
    bounded = {
        line.split('"')[1]
        for line in metrics.splitlines()
        if line.startswith("acd_values_bounded_total{")
    }
    assert {"ami.Linkedid", "calls.hangup_cause", "calls.queue"} <= bounded, bounded
    states = await select_all(pg_url, select(AgentStateChange.interface, AgentStateChange.reason))
    assert states and all(len(i) <= 128 and "\x00" not in (r or "") for i, r in states)
