"""An agent registers and transfers the call it is on by what the live views show it: the
``linkedid`` of ``/v1/agents`` and ``/v1/calls/live``, against the simulated PBX over real
sockets and PostgreSQL (docs/api.md, "Naming a call")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from app.store.models import Call, Disposition
from tests.e2e.test_agents_with_simulator import centre
from tests.waiting import wait_for


async def test_the_linkedid_the_live_views_show_names_the_call(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    async with centre(pg_url, tmp_path, unused_tcp_port) as c:
        assert (await c.post("/v1/agents/agent1/login", c.agent1)).status_code == 200
        assert (await c.post("/v1/agents/agent2/login", c.agent2)).status_code == 200
        task = c.call("dagpenge", talk=600.0)

        async def on_call() -> Any:
            r = await c.http.get("/v1/agents", headers=c.agent1)
            if r.status_code != 200:
                return None
            me = next((a for a in r.json()["agents"] if a["id"] == "agent1"), None)
            call = me and me["call"]
            return call["linkedid"] if call and call["answered_at"] else None

        linkedid = await wait_for(on_call, what="agent1 on a call in /v1/agents")
        live = (await c.http.get("/v1/calls/live", headers=c.agent1)).json()["calls"]
        assert linkedid in [x["linkedid"] for x in live]
        assert not linkedid.isdigit()  # Asterisk's: <epoch>.<sequence>

        async def stored() -> Any:
            await c.flushed()
            return await c.rows(Call, Call.linkedid == linkedid, Call.agent == "agent1")

        (row,) = await wait_for(stored, what="the call's row")
        # Register it by the linkedid, while it is still up.
        r = await c.http.put(
            f"/v1/calls/{linkedid}/disposition",
            headers=c.agent1,
            json={"reason": "payment", "transferred_to": "kontanthjaelp"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["call_id"] == row.id
        (registered,) = await c.rows(Disposition, Disposition.call_id == row.id)
        assert registered.agent_id == "agent1" and registered.transferred_to == "kontanthjaelp"
        # Transfer it by the linkedid too; the answer names the row id.
        moved = await c.post(f"/v1/calls/{linkedid}/transfer", c.agent1, {"queue": "kontanthjaelp"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["call_id"] == row.id and moved.json()["target"] == "kontanthjaelp"
        detail = await c.http.get(f"/v1/calls/{linkedid}", headers=c.admin)
        assert detail.json()["id"] == row.id
        truth = await asyncio.wait_for(task, 60)
        assert truth.queues == ["dagpenge", "kontanthjaelp"]
