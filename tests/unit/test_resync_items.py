"""The resync's list items go through the normaliser as the events do: a QueueMember item
and a QueueMemberStatus event are read by one function, so they give the same member
(Ringinuse included, which the pipeline's own copy of that mapping used to drop)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from panoramisk.message import Message

from app import pipeline as pl
from app.acd import events as ev
from app.acd.records import AgentStateRecord, fit_id
from app.acd.resync import LiveChannel, LiveEntry
from app.acd.state import CallCentre
from app.ami.normalise import Normaliser
from app.ami.parser import from_message, parse_frame
from app.metrics import Metrics
from app.privacy import CallerPrivacy

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
LONG_ID = "1796610121.732175" + "9" * 80

MEMBER_ITEM = {
    "Event": "QueueMember",
    "Queue": "dagpenge",
    "Name": "Agent One",
    "Location": "PJSIP/agent1",
    "StateInterface": "PJSIP/agent1",
    "Membership": "dynamic",
    "Penalty": "2",
    "CallsTaken": "7",
    "LastCall": "1796610000",
    "InCall": "0",
    "Status": "1",
    "Paused": "1",
    "PausedReason": "Møde",
    "Ringinuse": "1",
}


def _normaliser() -> Normaliser:
    return Normaliser("pbx1", CallerPrivacy(b"k" * 32))


def _snapshot(*items: dict[str, str]) -> Any:
    frames = [from_message(Message(item)) for item in items]
    return pl.build_snapshot(_normaliser(), [f for f in frames if f is not None], AT)


def test_ringinuse_survives_a_resync() -> None:
    (member,) = _snapshot(MEMBER_ITEM).members
    assert member.ringinuse is True
    (member,) = _snapshot({**MEMBER_ITEM, "Ringinuse": "0"}).members
    assert member.ringinuse is False


def test_a_list_item_and_its_event_give_the_same_member() -> None:
    (from_list,) = _snapshot(MEMBER_ITEM).members
    event_text = "\r\n".join(
        f"{'MemberName' if k == 'Name' else 'Interface' if k == 'Location' else k}: {v}"
        for k, v in {**MEMBER_ITEM, "Event": "QueueMemberStatus"}.items()
    )
    frame = parse_frame(event_text.encode())
    assert frame is not None
    from_event = _normaliser().normalise(frame, AT)
    assert isinstance(from_list, ev.MemberStatus) and isinstance(from_event, ev.MemberStatus)
    fields = [f.name for f in dataclasses.fields(ev.MemberEvent)]
    member_fields = [f for f in fields if f not in ("at", "pbx", "key", "raw")]
    assert [getattr(from_list, f) for f in member_fields] == [
        getattr(from_event, f) for f in member_fields
    ]
    # The item's identity is the resync's time and what it names (records key on it).
    assert from_list.key == f"resync:{AT.timestamp()}:dagpenge:PJSIP/agent1"


def test_waiting_callers_and_channels_become_the_snapshots_entries_and_channels() -> None:
    snapshot = _snapshot(
        {"Event": "QueueParams", "Queue": "dagpenge", "Calls": "1"},  # not the machine's
        {"Event": "QueueEntry", "Queue": "dagpenge", "Uniqueid": LONG_ID, "Position": "1",
         "Wait": "12", "CallerIDNum": "4512345678"},
        {"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-1", "Uniqueid": LONG_ID,
         "Linkedid": LONG_ID, "Duration": "01:00:05"},
        {"Event": "CoreShowChannel", "Channel": "PJSIP/agent1-1", "Uniqueid": "2.2",
         "Duration": "garbled"},
        {"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": "2"},
    )  # fmt: skip
    assert snapshot.members == ()
    assert snapshot.entries == (LiveEntry("dagpenge", fit_id(LONG_ID), 1, 12.0),)
    assert snapshot.channels == (
        LiveChannel(fit_id(LONG_ID), fit_id(LONG_ID), "PJSIP/trunk-1", 3605.0),
        # No Linkedid: the channel is its own call; a garbled duration is none.
        LiveChannel("2.2", "2.2", "PJSIP/agent1-1", 0.0),
    )


async def test_the_pipelines_resync_asks_the_pbx_and_takes_its_members() -> None:
    asked: list[str] = []

    async def action(request: dict[str, str], *, as_list: bool) -> list[Message]:
        asked.append(request["Action"])
        if request["Action"] == "QueueStatus":
            return [Message({"Response": "Success"}), Message(MEMBER_ITEM)]
        return [Message({"Event": "CoreShowChannelsComplete", "ListItems": "0"})]

    centre = CallCentre("pbx1")
    p = pl.Pipeline(centre, _normaliser(), Metrics())
    flushed: list[Any] = []
    p.drain_hooks.append(flushed.append)
    assert await p.resync(action) == 0
    assert asked == ["QueueStatus", "CoreShowChannels"]
    member = centre.members[("dagpenge", "PJSIP/agent1")]
    assert (member.paused, member.paused_reason, member.penalty) == (True, "Møde", 2)
    states = [r.state for d in flushed for r in d.records if isinstance(r, AgentStateRecord)]
    assert states[:2] == ["logged_in", "paused"]
