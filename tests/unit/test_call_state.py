"""The call/agent/queue state machine, fed the recorded captures (pure: no I/O)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.acd import events as ev
from app.acd.queues import QueueCatalogue
from app.acd.records import (
    AgentStateRecord,
    CallbackRecord,
    CallRecord,
    GapRecord,
    SurveyRecord,
    VisitRecord,
)
from app.acd.resync import LiveChannel, LiveEntry, Snapshot, resync
from app.acd.state import CallCentre
from app.privacy import Caller
from tests.ami_replay import SCENARIOS, T0, load_capture, replay_pure
from tests.expectations import EXPECTED, check_row


# What really happened in each recorded scenario; hold/talk are Asterisk's own HoldTime
# and TalkTime (whole seconds), which ours must match within a second.
def the_call(rows: Any) -> CallRecord:
    assert len(rows.calls) == 1, rows.calls
    call = next(iter(rows.calls.values()))
    assert isinstance(call, CallRecord)
    return call


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_capture_gives_its_exact_call_row(name: str) -> None:
    check_row(the_call(replay_pure(name)), EXPECTED[name])


def test_transfer_gives_one_visit_per_queue() -> None:
    rows = replay_pure("09_blindtransfer")
    call = the_call(rows)
    v1, v2 = (rows.visits[(call.linkedid, s)] for s in (1, 2))
    assert isinstance(v1, VisitRecord) and isinstance(v2, VisitRecord)
    assert (v1.queue, v1.outcome, v1.agent, v1.complete_reason) == (
        "dagpenge",
        "answered",
        "agent2",
        "transfer",
    )
    assert (v2.queue, v2.outcome, v2.agent, v2.complete_reason) == (
        "kontanthjaelp",
        "answered",
        "agent3",
        "caller",
    )
    assert v1.talk_seconds is not None and abs(v1.talk_seconds - 3) < 1
    assert v2.talk_seconds is not None and abs(v2.talk_seconds - 13) < 1


def test_redirect_ends_the_first_agents_talk_at_the_move_not_at_the_late_complete() -> None:
    # After a Redirect Asterisk's AgentComplete for the first queue comes only when the
    # caller hangs up, with TalkTime covering the whole call (18 s); the agent really
    # talked until the caller joined the next queue.
    rows = replay_pure("09b_redirect")
    call = the_call(rows)
    v1, v2 = (rows.visits[(call.linkedid, s)] for s in (1, 2))
    assert isinstance(v1, VisitRecord) and isinstance(v2, VisitRecord)
    assert v2.entered_at is not None and v1.ended_at == v2.entered_at
    assert v1.talk_seconds is not None and v1.talk_seconds < 5
    assert v2.agent == "agent2" and v2.talk_seconds is not None
    assert abs(v2.talk_seconds - 14) < 1


def test_ring_no_answer_then_answered_by_the_next_agent() -> None:
    rows = replay_pure("04_ringnoanswer")
    states = [
        (r.interface, r.state)
        for r in rows.agent_states
        if r.queue is None or r.state in ("ringing", "on_call", "wrapup")
    ]
    assert ("PJSIP/agent1", "ringing") in states
    i = states.index(("PJSIP/agent1", "ringing"))
    assert ("PJSIP/agent1", "available") in states[i:]
    assert ("PJSIP/agent2", "on_call") in states
    assert ("PJSIP/agent2", "wrapup") in states


def test_member_states_from_the_actions_capture() -> None:
    rows = replay_pure("05_ami_actions")
    trail = [
        (r.queue, r.interface, r.state, r.reason) for r in rows.agent_states if r.queue is not None
    ]
    assert ("virksomhed", "PJSIP/agent1", "logged_in", None) in trail
    assert ("virksomhed", "PJSIP/agent1", "paused", "Frokost") in trail
    assert ("virksomhed", "PJSIP/agent1", "unpaused", None) in trail
    assert ("virksomhed", "PJSIP/agent1", "logged_out", None) in trail
    assert trail.index(("virksomhed", "PJSIP/agent1", "paused", "Frokost")) < trail.index(
        ("virksomhed", "PJSIP/agent1", "logged_out", None)
    )
    for agent in ("PJSIP/agent1", "PJSIP/agent2"):
        assert ("dagpenge", agent, "paused", "Møde") in trail
        assert trail.index(("dagpenge", agent, "paused", "Møde")) < trail.index(
            ("dagpenge", agent, "unpaused", None)
        )
    agent_level = [
        (r.interface, r.state, r.reason)
        for r in rows.agent_states
        if r.queue is None and r.state == "paused"
    ]
    assert ("PJSIP/agent2", "paused", "Møde") in agent_level


def test_wrapup_from_the_catalogue_then_available() -> None:
    catalogue = QueueCatalogue.model_validate(
        {"queues": [{"name": "dagpenge", "title": "Dagpenge", "wrapup_seconds": 7}]}
    )
    rows = replay_pure("01_answered", catalogue=catalogue)
    trail = [r for r in rows.agent_states if r.interface == "PJSIP/agent1"]
    wrap = next(r for r in trail if r.state == "wrapup")
    free = next(r for r in trail if r.state == "available" and r.at > wrap.at)
    assert free.at - wrap.at == timedelta(seconds=7)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(SCENARIOS))
def test_any_byte_cut_of_a_capture_gives_identical_rows(seed: int, name: str) -> None:
    # Times come from the frame order, so cutting the bytes differently must not
    # change a single row.
    raw = load_capture(name).raw
    rnd = random.Random(seed)
    pieces, i = [], 0
    while i < len(raw):
        n = rnd.choice((1, 2, 7, rnd.randint(1, 3000)))
        pieces.append(raw[i : i + n])
        i += n
    cut = replay_pure(name, pieces)
    whole = replay_pure(name)
    assert cut.calls == whole.calls
    assert cut.visits == whole.visits
    assert cut.agent_states == whole.agent_states


# ---- the IVR's word on how a call ended ----------------------------------------------


def ivr(cls: type[Any], linkedid: str, at_offset: float, **kw: Any) -> Any:
    return cls(
        at=T0 + timedelta(seconds=at_offset),
        pbx="pbx1",
        key=f"agi:{cls.KIND}:{at_offset}",
        linkedid=linkedid,
        uniqueid=linkedid,
        **kw,
    )


def menu_started(lid: str, caller: Caller) -> ev.IvrStarted:
    """The service's own menu begins for the call (0.1 s in, on PJSIP/trunk-1)."""
    return ivr(
        ev.IvrStarted,
        lid,
        0.1,
        flow="jobcenter",
        script="ivr",
        caller=caller,
        dialled="82565682",
        channel="PJSIP/trunk-1",
    )


