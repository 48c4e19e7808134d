"""GET /v1/calls and /v1/calls/{id} over the stored record, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.metrics import Metrics
from app.settings import load_settings
from app.store.writer import EventWriter
from tests.ami_replay import SCENARIOS, replay_pure
from tests.auth_support import admin_headers
from tests.expectations import EXPECTED
from tests.integration.test_writer import backend_for


@asynccontextmanager
async def api_with_calls(db_url: str, tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    writer = EventWriter(backend_for(db_url), Metrics(), tmp / "spill.jsonl")
    await writer.start()
    for name in SCENARIOS:
        writer.submit(replay_pure(name).records)  # type: ignore[arg-type]
    await writer.drained()
    await writer.stop()
    app: FastAPI = create_app(load_settings(database_url=db_url, spill_dir=str(tmp)))
    headers = await admin_headers(db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://acd", headers=headers
        ) as client:
            yield client


async def test_list_newest_first_with_every_field(db_url: str, tmp_path: Path) -> None:
    async with api_with_calls(db_url, tmp_path) as client:
        r = await client.get("/v1/calls", params={"limit": 500})
    assert r.status_code == 200
    body = r.json()
    items = body["items"]
    assert len(items) == len(SCENARIOS) and body["next_cursor"] is None
    starts = [i["started_at"] for i in items]
    assert starts == sorted(starts, reverse=True)
    fields = {
        "id",
        "pbx",
        "linkedid",
        "started_at",
        "ended_at",
        "caller",
        "dialled",
        "keys",
        "queue",
        "outcome",
        "wait_seconds",
        "ring_seconds",
        "talk_seconds",
        "agent",
        "transferred_to",
        "hangup_cause",
        "hangup_by",
        "data_gap",
    }
    assert fields <= set(items[0])
    assert all(i["caller"] == "•••••01" for i in items)
    assert "4520001" not in r.text


async def test_filters(db_url: str, tmp_path: Path) -> None:
    async with api_with_calls(db_url, tmp_path) as client:
        answered = (await client.get("/v1/calls", params={"outcome": "answered"})).json()
        kontant = (await client.get("/v1/calls", params={"queue": "kontanthjaelp"})).json()
        agent2 = (await client.get("/v1/calls", params={"agent": "agent2"})).json()
        none = (await client.get("/v1/calls", params={"since": "2030-01-01T00:00:00+00:00"})).json()
        window = (
            await client.get(
                "/v1/calls",
                params={"since": "2026-11-22T15:45:00+00:00", "until": "2026-11-22T15:45:10+00:00"},
            )
        ).json()
    assert {i["outcome"] for i in answered["items"]} == {"answered"}
    assert len(answered["items"]) == 8
    assert [i["keys"] for i in kontant["items"]] == ["92"]
    assert {i["agent"] for i in agent2["items"]} == {"agent2"} and len(agent2["items"]) == 3
    assert none["items"] == []
    assert all("2026-11-22T15:45:0" in i["started_at"] for i in window["items"])


async def test_who_hung_up_is_in_the_list_and_filters_it(db_url: str, tmp_path: Path) -> None:
    async with api_with_calls(db_url, tmp_path) as client:
        every = (await client.get("/v1/calls", params={"limit": 500})).json()["items"]
        by_agent = (await client.get("/v1/calls", params={"hangup_by": "agent"})).json()
        by_system = (await client.get("/v1/calls", params={"hangup_by": "system"})).json()
        bad = await client.get("/v1/calls", params={"hangup_by": "pbx"})
    # What each capture's frames say (tests/expectations.py), stored and served.
    want = {next(iter(replay_pure(n).calls)): EXPECTED[n].hangup_by for n in SCENARIOS}
    assert {i["linkedid"]: i["hangup_by"] for i in every} == want
    assert [i["linkedid"] for i in by_agent["items"]] == ["1795362337.5"]  # 02_agent_hangup
    assert [(i["outcome"], i["hangup_cause"]) for i in by_system["items"]] == [("ivr_hangup", 16)]
    # The callers who left the menu or a queue: Asterisk's cause 0, and still the caller.
    zero = [i for i in every if i["hangup_cause"] == 0]
    assert len(zero) == 3 and {i["hangup_by"] for i in zero} == {"caller"}
    assert bad.status_code == 422


async def test_cursor_pagination_walks_everything_once(db_url: str, tmp_path: Path) -> None:
    seen: list[int] = []
    async with api_with_calls(db_url, tmp_path) as client:
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 5}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/calls", params=params)).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == len(SCENARIOS) == len(set(seen))


async def test_detail_has_visits_and_events_in_order(db_url: str, tmp_path: Path) -> None:
    async with api_with_calls(db_url, tmp_path) as client:
        items = (
            await client.get("/v1/calls", params={"queue": "dagpenge", "agent": "agent2"})
        ).json()["items"]
        transfer = next(i for i in items if i["transferred_to"] == "kontanthjaelp")
        r = await client.get(f"/v1/calls/{transfer['id']}")
    assert r.status_code == 200
    detail = r.json()
    assert [v["queue"] for v in detail["visits"]] == ["dagpenge", "kontanthjaelp"]
    assert [v["agent"] for v in detail["visits"]] == ["agent2", "agent3"]
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.index("queue_join") < kinds.index("agent_connect") < kinds.index("blind_transfer")
    times = [e["at"] for e in detail["events"]]
    assert times == sorted(times)
    assert "4520001" not in r.text


async def test_bad_input_is_a_clear_4xx(db_url: str, tmp_path: Path) -> None:
    async with api_with_calls(db_url, tmp_path) as client:
        assert (await client.get("/v1/calls/999999")).status_code == 404
        assert (await client.get("/v1/calls/0")).status_code == 422
        # Not an id and not a linkedid's shape: 422; a linkedid nobody has: 404.
        assert (await client.get("/v1/calls/a b")).status_code == 422
        assert (await client.get("/v1/calls/1415088000.999")).status_code == 404
        bad_cursor = await client.get("/v1/calls", params={"cursor": "!!!"})
        assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]
        assert bad_cursor.json()["errors"][0]["loc"] == ["query", "cursor"]
        assert (await client.get("/v1/calls", params={"outcome": "nope"})).status_code == 422
        assert (await client.get("/v1/calls", params={"limit": 0})).status_code == 422
        naive = await client.get("/v1/calls", params={"since": "2026-11-22T10:00:00"})
        assert naive.status_code == 422 and "timezone" in naive.json()["detail"]
        assert (await client.get("/v1/calls", params={"since": "yesterday"})).status_code == 422
