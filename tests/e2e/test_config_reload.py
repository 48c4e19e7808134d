"""Bug 2: a hot reload is the whole reload. A queue added to ``queues.yaml`` (with a menu
key to it in the flow and its registration reasons in ``work.yaml``) and reloaded through
``POST /v1/ivr/reload`` is, without a restart: routed to by the menu (FastAGI), counted in
``/v1/queues`` with its title, shown on the wallboard (headless Chromium), labelled in the
metrics, given its own wrap-up time by the state machine, accepted as an agent's skill
(its row in ``queues``), and offered in ``/v1/work``. Before, only the menu saw it."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agi_fake_asterisk import Caller, FakeAsterisk
from tests.agi_support import cph
from tests.auth_support import admin_headers
from tests.browser_support import headless_chromium, until
from tests.e2e.test_wallboard import field
from tests.integration.test_live_api import ROOT, live_app
from tests.live_support import Feed, serving
from tests.waiting import wait_for

TUESDAY_1030 = cph(2025, 3, 4, 10, 30)
NEW = "boligstoette"


def add_the_queue(flows: Path) -> None:
    with (flows / "queues.yaml").open("a", encoding="utf-8") as fh:
        fh.write(f"  - name: {NEW}\n    title: Boligstøtte\n    wrapup_seconds: 45\n")
    flow = (flows / "jobcenter.yaml").read_text(encoding="utf-8")
    key = '      "5": samarbejdspartnere\n'
    flow = flow.replace(key, f'{key}      "6": koe_{NEW}\n', 1)
    node = "  koe_a_kasse: {type: queue, queue: a_kasse}\n"
    flow = flow.replace(node, f"{node}  koe_{NEW}: {{type: queue, queue: {NEW}}}\n", 1)
    (flows / "jobcenter.yaml").write_text(flow, encoding="utf-8")
    work = (flows / "work.yaml").read_text(encoding="utf-8")
    work = work.replace(
        "  queues:\n",
        f"  queues:\n    {NEW}:\n      - {{code: housing_rules, title: Regler for boligstøtte}}\n",
        1,
    )
    (flows / "work.yaml").write_text(work, encoding="utf-8")


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


@pytest.mark.slow
async def test_a_queue_added_by_reload_is_routed_counted_shown_and_labelled(
    sqlite_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    flows = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    app = live_app(sqlite_url, ivr_flows=str(flows), live_interval=0.2)
    rt: Any = app.state.rt
    # The PBX's clock: a Tuesday morning, so the menu is open whatever the host's time.
    rt.clock.skew = TUESDAY_1030 - datetime.now(UTC)
    headers = await admin_headers(sqlite_url)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
        agi = FakeAsterisk("127.0.0.1", rt.settings.agi_port)
        before = (await http.get("/v1/queues")).json()
        assert NEW not in [q["name"] for q in before["queues"]]

        add_the_queue(flows)
        reloaded = await http.post("/v1/ivr/reload")
        assert reloaded.status_code == 200, reloaded.text

        # Routed: key 6 of the main menu.
        r = await agi.call(Caller(answers=["6"]))
        assert r.variables["ACD_QUEUE"] == NEW

        # An agent with the new skill, logged in; a caller waits, another abandons.
        put = await http.put(
            "/v1/agents/agent9",
            json={"name": "Bo", "interface": "PJSIP/agent9", "skills": [{"queue": NEW}]},
        )
        assert put.status_code == 200, put.text
        feed = Feed(rt.emit, now=rt.clock.now())
        feed.login(NEW, "agent9", "Bo")
        feed.arrive("c1")
        feed.join("c1", NEW)
        feed.arrive("c2")
        feed.join("c2", NEW, position=2)
        feed.at(20).abandon("c2", NEW)
        feed.hangup("c2")

        async def counted() -> dict[str, Any] | None:
            queues = (await http.get("/v1/queues")).json()["queues"]
            mine = next((q for q in queues if q["name"] == NEW), None)
            return mine if mine and mine["today"]["abandoned"] == 1 else None

        queue = await wait_for(counted, what="the new queue in /v1/queues")
        assert queue["title"] == "Boligstøtte" and queue["waiting"] == 1
        assert queue["agents"]["logged_in"] == 1

        # Its own wrap-up time (45 s, not the default 30 s) once agent9 has talked.
        feed.at(1).ring("c1", NEW, "agent9")
        feed.at(1).answer("c1", NEW, "agent9")
        feed.at(60).complete("c1", NEW, "agent9")
        feed.hangup("c1")
        agent = await wait_for(lambda: rt.centre.agents.get("PJSIP/agent9"), what="agent9")
        await wait_for(lambda: agent.wrapup_until is not None, what="agent9 in wrap-up")
        assert agent.wrapup_until - feed.now == timedelta(seconds=45)

        # Labelled in the metrics (not "other"), counted by the pipeline and the gauges.
        metrics = (await http.get("/metrics")).text
        calls = samples(metrics, "acd_calls_total")
        assert calls[(("outcome", "abandoned"), ("queue", NEW))] == 1.0
        assert calls[(("outcome", "answered"), ("queue", NEW))] == 1.0
        assert (("queue", NEW),) in samples(metrics, "acd_calls_waiting")

        # Offered in /v1/work with its own registration reasons.
        work = (await http.get("/v1/work")).json()
        assert "housing_rules" in [c["code"] for c in work["dispositions"][NEW]]

        # On the wallboard, with its title.
        key = headers["X-API-Key"]
        with headless_chromium() as chromium:
            await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
            tile = await until(
                lambda: chromium.find_elements(By.CSS_SELECTOR, f'[data-queue="{NEW}"]')
            )
            assert tile[0].find_element(By.TAG_NAME, "h2").text == "Boligstøtte"
            await until(lambda: field(chromium, NEW, "waiting")[0] == "0")