def hung_up(lid: str, at_offset: float) -> ev.ChannelHungUp:
    return ev.ChannelHungUp(
        at=T0 + timedelta(seconds=at_offset),
        pbx="pbx1",
        key="h",
        linkedid=lid,
        uniqueid=lid,
        channel="PJSIP/trunk-1",
        cause=16,
        cause_txt="",
    )


def test_closed_by_the_services_menu_is_closed() -> None:
    lid = "1795362430.11"
    rows = replay_pure(
        "07_closed", extra=lambda c: [ivr(ev.IvrClosed, lid, 1.0, reason="hours", next_open=None)]
    )
    assert the_call(rows).outcome == "closed"


def test_forwarded_and_callback_outcomes() -> None:
    lid = "1795362461.14"
    rows = replay_pure(
        "08b_fastagi_hangup",
        extra=lambda c: [ivr(ev.IvrForwarded, lid, 1.0, destination="jka", number="33333333")],
    )
    assert the_call(rows).outcome == "forwarded"
    assert the_call(rows).transferred_to == "jka"

    caller = Caller("h" * 32, "•••••01")
    rows = replay_pure(
        "08b_fastagi_hangup",
        extra=lambda c: [
            ivr(
                ev.IvrCallbackAccepted,
                lid,
                1.0,
                queue="dagpenge",
                task="callback",
                caller=caller,
                number_sealed="sealed",
            )
        ],
    )
    assert the_call(rows).outcome == "callback"
    task = next(r for r in rows.records if isinstance(r, CallbackRecord))
    assert (task.kind, task.queue, task.caller_hash, task.number_sealed) == (
        "callback",
        "dagpenge",
        caller.hash,
        "sealed",
    )
    assert task.due_at > task.requested_at


def test_ivr_keys_win_over_dtmf_when_the_menu_is_ours() -> None:
    lid = "1795362443.12"
    caller = Caller("h" * 32, "•••••01")
    rows = replay_pure("08_fastagi", extra=lambda c: [])
    assert the_call(rows).keys == "1"  # from DTMFEnd alone

    def events(c: CallCentre) -> list[Any]:
        return []

    # Started before the keys: the menu's own record of keys is used.
    cap_rows = replay_pure("08_fastagi", extra=events)
    assert the_call(cap_rows).keys == "1"
    centre = CallCentre("pbx1")
    centre.apply(menu_started(lid, caller))
    centre.apply(ivr(ev.IvrKey, lid, 2.0, menu="main", digit="7", valid=False))
    centre.apply(ivr(ev.IvrKey, lid, 4.0, menu="main", digit="1", valid=True))
    centre.apply(
        ev.DtmfDigit(
            at=T0 + timedelta(seconds=4),
            pbx="pbx1",
            key="d1",
            linkedid=lid,
            uniqueid=lid,
            channel="PJSIP/trunk-1",
            digit="1",
            received=True,
            end=True,
        )
    )
    centre.apply(hung_up(lid, 5))
    centre.tick(T0 + timedelta(minutes=5))
    call = next(r for r in centre.drain().records if isinstance(r, CallRecord))
    assert call.keys == "71" and call.outcome == "ivr_hangup" and call.dialled == "82565682"


