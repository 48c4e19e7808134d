"""The manager session without sockets: permissions, event filters, manager.conf."""

from __future__ import annotations

from pathlib import Path

from app.sim.amiproto import StreamReader
from app.sim.channels import Event
from app.sim.clock import Kernel
from app.sim.conf import QueuesConfig
from app.sim.manager import ManagerSession, ManagerUser, event_passes, parse_manager_conf
from app.sim.pbx import Pbx, PbxConfig

LAB = Path(__file__).resolve().parents[2] / "fixtures" / "ami" / "lab-config" / "manager.conf"


def session(user: ManagerUser) -> tuple[ManagerSession, StreamReader, list[bytes]]:
    pbx = Pbx(Kernel(1e9, "fast"), PbxConfig(queues=QueuesConfig(queues=())))
    out: list[bytes] = []
    s = ManagerSession(pbx, {user.username: user}, out.append, lambda: None)
    reader = StreamReader(banner="")
    login = f"Action: Login\r\nUsername: {user.username}\r\nSecret: {user.secret}\r\n\r\n"
    s.data_received(login.encode())
    return s, reader, out


def test_lab_manager_conf() -> None:
    users = parse_manager_conf(LAB.read_text())
    acd = users["acd"]
    assert acd.secret == "acdsecret"
    assert "agent" in acd.read and "call" in acd.write and acd.eventfilters == ()


def test_read_classes_decide_which_events_a_user_gets() -> None:
    s, reader, out = session(ManagerUser("ops", "x", read=frozenset({"call"})))
    msgs = reader.feed(b"".join(out))
    assert msgs[0].get("Message") == "Authentication accepted"
    assert len(msgs) == 1  # no FullyBooted (system) nor SuccessfulAuth (security)
    out.clear()
    s.deliver(Event("QueueMemberPause", "agent,all", [("Queue", "q")], 1e9))
    s.deliver(Event("Newchannel", "call,all", [("Channel", "PJSIP/trunk-1")], 1e9))
    assert [m.get("Event") for m in reader.feed(b"".join(out))] == ["Newchannel"]


def test_event_filters_like_manager_conf() -> None:
    text = "Event: VarSet\r\nPrivilege: dialplan,all\r\n"
    assert event_passes(("!Event: VarSet",), "Event: Newchannel\r\n")
    assert not event_passes(("!Event: VarSet",), text)
    assert not event_passes(("Event: Queue",), "Event: Newchannel\r\n")
    assert event_passes(("Event: Queue", "!Event: QueueMemberStatus"), "Event: QueueCallerJoin")
    assert not event_passes(
        ("Event: Queue", "!Event: QueueMemberStatus"), "Event: QueueMemberStatus"
    )
    s, reader, out = session(ManagerUser("acd", "x", eventfilters=("!Event: VarSet",)))
    out.clear()
    s.deliver(Event("VarSet", "dialplan,all", [("Variable", "X")], 1e9))
    s.deliver(Event("Hangup", "call,all", [("Cause", "16")], 1e9))
    assert [m.get("Event") for m in reader.feed(b"".join(out))] == ["Hangup"]


def test_logoff_and_actions_after_it() -> None:
    closed: list[bool] = []
    pbx = Pbx(Kernel(1e9, "fast"), PbxConfig(queues=QueuesConfig(queues=())))
    out: list[bytes] = []
    s = ManagerSession(pbx, {"a": ManagerUser("a", "b")}, out.append, lambda: closed.append(True))
    s.data_received(
        b"Action: Login\r\nUsername: a\r\nSecret: b\r\n\r\n"
        b"Action: Logoff\r\nActionID: 9\r\n\r\nAction: Ping\r\n\r\n"
    )
    msgs = StreamReader(banner="").feed(b"".join(out))
    assert msgs[-1].get("Response") == "Goodbye" and msgs[-1].get("ActionID") == "9"
    assert msgs[-1].get("Message") == "Thanks for all the fish."
    assert closed == [True] and s.closed
