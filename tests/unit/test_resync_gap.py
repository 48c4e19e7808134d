"""What a gap hides, and how the resync accounts for every call (issue 14 §2): the pure
state machine fed a real capture (tests/fixtures/ami) cut where the link was lost, the
PBX's view at the resync, then the rest of the capture."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.acd import events as ev
from app.acd.records import CallRecord, VisitRecord
from app.acd.resync import LiveChannel, LiveEntry, Snapshot, resync
from app.acd.state import CallCentre
from app.privacy import Caller
from tests.ami_replay import T0, capture_events

LID = "1795362316.3"  # 01_answered's call
CALLER = LiveChannel(LID, LID, "PJSIP/trunk-00000003", 6.0, "Queue", "dagpenge,t,,,600", "b1")
AGENT = LiveChannel("1795362320.4", LID, "PJSIP/agent1-00000004", 4.0, "AppQueue", "", "b1")


def split(events: list[ev.DomainEvent], kind: str, nth: int = 1) -> int:
    seen = 0
    for i, e in enumerate(events):
        if e.kind == kind:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(kind)


def play(centre: CallCentre, events: list[ev.DomainEvent]) -> None:
    for e in events:
        centre.apply(e, e.at)


def rows(
    centre: CallCentre, at: datetime, linkedid: str = LID
) -> tuple[CallRecord, list[VisitRecord]]:
    centre.tick(at + timedelta(minutes=5))
    records = centre.drain().records
    calls = [r for r in records if isinstance(r, CallRecord) and r.linkedid == linkedid]
    visits = {r.seq: r for r in records if isinstance(r, VisitRecord) and r.linkedid == linkedid}
    return calls[-1], [visits[k] for k in sorted(visits)]


def gap(centre: CallCentre, at: datetime) -> None:
    centre.link_lost(at)
    centre.link_up()


def test_answered_in_the_gap_and_still_talking_is_answered_by_the_bridged_agent() -> None:
    """Waiting when the link went; at the resync the caller is bridged with agent1's leg
    and in no queue: answered in the gap. The AgentComplete after puts its times right."""
    events = capture_events("01_answered")
    cut = split(events, "queue_leave")  # the leave and the connect go by unseen
    resume = split(events, "agent_complete")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    at = events[resume].at - timedelta(seconds=1)
    gap(centre, events[cut].at - timedelta(seconds=1))
    assert resync(centre, Snapshot((CALLER, AGENT), (), ()), at) == 0
    visit = centre.calls[LID].visits[0]
    assert visit.outcome == "answered" and visit.agent == "agent1" and visit.data_gap
    assert centre.agents["PJSIP/agent1"].on_call == LID
    play(centre, events[resume:])
    call, visits = rows(centre, events[-1].at)
    assert (call.outcome, call.agent, call.data_gap) == ("answered", "agent1", True)
    # AgentComplete's TalkTime (3 s) and HoldTime (2 s): the answer to the second.
    assert call.talk_seconds is not None and abs(call.talk_seconds - 3.0) < 1.0
    assert visits[0].data_gap and visits[0].outcome == "answered"


def test_still_waiting_or_still_talking_goes_on_unflagged() -> None:
    events = capture_events("01_answered")
    for kind, snapshot in (
        ("agent_called", Snapshot((CALLER,), (LiveEntry("dagpenge", LID, 1, 3.0),), ())),
        ("agent_complete", Snapshot((CALLER, AGENT), (), ())),
    ):
        cut = split(events, kind)
        centre = CallCentre("pbx1")
        play(centre, events[:cut])
        gap(centre, events[cut].at)
        resync(centre, snapshot, events[cut].at)
        assert not centre.calls[LID].in_gap
        play(centre, events[cut:])
        call, visits = rows(centre, events[-1].at)
        assert (call.outcome, call.agent, call.data_gap) == ("answered", "agent1", False), kind
        assert not any(v.data_gap for v in visits)


def test_the_talk_ended_unseen_when_the_agents_leg_is_gone() -> None:
    events = capture_events("01_answered")
    cut = split(events, "agent_complete")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    gap(centre, events[cut].at)
    caller = LiveChannel(LID, LID, "PJSIP/trunk-00000003", 9.0, "Playback", "acd/survey", "")
    resync(centre, Snapshot((caller,), (), ()), events[cut].at + timedelta(seconds=2))
    visit = centre.calls[LID].visits[0]
    assert visit.talk_end_at is not None and visit.data_gap
    assert centre.agents["PJSIP/agent1"].on_call is None


def test_an_agentcomplete_for_an_answer_that_went_by_unseen_rebuilds_the_visit() -> None:
    """The link came back and the call's events came before the resync's answers: the
    AgentComplete says who answered and, with HoldTime and TalkTime, when."""
    events = capture_events("01_answered")
    cut = split(events, "agent_connect")
    resume = split(events, "agent_complete")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    gap(centre, events[cut].at)
    play(centre, events[resume:])  # heard of since the link came back: resync leaves it
    resync(centre, Snapshot((), (), ()), events[-1].at)
    call, visits = rows(centre, events[-1].at)
    assert (call.outcome, call.agent, call.data_gap) == ("answered", "agent1", True)
    complete = events[resume]
    assert isinstance(complete, ev.AgentCompleted)
    assert call.talk_seconds == complete.talk_time
    assert len(visits) == 1 and visits[0].outcome == "answered"


def test_menu_events_in_the_gap_do_not_keep_an_ended_call_open() -> None:
    """The 158 open calls: a caller in the menu when the link went, whose FastAGI events
    went on, ended in the gap. The menu's events say nothing of the PBX: closed, flagged."""
    events = capture_events("01_answered")
    cut = split(events, "queue_join")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    at = events[cut].at
    centre.link_lost(at)  # the link stays down; only the menu speaks
    centre.apply(
        ev.IvrRouted(
            at=at + timedelta(seconds=1),
            pbx="pbx1",
            key="r",
            linkedid=LID,
            uniqueid=LID,
            queue="dagpenge",
            menu="hovedmenu",
        )
    )
    assert centre.calls[LID].link != centre._link + 1
    centre.link_up()
    assert resync(centre, Snapshot((), (), ()), at + timedelta(seconds=60)) == 1
    call, _ = rows(centre, at)
    assert call.ended_at is not None and call.data_gap


