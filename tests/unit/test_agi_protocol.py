"""The FastAGI parser and command builders against what a real Asterisk 22 sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.agi import protocol as cmd
from app.agi.protocol import (
    AgiParser,
    Environment,
    Event,
    HangupNotice,
    ProtocolError,
    Reply,
    dtmf_from_result,
    parse_reply_text,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
RAW_08 = (FIXTURES / "08_fastagi.agi.rx.raw").read_bytes()
RAW_08B = (FIXTURES / "08b_fastagi_hangup.agi.rx.raw").read_bytes()


def feed_all(data: bytes, chunk: int | None = None) -> list[Event]:
    parser = AgiParser()
    if chunk is None:
        return parser.feed(data)
    events: list[Event] = []
    for i in range(0, len(data), chunk):
        events.extend(parser.feed(data[i : i + chunk]))
    return events


def test_recorded_session_08_parses_to_environment_and_replies() -> None:
    events = feed_all(RAW_08)
    env = events[0]
    assert isinstance(env, Environment)
    assert env.get("network_script") == "ivr"
    assert env.get("uniqueid") == "1795362443.12"
    assert env.get("callerid") == "4520001"
    assert env.get("calleridname") == "Borger 1"
    assert env.get("accountcode") == ""  # "agi_accountcode: " with nothing after
    assert env.get("arg_1") == "lab" and env.get("arg_2") == "82565683"
    assert len(env.variables) == 24
    assert events[1:] == [
        Reply(200, "0", None, None, "result=0"),  # ANSWER
        Reply(200, "0", None, 15962, "result=0 endpos=15962"),  # STREAM FILE
        Reply(200, "1", None, None, "result=1"),  # GET DATA: key 1
        Reply(200, "1", "4520001", None, "result=1 (4520001)"),  # GET FULL VARIABLE
        Reply(200, "1", "1795362443.12", None, "result=1 (1795362443.12)"),  # GET VARIABLE
        Reply(200, "1", None, None, "result=1"),  # SET VARIABLE
        Reply(200, "1", None, None, "result=1"),  # VERBOSE
    ]


def test_recorded_hangup_08b_gives_minus_one_then_hangup() -> None:
    events = feed_all(RAW_08B)
    assert isinstance(events[0], Environment)
    assert events[-2] == Reply(200, "-1", None, None, "result=-1")
    assert events[-1] == HangupNotice()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_any_split_of_the_stream_gives_the_same_events(chunk: int) -> None:
    assert feed_all(RAW_08, chunk) == feed_all(RAW_08)
    assert feed_all(RAW_08B, chunk) == feed_all(RAW_08B)


def test_utf8_caller_name_split_across_reads_is_kept() -> None:
    raw = RAW_08.replace(b"Borger 1", "Søren Ærø Åberg".encode())
    at = raw.index("ø".encode()) + 1  # split inside the two bytes of 'ø'
    parser = AgiParser()
    events = parser.feed(raw[:at]) + parser.feed(raw[at:])
    env = events[0]
    assert isinstance(env, Environment)
    assert env.get("calleridname") == "Søren Ærø Åberg"


def test_crlf_line_ends_are_accepted() -> None:
    events = AgiParser().feed(b"agi_network: yes\r\nagi_uniqueid: 1.2\r\n\r\n200 result=0\r\n")
    assert events == [
        Environment({"network": "yes", "uniqueid": "1.2"}),
        Reply(200, "0", None, None, "result=0"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("result=0 endpos=15962", Reply(200, "0", None, 15962)),
        ("result=49 endpos=2400", Reply(200, "49", None, 2400)),
        ("result= (timeout)", Reply(200, "", "timeout", None)),
        ("result=12 (timeout)", Reply(200, "12", "timeout", None)),
        ("result=0 (timeout) endpos=8000", Reply(200, "0", "timeout", 8000)),
        ("result=35 (dtmf) endpos=40000", Reply(200, "35", "dtmf", 40000)),
        ("result=-1 (hangup) endpos=1200", Reply(200, "-1", "hangup", 1200)),
        ("result=1 (a (nested) value)", Reply(200, "1", "a (nested) value", None)),
        ("result=1 ()", Reply(200, "1", "", None)),
        ("result=-1", Reply(200, "-1", None, None)),
    ],
)
def test_reply_formats_of_res_agi(line: str, expected: Reply) -> None:
    got = parse_reply_text(200, line)
    assert (got.code, got.result, got.data, got.endpos) == (
        expected.code,
        expected.result,
        expected.data,
        expected.endpos,
    )


def test_error_replies_510_511_and_multiline_520() -> None:
    stream = (
        b"agi_uniqueid: 1.2\n\n"
        b"510 Invalid or unknown command\n"
        b"511 Command Not Permitted on a dead channel or intercept routine\n"
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
        b"520 End of proper usage.\n"
        b"HANGUP\n"
    )
    events = AgiParser().feed(stream)
    assert [type(e).__name__ for e in events] == [
        "Environment",
        "Reply",
        "Reply",
        "Reply",
        "HangupNotice",
    ]
    r510, r511, r520 = events[1], events[2], events[3]
    assert isinstance(r510, Reply) and r510.code == 510 and not r510.ok
    assert isinstance(r511, Reply) and r511.dead_channel
    assert isinstance(r520, Reply) and r520.code == 520
    assert "Usage: GET DATA" in r520.text and "Proper usage follows" in r520.text


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",  # a TLS hello
        b"hello\n",
        b"agi_Upper: x\n",
    ],
)
def test_garbage_instead_of_an_environment_is_refused(garbage: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        AgiParser().feed(garbage)
    assert "AGI environment line" in str(err.value)
    assert "HTTP" not in str(err.value)  # the peer's bytes never go into messages (logs)


def test_garbage_after_the_environment_is_refused() -> None:
    parser = AgiParser()
    parser.feed(b"agi_uniqueid: 1.2\n\n")
    with pytest.raises(ProtocolError, match="not an AGI reply line"):
        parser.feed(b"OK then\n")
    with pytest.raises(ProtocolError, match="without result="):
        AgiParser().feed(b"agi_uniqueid: 1.2\n\n200 okay\n")


def test_empty_environment_is_refused() -> None:
    with pytest.raises(ProtocolError, match="empty"):
        AgiParser().feed(b"\n")


def test_overlong_line_is_refused_before_its_end_arrives() -> None:
    parser = AgiParser(max_line=100)
    parser.feed(b"agi_network: " + b"y" * 80)
    with pytest.raises(ProtocolError, match="longer than 100"):
        parser.feed(b"y" * 30)  # still no newline: refused without waiting for one


def test_endless_environment_is_refused() -> None:
    parser = AgiParser(max_env_lines=10)
    with pytest.raises(ProtocolError, match="longer than 10 lines"):
        parser.feed(b"".join(b"agi_x%d: y\n" % i for i in range(11)))


def test_usage_block_is_bounded() -> None:
    parser = AgiParser(max_usage_lines=3)
    parser.feed(b"agi_uniqueid: 1\n\n520-Invalid\n")
    with pytest.raises(ProtocolError, match="usage"):
        parser.feed(b"a\nb\nc\nd\n")


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    parser = AgiParser(max_line=64)
    try:
        events = parser.feed(data)
    except ProtocolError:
        return
    assert all(isinstance(e, Environment | Reply | HangupNotice) for e in events)
    assert parser.buffered <= 64


# ---- commands ------------------------------------------------------------------------


def _sent_lines(name: str) -> list[str]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^\[[ 0-9.]+\] >> (.*)$", text, re.M)]


def test_builders_write_what_the_recorded_client_wrote() -> None:
    sent = _sent_lines("08_fastagi.agi.txt")
    built = [
        cmd.answer(),
        cmd.stream_file("custom/welcome"),
        cmd.get_data("custom/agi_menu", 6000, 1),
        cmd.get_full_variable("${CALLERID(num)}"),
        cmd.get_variable("UNIQUEID"),
        cmd.set_variable("QUEUE", "dagpenge"),
        cmd.verbose("FastAGI routed 4520001 to dagpenge", 1),
    ]
    assert [c.line for c in built] == sent
    assert all(c.encode().endswith(b"\n") and c.encode().count(b"\n") == 1 for c in built)


def test_command_details() -> None:
    assert cmd.stream_file("acd/x", "0123456789*#").line == 'STREAM FILE acd/x "0123456789*#"'
    assert cmd.get_data("acd/menu-x", 6000).media_ms == 6000
    rec = cmd.record_file("/var/spool/asterisk/acd-messages/1.2", "wav", "#", 120000)
    assert rec.line == 'RECORD FILE /var/spool/asterisk/acd-messages/1.2 wav "#" 120000 BEEP'
    assert rec.media_ms == 120000
    assert cmd.wait_for_digit(3000).line == "WAIT FOR DIGIT 3000"
    assert cmd.set_variable("X", 'say "hi" \\o/').line == r'SET VARIABLE X "say \"hi\" \\o/"'
    assert cmd.get_data("acd/a", 1).name == "GET DATA"
    assert cmd.get_full_variable("${X}").name == "GET FULL VARIABLE"
    assert cmd.wait_for_digit(1).name == "WAIT FOR DIGIT"
    assert cmd.hangup().line == "HANGUP"


@pytest.mark.parametrize(
    "build",
    [
        lambda: cmd.stream_file("acd/x y"),
        lambda: cmd.stream_file("../etc/passwd"),
        lambda: cmd.stream_file("acd/x", "1 2"),
        lambda: cmd.set_variable("X", "a\nHANGUP"),
        lambda: cmd.set_variable("X Y", "a"),
        lambda: cmd.get_data("acd/x", -1),
        lambda: cmd.get_data("acd/x", 1000, 0),
        lambda: cmd.record_file("x", "mp3", "#", 1000),
        lambda: cmd.verbose("x", 9),
    ],
)
def test_builders_refuse_what_would_break_the_protocol(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("result", "key"),
    [("49", "1"), ("48", "0"), ("42", "*"), ("35", "#"), ("0", None), ("-1", None), ("x", None)],
)
def test_dtmf_from_stream_file_result(result: str, key: str | None) -> None:
    assert dtmf_from_result(result) == key
