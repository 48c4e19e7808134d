"""The resync's answers (issue 14 §2): what the simulated PBX says to ``QueueStatus``,
``CoreShowChannels`` and ``Status`` against what a real Asterisk 22 says
(tests/fixtures/ami, copied from the lab's captures), read the way the service reads
them, so a fault test that passes against the simulator means what it says.

- 05_ami_actions holds the real answers with a caller waiting in dagpenge and two agents
  paused ("Møde"): the simulator replaying that scenario gives the same snapshot (ids and
  clock aside) as the real answers do, and Status tells the same of the channel.
- No capture holds the answers while a caller talks to an agent, but 01_answered's
  events say what Asterisk 22 has then: the caller's leg in ``Queue`` (AppData
  ``dagpenge,t,,,600``), the agent's leg in ``AppQueue`` (``(Outgoing Line)``) with the
  caller's Linkedid, both in one bridge (BridgeEnter). The simulator, asked mid-talk,
  must list exactly that, and the service's resync must read it as "answered by agent1".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.acd.model import Call, Visit
from app.acd.resync import LiveChannel, LiveEntry, Snapshot, resync
from app.acd.state import CallCentre
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser
from app.privacy import CallerPrivacy
from app.sim.amiproto import Message
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.scenarios import SCENARIOS
from tests.e2e.sim.support import RawAmi, capture, responses
from tests.e2e.sim.test_fidelity import LAB_QUEUES, replay

AT = datetime(2026, 11, 22, 15, 46, tzinfo=UTC)


def frames(messages: list[Message]) -> list[AmiFrame]:
    parser = AmiParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    out: list[AmiFrame] = []
    for m in messages:
        out += [f for f in parser.feed(m.encode()) if isinstance(f, AmiFrame)]
    return out


def snapshot(messages: list[Message]) -> Snapshot:
    """List items through the service's own reading (Normaliser.list_item)."""
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    items = [normaliser.list_item(f, AT) for f in frames(messages) if f.kind == "event"]
    return Snapshot.of(i for i in items if i is not None)


def ids_aside(s: Snapshot) -> dict[str, Any]:
    return {
        "channels": [
            (c.channel, c.application, c.application_data, c.bridge_id, c.uniqueid == c.linkedid)
            for c in s.channels
        ],
        "durations": [c.duration_seconds for c in s.channels],
        "entries": [(e.queue, e.position, e.wait_seconds) for e in s.entries],
        "members": [
            (m.queue, m.interface, m.member_name, m.paused, m.paused_reason, m.status)
            for m in s.members
        ],
    }


def answers(msgs: list[Message], action_id: str) -> list[Message]:
    return [m for m in responses(msgs)[action_id] if m.has("Event")]


async def test_a_waiting_caller_is_answered_as_asterisk_22_answers() -> None:
    real = capture("05_ami_actions")
    client, _ = await replay("05_ami_actions")
    sim = client.messages
    # lab-10 QueueStatus, lab-15 CoreShowChannels, lab-18 Status (05_ami_actions.sent.txt)
    want = snapshot(answers(real, "lab-10") + answers(real, "lab-15"))
    got = snapshot(answers(sim, "lab-10") + answers(sim, "lab-15"))
    assert ids_aside(want) == {
        "channels": [("PJSIP/trunk-00000008", "Queue", "dagpenge,t,,,600", "", True)],
        "durations": [5.0],
        "entries": [("dagpenge", 1, 1.0)],
        "members": ids_aside(want)["members"],
    }
    assert ("dagpenge", "PJSIP/agent1", "Agent One", True, "Møde", 1) in ids_aside(want)["members"]
    assert ids_aside(got) == ids_aside(want)
    # The waiting caller is the channel listed, by its Uniqueid, in both.
    assert got.entries[0].uniqueid == got.channels[0].uniqueid
    # Status: the same channel, application and age, no bridge.
    for msgs in (real, sim):
        (status,) = answers(msgs, "lab-18")[:-1]
        assert (status.get("Application"), status.get("Data")) == ("Queue", "dagpenge,t,,,600")
        assert (status.get("BridgeID"), status.get("Seconds")) == ("", "5")
        assert status.get("Uniqueid") == status.get("Linkedid")


