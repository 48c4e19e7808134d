"""AMI wire format of the simulated PBX (sans-I/O): what a client sends, what it gets."""

from __future__ import annotations

from pathlib import Path

from app.sim import amiproto
from app.sim.amiproto import ActionParser, Message, StreamReader, parse_sent, parse_stream

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"


def test_utf8_character_split_across_reads_is_decoded_whole() -> None:
    data = "Action: QueuePause\r\nInterface: PJSIP/agent1\r\nReason: Møde\r\n\r\n".encode()
    cut = data.index("ø".encode()) + 1  # between the two bytes of 'ø'
    parser = ActionParser()
    assert parser.feed(data[:cut]) == []
    (action,) = parser.feed(data[cut:])
    assert action.get("Reason") == "Møde"


def test_byte_by_byte_feed_equals_one_chunk() -> None:
    data = (
        "Action: Login\r\nUsername: acd\r\nSecret: æøå\r\n\r\nAction: Ping\r\nActionID: 7\r\n\r\n"
    ).encode()
    parser = ActionParser()
    got: list[Message] = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1])
    assert got == ActionParser().feed(data)
    assert [m.get("Action") for m in got] == ["Login", "Ping"]
    assert got[0].get("Secret") == "æøå"


def test_bare_newlines_and_case_insensitive_headers() -> None:
    (m,) = ActionParser().feed(b"action: Events\neventmask: off\n\n")
    assert m.get("Action") == "Events"
    assert m.get("EventMask") == "off"
    assert m.get("Missing", "x") == "x"


def test_value_keeps_inner_colons_and_loses_leading_blanks() -> None:
    (m,) = ActionParser().feed(b"Action: Setvar\r\nValue:    08:00-15:00\r\n\r\n")
    assert m.get("Value") == "08:00-15:00"


def test_long_line_is_dumped_like_manager_c() -> None:
    parser = ActionParser()
    junk = b"X" * 5000
    assert parser.feed(junk) == []
    assert parser.dumped_lines == 1
    (m,) = parser.feed(b"\r\nAction: Ping\r\n\r\n")
    assert m.get("Action") == "Ping"


def test_blank_lines_alone_yield_nothing() -> None:
    assert ActionParser().feed(b"\r\n\r\n\r\n") == []


def test_banner_is_not_glued_to_the_login_response() -> None:
    reader = StreamReader()
    data = amiproto.BANNER + amiproto.success("lab-1", "Authentication accepted")
    msgs = []
    for i in range(0, len(data), 7):
        msgs += reader.feed(data[i : i + 7])
    assert reader.banner == "Asterisk Call Manager/11.0.0"
    assert amiproto.BANNER == b"Asterisk Call Manager/11.0.0\r\n"
    assert msgs == [
        Message(
            (("Response", "Success"), ("ActionID", "lab-1"), ("Message", "Authentication accepted"))
        )
    ]


def test_every_capture_parses_to_as_many_messages_as_its_times_file() -> None:
    for path in FIXTURES.glob("*.ami.txt"):
        banner, msgs = parse_stream(path.read_bytes())
        times = path.with_name(path.name.replace(".ami.txt", ".times.txt"))
        assert banner == "Asterisk Call Manager/11.0.0", path.name
        assert len(msgs) == len(times.read_text().splitlines()), path.name


def test_repeated_keys_are_kept() -> None:
    _, msgs = parse_stream((FIXTURES / "05_ami_actions.ami.txt").read_bytes())
    cmd = next(m for m in msgs if m.get("ActionID") == "lab-16")
    assert len(cmd.get_all("Output")) == 8
    assert "paused:Møde" in cmd.get_all("Output")[2]


def test_response_shapes_match_asterisk() -> None:
    assert amiproto.error("x1", "Member not dynamic") == (
        b"Response: Error\r\nActionID: x1\r\nMessage: Member not dynamic\r\n\r\n"
    )
    assert amiproto.error(None, "Missing action in request") == (
        b"Response: Error\r\nMessage: Missing action in request\r\n\r\n"
    )
    assert amiproto.list_start("a", "Queue status will follow") == (
        b"Response: Success\r\nActionID: a\r\nEventList: start\r\n"
        b"Message: Queue status will follow\r\n\r\n"
    )
    assert amiproto.list_complete("QueueStatusComplete", "a", 12) == (
        b"Event: QueueStatusComplete\r\nActionID: a\r\nEventList: Complete\r\nListItems: 12\r\n\r\n"
    )


def test_a_value_cannot_break_the_framing() -> None:
    data = amiproto.encode([("Event", "X"), ("CallerIDName", "Evil\r\n\r\nEvent: Fake")])
    _, msgs = parse_stream(amiproto.BANNER + data)
    assert len(msgs) == 1
    assert msgs[0].get("CallerIDName") == "Evil    Event: Fake"


def test_sent_capture_parses_with_times() -> None:
    actions = list(parse_sent((FIXTURES / "05_ami_actions.sent.txt").read_text()))
    assert actions[0][0] == 0.0 and actions[0][1].get("Action") == "Login"
    pause = next(m for t, m in actions if m.get("ActionID") == "lab-8")
    assert pause.get("Reason") == "Møde"
    assert actions[-1][1].get("Action") == "Logoff"
    assert actions[-1][0] == 25.160
