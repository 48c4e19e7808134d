"""``/v1/queues``, ``/v1/agents``, ``/v1/calls/live`` and ``/v1/stream`` of a running
service (real HTTP, SQLite): the stream's picture equals the REST view of the same
version, after a reconnect too; a stalled stream client is dropped, never waited for."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.api.live import AgentsOut, LiveCallsOut, QueueDetailOut, QueuesOut
from app.main import create_app
from app.settings import load_settings
from tests.auth_support import viewer_headers
from tests.live_support import Feed, SseClient, serving

ROOT = Path(__file__).resolve().parents[2]


def live_app(db: str, **extra: Any) -> Any:
    # A long interval: the test says when a snapshot is taken (rt.hub.refresh()).
    with socket.socket() as s:  # each app its own FastAGI port (tests run two at once)
        s.bind(("127.0.0.1", 0))
        agi_port = s.getsockname()[1]
    options: dict[str, Any] = {
        "database_url": db,
        "agi_port": agi_port,
        "ivr_flows": str(ROOT / "ivr_flows"),
        "live_interval": 10.0,
        "caller_hash_key": "live-api-test-key-0123456789",
    }
    return create_app(load_settings(**{**options, **extra}))


def staff(feed: Feed) -> None:
    feed.login("dagpenge", "agent1", "Mette")
    feed.login("dagpenge", "agent2", "Søren")
    feed.login("kontanthjaelp", "agent2", "Søren")
    feed.pause("dagpenge", "agent2", "Frokost")


def rest_equals_stream(rest: dict[str, Any], state: dict[str, Any]) -> None:
    assert rest["version"] == state["version"]
    assert rest["queues"] == list(state["queues"].values())
    assert rest["centre"] == state["centre"]
    assert rest["as_of"] == state["as_of"]


def _key_line(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()


async def test_rest_documents_of_the_live_picture(sqlite_url: str) -> None:
    app = live_app(sqlite_url)
    async with app.router.lifespan_context(app):
        rt: Any = app.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        feed.arrive("c1")
        feed.join("c1", "dagpenge")
        feed.arrive("c2")
        feed.join("c2", "dagpenge", position=2)
        feed.ring("c1", "dagpenge", "agent1")
        await asyncio.sleep(0)  # the pipeline flushes on the next loop turn
        rt.hub.refresh()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://acd", headers=await viewer_headers(app)
        ) as c:
            queues = (await c.get("/v1/queues")).json()
            detail = await c.get("/v1/queues/dagpenge")
            agents = (await c.get("/v1/agents")).json()
            calls = await c.get("/v1/calls/live")
            missing = await c.get("/v1/queues/nope")
            bad = await c.get("/v1/queues/Bad%20Name")
    QueuesOut.model_validate(queues)
    assert [q["name"] for q in queues["queues"]][:2] == ["kontanthjaelp", "dagpenge"]
    dag = next(q for q in queues["queues"] if q["name"] == "dagpenge")
    assert dag["title"] == "Dagpenge" and dag["waiting"] == 2
    assert dag["agents"]["ringing"] == 1 and dag["agents"]["paused"] == 1
    assert dag["agents"]["paused_reasons"] == {"Frokost": 1}
    assert dag["estimated_wait_seconds"] is not None
    assert queues["config"] == {"short_abandon_seconds": 5.0, "service_level_seconds": 180.0}
    assert queues["goals"]["answer_rate"] == 0.92 and queues["goals"]["avg_wait_seconds"] == 150
    assert detail.status_code == 200
    body = QueueDetailOut.model_validate(detail.json())
    assert [c.linkedid for c in body.waiting_calls] == ["c1", "c2"]
    assert [c.position for c in body.waiting_calls] == [1, 2]
    AgentsOut.model_validate(agents)
    assert {a["id"]: a["state"] for a in agents["agents"]} == {
        "agent1": "ringing",
        "agent2": "available",  # paused in dagpenge only: free for kontanthjaelp
    }
    # /v1/calls/live is not taken for /v1/calls/{call_id}.
    assert calls.status_code == 200
    LiveCallsOut.model_validate(calls.json())
    assert {c["linkedid"]: c["state"] for c in calls.json()["calls"]} == {
        "c1": "waiting",
        "c2": "waiting",
    }
    assert missing.status_code == 404 and bad.status_code == 422


async def test_the_stream_agrees_with_rest_and_a_reconnect_catches_up(sqlite_url: str) -> None:
    app = live_app(sqlite_url)
    async with (
        serving(app) as url,
        httpx.AsyncClient(timeout=10, headers=await viewer_headers(app)) as http,
    ):
        rt: Any = app.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        await asyncio.sleep(0)
        rt.hub.refresh()
        client = SseClient()

        async def rest() -> dict[str, Any]:
            return (await http.get(url + "/v1/queues")).json()  # type: ignore[no-any-return]

        # A snapshot first, equal to the REST view.
        await client.follow(http, url, lambda c: c.state is not None)
        assert client.events[0][0] == "snapshot"
        assert client.state is not None
        rest_equals_stream(await rest(), client.state)

        # A caller joins: an update with that queue and that call, numbered next.
        async def join_then_refresh() -> None:
            await asyncio.sleep(0.2)
            feed.arrive("c1")
            feed.join("c1", "dagpenge")
            await asyncio.sleep(0)
            rt.hub.refresh()

        task = asyncio.create_task(join_then_refresh())
        await client.follow(http, url, lambda c: c.state is not None and "c1" in c.state["calls"])
        await task
        assert client.events[-1][0] == "update"
        assert client.state["queues"]["dagpenge"]["waiting"] == 1
        rest_equals_stream(await rest(), client.state)

        # Disconnected while things happen; the reconnect brings exactly the missed updates.
        seen = len(client.events)
        feed.ring("c1", "dagpenge", "agent1")
        await asyncio.sleep(0)
        rt.hub.refresh()
        feed.answer("c1", "dagpenge", "agent1")
        await asyncio.sleep(0)
        rt.hub.refresh()
        target = rt.live.version
        await client.follow(http, url, lambda c: c.last_id == target)
        assert [e for e, _ in client.events[seen:]] == ["update", "update"]
        assert client.state["calls"]["c1"]["state"] == "talking"
        assert client.state["queues"]["dagpenge"]["waiting"] == 0
        rest_equals_stream(await rest(), client.state)
        agents = (await http.get(url + "/v1/agents")).json()
        assert {a["interface"]: a for a in agents["agents"]} == client.state["agents"]

        # Too far behind (or from another owner): a fresh snapshot instead.
        stale = SseClient(last_id=1)
        await stale.follow(http, url, lambda c: c.state is not None)
        assert stale.events == [("snapshot", target)]


async def test_a_stalled_stream_client_is_dropped_and_the_others_keep_up(
    sqlite_url: str,
) -> None:
    app = live_app(sqlite_url)
    async with (
        serving(app) as url,
        httpx.AsyncClient(timeout=10, headers=await viewer_headers(app)) as http,
    ):
        rt: Any = app.state.rt
        rt.live.client_queue = 4
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        # Many waiting callers make every update large, to fill the stalled socket.
        for i in range(300):
            feed.arrive(f"w{i}")
            feed.join(f"w{i}", "kontanthjaelp", position=i + 1)
        await asyncio.sleep(0)
        rt.hub.refresh()
        host, port = url.removeprefix("http://").split(":")
        stalled = socket.create_connection((host, int(port)))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(
            b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n"
            + _key_line(await viewer_headers(app))
            + b"\r\n"
        )  # and never reads
        try:
            live = SseClient()
            await live.follow(http, url, lambda c: c.state is not None)
            for _ in range(300):
                if rt.metrics.stream_dropped._value.get() >= 1:
                    break
                feed.at(1)
                rt.hub.refresh()
                await asyncio.sleep(0.01)
            assert rt.metrics.stream_dropped._value.get() == 1
            # The live client still follows, by number, with the newest picture.
            target = rt.live.version
            await live.follow(http, url, lambda c: c.last_id == target, within=5)
            assert live.state == rt.live.snapshot
        finally:
            stalled.close()
        text = (await http.get(url + "/metrics")).text
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["acd_stream_clients_dropped_total"] == 1.0


async def test_too_many_stream_clients_get_503(sqlite_url: str) -> None:
    app = live_app(sqlite_url, stream_max_clients=1)
    async with (
        serving(app) as url,
        httpx.AsyncClient(timeout=5, headers=await viewer_headers(app)) as http,
        http.stream("GET", url + "/v1/stream") as first,
    ):
        assert first.status_code == 200
        second = await http.get(url + "/v1/stream")
        assert second.status_code == 503