@pytest.mark.parametrize(("reason", "flagged"), [("stopped", True), ("error", False)])
def test_a_menu_cut_by_the_service_stopping_flags_the_call(reason: str, flagged: bool) -> None:
    """A process that stops mid-menu (a deposed owner, a restart) cuts the session: the
    dialplan falls back and a key pressed then is never read, so the row says so."""
    lid = "1795362443.12"
    centre = CallCentre("pbx1")
    centre.apply(menu_started(lid, Caller("h" * 32, "•••••01")))
    centre.apply(ivr(ev.IvrKey, lid, 2.0, menu="main", digit="1", valid=True))
    centre.apply(ivr(ev.IvrEnded, lid, 3.0, reason=reason, menu="sub"))
    centre.apply(hung_up(lid, 9))
    centre.tick(T0 + timedelta(minutes=5))
    calls = [r for r in centre.drain().records if isinstance(r, CallRecord)]
    assert calls and calls[-1].keys == "1" and calls[-1].data_gap is flagged


def test_survey_answers_are_kept_even_when_half_answered() -> None:
    lid = "1795362316.3"
    rows = replay_pure(
        "01_answered",
        extra=lambda c: [
            ivr(ev.SurveyStarted, lid, 9.0),
            ivr(ev.SurveyAnswered, lid, 10.0, question="friendliness", value=8),
            ivr(ev.SurveyAnswered, lid, 11.0, question="wait", value=5),
            ivr(ev.SurveyEnded, lid, 12.0, completed=False),
        ],
    )
    survey = next(r for r in rows.records if isinstance(r, SurveyRecord))
    assert (survey.friendliness, survey.wait, survey.overall, survey.completed) == (
        8,
        5,
        None,
        False,
    )
    assert (survey.agent, survey.queue) == ("agent1", "dagpenge")


# ---- link gaps and resync --------------------------------------------------------------


def _feed_until(name: str, stop_at: bytes) -> tuple[CallCentre, Any]:
    from app.ami.normalise import Normaliser
    from app.ami.parser import AmiFrame, AmiParser
    from app.privacy import CallerPrivacy

    cap = load_capture(name)
    centre = CallCentre("pbx1")
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    parser = AmiParser()
    parser.feed(cap.banner)
    for frame, t in zip(cap.frames, cap.times, strict=True):
        if frame.startswith(stop_at):
            return centre, T0 + timedelta(seconds=t)
        for item in parser.feed(frame + b"\r\n\r\n"):
            if isinstance(item, AmiFrame):
                e = normaliser.normalise(item, T0 + timedelta(seconds=t))
                if e is not None:
                    centre.apply(e)
    raise AssertionError("marker not found")


def test_call_that_ended_during_a_gap_is_closed_with_data_gap() -> None:
    centre, at = _feed_until("01_answered", b"Event: AgentComplete")
    centre.link_lost(at)
    closed = resync(
        centre, Snapshot(channels=(), entries=(), members=()), at + timedelta(seconds=30)
    )
    assert closed == 1
    records = centre.drain().records
    call = next(r for r in records if isinstance(r, CallRecord) and r.ended_at is not None)
    assert call.data_gap and call.outcome == "answered" and call.agent == "agent1"
    assert call.ended_at == at  # the best we know: it was up until the link went down
    gaps = [r for r in records if isinstance(r, GapRecord)]
    assert gaps[-1].gap_from == at and gaps[-1].gap_to == at + timedelta(seconds=30)
    assert gaps[-1].calls_closed == 1


