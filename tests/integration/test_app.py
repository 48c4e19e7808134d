"""/health, /ready and /metrics of the app, against real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.settings import load_settings


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://acd") as client:
            yield client


async def test_health_is_always_ok(sqlite_url: str) -> None:
    app = create_app(load_settings(database_url=sqlite_url))
    async with running(app) as client:
        r = await client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_ready_with_postgres_and_redis(pg_url: str, redis_url: str) -> None:
    app = create_app(load_settings(database_url=pg_url, redis_url=redis_url))
    async with running(app) as client:
        r = await client.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["parts"]["database"]["state"] == "up"
    assert body["parts"]["database"]["detail"]["backend"] == "postgresql"
    assert body["parts"]["redis"]["state"] == "up"


async def test_ready_names_the_database_when_it_is_down(unused_tcp_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/none"
    app = create_app(load_settings(database_url=url))
    async with running(app) as client:
        r = await client.get("/ready")
        assert (await client.get("/health")).status_code == 200  # liveness unaffected
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"
    assert r.json()["parts"]["database"]["ok"] is False


async def test_ready_names_redis_when_it_is_down(sqlite_url: str, unused_tcp_port: int) -> None:
    app = create_app(
        load_settings(database_url=sqlite_url, redis_url=f"redis://127.0.0.1:{unused_tcp_port}/0")
    )
    async with running(app) as client:
        r = await client.get("/ready")
    assert r.status_code == 503
    parts = r.json()["parts"]
    assert parts["database"]["ok"] is True
    assert parts["redis"]["ok"] is False and parts["redis"]["state"] == "down"


async def test_metrics_are_prometheus_text(sqlite_url: str) -> None:
    app = create_app(load_settings(database_url=sqlite_url))
    async with running(app) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE acd_ami_connected gauge" in r.text
    assert "acd_store_queue_depth 0.0" in r.text


async def test_openapi_and_docs(sqlite_url: str) -> None:
    app = create_app(load_settings(database_url=sqlite_url))
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert {"/health", "/ready", "/metrics"} <= set(spec["paths"])
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
