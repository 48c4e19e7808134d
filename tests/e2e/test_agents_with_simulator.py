"""Agents at work against the simulated PBX over real sockets: the REST API drives the PBX
over AMI (QueueAdd, QueuePause, QueueRemove, BlindTransfer, Originate), the PBX's events
confirm each action, and calls made by simulated citizens through the real menu show
the effect. The simulator runs its own clock (20x real time) from a Tuesday 09:05.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.main import create_app
from app.settings import load_settings
from app.sim.behaviour import Reply, ScriptedCaller, Talk
from app.sim.harness import wait_logged_in
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.truth import CallTruth
from app.store.db import create_engine, session_factory
from app.store.models import AgentStateChange, Call, Callback, CallEvent, QueueVisit
from tests.auth_support import key, make_user
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
COPENHAGEN = dt.timezone(dt.timedelta(hours=1))  # November: CET
START = dt.datetime(2014, 11, 4, 9, 5, tzinfo=COPENHAGEN).timestamp()
KEYS = {"dagpenge": "2", "kontanthjaelp": "1"}  # key_path(jobcenter, queue)
SPEED = 20.0


@dataclass
class Centre:
    sim: SimulatedPbx
    rt: Any
    http: httpx.AsyncClient
    admin: dict[str, str]
    agent1: dict[str, str]
    agent2: dict[str, str]
    db_url: str

    async def post(self, path: str, who: dict[str, str], body: Any = None) -> httpx.Response:
        return await self.http.post(path, headers=who, json=body)

    def member(self, queue: str, interface: str) -> Any:
        q = self.sim.pbx.engine.get(queue)
        return q.member(interface) if q is not None else None

    def call(self, queue: str, *, patience: float | None = None, talk: float = 600.0,
             number: str = "4520001") -> asyncio.Task[CallTruth]:  # fmt: skip
        caller = ScriptedCaller(
            number=number,
            replies=[Reply("digits", KEYS[queue], 1.0)],
            wait_limit=patience,
            talks=[Talk(talk, True)],
        )
        return self.sim.start_call(caller)

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine)() as s:
                return list((await s.execute(select(model).where(*where))).scalars().all())
        finally:
            await engine.dispose()

    async def flushed(self) -> None:
        self.rt.pipeline.flush()
        await self.rt.writer.drained(within=30)


@contextlib.asynccontextmanager
async def centre(
    db_url: str, tmp_path: Path, agi_port: int, *, users: dict[str, ManagerUser] | None = None,
    **settings: Any,
) -> AsyncIterator[Centre]:  # fmt: skip
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    config = PbxConfig(
        queues=queues,
        start=START,
        timestampevents=True,
        agi_address=f"127.0.0.1:{agi_port}",
        seed=3,
    )
    sim = SimulatedPbx(
        config,
        mode="real",
        speed=SPEED,
        ami_port=0,
        users=users or {"acd": ManagerUser("acd", "acdsecret")},
    )
    admin = key(await make_user(db_url, "admin", "admin"))
    agent1 = key(await make_user(db_url, "anne", "agent", agent_id="agent1"))
    agent2 = key(await make_user(db_url, "bo", "agent", agent_id="agent2"))
    async with sim:
        s = load_settings(
            database_url=db_url,
            ami_host="127.0.0.1",
            ami_port=sim.ami_port,
            ami_secret="acdsecret",
            agi_port=agi_port,
            ivr_flows=str(ROOT / "ivr_flows"),
            spill_dir=str(tmp_path),
            caller_hash_key="e2e-caller-hash-key-0123456789",
            **settings,
        )
        app = create_app(s)
        async with app.router.lifespan_context(app):
            rt: Any = app.state.rt
            await wait_logged_in(sim)
            await rt.ami.wait_ready()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://acd") as http:
                c = Centre(sim, rt, http, admin, agent1, agent2, db_url)
                for agent_id, team, skills in (
                    ("agent1", "nord", [{"queue": "dagpenge", "penalty": 0}]),
                    ("agent2", "syd", [{"queue": "kontanthjaelp", "penalty": 1}]),
                ):
                    r = await http.put(
                        f"/v1/agents/{agent_id}",
                        headers=admin,
                        json={
                            "name": agent_id.title(),
                            "interface": f"PJSIP/{agent_id}",
                            "team": team,
                            "skills": skills,
                        },
                    )
                    assert r.status_code == 200, r.text
                yield c


# --------------------------------------------------------------------------------------


async def test_login_makes_the_pbx_see_the_member_and_the_agent_available(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        assert c.member("dagpenge", "PJSIP/agent1") is None
        r = await c.post("/v1/agents/agent1/login", c.agent1)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "available" and body["confirmed"] == ["dagpenge"]
        assert body["queues"] == [
            {"queue": "dagpenge", "penalty": 0, "paused": False, "reason": None}
        ]
        member = c.member("dagpenge", "PJSIP/agent1")
        assert member is not None and member.dynamic and not member.paused
        assert member.membername == "Agent1"
        # Logging in twice is a state error, and nothing is sent.
        again = await c.post("/v1/agents/agent1/login", c.agent1)
        assert again.status_code == 409 and "already logged in" in again.json()["detail"]
        await c.flushed()
        states = await c.rows(AgentStateChange, AgentStateChange.interface == "PJSIP/agent1")
        assert {(s.state, s.queue) for s in states} >= {
            ("logged_in", "dagpenge"),
            ("available", None),
        }
        assert all(s.agent_id == "agent1" for s in states)

        out = await c.post("/v1/agents/agent1/logout", c.agent1)
        assert out.status_code == 200 and out.json()["state"] == "logged_out"
        assert c.member("dagpenge", "PJSIP/agent1") is None
        gone = await c.post("/v1/agents/agent1/logout", c.agent1)
        assert gone.status_code == 409


async def test_pause_with_a_reason_stops_calls_reaching_the_agent(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        unknown = await c.post("/v1/agents/agent1/pause", c.agent1, {"reason": "siesta"})
        assert unknown.status_code == 422 and "lunch" in unknown.json()["detail"]
        r = await c.post("/v1/agents/agent1/pause", c.agent1, {"reason": "lunch"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "paused" and r.json()["reason"] == "lunch"
        member = c.member("dagpenge", "PJSIP/agent1")
        assert member.paused and member.paused_reason == "lunch"

        # A caller waits 60 s (3 s real) and gives up: nobody rang agent1.
        waited = await asyncio.wait_for(c.call("dagpenge", patience=60.0), 60)
        assert waited.queues == ["dagpenge"] and waited.outcome == "abandoned"
        assert waited.agent is None

        assert (await c.post("/v1/agents/agent1/unpause", c.agent1)).json()["state"] == "available"
        again = await c.post("/v1/agents/agent1/unpause", c.agent1)
        assert again.status_code == 409 and "not paused" in again.json()["detail"]
        answered = await asyncio.wait_for(c.call("dagpenge", talk=20.0), 60)
        assert answered.outcome == "answered" and answered.agent == "PJSIP/agent1"

        await c.flushed()
        rows = {r.linkedid: r for r in await c.rows(Call)}
        assert rows[waited.linkedid].outcome == "abandoned"
        assert rows[answered.linkedid].agent == "agent1"
        pauses = await c.rows(
            AgentStateChange,
            AgentStateChange.interface == "PJSIP/agent1",
            AgentStateChange.state == "paused",
        )
        assert {p.reason for p in pauses} == {"lunch"}


async def test_pause_while_logged_out_is_a_conflict_and_nothing_is_sent(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        sent_before = c.sim.pbx.event_count
        r = await c.post("/v1/agents/agent1/pause", c.agent1, {"reason": "lunch"})
        assert r.status_code == 409 and "logged out" in r.json()["detail"]
        assert (await c.post("/v1/agents/nobody/login", c.admin)).status_code == 404
        bad_queue = await c.post(
            "/v1/agents/agent1/login", c.admin, {"queues": [{"queue": "nosuchqueue"}]}
        )
        assert bad_queue.status_code == 404
        unskilled = await c.post(
            "/v1/agents/agent1/login", c.admin, {"queues": [{"queue": "kontanthjaelp"}]}
        )
        assert unskilled.status_code == 409 and "no skill" in unskilled.json()["detail"]
        other = await c.post("/v1/agents/agent2/login", c.agent1)
        assert other.status_code == 403
        assert c.sim.pbx.event_count == sent_before  # the PBX heard nothing


async def test_an_action_the_pbx_does_not_confirm_is_a_504_and_claims_nothing(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    # This manager user never receives QueueMemberAdded (manager.conf eventfilter): the
    # PBX says Success, adds the member, but the service never hears of it.
    deaf = {"acd": ManagerUser("acd", "acdsecret", eventfilters=("!Event: QueueMemberAdded",))}
    async with centre(pg_url, tmp_path, unused_tcp_port, users=deaf, ami_confirm_timeout=1.0) as c:
        t0 = asyncio.get_running_loop().time()
        r = await c.post("/v1/agents/agent1/login", c.agent1)
        took = asyncio.get_running_loop().time() - t0
        assert r.status_code == 504
        body = r.json()
        assert body["pbx"]["unconfirmed"] == ["dagpenge"] and body["pbx"]["confirmed"] == []
        assert "did not confirm" in body["detail"]
        assert 0.9 <= took < 5
        await c.flushed()
        assert c.rt.centre.members == {}
        states = await c.rows(AgentStateChange, AgentStateChange.interface == "PJSIP/agent1")
        assert not [s for s in states if s.state == "logged_in"]


async def test_a_transfer_shows_on_the_call(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        assert (await c.post("/v1/agents/agent2/login", c.agent2)).status_code == 200
        task = c.call("dagpenge", talk=600.0)

        async def talking() -> bool:
            await c.flushed()
            rows = await c.rows(Call, Call.agent == "agent1", Call.ended_at.is_(None))
            return bool(rows)

        await wait_for(talking)
        (call,) = await c.rows(Call, Call.agent == "agent1")
        wrong = await c.post(f"/v1/calls/{call.id}/transfer", c.agent2, {"queue": "kontanthjaelp"})
        assert wrong.status_code == 403  # not agent2's call
        same = await c.post(f"/v1/calls/{call.id}/transfer", c.agent1, {"queue": "dagpenge"})
        assert same.status_code == 409
        r = await c.post(f"/v1/calls/{call.id}/transfer", c.agent1, {"queue": "kontanthjaelp"})
        assert r.status_code == 200, r.text
        assert r.json()["via"] == "blind_transfer" and r.json()["target"] == "kontanthjaelp"

        async def with_agent2() -> bool:
            await c.flushed()
            visits = await c.rows(QueueVisit, QueueVisit.linkedid == call.linkedid)
            return any(v.agent == "agent2" for v in visits)

        await wait_for(with_agent2)
        (row,) = await c.rows(Call, Call.id == call.id)
        assert row.transferred_to == "kontanthjaelp"
        visits = sorted(await c.rows(QueueVisit, QueueVisit.linkedid == call.linkedid),
                        key=lambda v: v.seq)  # fmt: skip
        assert [(v.queue, v.agent) for v in visits] == [
            ("dagpenge", "agent1"),
            ("kontanthjaelp", "agent2"),
        ]
        kinds = [e.kind for e in await c.rows(CallEvent, CallEvent.linkedid == call.linkedid)]
        assert "blind_transfer" in kinds and "api_transfer" in kinds
        detail = (await c.http.get(f"/v1/calls/{call.id}", headers=c.admin)).json()
        assert detail["transferred_to"] == "kontanthjaelp"
        # The call is agent2's now: agent1 may no longer move it.
        late = await c.post(f"/v1/calls/{call.id}/transfer", c.agent1, {"queue": "dagpenge"})
        assert late.status_code == 403

        # An external unit in its best contact hours (JKA, 09:00-10:00 on the PBX's clock).
        out = await c.post(f"/v1/calls/{call.id}/transfer", c.agent2, {"destination": "jka"})
        assert out.status_code == 200, out.text
        assert out.json()["target_type"] == "destination" and not out.json()["backup"]
        truth = await asyncio.wait_for(task, 60)
        assert truth.queues == ["dagpenge", "kontanthjaelp"]
        await c.flushed()
        (row,) = await c.rows(Call, Call.id == call.id)
        assert row.transferred_to == "kontanthjaelp"  # the first transfer stays recorded
        events = await c.rows(
            CallEvent, CallEvent.linkedid == call.linkedid, CallEvent.kind == "api_transfer"
        )
        assert [e.data["target"] for e in events] == ["kontanthjaelp", "jka"]
        assert all("4582565690" not in str(e.data) for e in events)


async def test_a_call_back_is_placed_only_when_an_agent_is_free_and_once_per_number(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(
        pg_url, tmp_path, unused_tcp_port, dialer_enabled=True, dialer_interval=300
    ) as c:
        # The citizen answers after 5 s and talks for 10 min (the test ends first).
        c.sim.pbx.callee_factory = lambda number, device: (
            ScriptedCaller(number=number, talks=[Talk(600.0, True)]),
            5.0,
        )
        made = []
        for number in ("+4520000001", "+4520000001", "+4520000002"):
            r = await c.post("/v1/callbacks", c.admin, {"queue": "dagpenge", "number": number})
            assert r.status_code == 201, r.text
            assert number[-8:] not in r.text
            made.append(r.json()["id"])
            await asyncio.sleep(0.01)  # distinct requested_at: a place in line each
        first, second, third = made

        def originated() -> list[str]:
            return [t.caller for t in c.sim.truth if t.origin == "originate"]

        assert await c.rt.dialer.round() == []  # nobody logged in: nobody free
        assert originated() == []
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        placed = await c.rt.dialer.round()
        assert [(d.task_id, d.interface) for d in placed] == [(first, "PJSIP/agent1")]
        assert await c.rt.dialer.round() == []  # one free agent: one call-back at a time

        async def reached() -> bool:
            rows = await c.rows(Callback, Callback.id == first)
            return rows[0].status == "done"

        await wait_for(reached)
        tasks = {t.id: t for t in await c.rows(Callback)}
        assert (tasks[first].outcome, tasks[first].attempts) == ("reached", 1)
        assert tasks[first].call_linkedid is not None
        # The same number's other task is closed, never dialled.
        assert (tasks[second].status, tasks[second].outcome) == ("cancelled", "duplicate")
        assert tasks[second].attempts == 0

        async def agent_on_call() -> bool:
            return c.rt.centre.agents["PJSIP/agent1"].state == "on_call"

        await wait_for(agent_on_call)
        assert await c.rt.dialer.round() == []  # agent1 is talking: nobody free
        assert originated() == ["+4520000001"]
        # The call-back is a call of its own, answered in dagpenge by agent1.
        await c.flushed()
        (cb_call,) = await c.rows(Call, Call.linkedid == tasks[first].call_linkedid)
        assert cb_call.agent == "agent1" and cb_call.queue == "dagpenge"

        # Another agent becomes free for dagpenge: the third task's number is called.
        r = await c.http.put(
            "/v1/agents/agent2",
            headers=c.admin,
            json={"name": "Agent2", "interface": "PJSIP/agent2", "team": "syd",
                  "skills": [{"queue": "dagpenge", "penalty": 0}]},
        )  # fmt: skip
        assert r.status_code == 200
        assert (await c.post("/v1/agents/agent2/login", c.agent2)).status_code == 200
        placed = await c.rt.dialer.round()
        assert [(d.task_id, d.interface) for d in placed] == [(third, "PJSIP/agent2")]
        await wait_for(lambda: _status(c, third, "done"))
        assert sorted(originated()) == ["+4520000001", "+4520000002"]
        metrics = (await c.http.get("/metrics")).text
        assert 'acd_dialer_originations_total{result="answered"} 2.0' in metrics
        # No number in clear anywhere in the log.
        for event in await c.rows(CallEvent):
            assert "20000001" not in str(event.data) + str(event.raw)


async def _status(c: Centre, task_id: int, status: str) -> bool:
    return (await c.rows(Callback, Callback.id == task_id))[0].status == status


@pytest.fixture(autouse=True)
def _real_time_budget() -> None:
    """These tests run the PBX at 20x real time; each stays well under a minute."""


async def test_wrap_up_is_what_the_pbx_does(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    """queues.conf's wrapuptime and the state machine's wrap-up come from the same
    catalogue (dagpenge: 30 s): the PBX rings the agent again only after it, and the stored
    wrap-up state lasts it."""
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        first = c.call("dagpenge", talk=60.0)
        await asyncio.sleep(20.0 / SPEED)  # the second caller arrives while the first talks
        second = c.call("dagpenge", talk=10.0, number="4520002")
        one = await asyncio.wait_for(first, 60)
        two = await asyncio.wait_for(second, 60)
        assert (one.agent, two.agent) == ("PJSIP/agent1", "PJSIP/agent1")
        assert one.ended is not None and two.wait is not None
        await c.flushed()
        states = sorted(
            await c.rows(AgentStateChange, AgentStateChange.interface == "PJSIP/agent1"),
            key=lambda s: (s.at, s.id),
        )
        timeline = [(s.at.timestamp(), s.state) for s in states if s.queue is None or
                    s.state in ("ringing", "on_call", "wrapup")]  # fmt: skip
        wrapups = [i for i, (_, st) in enumerate(timeline) if st == "wrapup"]
        assert wrapups, timeline
        start, _ = timeline[wrapups[0]]
        end, after = timeline[wrapups[0] + 1]
        # app_queue keeps a member's last call in whole seconds (lastcall = time(NULL)), so
        # it may ring up to 1 s before the exact end; the stored state follows the PBX.
        assert 29.0 <= end - start < 31.5, timeline
        assert after in ("available", "ringing")
        # The PBX's side: the first call ended, then 30 s of wrap-up, then agent1 rang
        # for the waiting caller (who was answered 2 s after the ring).
        rows = {r.linkedid: r for r in await c.rows(Call)}
        answered_at = rows[two.linkedid].answered_at
        ended_at = rows[one.linkedid].ended_at
        assert answered_at is not None and ended_at is not None
        gap = (answered_at - ended_at).total_seconds()
        assert 29.0 <= gap < 35.0, gap


async def test_an_unanswered_call_back_is_retried_then_given_up(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(
        pg_url, tmp_path, unused_tcp_port, dialer_enabled=True, dialer_interval=300,
        dialer_ring_seconds=5, dialer_max_attempts=2, dialer_retry_minutes=1,
    ) as c:  # fmt: skip
        c.sim.pbx.callee_factory = lambda number, device: (ScriptedCaller(number=number), None)
        r = await c.post("/v1/callbacks", c.admin, {"queue": "dagpenge", "number": "20000009"})
        task = r.json()["id"]
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        assert [d.task_id for d in await c.rt.dialer.round()] == [task]

        async def attempted(n: int) -> bool:
            (row,) = await c.rows(Callback, Callback.id == task)
            return row.attempts == n and row.status != "dialling"

        await wait_for(lambda: attempted(1))
        (row,) = await c.rows(Callback, Callback.id == task)
        assert (row.status, row.outcome) == ("open", "no_answer")
        assert await c.rt.dialer.round() == []  # not again before ACD_DIALER_RETRY_MINUTES
        async with c.rt.sessions.begin() as s:  # as if the minute had passed
            found = await s.get(Callback, task)
            found.last_attempt_at -= dt.timedelta(minutes=2)
        assert [d.task_id for d in await c.rt.dialer.round()] == [task]
        await wait_for(lambda: attempted(2))
        (row,) = await c.rows(Callback, Callback.id == task)
        assert (row.status, row.outcome) == ("failed", "unreachable")
        assert "last: no_answer" in (row.note or "")
        assert await c.rt.dialer.round() == []
        metrics = (await c.http.get("/metrics")).text
        assert 'acd_dialer_originations_total{result="no_answer"} 2.0' in metrics


async def test_an_agent_calls_back_from_its_phone_without_seeing_the_number(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        dialled: list[str] = []
        c.sim.pbx.listeners.append(
            lambda e: (
                dialled.append(dict(e.fields).get("DialString", ""))
                if e.name == "DialBegin"
                else None
            )
        )
        r = await c.post("/v1/callbacks", c.admin, {"queue": "dagpenge", "number": "+4520304050"})
        task = r.json()["id"]
        other = await c.post(f"/v1/callbacks/{task}/dial", c.agent2)
        assert other.status_code == 403  # not agent2's queue
        boss = await c.post(f"/v1/callbacks/{task}/dial", c.admin)
        assert boss.status_code == 403  # no phone of its own
        r = await c.post(f"/v1/callbacks/{task}/dial", c.agent1)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["agent_answered"] and body["task"]["assigned_to"] == "agent1"
        assert body["task"]["attempts"] == 1 and "20304050" not in r.text
        await wait_for(lambda: bool(dialled))
        assert dialled == ["+4520304050@trunk"]  # the PBX dialled it; the API never said it
        done = await c.post(f"/v1/callbacks/{task}/complete", c.agent1, {"outcome": "reached"})
        assert done.json()["status"] == "done"
        message = await c.post(
            "/v1/callbacks", c.admin, {"queue": "dagpenge", "number": "20304051", "kind": "message"}
        )
        nothing = await c.post(f"/v1/callbacks/{message.json()['id']}/dial", c.agent1)
        assert nothing.status_code == 409 and "no number to call" in nothing.json()["detail"]


async def test_a_call_back_left_dialling_by_a_dead_dialer_is_followed_not_dialled_again(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    """The dialer's process dies while a call-back rings (a kill -9 of the PBX's owner):
    its OriginateResponse is never read. The next dialer asks the PBX before it reopens
    anything: the ringing one is followed and recorded reached once answered (calling
    again would call the citizen twice); one the PBX no longer has is opened again."""
    from app.dialer import CallbackDialer
    from app.metrics import Metrics
    from app.store import callbacks as store

    async with centre(
        pg_url, tmp_path, unused_tcp_port, dialer_enabled=True, dialer_interval=300,
        dialer_ring_seconds=120,
    ) as c:  # fmt: skip
        # The citizen answers after 60 s of ringing (3 s at 20x) and talks for 10 min.
        c.sim.pbx.callee_factory = lambda number, device: (
            ScriptedCaller(number=number, talks=[Talk(600.0, True)]),
            60.0,
        )
        made = []
        for number in ("+4520000011", "+4520000012"):
            r = await c.post("/v1/callbacks", c.admin, {"queue": "dagpenge", "number": number})
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
            await asyncio.sleep(0.01)
        ringing, gone = made
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        assert [d.task_id for d in await c.rt.dialer.round()] == [ringing]
        await wait_for(lambda: str(ringing) in c.sim.pbx.callbacks_originated)
        # The dialer dies with it: nothing of its attempt is recorded.
        dead = c.rt.dialer
        for flight in dead.in_flight.values():
            flight.task.cancel()
        await asyncio.gather(*(f.task for f in dead.in_flight.values()), return_exceptions=True)
        # Another task some process left dialling, whose call the PBX no longer has.
        async with c.rt.sessions.begin() as s:
            assert await store.claim(s, gone, dt.datetime.now(dt.UTC))
        successor = CallbackDialer(
            c.rt.settings,
            sessions=c.rt.sessions,
            centre=c.rt.centre,
            metrics=Metrics(),
            privacy=c.rt.privacy,
            link=c.rt.ami,
            queue_names=lambda: c.rt.config.current.queue_names,
            clock=c.rt.clock,
        )
        assert await successor.round() == []
        rows = {r.id: r for r in await c.rows(Callback)}
        assert rows[ringing].status == "dialling" and ringing in successor.watched
        assert (rows[gone].status, rows[gone].outcome) == ("open", "interrupted")

        async def reached() -> bool:
            await successor.round()
            return await _status(c, ringing, "done")

        await wait_for(reached, within=30)
        (row,) = await c.rows(Callback, Callback.id == ringing)
        assert (row.outcome, row.attempts) == ("reached", 1)
        assert row.call_linkedid is not None
        assert successor.watched == {}
        originated = [t.caller for t in c.sim.truth if t.origin == "originate"]
        assert originated == ["+4520000011"]  # once: never called again
        assert c.sim.pbx.callbacks_originated == {str(ringing): 1}