def talking_in_the_capture() -> dict[str, tuple[str, str, str]]:
    """01_answered's channels between BridgeEnter and HangupRequest, from its events:
    channel -> (Application, AppData of its last Newexten, BridgeUniqueid)."""
    apps: dict[str, tuple[str, str]] = {}
    bridges: dict[str, str] = {}
    for m in capture("01_answered"):
        if m.get("Event") == "HangupRequest":
            break
        if m.get("Event") == "Newexten":
            apps[m.get("Channel")] = (m.get("Application"), m.get("AppData"))
        elif m.get("Event") == "BridgeEnter":
            bridges[m.get("Channel")] = m.get("BridgeUniqueid")
    return {ch: (*apps[ch], bridges[ch]) for ch in bridges}


async def test_mid_talk_the_channels_are_listed_as_asterisk_22_has_them() -> None:
    real = talking_in_the_capture()
    assert real == {
        "PJSIP/trunk-00000003": ("Queue", "dagpenge,t,,,600", real["PJSIP/trunk-00000003"][2]),
        "PJSIP/agent1-00000004": ("AppQueue", "(Outgoing Line)", real["PJSIP/trunk-00000003"][2]),
    }
    sc = SCENARIOS["01_answered"]
    sim = SimulatedPbx(sc.config(load_queues(LAB_QUEUES), "127.0.0.1:4573"), mode="manual")
    client = RawAmi()
    async with sim:
        sc.prepare(sim.pbx)
        sim.call_at(sc.epoch + (sc.call_at or 0), sc.caller(), sc.number)
        await client.connect(sim.ami_port)
        login = b"Action: Login\r\nActionID: l\r\nUsername: acd\r\nSecret: acdsecret\r\n\r\n"
        await client.send(login)
        await client.response("l")
        await sim.advance_to(sc.epoch + 8.0)  # talking: BridgeEnter 6.634, hang-up 10.126
        await client.send(b"Action: CoreShowChannels\r\nActionID: c\r\n\r\n")
        await client.response("c")
        await client.send(b"Action: Status\r\nActionID: s\r\n\r\n")
        await client.response("s")
        await sim.advance_to(sc.epoch + 60.0)
        await sim.calls_done()
        await client.close()
    listed = answers(client.messages, "c")[:-1]
    bridge = {m.get("BridgeId") for m in listed}
    assert len(bridge) == 1 and bridge != {""}, "both legs in one bridge"
    got = {m.get("Channel"): (m.get("Application"), m.get("ApplicationData")) for m in listed}
    assert got == {ch: (app, data) for ch, (app, data, _) in real.items()}
    caller = next(m for m in listed if m.get("Channel").startswith("PJSIP/trunk"))
    assert {m.get("Linkedid") for m in listed} == {caller.get("Uniqueid")}
    status = answers(client.messages, "s")[:-1]
    assert {m.get("Channel"): m.get("BridgeID") for m in status} == {
        m.get("Channel"): m.get("BridgeId") for m in listed
    }

    # The service reads that view of a caller it last saw waiting: answered by agent1.
    view = snapshot(listed)
    centre = CallCentre("pbx1")
    lid = caller.get("Uniqueid")
    call = centre._call(lid, AT - timedelta(seconds=8))
    call.caller_uniqueid = lid
    call.start_seen = True
    centre._open_visit(
        call, Visit(seq=1, queue="dagpenge", entered_at=AT - timedelta(seconds=5), position=1)
    )
    call.visits[0].linkedid = lid
    centre.link_lost(AT - timedelta(seconds=4))
    centre.link_up()
    resync(centre, view, AT)
    visit = centre.calls[lid].visits[0]
    assert (visit.outcome, visit.agent, visit.data_gap) == ("answered", "agent1", True)
    assert isinstance(centre.calls[lid], Call)


def test_the_snapshot_types_carry_what_the_resync_reads() -> None:
    """A guard against a normaliser that drops the fields again."""
    channel = snapshot(answers(capture("05_ami_actions"), "lab-15")).channels[0]
    assert isinstance(channel, LiveChannel)
    assert (channel.application, channel.application_data) == ("Queue", "dagpenge,t,,,600")
    entry = snapshot(answers(capture("05_ami_actions"), "lab-10")).entries[0]
    assert isinstance(entry, LiveEntry) and entry.uniqueid == channel.uniqueid
