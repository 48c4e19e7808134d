"""The centre across its PBXs (app/live/centre.py): each PBX's board adds up exactly, a
missing PBX is named, and the view follows its PBXs' stores."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.acd.kpi import CENTRE, DayBook, KpiConfig
from app.live.centre import CentreView, merge_boards
from app.live.store import LiveStore
from tests.live_support import T0
from tests.live_support import pbx_morning as play

TZ = ZoneInfo("Europe/Copenhagen")


def test_the_centre_is_the_exact_sum_of_its_pbxs() -> None:
    combined = DayBook(TZ, KpiConfig())
    one, _ = play("pbx1", "a", busy=True, combined=combined)
    two, _ = play("pbx2", "b", busy=False, combined=combined)
    merged = merge_boards({"pbx1": one, "pbx2": two}, ["pbx1", "pbx2"])
    assert merged is not None
    day = T0.astimezone(TZ).date()
    # Today's figures are those of one book fed every call: from the summed counts and
    # millisecond sums, not an average of the PBXs' averages.
    assert merged["centre"]["today"] == combined.figures(day, CENTRE).as_dict()
    for name in ("dagpenge", "kontanthjaelp"):
        assert merged["queues"][name]["today"] == combined.figures(day, name).as_dict(), name
    avg = [b["queues"]["dagpenge"]["today"]["avg_wait_seconds"] for b in (one, two)]
    naive = sum(avg) / 2
    assert merged["queues"]["dagpenge"]["today"]["avg_wait_seconds"] != naive
    assert merged["tallies"]["dagpenge"]["offered"] == 4 + 2
    # Now: waiting adds up, the longest wait is the longest anywhere, agents add up.
    q = merged["queues"]["dagpenge"]
    assert q["waiting"] == 2
    assert q["longest_wait_seconds"] == max(
        b["queues"]["dagpenge"]["longest_wait_seconds"] for b in (one, two)
    )
    assert q["agents"]["logged_in"] == 2
    assert merged["queues"]["kontanthjaelp"]["agents"]["paused_reasons"] == {"Frokost": 2}
    assert merged["centre"]["waiting"] == 2
    assert merged["centre"]["agents"]["logged_in"] == 4
    # The same phone name on two PBXs is two agents; calls keep their PBX.
    assert sorted(merged["agents"]) == [
        "pbx1/PJSIP/agent1",
        "pbx1/PJSIP/agent2",
        "pbx2/PJSIP/agent1",
        "pbx2/PJSIP/agent2",
    ]
    assert {c["pbx"] for c in merged["calls"].values()} == {"pbx1", "pbx2"}
    assert merged["calls"]["pbx2/bw"]["state"] == "waiting"
    assert merged["pbxs"] == ["pbx1", "pbx2"] and merged["missing_pbxs"] == []


def test_a_missing_pbx_is_named_and_left_out() -> None:
    combined = DayBook(TZ, KpiConfig())
    one, _ = play("pbx1", "a", busy=True, combined=combined)
    merged = merge_boards({"pbx1": one, "pbx2": None}, ["pbx1", "pbx2"])
    assert merged is not None
    assert merged["pbxs"] == ["pbx1"] and merged["missing_pbxs"] == ["pbx2"]
    assert merged["centre"]["today"] == one["centre"]["today"]
    # A board without tallies (an older service) cannot be added exactly: missing too.
    old = {k: v for k, v in one.items() if k != "tallies"}
    partial = merge_boards({"pbx1": old, "pbx2": one}, ["pbx1", "pbx2"])
    assert partial is not None and partial["missing_pbxs"] == ["pbx1"]
    assert merge_boards({"pbx1": None, "pbx2": None}, ["pbx1", "pbx2"]) is None


def test_the_newest_pbx_clock_and_the_longest_estimate_are_shown() -> None:
    combined = DayBook(TZ, KpiConfig())
    one, at = play("pbx1", "a", busy=True, combined=combined)
    two, _ = play("pbx2", "b", busy=False, combined=combined)
    two["as_of"] = (at + timedelta(seconds=3)).isoformat()
    one["queues"]["dagpenge"]["estimated_wait_seconds"] = 40.0
    two["queues"]["dagpenge"]["estimated_wait_seconds"] = None
    two["queues"]["kontanthjaelp"]["estimated_wait_seconds"] = 12.0
    one["queues"]["kontanthjaelp"]["estimated_wait_seconds"] = 30.0
    merged = merge_boards({"pbx1": one, "pbx2": two}, ["pbx1", "pbx2"])
    assert merged is not None
    assert merged["as_of"] == two["as_of"]
    assert merged["queues"]["dagpenge"]["estimated_wait_seconds"] == 40.0
    assert merged["queues"]["kontanthjaelp"]["estimated_wait_seconds"] == 30.0


async def test_the_view_follows_its_pbxs_stores() -> None:
    combined = DayBook(TZ, KpiConfig())
    one, at = play("pbx1", "a", busy=True, combined=combined)
    two, _ = play("pbx2", "b", busy=False, combined=combined)
    stores = {"pbx1": LiveStore(), "pbx2": LiveStore()}
    out = LiveStore(first_version=500)
    view = CentreView(["pbx1", "pbx2"], stores, out, clock=lambda: at, interval=60.0)
    stamped: list[datetime] = []
    view.decorators.append(lambda board, now: stamped.append(now))
    await view.start()
    try:
        assert out.snapshot is None  # nothing to show yet
        stores["pbx1"].replace(one)
        await asyncio.sleep(0)
        assert out.snapshot is not None and out.snapshot["missing_pbxs"] == ["pbx2"]
        first = out.version
        stores["pbx2"].replace({**two, "version": 7})
        stores["pbx2"].apply({"version": 8, "centre": {**two["centre"], "waiting": 5}})
        await asyncio.sleep(0)
        # Two changes in one turn of the loop: one merge, one new version.
        assert out.version == first + 1
        assert out.snapshot["centre"]["waiting"] == 1 + 5
        assert (await view.check()).ok
        assert stamped and stamped[-1] == at
        stores["pbx1"].clear()
        await asyncio.sleep(0)
        assert out.snapshot["pbxs"] == ["pbx2"]
        health = await view.check()
        assert not health.ok and health.state == "partial"
        stores["pbx2"].clear()
        await asyncio.sleep(0)
        assert out.snapshot is None
    finally:
        await view.stop()
    assert stores["pbx1"].listeners == []
