"""Hot reload of the menu: SIGHUP and POST /v1/ivr/reload. A broken flow is rejected with
its errors and the running one stays; calls in progress keep the flow they started with."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.agi.server import AgiServer
from app.main import create_app
from app.runtime import build_runtime
from app.settings import load_settings
from tests.agi_fake_asterisk import Caller, FakeAsterisk
from tests.agi_support import FLOWS, agi_service, cph
from tests.auth_support import admin_headers
from tests.waiting import wait_for

TUESDAY_1030 = cph(2025, 3, 4, 10, 30)


def copy_flows(tmp_path: Path) -> Path:
    target = tmp_path / "ivr_flows"
    shutil.copytree(FLOWS, target)
    return target


def rewrite(flows: Path, old: str, new: str, *, first: bool = False) -> None:
    path = flows / "jobcenter.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1 or (first and old in text), old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


SWAP_1_2 = (
    '"1": koe_kontanthjaelp\n      "2": koe_dagpenge',
    '"1": koe_dagpenge\n      "2": koe_kontanthjaelp',
)


async def test_reload_swaps_in_a_valid_flow(tmp_path: Path) -> None:
    flows = copy_flows(tmp_path)
    async with agi_service(at=TUESDAY_1030, flows_dir=flows) as h:
        before = (await h.server.check()).detail["version"]
        r = await h.pbx.call(Caller(answers=["2"]))
        assert r.variables["ACD_QUEUE"] == "dagpenge"
        rewrite(flows, *SWAP_1_2)
        result = await h.config.reload()
        assert result.ok and result.flows == ("jobcenter",) and result.version != before
        r = await h.pbx.call(Caller(answers=["2"]), uniqueid="2.2")
        assert r.variables["ACD_QUEUE"] == "kontanthjaelp"
    assert h.metric("acd_ivr_flow_reloads_total", result="ok") == 2  # start + reload


async def test_a_broken_flow_is_rejected_and_the_running_one_stays(tmp_path: Path) -> None:
    flows = copy_flows(tmp_path)
    async with agi_service(at=TUESDAY_1030, flows_dir=flows) as h:
        version = (await h.server.check()).detail["version"]
        rewrite(flows, "queue: dagpenge}", "queue: dagpenger}")
        result = await h.config.reload()
        assert not result.ok
        assert result.version == version and result.flows == ("jobcenter",)
        assert [e.path for e in result.errors] == ["nodes.koe_dagpenge.queue"]
        assert "unknown queue 'dagpenger'" in str(result.errors[0])
        health = await h.server.check()
        assert health.ok  # still serving the last good menu ...
        assert "unknown queue 'dagpenger'" in str(health.detail["rejected"])  # ... and says why
        r = await h.pbx.call(Caller(answers=["2"]))
        assert r.variables["ACD_QUEUE"] == "dagpenge"
    assert h.metric("acd_ivr_flow_reloads_total", result="rejected") == 1


async def test_a_call_in_progress_keeps_its_flow_across_a_reload(tmp_path: Path) -> None:
    flows = copy_flows(tmp_path)
    async with agi_service(at=TUESDAY_1030, flows_dir=flows) as h:
        call = asyncio.ensure_future(h.pbx.call(Caller(answers=["5", "2"], think=0.15)))
        # In the menu now: the first key was taken, under the flow the call started with.
        await wait_for(lambda: "ivr_key" in h.kinds(), what="the caller's first key")
        rewrite(
            flows,
            '"2": koe_virksomhed\n      "3"',
            '"2": koe_a_kasse\n      "9": koe_virksomhed\n      "3"',
        )
        assert (await h.config.reload()).ok
        r = await call
        assert r.variables["ACD_QUEUE"] == "virksomhed"
        r = await h.pbx.call(Caller(answers=["5", "2"]), uniqueid="3.3")
        assert r.variables["ACD_QUEUE"] == "a_kasse"


async def test_sighup_reloads(tmp_path: Path) -> None:
    flows = copy_flows(tmp_path)
    async with agi_service(at=TUESDAY_1030, flows_dir=flows, sighup=True) as h:
        # Only signal once our handler is installed (else SIGHUP would end the test run).
        assert h.config._sighup_installed
        version = h.config.current.version
        rewrite(flows, '"*": hovedmenu', '"*": hovedmenu\n      "7": koe_ni_by')
        os.kill(os.getpid(), signal.SIGHUP)

        def reloaded() -> bool:
            return h.config.current.version != version

        await wait_for(reloaded, within=5, what="the SIGHUP reload")
        r = await h.pbx.call(Caller(answers=["7"]))
        assert r.variables["ACD_QUEUE"] == "ni_by"
    assert not h.config._sighup_installed  # removed again on stop


async def test_start_with_broken_flows_is_not_ready_and_calls_fall_back(tmp_path: Path) -> None:
    flows = copy_flows(tmp_path)
    rewrite(flows, "start: velkommen", "start: velkomen")
    async with agi_service(at=TUESDAY_1030, flows_dir=flows) as h:
        health = await h.server.check()
        assert not health.ok and health.state == "no_flows"
        assert "unknown node 'velkomen'" in str(health.detail["rejected"])
        r = await h.pbx.call(Caller(answers=["2"]))
        assert not r.variables and r.closed_by_service  # the dialplan's fallback queue
        assert h.one("ivr_ended").reason == "error"
        rewrite(flows, "start: velkomen", "start: velkommen")
        assert (await h.config.reload()).ok
        assert (await h.server.check()).ok


# ---- POST /v1/ivr/reload on the real app ------------------------------------------------


@asynccontextmanager
async def running(app: FastAPI, headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://acd", headers=headers
        ) as client:
            yield client


async def test_post_reload_and_ready(tmp_path: Path, sqlite_url: str) -> None:
    flows = copy_flows(tmp_path)
    settings = load_settings(database_url=sqlite_url, ivr_flows=str(flows))
    rt = build_runtime(settings)
    # The PBX's clock on a Tuesday morning (the service's FastAGI server reads it).
    rt.clock.skew = TUESDAY_1030 - datetime.now(UTC)
    server = next(c for c in rt.components if isinstance(c, AgiServer))
    app = create_app(settings, rt)
    async with running(app, await admin_headers(sqlite_url)) as client:
        ready = (await client.get("/ready")).json()
        assert ready["parts"]["agi"]["ok"] is True
        assert ready["parts"]["agi"]["detail"]["flows"] == ["jobcenter"]

        rewrite(flows, *SWAP_1_2)
        ok = await client.post("/v1/ivr/reload")
        assert ok.status_code == 200
        body = ok.json()
        assert body["status"] == "reloaded" and body["flows"] == ["jobcenter"]
        assert body["errors"] == []
        r = await FakeAsterisk("127.0.0.1", server.port).call(Caller(answers=["1"]))
        assert r.variables["ACD_QUEUE"] == "dagpenge"

        rewrite(flows, "    tries: 3\n", "    tries: 0\n", first=True)
        bad = await client.post("/v1/ivr/reload")
        assert bad.status_code == 422
        body = bad.json()
        assert body["status"] == "rejected"
        assert body["version"] == ok.json()["version"]  # the running set is unchanged
        (error,) = body["errors"]
        assert error["path"] == "nodes.hovedmenu.tries"
        assert error["line"] is not None and error["file"].endswith("jobcenter.yaml")
        assert error["text"].endswith(
            "nodes.hovedmenu.tries: Input should be greater than or equal to 1"
        )
        r = await FakeAsterisk("127.0.0.1", server.port).call(Caller(answers=["1"]))
        assert r.variables["ACD_QUEUE"] == "dagpenge"  # still the last good menu
        assert (await client.get("/ready")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
        assert "/v1/ivr/reload" in spec["paths"]
