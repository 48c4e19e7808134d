"""The Redis mirror against real Redis: a replica (no AMI, same Redis) serves what the
owner shows; Redis refused, hung or restarted never touches call handling, and the
mirror is rebuilt when Redis is back."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app.live import queries
from app.live.mirror import snapshot_key
from app.store.db import create_engine, session_factory
from app.store.models import Call
from tests.auth_support import viewer_headers
from tests.integration.test_live_api import live_app, staff
from tests.live_support import Feed, SseClient, serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def owner_app(db: str, redis_url: str) -> Any:
    # An AMI host makes it the owner; nothing listens there, which is fine for these tests.
    return live_app(db, redis_url=redis_url, ami_host="127.0.0.1", ami_port=free_port())


@contextlib.asynccontextmanager
async def client_of(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = await viewer_headers(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://acd", headers=headers
        ) as c:
            yield c


async def same_as_owner(owner: Any, replica: httpx.AsyncClient, within: float = 15.0) -> bytes:
    """The replica's /v1/queues once it shows the owner's current version: byte-equal."""
    deadline = time.monotonic() + within
    body = b""
    while time.monotonic() < deadline:
        r = await replica.get("/v1/queues")
        if r.status_code == 200 and r.json()["version"] == owner.state.rt.live.version:
            body = r.content
            break
        await asyncio.sleep(0.05)
    assert body, "the replica never caught up with the owner"
    assert body == queries.queues(owner.state.rt.live)
    return body


async def test_a_replica_serves_what_the_owner_shows(sqlite_url: str, redis_url: str) -> None:
    owner = owner_app(sqlite_url, redis_url)
    replica = live_app(sqlite_url, redis_url=redis_url)
    assert replica.state.rt.reader is not None and replica.state.rt.hub is None
    async with client_of(owner), client_of(replica) as r:
        rt: Any = owner.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        await asyncio.sleep(0)
        rt.hub.refresh()
        await same_as_owner(owner, r)
        for step in range(3):
            feed.arrive(f"c{step}")
            feed.join(f"c{step}", "dagpenge", position=step + 1)
            await asyncio.sleep(0)
            rt.hub.refresh()
        body = await same_as_owner(owner, r)
        assert b'"waiting":3' in body
        assert (await r.get("/v1/calls/live")).content == queries.live_calls(rt.live)
        # The replica's menu would see the owner's estimate.
        est = replica.state.rt.estimates("dagpenge")
        assert est.waiting == 3
        assert (
            est.estimated_wait_seconds
            == rt.live.snapshot["queues"]["dagpenge"]["estimated_wait_seconds"]
        )
        ready = (await r.get("/ready")).json()
        assert ready["parts"]["redis"]["required"] is True  # a replica needs its Redis
        assert ready["parts"]["live-reader"]["state"] == "up"


async def test_a_replicas_stream_follows_the_owner(sqlite_url: str, redis_url: str) -> None:
    owner = owner_app(sqlite_url, redis_url)
    replica = live_app(sqlite_url, redis_url=redis_url)
    async with (
        client_of(owner),
        serving(replica) as url,
        httpx.AsyncClient(headers=await viewer_headers(replica)) as http,
    ):
        rt: Any = owner.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        await asyncio.sleep(0)
        rt.hub.refresh()
        client = SseClient()
        await client.follow(http, url, lambda c: c.state is not None)

        async def later() -> None:
            await asyncio.sleep(0.3)
            feed.arrive("c1")
            feed.join("c1", "dagpenge")
            await asyncio.sleep(0)
            rt.hub.refresh()

        task = asyncio.create_task(later())
        await client.follow(http, url, lambda c: bool(c.state and "c1" in c.state["calls"]))
        await task
        assert client.state == rt.live.snapshot


class Blackhole:
    """Accepts TCP connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> int:
        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        for w in self.writers:
            w.close()
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("how", ["refused", "hung"])
async def test_redis_out_never_stops_call_handling(pg_url: str, how: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        port = free_port() if how == "refused" else await stack.enter_async_context(Blackhole())
        owner = owner_app(pg_url, f"redis://127.0.0.1:{port}/0")
        c = await stack.enter_async_context(client_of(owner))
        rt: Any = owner.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        feed.arrive("c1")
        feed.join("c1", "dagpenge")
        await asyncio.sleep(0)
        slowest = 0.0
        for _ in range(5):
            start = time.perf_counter()
            rt.hub.refresh()  # what the tick does: must not wait for Redis
            slowest = max(slowest, time.perf_counter() - start)
            await asyncio.sleep(0.05)
        feed.at(20).ring("c1", "dagpenge", "agent1")
        feed.at(3).answer("c1", "dagpenge", "agent1")
        feed.at(60).hangup("c1")
        await asyncio.sleep(0)
        rt.hub.refresh()
        await rt.writer.drained(within=10)
        body = (await c.get("/v1/queues")).json()
        dag = next(q for q in body["queues"] if q["name"] == "dagpenge")
        assert dag["today"]["answered"] == 1 and dag["today"]["asa_seconds"] == 23.0
        ready = (await c.get("/ready")).json()
        assert ready["parts"]["redis"] == {
            **ready["parts"]["redis"],
            "ok": False,
            "required": False,
        }
        for _ in range(60):  # a hung write times out after 2 s
            if rt.metrics.live_mirror_errors._value.get() >= 1:
                break
            await asyncio.sleep(0.1)
        assert rt.metrics.live_mirror_errors._value.get() >= 1
        assert rt.metrics.live_mirror_up._value.get() == 0
    assert slowest < 0.05, slowest
    engine = create_engine(pg_url)
    async with session_factory(engine)() as s:
        row = (await s.execute(select(Call).where(Call.linkedid == "c1"))).scalar_one()
    await engine.dispose()
    assert (row.outcome, row.wait_seconds) == ("answered", 23.0)


@pytest.fixture
def own_redis() -> Iterator[tuple[int, subprocess.Popen[bytes] | None, list[Any]]]:
    """A redis-server of this test's own, which the test may stop and start again."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("needs redis-server (Debian: apt-get install redis-server)", pytrace=False)
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="acd-redis-")
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    start()
    try:
        yield port, None, [start, procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


async def test_the_mirror_is_rebuilt_when_redis_comes_back(sqlite_url: str, own_redis: Any) -> None:
    port, _, (start, procs) = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    owner = owner_app(sqlite_url, url)
    replica = live_app(sqlite_url, redis_url=url)
    async with client_of(owner), client_of(replica) as r:
        rt: Any = owner.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        await asyncio.sleep(0)
        rt.hub.refresh()
        await same_as_owner(owner, r)

        procs[-1].terminate()  # Redis goes away (stopped by its PID) ...
        procs[-1].wait(10)
        for i in range(3):  # ... while calls come and go and the owner ticks on
            feed.arrive(f"c{i}")
            feed.join(f"c{i}", "dagpenge", position=i + 1)
            await asyncio.sleep(0)
            rt.hub.refresh()
            await asyncio.sleep(0.1)
        assert rt.live.snapshot["queues"]["dagpenge"]["waiting"] == 3
        assert rt.metrics.live_mirror_up._value.get() == 0

        start()  # ... and comes back empty: the next tick writes the whole picture again
        for _ in range(100):
            rt.hub.refresh()
            await asyncio.sleep(0.05)
            if rt.metrics.live_mirror_up._value.get() == 1:
                break
        client = Redis.from_url(url)
        try:
            assert await client.exists(snapshot_key("pbx1")) == 1
        finally:
            await client.aclose()
        body = await same_as_owner(owner, r, within=20)
        assert b'"waiting":3' in body
