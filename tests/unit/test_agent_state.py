"""One agent-state rule (app/acd/presence.py) for the agent view, the queue counts and the
board: every combination of activity, pause and phone, through the state machine."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.acd.agents import view
from app.acd.board import QueueInfo, build_board, queue_estimate, wrapups
from app.acd.ewt import HandleTimes
from app.acd.kpi import DayBook, KpiConfig
from app.acd.presence import PRECEDENCE, state_of
from app.acd.records import AgentStateRecord
from app.acd.state import CallCentre
from tests.live_support import Feed

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Europe/Copenhagen")
QUEUES = ("dagpenge", "kontanthjaelp")
CATALOGUE = [QueueInfo("dagpenge", "Dagpenge", 30), QueueInfo("kontanthjaelp", "Kontanthjælp", 30)]
IFACE = "PJSIP/agent1"

# What each state of the rule asks of the facts (docs/kpis.md words it).
HOLDS = {
    "on_call": lambda f: f["on_call"],
    "logged_out": lambda f: not f["logged_in"],
    "ringing": lambda f: f["ringing"],
    "paused": lambda f: f["paused"],
    "wrapup": lambda f: f["wrapup"],
    "unavailable": lambda f: f["unreachable"],
    "available": lambda f: True,
}
FACTS = ("logged_in", "on_call", "ringing", "paused", "wrapup", "unreachable")


def documented_order() -> list[str]:
    text = (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8")
    section = text.split("### Agent states", 1)[1].split("\n### ", 1)[0]
    return [m.group(2) for m in re.finditer(r"^\| (\d) \| `(\w+)` \|", section, re.M)]


def test_the_documented_table_is_the_rule_for_all_64_combinations() -> None:
    assert documented_order() == list(PRECEDENCE)
    for values in itertools.product((False, True), repeat=len(FACTS)):
        facts = dict(zip(FACTS, values, strict=True))
        first = next(s for s in documented_order() if HOLDS[s](facts))
        assert state_of(**facts) == first, facts


# ---- through the state machine -------------------------------------------------------


def centre_with(
    activity: str, paused_in: tuple[str, ...], unreachable: bool
) -> tuple[CallCentre, Feed]:
    """agent1 in both queues; then the activity, then the pause, then the phone."""
    centre = CallCentre("pbx1")
    feed = Feed(lambda e: centre.apply(e))  # type: ignore[arg-type, func-returns-value]
    for q in QUEUES:
        feed.login(q, "agent1", "Mette")
    if activity != "idle":
        feed.at(1).arrive("c1")
        feed.join("c1", "dagpenge")
        feed.at(2).ring("c1", "dagpenge", "agent1")
    if activity in ("on_call", "wrapup"):
        feed.at(3).answer("c1", "dagpenge", "agent1")
    if activity == "wrapup":
        feed.at(60).complete("c1", "dagpenge", "agent1")
        feed.hangup("c1")
    for q in paused_in:
        feed.at(5).pause(q, "agent1", "lunch")  # during the activity (wrap-up: bug 3)
    if unreachable:
        feed.at(1).device("agent1", "UNAVAILABLE")
    return centre, feed


COMBINATIONS = [
    (activity, paused_in, unreachable)
    for activity in ("idle", "ringing", "on_call", "wrapup")
    for paused_in in ((), ("dagpenge",), QUEUES)
    for unreachable in (False, True)
]


def expected(activity: str, paused: bool, unreachable: bool) -> str:
    if activity in ("on_call", "ringing"):
        return activity
    if paused:
        return "paused"
    if activity == "wrapup":
        return "wrapup"
    return "unavailable" if unreachable else "available"


@pytest.mark.parametrize("activity, paused_in, unreachable", COMBINATIONS)
def test_agent_view_queue_counts_and_board_agree(
    activity: str, paused_in: tuple[str, ...], unreachable: bool
) -> None:
    centre, feed = centre_with(activity, paused_in, unreachable)
    overall = expected(activity, set(paused_in) == set(QUEUES), unreachable)
    per_queue = {q: expected(activity, q in paused_in, unreachable) for q in QUEUES}

    agent_view = view(centre, IFACE)
    assert agent_view.state == overall
    assert agent_view.reason == ("lunch" if overall == "paused" else None)
    members = {m.queue: centre.member_state(m) for m in centre.memberships(IFACE)}
    assert members == per_queue

    board = build_board(
        centre, DayBook(TZ, KpiConfig()), HandleTimes(), feed.now, CATALOGUE, config=KpiConfig()
    )
    assert board["agents"][IFACE]["state"] == overall
    assert board["centre"]["agents"][overall] == 1
    for q in QUEUES:
        counts = board["queues"][q]["agents"]
        assert counts[per_queue[q]] == 1 and counts["logged_in"] == 1
        assert sum(v for k, v in counts.items() if k not in ("logged_in", "paused_reasons")) == 1
        assert counts["paused_reasons"] == ({"lunch": 1} if per_queue[q] == "paused" else {})
    # The agent's recorded state changes (agent_state_changes) end in the same state.
    changes = [
        r.state
        for r in centre.drain().records
        if isinstance(r, AgentStateRecord) and r.event_key.endswith(f":{IFACE}")
    ]
    assert changes[-1] == overall


def test_a_pause_during_wrapup_shows_at_once_with_its_reason_and_leaves_nobody_staffed() -> None:
    """Bug 3 (on a real Asterisk): paused for lunch in wrap-up, the service showed
    ``wrapup``, reason null, and an expected wait of 31 s with nobody staffed."""
    centre = CallCentre("pbx1")
    feed = Feed(lambda e: centre.apply(e))  # type: ignore[arg-type, func-returns-value]
    feed.login("dagpenge", "agent1", "Mette")
    feed.at(1).arrive("c1")
    feed.join("c1", "dagpenge")
    feed.at(2).ring("c1", "dagpenge", "agent1")
    feed.at(3).answer("c1", "dagpenge", "agent1")
    feed.at(60).complete("c1", "dagpenge", "agent1")
    feed.hangup("c1")
    assert view(centre, IFACE).state == "wrapup"
    feed.at(2).pause("dagpenge", "agent1", "lunch")
    v = view(centre, IFACE)
    assert (v.state, v.reason) == ("paused", "lunch")
    estimate = queue_estimate(centre, HandleTimes(), feed.now, "dagpenge", wrapups(CATALOGUE))
    assert estimate.estimated_wait_seconds is None  # nobody staffed
    # The wrap-up runs out while paused: still paused, no new state recorded.
    centre.drain()
    centre.tick(feed.at(40).now)
    assert view(centre, IFACE).state == "paused"
    assert not [r for r in centre.drain().records if getattr(r, "state", "") == "available"]


def test_unpaused_before_the_wrapup_ends_the_agent_is_in_wrapup_again() -> None:
    centre, feed = centre_with("wrapup", ("dagpenge", "kontanthjaelp"), False)
    for q in QUEUES:
        feed.at(1).pause(q, "agent1", paused=False)
    assert view(centre, IFACE).state == "wrapup"
    centre.tick(feed.at(30).now)
    assert view(centre, IFACE).state == "available"


def test_a_paused_agent_with_an_unreachable_phone_is_paused_everywhere() -> None:
    """Bug 1: ``unavailable`` in /v1/agents but ``paused`` in the queue counts."""
    centre, feed = centre_with("idle", QUEUES, True)
    board = build_board(
        centre, DayBook(TZ, KpiConfig()), HandleTimes(), feed.now, CATALOGUE, config=KpiConfig()
    )
    assert board["agents"][IFACE]["state"] == "paused"
    assert board["agents"][IFACE]["reason"] == "lunch"
    assert board["queues"]["dagpenge"]["agents"]["paused"] == 1
    assert (
        board["centre"]["agents"]["paused"] == 1 and board["centre"]["agents"]["unavailable"] == 0
    )
