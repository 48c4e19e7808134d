"""Two PBXs in one centre, as real processes over real TCP: two simulated PBXs (in this
process), one service process owning each (``ACD_PBX_ID``), both knowing the centre
(``ACD_PBXS=pbx1,pbx2``); one PostgreSQL, one Redis.

The two PBXs play the same morning (same plan, so most linkedids exist on both: the log
keys calls by (pbx, linkedid)). Every call of each PBX is right against its own truth;
each process's ``/v1/queues`` shows the centre as the exact sum of the two PBXs and
``?pbx=`` each one; the gauges say the same; when one PBX's owner stops, the other
process shows that PBX missing instead of a smaller centre that looks whole."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app.acd.kpi import CENTRE, Tally, figures
from app.sim.harness import simulator
from tests.auth_support import admin_headers
from tests.e2e.ha_support import (
    NO_FAULTS,
    ROOT,
    Cluster,
    Service,
    call_rows,
    duplicated_events,
    judge,
)
from tests.e2e.test_failover import OPENING, first_minutes, morning

CENTRE_PBXS = "pbx1,pbx2"
# Twice the failover tests' pace: one owner per PBX and no handover, so nothing here
# waits on the lease's real seconds.
SPEED = 20.0


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    end = time.monotonic() + within
    while not await check():
        if time.monotonic() > end:
            raise TimeoutError(what)
        await asyncio.sleep(0.25)


HEADERS: dict[str, str] = {}


async def get(service: Service, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5.0, headers=HEADERS) as client:
        return await client.get(f"http://127.0.0.1:{service.http_port}{path}")


async def doc(service: Service, path: str) -> dict[str, Any]:
    r = await get(service, path)
    assert r.status_code == 200, (path, r.text)
    body: dict[str, Any] = r.json()
    return body


async def stream_snapshot(service: Service, query: str = "") -> dict[str, Any]:
    """The first event of ``/v1/stream``: the snapshot with its tallies."""
    url = f"http://127.0.0.1:{service.http_port}/v1/stream{query}"
    async with (
        httpx.AsyncClient(timeout=5.0, headers=HEADERS) as client,
        client.stream("GET", url) as r,
    ):
        assert r.status_code == 200
        buffer = ""
        async for chunk in r.aiter_text():
            buffer += chunk
            if "event: snapshot" in buffer and "\n\n" in buffer.split("event: snapshot", 1)[1]:
                frame = buffer.split("event: snapshot", 1)[1].split("\n\n", 1)[0]
                data = frame.split("data: ", 1)[1]
                snap: dict[str, Any] = json.loads(data)
                return snap
    raise AssertionError("no snapshot")


async def test_two_pbxs_one_centre(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    async with (
        simulator(
            ROOT / "ivr_flows", 0, morning(seed=21), mode="real", speed=SPEED, fast_until=OPENING
        ) as one,
        simulator(
            ROOT / "ivr_flows", 0, morning(seed=21), mode="real", speed=SPEED, fast_until=OPENING
        ) as two,
    ):
        first_minutes(one, 4)
        first_minutes(two, 4)
        a = Cluster(
            1,
            pg_url=pg_url,
            redis_url=redis_url,
            ami_port=one.ami_port,
            tmp=tmp_path / "a",
            env={"ACD_PBX_ID": "pbx1", "ACD_PBXS": CENTRE_PBXS, "ACD_LIVE_INTERVAL": "0.5"},
        )
        b = Cluster(
            1,
            pg_url=pg_url,
            redis_url=redis_url,
            ami_port=two.ami_port,
            tmp=tmp_path / "b",
            env={"ACD_PBX_ID": "pbx2", "ACD_PBXS": CENTRE_PBXS, "ACD_LIVE_INTERVAL": "0.5"},
        )
        one.sim.pbx.globals["ACD_AGI_ADDRESS"] = a.agi_addresses
        two.sim.pbx.globals["ACD_AGI_ADDRESS"] = b.agi_addresses
        a.start()
        b.start()
        sa, sb = a.services[0], b.services[0]
        try:
            await a.settled(90)
            await b.settled(90)
            HEADERS.update(await admin_headers(pg_url))
            ready = [(await doc(s, "/ready"))["roles"] for s in (sa, sb)]
            day_one, day_two = await asyncio.gather(
                one.sim.run_day(one.plan, one.keys, shifts=False),
                two.sim.run_day(two.plan, two.keys, shifts=False),
            )
            want = {("pbx1", t.linkedid) for t in day_one.truth} | {
                ("pbx2", t.linkedid) for t in day_two.truth
            }

            async def recorded() -> bool:
                rows = await call_rows(pg_url)
                return want <= {(r.pbx, r.linkedid) for r in rows if r.outcome is not None}

            await until(recorded, 90, "every call of both PBXs recorded")
            rows = await call_rows(pg_url)

            # Once the last talks have ended and every picture has taken them in: read
            # everything twice a second apart and keep it when nothing moved.
            async def capture() -> dict[str, Any]:
                return {
                    "centre_a": await doc(sa, "/v1/queues"),
                    "centre_b": await doc(sb, "/v1/queues"),
                    "per_pbx": {p: await doc(sb, f"/v1/queues?pbx={p}") for p in ("pbx1", "pbx2")},
                    "snaps": {p: await stream_snapshot(sa, f"?pbx={p}") for p in ("pbx1", "pbx2")},
                    "merged_snap": await stream_snapshot(sb),
                }

            def still(c: dict[str, Any]) -> Any:
                return (
                    [c[k]["centre"]["today"] for k in ("centre_a", "centre_b")],
                    [d["centre"]["today"] for d in c["per_pbx"].values()],
                    [d["tallies"] for d in (*c["snaps"].values(), c["merged_snap"])],
                    [c[k]["missing_pbxs"] for k in ("centre_a", "centre_b")],
                )

            seen: list[dict[str, Any]] = [await capture()]

            async def steady() -> bool:
                await asyncio.sleep(1.0)
                seen.append(await capture())
                return still(seen[-1]) == still(seen[-2])

            await until(steady, 60, "the live pictures settle")
            c = seen[-1]
            centre_a, centre_b, per_pbx = c["centre_a"], c["centre_b"], c["per_pbx"]
            snaps, merged_snap = c["snaps"], c["merged_snap"]
            agents = await doc(sa, "/v1/agents")
            report = await doc(sb, "/v1/reports?from=2014-11-04&to=2014-11-04&by=pbx")
            calls_of_pbx2 = await doc(sa, "/v1/calls?pbx=pbx2&limit=500")
            unknown = await get(sa, "/v1/queues?pbx=pbx9")
            past = await get(sa, "/v1/queues?pbx=pbx1&date=2014-11-03")
            metrics = {
                name: await sa.metric(name)
                for name in (
                    'acd_pbx_live{pbx="pbx1"}',
                    'acd_pbx_live{pbx="pbx2"}',
                    'acd_pbx_today_offered{pbx="pbx1"}',
                    'acd_pbx_today_offered{pbx="pbx2"}',
                    'acd_today_offered{queue="_all"}',
                )
            }

            # pbx2's owner stops (and nobody takes its lease): pbx1's process shows the
            # centre without it, and says so.
            b.stop()

            async def pbx2_missing() -> bool:
                d = await doc(sa, "/v1/queues")
                return d["missing_pbxs"] == ["pbx2"]

            await until(pbx2_missing, 30, "pbx2 shown missing after its owner stopped")
            partial = await doc(sa, "/v1/queues")
            live_after = await sa.metric('acd_pbx_live{pbx="pbx2"}')
            ready_after = await doc(sa, "/ready")
        finally:
            codes = a.stop() + b.stop()
            logs = a.logs() + b.logs()

    # Each PBX owned by its own process, every call right against its own PBX's truth.
    assert ready == [{"pbx1": "owner"}, {"pbx2": "owner"}], logs
    assert all(code == 0 for code in codes), (codes, logs)
    for pbx, day in (("pbx1", day_one), ("pbx2", day_two)):
        verdict = judge(day.truth, [r for r in rows if r.pbx == pbx])
        assert verdict.calls > 15
        assert verdict.faults() == NO_FAULTS, (pbx, verdict.wrong[:5], verdict.lost[:5])
    assert await duplicated_events(pg_url) == 0
    shared = {lid for p, lid in want if p == "pbx1"} & {lid for p, lid in want if p == "pbx2"}
    assert len(shared) > 15  # the same linkedids on both PBXs, kept apart by (pbx, linkedid)

    # The centre is the exact sum of its PBXs: every count and millisecond sum.
    for name in [*snaps["pbx1"]["tallies"], CENTRE]:
        total = Tally()
        for p in ("pbx1", "pbx2"):
            part = snaps[p]["tallies"].get(name)
            if part:
                total.add(Tally.from_dict(part))
        assert merged_snap["tallies"][name] == total.as_dict(), name
    centre_total = Tally.from_dict(merged_snap["tallies"][CENTRE])
    assert centre_a["centre"]["today"] == figures(centre_total).as_dict()
    assert centre_a["centre"]["today"] == centre_b["centre"]["today"]
    assert centre_a["pbxs"] == ["pbx1", "pbx2"] and centre_a["missing_pbxs"] == []
    offered = {p: per_pbx[p]["centre"]["today"]["offered"] for p in per_pbx}
    assert all(n > 0 for n in offered.values()), offered
    assert centre_a["centre"]["today"]["offered"] == sum(offered.values())
    for q in centre_a["queues"]:
        parts = [next(x for x in per_pbx[p]["queues"] if x["name"] == q["name"]) for p in per_pbx]
        assert q["today"]["offered"] == sum(x["today"]["offered"] for x in parts)
        assert q["agents"]["logged_in"] == sum(x["agents"]["logged_in"] for x in parts)
    assert per_pbx["pbx1"]["pbxs"] == ["pbx1"]
    # Agents with the same phone name on both PBXs are two agents.
    pbxs_of_agents = {a["pbx"] for a in agents["agents"]}
    assert pbxs_of_agents == {"pbx1", "pbx2"}
    assert len(agents["agents"]) == len({(a["pbx"], a["interface"]) for a in agents["agents"]})
    assert unknown.status_code == 422, unknown.text
    assert "pbx9" in unknown.text
    assert past.status_code == 422, past.text
    # The reports: one group per PBX, each its own PBX's calls, adding up to the centre.
    groups = {g["key"]: g for g in report["groups"]}
    assert sorted(groups) == ["pbx1", "pbx2"]
    assert groups["pbx1"]["calls"] == len(day_one.truth)
    assert groups["pbx2"]["calls"] == len(day_two.truth)
    assert report["centre"]["calls"] == len(day_one.truth) + len(day_two.truth)
    assert sum(g["offered"] for g in groups.values()) == report["centre"]["offered"]
    assert len(calls_of_pbx2["items"]) == len(day_two.truth)
    assert {c["pbx"] for c in calls_of_pbx2["items"]} == {"pbx2"}
    # The gauges: per PBX and the centre's, from the same pictures.
    assert metrics['acd_pbx_live{pbx="pbx1"}'] == 1.0
    assert metrics['acd_pbx_live{pbx="pbx2"}'] == 1.0
    assert metrics['acd_pbx_today_offered{pbx="pbx1"}'] == offered["pbx1"]
    assert metrics['acd_pbx_today_offered{pbx="pbx2"}'] == offered["pbx2"]
    assert metrics['acd_today_offered{queue="_all"}'] == sum(offered.values())
    # Without pbx2: its picture named missing, the centre shows pbx1's figures only.
    assert partial["pbxs"] == ["pbx1"]
    assert partial["centre"]["today"]["offered"] == offered["pbx1"]
    assert live_after == 0.0
    assert ready_after["status"] == "ready"  # a missing PBX does not make pbx1's process unready
    assert ready_after["parts"]["centre-view"]["state"] == "partial"
