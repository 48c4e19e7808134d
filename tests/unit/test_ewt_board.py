"""Expected wait (position-aware) and the live board built from the state machine."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from app.acd.board import QueueInfo, build_board, queue_estimate, wrapups
from app.acd.ewt import (
    DEFAULT_RING_SECONDS,
    DEFAULT_TALK_SECONDS,
    HandleTimes,
    position_waits,
    residual_talk,
)
from app.acd.kpi import DayBook, KpiConfig
from app.acd.replay import take
from app.acd.state import CallCentre
from tests.live_support import T0, Feed

TZ = ZoneInfo("Europe/Copenhagen")
CATALOGUE = [QueueInfo("dagpenge", "Dagpenge", 30), QueueInfo("kontanthjaelp", "Kontanthjælp", 15)]


def test_free_agents_take_the_first_callers_then_each_agent_frees_one_handle_later() -> None:
    assert position_waits([0.0, 0.0], handle=100.0, positions=4, ring=4.0) == [
        4.0,
        4.0,
        104.0,
        104.0,
    ]
    # One agent free in 30 s, one in 80 s: positions take the earliest free agent in turn.
    assert position_waits([30.0, 80.0], 100.0, 4, 0.0) == [30.0, 80.0, 130.0, 180.0]
    assert position_waits([], 100.0, 2, 4.0) == [None, None]
    assert position_waits([5.0], 100.0, 0, 4.0) == []


def test_residual_talk_never_drops_below_a_floor() -> None:
    assert residual_talk(240.0, 40.0) == 200.0
    assert residual_talk(240.0, 1000.0) == pytest.approx(72.0)


def test_recent_handle_times_fade_in_from_the_prior() -> None:
    h = HandleTimes(window=4)
    assert h.talk("q") == DEFAULT_TALK_SECONDS and h.ring("q") == DEFAULT_RING_SECONDS
    h.add_talk("q", 40.0)
    assert h.talk("q") == (40.0 + 3 * DEFAULT_TALK_SECONDS) / 4
    for _ in range(4):
        h.add_talk("q", 100.0)
    assert h.talk("q") == 100.0  # the window is full: the prior is gone
    assert h.talk("other") == DEFAULT_TALK_SECONDS


def scenario() -> tuple[CallCentre, DayBook, HandleTimes, Feed]:
    centre = CallCentre("pbx1")
    book = DayBook(TZ, KpiConfig())
    handle = HandleTimes()
    feed = Feed(lambda e: centre.apply(e))  # type: ignore[arg-type, func-returns-value]
    feed.login("dagpenge", "agent1", "Mette")
    feed.login("dagpenge", "agent2", "Søren")
    feed.login("kontanthjaelp", "agent2", "Søren", penalty=1)
    feed.login("dagpenge", "agent3", "Åse")
    feed.pause("dagpenge", "agent3", "Frokost")
    # c1 is answered by agent1 after 20 s; c2 rings agent2; c3 and c4 wait behind.
    feed.arrive("c1")
    feed.join("c1", "dagpenge")
    feed.at(18).ring("c1", "dagpenge", "agent1")
    feed.at(2).answer("c1", "dagpenge", "agent1")
    feed.at(10).arrive("c2")
    feed.join("c2", "dagpenge")
    feed.ring("c2", "dagpenge", "agent2")
    feed.at(5).arrive("c3")
    feed.join("c3", "dagpenge", position=2)
    feed.at(5).arrive("c4")
    feed.join("c4", "dagpenge", position=3)
    feed.at(10)
    take(book, centre.drain(), handle)
    return centre, book, handle, feed


def test_the_board_shows_who_waits_who_talks_and_what_the_wait_will_be() -> None:
    centre, book, handle, feed = scenario()
    board = build_board(centre, book, handle, feed.now, CATALOGUE, config=KpiConfig())
    q = board["queues"]["dagpenge"]
    assert q["waiting"] == 3  # c2 (ringing), c3, c4
    assert q["longest_wait_seconds"] == 20.0  # c2 joined 20 s ago
    assert q["agents"] == {
        "logged_in": 3,
        "available": 0,
        "ringing": 1,
        "on_call": 1,
        "wrapup": 0,
        "paused": 1,
        "unavailable": 0,
        "paused_reasons": {"Frokost": 1},
    }
    # Staffed: agent2 (ringing: free now, for c2) and agent1 (talking for 30 s of a mean
    # 240 s, then 30 s wrap-up: free in 240 s). Handle = 240 + 30; ring: c1 rang 2 s,
    # blended with the prior of 4 s.
    ring = handle.ring("dagpenge")
    assert ring == (2.0 + 39 * DEFAULT_RING_SECONDS) / 40
    handle_time = DEFAULT_TALK_SECONDS + 30
    expected = position_waits([0.0, DEFAULT_TALK_SECONDS - 30 + 30], handle_time, 4, ring)
    assert expected == pytest.approx([ring, 240 + ring, 270 + ring, 510 + ring], abs=0.051)
    calls = board["calls"]
    assert [calls[c]["position"] for c in ("c2", "c3", "c4")] == [1, 2, 3]
    assert [calls[c]["estimated_wait_seconds"] for c in ("c2", "c3", "c4")] == expected[:3]
    assert q["estimated_wait_seconds"] == expected[3]  # a caller joining now is 4th
    assert calls["c2"]["ringing"] == ["PJSIP/agent2"]
    assert calls["c1"]["state"] == "talking" and calls["c1"]["agent"] == "agent1"
    assert calls["c1"]["waited_seconds"] == 20.0
    assert calls["c3"]["waited_seconds"] == 15.0
    # The menu's estimate is the same model on the same state.
    est = queue_estimate(centre, handle, feed.now, "dagpenge", wrapups(CATALOGUE))
    assert (est.waiting, est.agents_logged_in, est.agents_available) == (3, 3, 0)
    assert est.estimated_wait_seconds == q["estimated_wait_seconds"]
    # Agents: state, since when, current call, queues.
    a1 = board["agents"]["PJSIP/agent1"]
    assert (a1["id"], a1["name"], a1["state"]) == ("agent1", "Mette", "on_call")
    assert a1["call"]["linkedid"] == "c1" and a1["call"]["queue"] == "dagpenge"
    assert a1["since"] == (T0 + timedelta(seconds=20)).isoformat()
    a2 = board["agents"]["PJSIP/agent2"]
    assert [m["queue"] for m in a2["queues"]] == ["dagpenge", "kontanthjaelp"]
    assert a2["queues"][1]["penalty"] == 1
    assert board["agents"]["PJSIP/agent3"]["reason"] == "Frokost"
    assert board["centre"]["waiting"] == 3
    assert board["centre"]["agents"]["logged_in"] == 3
    assert board["queues"]["kontanthjaelp"]["waiting"] == 0
    assert board["queues"]["kontanthjaelp"]["longest_wait_seconds"] == 0.0


def test_a_queue_with_nobody_staffed_has_no_estimate() -> None:
    centre, book, handle, feed = scenario()
    for agent in ("agent1", "agent2"):
        feed.pause("dagpenge", agent, "Møde")
    # agent1 is on a call and agent2 ringing (so staffed); once both end only pauses are left.
    feed.at(5).abandon("c2", "dagpenge")
    feed.hangup("c2")
    feed.hangup("c1")
    feed.at(60)
    centre.tick(feed.now)
    board = build_board(centre, book, handle, feed.now, CATALOGUE, config=KpiConfig())
    q = board["queues"]["dagpenge"]
    assert q["agents"]["paused"] == 3 and q["estimated_wait_seconds"] is None
    assert q["agents"]["paused_reasons"] == {"Frokost": 1, "Møde": 2}


def test_the_board_counts_today_from_what_the_state_machine_decided() -> None:
    centre, book, handle, feed = scenario()
    feed.at(5).abandon("c4", "dagpenge")
    feed.hangup("c4")
    feed.at(100).hangup("c1")
    take(book, centre.drain(), handle)
    board = build_board(centre, book, handle, feed.now, CATALOGUE, config=KpiConfig())
    today = board["queues"]["dagpenge"]["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (2, 1, 1)
    assert today["asa_seconds"] == 20.0 and today["avg_talk_seconds"] == 135.0
    assert board["centre"]["today"]["offered"] == 2
    assert "c4" not in board["calls"]  # ended calls leave the live list
    assert board["day"] == "2014-11-04" and board["timezone"] == "Europe/Copenhagen"


def test_queues_the_catalogue_does_not_know_are_shown_bounded() -> None:
    centre, book, handle, feed = scenario()
    feed.login("Bad Name!", "agent9")
    feed.login("ekstra", "agent9")
    board = build_board(centre, book, handle, feed.now, CATALOGUE, config=KpiConfig())
    assert list(board["queues"]) == ["dagpenge", "kontanthjaelp", "ekstra"]


def _scanned(centre: CallCentre, queue: str) -> list[tuple[str, int]]:
    """Who waits in ``queue`` by a scan of every call (what the index must agree with)."""
    found = [
        (v.entered_at, c.linkedid, v.seq)
        for c in centre.calls.values()
        if c.ended_at is None
        for v in c.visits
        if v.queue == queue and v.waiting
    ]
    return [(lid, seq) for _, lid, seq in sorted(found)]


def test_the_waiting_index_agrees_with_a_scan_of_every_call_at_every_step() -> None:
    centre, _book, handle, feed = scenario()
    steps = [
        lambda: feed.at(1).answer("c2", "dagpenge", "agent2"),
        lambda: feed.at(1).join("c3", "kontanthjaelp"),  # moved on: left dagpenge
        lambda: feed.at(1).arrive("c5"),
        lambda: feed.join("c5", "dagpenge", position=2),
        lambda: feed.at(3).abandon("c4", "dagpenge"),
        lambda: feed.hangup("c4"),
        lambda: feed.at(2).hangup("c5"),  # hung up while waiting, no abandon event
        lambda: feed.at(1).arrive("c6"),
        lambda: feed.join("c6", "kontanthjaelp", position=2),
        lambda: feed.at(90).complete("c1", "dagpenge", "agent1"),
        lambda: feed.hangup("c1"),
        lambda: centre.tick(feed.now + timedelta(minutes=30)),  # ended calls evicted
    ]
    seen: list[list[tuple[str, int]]] = []
    for step in steps:
        step()
        for queue in ("dagpenge", "kontanthjaelp"):
            indexed = [(c.linkedid, v.seq) for c, v in centre.waiting(queue)]
            assert indexed == _scanned(centre, queue), (queue, indexed)
        seen.append([(c.linkedid, v.seq) for c, v in centre.waiting("kontanthjaelp")])
        est = queue_estimate(centre, handle, feed.now, "dagpenge", wrapups(CATALOGUE))
        assert est.waiting == len(_scanned(centre, "dagpenge"))
    assert seen[-1] == [("c3", 2), ("c6", 1)]  # c3's second visit, then c6
    assert centre.waiting("dagpenge") == [] and "c4" not in centre.calls


def test_the_waiting_index_forgets_evicted_calls_though_nobody_reads_it() -> None:
    # No board and no menu asks who waits (a core without the live hub: tools, tests, a
    # replay): the index must still not keep every call that ever waited.
    centre, _book, _handle, feed = scenario()
    for i in range(200):
        lid = f"x{i}"
        feed.at(1).arrive(lid)
        feed.join(lid, "ekstra", position=1)
        feed.at(2).abandon(lid, "ekstra")
        feed.hangup(lid)
        centre.tick(feed.now + timedelta(minutes=5))  # ended calls leave memory
    indexed = sum(len(group) for group in centre._queued.values())
    assert indexed <= len(centre.calls), (indexed, len(centre.calls))
    assert "ekstra" not in centre._queued