def test_a_menu_event_while_the_resync_is_in_flight_does_not_hide_a_call_gone_unseen() -> None:
    """A new owner after a takeover: the call restored from the log hung up while no
    process had the AMI link; between the login and the resync's answers a menu event of
    it comes in (relayed by a standby). Only the PBX's own events show a call alive after
    the login: the resync still closes it (the failover test's one call left open)."""
    events = capture_events("01_answered")
    cut = split(events, "queue_join")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    at = events[cut].at
    gap(centre, at)
    centre.apply(
        ev.IvrRouted(
            at=at + timedelta(seconds=1),
            pbx="pbx1",
            key="r",
            linkedid=LID,
            uniqueid=LID,
            queue="dagpenge",
            menu="hovedmenu",
        )
    )
    assert resync(centre, Snapshot((), (), ()), at + timedelta(seconds=60)) == 1
    call, _ = rows(centre, at)
    assert call.ended_at is not None and call.outcome is not None and call.data_gap


def talking_then_heard_of_since_the_login() -> tuple[CallCentre, list[ev.DomainEvent], datetime]:
    """01_answered talking when the link went (5 s before the caller's hang-up request),
    that request heard after the login. The centre, the capture's events, the request's
    time."""
    events = capture_events("01_answered")
    cut = split(events, "hangup_request")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    at = events[cut].at
    gap(centre, at - timedelta(seconds=5))
    centre.apply(events[cut])  # the caller's HangupRequest: heard since the login
    return centre, events, at


def menu_started(linkedid: str) -> ev.IvrStarted:
    return ev.IvrStarted(
        at=T0,
        pbx="pbx1",
        key="i",
        linkedid=linkedid,
        uniqueid=linkedid,
        flow="jobcenter",
        script="ivr",
        caller=Caller(hash="h", display="x"),
        dialled="82565682",
        channel="PJSIP/trunk-9",
    )


def test_an_agents_leg_gone_unseen_does_not_keep_a_call_heard_of_since_the_login_open() -> None:
    """Talking when the link went; the agent's leg hung up in the gap (its Hangup and the
    AgentComplete unseen). After the login the caller's hang-up request is heard before
    the resync's view comes, which shows the caller's leg alone: the agent's leg is gone,
    so the caller's Hangup after the view ends the call (the failover test's call left
    open, in the survey after its conversation)."""
    centre, events, at = talking_then_heard_of_since_the_login()
    caller = LiveChannel(LID, LID, "PJSIP/trunk-00000003", 30.0, "AGI", "agi://survey")
    assert resync(centre, Snapshot((caller,), (), ()), at) == 0
    hangup = events[split(events, "hangup")]
    assert hangup.uniqueid == LID
    centre.apply(hangup)
    call, visits = rows(centre, at)
    assert call.ended_at == hangup.at and call.outcome == "answered" and call.data_gap
    assert visits[0].outcome == "answered" and visits[0].talk_seconds is not None


