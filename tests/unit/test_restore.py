"""A restarted service continues the calls the previous process left open: their logged
events are replayed into the new state machine before the first resync (pure: no I/O).

The property, for every recorded scenario and every point at which its call is up: stop
there, restore from what the log holds, resync with what the PBX then shows, play the
rest, and the call's row and visit rows are the ones an uninterrupted run gives."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.acd import events as ev
from app.acd.records import CallRecord, GapRecord, VisitRecord
from app.acd.replay import event_from_log
from app.acd.resync import LiveChannel, LiveEntry, Snapshot, resync
from app.acd.state import CallCentre
from tests.ami_replay import T0, capture_events

CALL_SCENARIOS = [
    "01_answered",
    "02_agent_hangup",
    "03_abandon",
    "04_ringnoanswer",
    "06_invalid_then_valid",
    "09_blindtransfer",
    "09b_redirect",
]


def as_logged(event: ev.DomainEvent) -> ev.DomainEvent:
    """The event as a ``call_events`` row gives it back (data through JSON)."""
    data = json.loads(json.dumps(event.data()))
    return event_from_log(
        event.kind,
        at=event.at,
        pbx=event.pbx,
        key=event.key,
        linkedid=event.linkedid,
        uniqueid=event.uniqueid,
        data=data,
    )


def play(centre: CallCentre, events: list[ev.DomainEvent]) -> list[Any]:
    for event in events:
        centre.apply(event, event.at)
    return centre.drain().records


def final_rows(records: list[Any]) -> tuple[CallRecord, dict[int, VisitRecord]]:
    calls = {}
    visits: dict[int, VisitRecord] = {}
    for r in records:
        if isinstance(r, CallRecord):
            calls[r.linkedid] = r
        elif isinstance(r, VisitRecord):
            visits[r.seq] = r
    assert len(calls) == 1, calls
    return next(iter(calls.values())), visits


def what_the_pbx_shows(centre: CallCentre, at: datetime) -> Snapshot:
    """CoreShowChannels and QueueStatus as the PBX would answer at ``at``."""
    channels = []
    entries = []
    for call in centre.calls.values():
        if call.ended_at is not None:
            continue
        age = (at - call.started_at).total_seconds()
        for uid, name in call.channels.items():
            channels.append(LiveChannel(uid, call.linkedid, name, age))
        for v in call.visits:
            if v.waiting:
                wait = (at - v.entered_at).total_seconds()
                entries.append(LiveEntry(v.queue, call.caller_uniqueid, 1, wait))
    return Snapshot(channels=tuple(channels), entries=tuple(entries), members=())


def cut_points(events: list[ev.DomainEvent]) -> list[int]:
    """Every index at which the scenario's call has begun and not ended."""
    centre = CallCentre("pbx1")
    points = []
    for i, event in enumerate(events):
        if i and any(c.ended_at is None for c in centre.calls.values()):
            points.append(i)
        centre.apply(event, event.at)
    return points


def restarted_at(events: list[ev.DomainEvent], cut: int) -> tuple[CallCentre, list[Any]]:
    before = CallCentre("pbx1")
    play(before, events[:cut])
    down_since = events[cut - 1].at
    open_ids = {lid for lid, c in before.calls.items() if c.ended_at is None}
    logged = [as_logged(e) for e in events[:cut] if e.linkedid in open_ids]
    after = CallCentre("pbx1")
    assert after.restore(logged, down_since) == len(open_ids)
    assert after.drain().records == [GapRecord("pbx1", down_since, None, 0, "service restart")]
    resync(after, what_the_pbx_shows(before, down_since), down_since)
    return after, play(after, events[cut:])


@pytest.mark.parametrize("name", CALL_SCENARIOS)
def test_a_restart_at_any_point_of_a_call_gives_the_uninterrupted_rows(name: str) -> None:
    events = capture_events(name)
    call, visits = final_rows(play(CallCentre("pbx1"), events))
    assert call.ended_at is not None
    points = cut_points(events)
    assert len(points) >= 8
    for cut in points:
        _, records = restarted_at(events, cut)
        got_call, got_visits = final_rows([r for r in records if not isinstance(r, GapRecord)])
        assert got_call == call, (name, cut, events[cut].kind)
        # Every visit row the restarted run writes is the uninterrupted one: a visit is
        # never renumbered (which would overwrite another stored visit) nor cut short.
        for seq, visit in got_visits.items():
            assert visit == visits[seq], (name, cut, seq)


def test_a_call_that_ended_while_the_service_was_down_is_closed_with_what_the_log_had() -> None:
    events = capture_events("09_blindtransfer")
    second_join = [i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoined)][1]
    down_since = events[second_join].at
    after = CallCentre("pbx1")
    logged = [as_logged(e) for e in events[: second_join + 1]]
    assert after.restore(logged, down_since) == 1
    back = down_since + timedelta(minutes=3)
    closed = resync(after, Snapshot(channels=(), entries=(), members=()), back)
    assert closed == 1
    records = after.drain().records
    call, visits = final_rows(records)
    assert call.data_gap and call.ended_at == down_since
    assert call.outcome == "answered" and call.agent == "agent2"
    assert call.transferred_to == "kontanthjaelp"
    # Both visits keep their numbers: the first (answered, transferred) is the stored
    # one, the second was waiting when the log ends and counts as abandoned, flagged.
    assert sorted(visits) == [1, 2]
    assert visits[1].queue == "dagpenge" and visits[1].outcome == "answered"
    assert visits[2].queue == "kontanthjaelp" and visits[2].outcome == "abandoned"
    assert visits[2].data_gap and visits[2].wait_seconds == 0
    gaps = [r for r in records if isinstance(r, GapRecord)]
    assert gaps[-1] == GapRecord("pbx1", down_since, back, 1, "service restart")


def test_nothing_to_restore_is_no_gap_unless_the_previous_run_left_one_open() -> None:
    centre = CallCentre("pbx1")
    assert centre.restore([], None) == 0
    assert centre.drain().records == []
    stopped = T0 - timedelta(hours=1)
    assert centre.restore([], None, open_gap=stopped) == 0
    resync(centre, Snapshot(channels=(), entries=(), members=()), T0)
    gaps = [r for r in centre.drain().records if isinstance(r, GapRecord)]
    assert gaps[-1] == GapRecord("pbx1", stopped, T0, 0, "service restart")
