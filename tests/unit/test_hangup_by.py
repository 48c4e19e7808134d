"""Who ended a call (calls.hangup_by), through the state machine, from what a real
Asterisk 22 sends (tests/fixtures/ami: HangupRequest only on the leg whose far end hung
up; Cause 0 on a caller who leaves the menu or a queue)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest

from app.acd import events as ev
from app.acd.records import CallRecord
from app.acd.resync import Snapshot, resync
from app.acd.state import CallCentre
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser
from app.privacy import Caller, CallerPrivacy
from tests.ami_replay import SCENARIOS, T0, load_capture
from tests.expectations import EXPECTED


def feed(
    name: str,
    keep: Callable[[bytes], bool] = lambda frame: True,
    until: bytes | None = None,
    centre: CallCentre | None = None,
) -> tuple[CallCentre, Any]:
    """A capture's frames (those ``keep`` keeps, up to the first starting with ``until``)
    through the normaliser into a state machine, each at its recorded time."""
    cap = load_capture(name)
    centre = centre or CallCentre("pbx1")
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    parser = AmiParser()
    parser.feed(cap.banner)
    at = T0
    for frame, t in zip(cap.frames, cap.times, strict=True):
        at = T0 + timedelta(seconds=t)
        if until is not None and frame.startswith(until):
            break
        if not keep(frame):
            continue
        for item in parser.feed(frame + b"\r\n\r\n"):
            if isinstance(item, AmiFrame):
                e = normaliser.normalise(item, at)
                if e is not None:
                    centre.apply(e, at)
    return centre, at


def ended(centre: CallCentre, extra: Iterable[ev.DomainEvent] = ()) -> CallRecord:
    for e in extra:
        centre.apply(e)
    calls = [r for r in centre.drain().records if isinstance(r, CallRecord)]
    assert len({c.linkedid for c in calls}) == 1, calls
    return calls[-1]  # the row as last written


def no_hangup_request(frame: bytes) -> bool:
    return not frame.startswith(b"Event: HangupRequest\r\n")


def ivr(cls: type[Any], linkedid: str, at: Any, **kw: Any) -> Any:
    return cls(at=at, pbx="pbx1", key=f"agi:{cls.KIND}:{at}", linkedid=linkedid, **kw)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_capture_names_who_hung_up_and_the_cause_cannot(name: str) -> None:
    row = ended(feed(name)[0])
    assert row.hangup_by == EXPECTED[name].hangup_by
    if name in ("03_abandon", "08b_fastagi_hangup"):
        assert row.hangup_cause == 0  # what Asterisk says: no cause, yet the caller hung up


@pytest.mark.parametrize(
    ("name", "who"),
    [
        ("01_answered", "caller"),  # AgentComplete Reason: caller
        ("02_agent_hangup", "agent"),  # AgentComplete Reason: agent
        ("03_abandon", "caller"),  # QueueCallerAbandon
        ("04_ringnoanswer", "caller"),
        ("06_invalid_then_valid", "caller"),  # AgentComplete after the last Hangup
        ("09_blindtransfer", "caller"),  # Reason transfer names nobody, the second caller
        ("09b_redirect", "caller"),
        ("07_closed", "system"),
    ],
)
def test_without_hangup_requests_the_queue_events_still_say_it(name: str, who: str) -> None:
    """An Asterisk whose manager.conf predates the HangupRequest filter."""
    row = ended(feed(name, keep=no_hangup_request)[0])
    assert row.hangup_by == who


def test_06_is_first_written_as_the_systems_then_corrected_by_the_late_complete() -> None:
    centre, _ = feed("06_invalid_then_valid", keep=no_hangup_request, until=b"Event: AgentComplete")
    assert ended(centre).hangup_by == "system"  # the end seen, nobody named (yet)
    centre, _ = feed("06_invalid_then_valid", keep=no_hangup_request)
    assert ended(centre).hangup_by == "caller"


def test_a_hang_up_in_the_menu_is_the_callers_from_the_fastagi_session_too() -> None:
    lid = "1795362461.14"
    centre, at = feed("08b_fastagi_hangup", keep=no_hangup_request, until=b"Event: Hangup\r\n")
    # The service's own FastAGI session saw HANGUP during GET DATA.
    centre.apply(ivr(ev.IvrEnded, lid, at, uniqueid=lid, reason="hangup", menu="top"))
    centre, _ = feed("08b_fastagi_hangup", keep=lambda f: f.startswith(b"Event: Hangup\r\n"),
                     centre=centre)  # fmt: skip
    row = ended(centre)
    assert (row.outcome, row.hangup_cause, row.hangup_by) == ("ivr_hangup", 0, "caller")


def test_the_agent_who_hung_up_first_stays_when_the_caller_leaves_the_survey() -> None:
    lid, agent_leg = "1795362337.5", "1795362341.6"
    centre, at = feed("02_agent_hangup", until=b"Event: SoftHangupRequest")
    assert centre.calls[lid].ended_by == "agent"
    # Queue option c: the caller goes on to the survey and hangs up in it.
    later = at + timedelta(seconds=5)
    row = ended(
        centre,
        [
            ivr(ev.SurveyStarted, lid, at, uniqueid=lid),
            ivr(ev.IvrEnded, lid, later, uniqueid=lid, reason="hangup", menu="survey"),
            ev.HangupRequested(
                at=later, pbx="pbx1", key="hr", linkedid=lid, uniqueid=lid, channel="PJSIP/t"
            ),
            ev.ChannelHungUp(
                at=later, pbx="pbx1", key="h", linkedid=lid, uniqueid=lid, channel="PJSIP/t",
                cause=0, cause_txt="Unknown",
            ),
        ],
    )  # fmt: skip
    assert row.ended_at == later and row.hangup_by == "agent"
    assert agent_leg not in centre.calls[lid].channels


def test_a_ringing_agent_declining_or_a_forwards_far_end_names_nobody() -> None:
    centre = CallCentre("pbx1")
    lid = "1800000000.1"
    at = T0

    def e(cls: type[Any], uid: str, **kw: Any) -> None:
        nonlocal at
        at += timedelta(seconds=1)
        centre.apply(
            cls(at=at, pbx="pbx1", key=f"{cls.KIND}{at}", linkedid=lid, uniqueid=uid, **kw)
        )

    caller = Caller("h" * 32, "•••••01")
    e(ev.ChannelCreated, lid, channel="PJSIP/trunk-1", caller=caller, context="from-trunk",
      exten="82565682", state=4)  # fmt: skip
    e(ev.IvrForwarded, lid, destination="jka", number="33333333")
    e(ev.ChannelCreated, "1800000000.2", channel="PJSIP/trunk-2", caller=caller,
      context="acd-route", exten="forward", state=4)  # fmt: skip
    # The job centre hangs up: a BYE on the outbound leg, not the caller's.
    e(ev.HangupRequested, "1800000000.2", channel="PJSIP/trunk-2")
    e(ev.ChannelHungUp, "1800000000.2", channel="PJSIP/trunk-2", cause=16, cause_txt="x")
    assert centre.calls[lid].ended_by is None
    # The dialplan's Hangup() then ends the caller's leg: no HangupRequest for it.
    e(ev.ChannelHungUp, lid, channel="PJSIP/trunk-1", cause=16, cause_txt="Normal Clearing")
    row = ended(centre)
    assert (row.outcome, row.hangup_by) == ("forwarded", "system")


def test_a_call_whose_end_a_gap_hid_names_nobody() -> None:
    centre, at = feed("01_answered", until=b"Event: HangupRequest")
    centre.link_lost(at)
    resync(centre, Snapshot(channels=(), entries=(), members=()), at + timedelta(seconds=30))
    row = ended(centre)
    assert row.data_gap and row.ended_at is not None
    assert row.hangup_by is None  # not "system": nobody saw the end


def test_a_call_up_has_no_hangup_by_yet() -> None:
    centre, _ = feed("01_answered", until=b"Event: HangupRequest")
    row = ended(centre)
    assert row.ended_at is None and row.hangup_by is None


def test_a_menus_end_never_starts_a_call_nor_marks_it_seen_on_the_link() -> None:
    centre = CallCentre("pbx1")
    centre.apply(ivr(ev.IvrEnded, "1800000009.1", T0, uniqueid="1800000009.1", reason="hangup"))
    assert centre.calls == {}
    # During an AMI gap the FastAGI session still ends: noted, but the call is not "heard
    # of" on the new link (the resync must still look at it).
    lid = "1795362461.14"
    centre, at = feed("08b_fastagi_hangup", until=b"Event: HangupRequest")
    centre.link_lost(at)
    link = centre.calls[lid].link
    centre.apply(ivr(ev.IvrEnded, lid, at, uniqueid=lid, reason="hangup"))
    assert centre.calls[lid].ended_by == "caller" and centre.calls[lid].link == link