@pytest.mark.parametrize("still_waiting", [True, False], ids=["in-queue", "left-unseen"])
def test_call_still_up_after_a_gap_continues(still_waiting: bool) -> None:
    """Still waiting in its queue after the gap: it goes on as if nothing happened. Up,
    but no longer in the queue: it left the queue unseen, so its record is a guess and
    says so (data_gap), however it ends."""
    centre, at = _feed_until("03_abandon", b"Event: QueueCallerAbandon")
    lid = "1795362357.7"
    centre.link_lost(at)
    entries = (LiveEntry("dagpenge", lid, 1, 8.0),) if still_waiting else ()
    resync(
        centre,
        Snapshot(
            channels=(LiveChannel(lid, lid, "PJSIP/trunk-00000007", 8.0, "Queue", "dagpenge"),),
            entries=entries,
            members=(),
        ),
        at + timedelta(seconds=1),
    )
    assert centre.calls[lid].ended_at is None
    centre.apply(
        ev.ChannelHungUp(
            at=at + timedelta(seconds=2),
            pbx="pbx1",
            key="h",
            linkedid=lid,
            uniqueid=lid,
            channel="PJSIP/trunk-00000007",
            cause=0,
            cause_txt="",
        )
    )
    centre.tick(at + timedelta(minutes=5))
    call = next(
        r for r in centre.drain().records if isinstance(r, CallRecord) and r.ended_at is not None
    )
    assert call.outcome == "abandoned" and call.data_gap is not still_waiting


def test_unknown_calls_and_late_events_are_harmless() -> None:
    centre = CallCentre("pbx1")
    centre.apply(
        ev.ChannelHungUp(
            at=T0,
            pbx="pbx1",
            key="a",
            linkedid="9.9",
            uniqueid="9.9",
            channel="x",
            cause=16,
            cause_txt="",
        )
    )
    centre.apply(
        ev.AgentCompleted(
            at=T0,
            pbx="pbx1",
            key="b",
            linkedid="8.8",
            uniqueid="8.8",
            channel="x",
            queue="q",
            interface="PJSIP/a",
            member_name="",
            hold_time=1,
            talk_time=1,
            reason="caller",
        )
    )
    centre.tick(T0 + timedelta(hours=13))
    records = centre.drain().records
    assert not [r for r in records if isinstance(r, AgentStateRecord)]


def test_a_call_never_heard_of_again_is_closed_as_stale() -> None:
    centre, at = _feed_until("03_abandon", b"Event: QueueCallerAbandon")
    centre.tick(at + timedelta(hours=13))
    call = next(
        r for r in centre.drain().records if isinstance(r, CallRecord) and r.ended_at is not None
    )
    assert call.data_gap and call.outcome == "abandoned"
    assert not centre.calls


def _members_by_index_agree(centre: CallCentre) -> None:
    for queue in {q for q, _ in centre.members}:
        want = [m for (q, _), m in centre.members.items() if q == queue]
        assert centre.members_of(queue) == want
    for interface in {i for _, i in centre.members} | {"PJSIP/nobody"}:
        want = [m for (_, i), m in centre.members.items() if i == interface]
        assert centre.memberships(interface) == want
        assert centre._logged_in(interface) == bool(want)


def _after_removal() -> tuple[CallCentre, Any]:
    """05_ami_actions fed up to the first frame after its QueueMemberRemoved."""
    cap = load_capture("05_ami_actions")
    removed = next(
        i for i, f in enumerate(cap.frames) if f.startswith(b"Event: QueueMemberRemoved")
    )
    return _feed_until("05_ami_actions", cap.frames[removed + 1][:40])


def test_member_indexes_follow_adds_removes_and_resync() -> None:
    # Up to the QueueMemberRemoved, then just after it (agent1 left virksomhed).
    removed, _ = _after_removal()
    assert ("virksomhed", "PJSIP/agent1") not in removed.members and removed.members
    _members_by_index_agree(removed)
    centre, at = _feed_until("05_ami_actions", b"Event: QueueMemberRemoved")
    assert ("virksomhed", "PJSIP/agent1") in centre.members
    _members_by_index_agree(centre)
    before = len(centre.members)
    # A resync that reports one member only: every other one is stale and goes.
    keep = next(iter(centre.members.values()))
    centre.link_lost(at)
    resync(
        centre,
        Snapshot(
            channels=(),
            entries=(),
            members=(
                ev.MemberStatus(
                    at=at,
                    pbx="pbx1",
                    key="resync",
                    queue=keep.queue,
                    interface=keep.interface,
                    member_name=keep.name,
                    state_interface="",
                    membership="dynamic",
                    penalty=0,
                    calls_taken=0,
                    last_call=0,
                    in_call=False,
                    status=1,
                    paused=False,
                    paused_reason="",
                ),
            ),
        ),
        at + timedelta(seconds=1),
    )
    assert list(centre.members) == [(keep.queue, keep.interface)] and before > 1
    _members_by_index_agree(centre)
    assert centre.members_of("no-such-queue") == []