def test_a_call_heard_of_since_the_login_whose_channels_the_view_lacks_is_closed() -> None:
    centre, _, at = talking_then_heard_of_since_the_login()
    assert resync(centre, Snapshot((), (), ()), at + timedelta(seconds=1)) == 1
    call, _ = rows(centre, at)
    assert call.ended_at == at and call.outcome == "answered" and call.data_gap


def test_a_call_first_heard_of_by_its_menu_after_the_login_is_newer_than_the_view() -> None:
    """A call begun after the resync's view was taken, whose menu's first event overtook
    its first AMI event: the view does not show it, and it is not closed for that."""
    centre = CallCentre("pbx1")
    centre.link_lost(T0)
    centre.link_up()
    centre.apply(menu_started("7.7"))
    assert resync(centre, Snapshot((), (), ()), T0 + timedelta(seconds=1)) == 0
    assert centre.calls["7.7"].ended_at is None


def test_a_call_begun_in_the_gap_and_answered_there_is_adopted_with_its_queue() -> None:
    centre = CallCentre("pbx1")
    at = T0 + timedelta(minutes=1)
    centre.link_lost(T0)
    centre.link_up()
    resync(centre, Snapshot((CALLER, AGENT), (), ()), at)
    call = centre.calls[LID]
    assert call.data_gap and call.started_at == at - timedelta(seconds=6)
    visit = call.visits[0]
    assert (visit.queue, visit.agent, visit.outcome) == ("dagpenge", "agent1", "answered")


def test_a_hangup_of_a_call_begun_unseen_before_the_resync_is_recorded_flagged() -> None:
    centre = CallCentre("pbx1")
    centre.link_lost(T0)
    centre.link_up()
    kw: dict[str, Any] = {"pbx": "pbx1", "channel": "PJSIP/trunk-9", "cause_txt": ""}
    # An agent leg first: it does not end a call whose channels are not all known.
    centre.apply(menu_started("7.7"))
    centre.apply(ev.ChannelHungUp(at=T0, key="a", linkedid="7.7", uniqueid="7.8", cause=16, **kw))
    assert centre.calls["7.7"].ended_at is None
    centre.apply(ev.ChannelHungUp(at=T0, key="b", linkedid="8.8", uniqueid="8.8", cause=16, **kw))
    call, _ = rows(centre, T0, "8.8")
    assert call.ended_at is not None and call.data_gap
    # After the resync a hangup of an unknown call is what it always was: ignored.
    resync(centre, Snapshot((), (), ()), T0)
    centre.apply(ev.ChannelHungUp(at=T0, key="c", linkedid="9.9", uniqueid="9.9", cause=16, **kw))
    assert "9.9" not in centre.calls


def test_a_call_silent_for_longer_than_any_call_lasts_is_closed_and_flagged() -> None:
    events = capture_events("01_answered")
    cut = split(events, "agent_connect")
    centre = CallCentre("pbx1", stale_after=timedelta(minutes=10))
    play(centre, events[:cut])
    last = events[cut - 1].at
    centre.tick(last + timedelta(minutes=9))
    assert centre.calls[LID].ended_at is None
    centre.tick(last + timedelta(minutes=10))
    records = centre.drain().records
    call = next(r for r in records if isinstance(r, CallRecord))
    visit = next(r for r in records if isinstance(r, VisitRecord))
    assert call.ended_at == last and call.data_gap and call.outcome == "abandoned"
    assert visit.data_gap and LID not in centre.calls


def test_routed_to_a_queue_in_the_gap_and_in_none_now_is_flagged() -> None:
    """The menu (FastAGI, still heard) sent the caller to a queue in the gap; at the
    resync the caller is up (a survey, say) in no queue: the queue's answer (refused,
    timed out) went by unseen."""
    events = capture_events("01_answered")
    cut = split(events, "queue_join")
    centre = CallCentre("pbx1")
    play(centre, events[:cut])
    at = events[cut].at
    centre.link_lost(at)
    centre.apply(
        ev.IvrRouted(
            at=at, pbx="pbx1", key="r", linkedid=LID, uniqueid=LID, queue="dagpenge", menu="m"
        )
    )
    centre.link_up()
    survey = LiveChannel(LID, LID, "PJSIP/trunk-00000003", 30.0, "AGI", "agi://x/survey", "")
    resync(centre, Snapshot((survey,), (), ()), at + timedelta(seconds=30))
    assert centre.calls[LID].data_gap
