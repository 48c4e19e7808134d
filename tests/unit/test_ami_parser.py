"""The sans-I/O AMI parser against the recorded captures and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ami.parser import AmiFrame, AmiParser, Banner, parse_frame
from tests.ami_replay import SCENARIOS, load_capture


def feed_all(parser: AmiParser, pieces: list[bytes]) -> list[Banner | AmiFrame]:
    out: list[Banner | AmiFrame] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out


def key(items: list[Banner | AmiFrame]) -> list[object]:
    return [i if isinstance(i, Banner) else (i.kind, i.name, i.fields) for i in items]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_capture_parses_completely(name: str) -> None:
    cap = load_capture(name)
    parser = AmiParser()
    items = parser.feed(cap.raw)
    assert items[0] == Banner("11.0.0")
    frames = [i for i in items if isinstance(i, AmiFrame)]
    assert len(frames) == len(cap.frames)
    assert parser.stats.malformed == 0 and parser.stats.oversized == 0
    assert parser.buffered == 0
    # The banner has no blank line after it: the login response must not be glued to it.
    assert frames[0].kind == "response" and frames[0].name == "Success"
    assert frames[0].get("Message") == "Authentication accepted"


def test_banner_split_across_reads() -> None:
    parser = AmiParser()
    out = feed_all(
        parser,
        [
            b"Asterisk Ca",
            b"ll Manager/11.0",
            b".0\r",
            b"\nResponse: Succ",
            b"ess\r\nActionID: 1\r\n\r\n",
        ],
    )
    assert out[0] == Banner("11.0.0")
    assert isinstance(out[1], AmiFrame) and out[1].action_id == "1"


def test_stream_without_banner_is_plain_frames() -> None:
    out = AmiParser().feed(b"Event: Hangup\r\nCause: 16\r\n\r\n")
    assert len(out) == 1 and isinstance(out[0], AmiFrame) and out[0].get("Cause") == "16"


def test_repeated_output_keys_are_kept_in_order() -> None:
    cap = load_capture("05_ami_actions")
    frames = [i for i in AmiParser().feed(cap.raw) if isinstance(i, AmiFrame)]
    command = next(f for f in frames if f.get("Message") == "Command output follows")
    output = command.getall("Output")
    assert len(output) > 3
    assert output[0].startswith("dagpenge has 1 calls")
    assert any("paused:Møde" in line for line in output)
    assert command.get("Output") == output[0]


@settings(max_examples=60)
@given(st.data())
def test_utf8_survives_any_segmentation(data: st.DataObject) -> None:
    raw = (
        "Asterisk Call Manager/11.0.0\r\n"
        "Event: QueueMemberPause\r\nQueue: dagpenge\r\nMemberName: Søren Ærø\r\n"
        "Interface: PJSIP/agent1\r\nPaused: 1\r\nPausedReason: Møde\r\n\r\n"
        "Event: NewCallerid\r\nCallerIDName: Åse Østergård\r\n\r\n"
    ).encode()
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=40)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    frames = [i for i in feed_all(AmiParser(), pieces) if isinstance(i, AmiFrame)]
    assert frames[0].get("MemberName") == "Søren Ærø"
    assert frames[0].get("PausedReason") == "Møde"
    assert frames[1].get("CallerIDName") == "Åse Østergård"


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(SCENARIOS))
def test_any_capture_cut_anywhere_gives_the_same_frames(seed: int, name: str) -> None:
    import random

    raw = load_capture(name).raw
    rnd = random.Random(seed)
    pieces, i = [], 0
    while i < len(raw):
        n = rnd.choice((1, 2, 3, 5, rnd.randint(1, 2000)))
        pieces.append(raw[i : i + n])
        i += n
    assert key(feed_all(AmiParser(), pieces)) == key(AmiParser().feed(raw))


def test_malformed_frame_is_counted_and_skipped() -> None:
    parser = AmiParser()
    out = parser.feed(
        b"Event: Hangup\r\nCause: 16\r\n\r\n"
        b"this is not AMI at all\r\n\r\n"
        b"Foo: bar\r\n\r\n"  # neither Event nor Response first
        b"\x00\xff\xfe garbage\r\n\r\n"
        b"Event: Newstate\r\nChannelState: 6\r\n\r\n"
    )
    assert [f.name for f in out if isinstance(f, AmiFrame)] == ["Hangup", "Newstate"]
    assert parser.stats.malformed == 3


def test_oversized_frame_is_bounded_then_the_stream_recovers() -> None:
    parser = AmiParser(max_frame=1024)
    out = parser.feed(b"Event: Huge\r\nData: ")
    for _ in range(100):
        out += parser.feed(b"x" * 1000)
        assert parser.buffered <= 1024 + 1000
    out += parser.feed(b"\r\n\r\nEvent: Hangup\r\nCause: 16\r\n\r\n")
    assert [f.name for f in out if isinstance(f, AmiFrame)] == ["Hangup"]
    assert parser.stats.oversized == 1


def test_separator_split_between_reads() -> None:
    parser = AmiParser()
    out = feed_all(parser, [b"Event: Hangup\r\nCause: 16\r", b"\n\r", b"\nEvent: X\r\n\r\n"])
    assert [f.name for f in out if isinstance(f, AmiFrame)] == ["Hangup", "X"]


def test_unwanted_events_are_skipped_by_name_and_counted() -> None:
    parser = AmiParser(wanted={"Hangup": None, "VarSet": lambda raw: b"QUEUESTATUS" in raw})
    out = parser.feed(
        b"Event: Newexten\r\nApp: x\r\n\r\n"
        b"Event: VarSet\r\nVariable: SIPDOMAIN\r\n\r\n"
        b"Event: VarSet\r\nVariable: QUEUESTATUS\r\nValue: TIMEOUT\r\n\r\n"
        b"Event: Hangup\r\n\r\n"
        b"Response: Success\r\nActionID: 7\r\n\r\n"
    )
    assert [(f.kind, f.name) for f in out if isinstance(f, AmiFrame)] == [
        ("event", "VarSet"),
        ("event", "Hangup"),
        ("response", "Success"),
    ]
    assert parser.stats.skipped == {b"Newexten": 1, b"VarSet": 1}


def test_key_with_empty_value_and_without_space() -> None:
    frame = parse_frame(b"Event: Newchannel\r\nAccountCode: \r\nLanguage:\r\nExten: 1")
    assert frame is not None
    assert frame.get("AccountCode") == "" and frame.get("Language") == ""
    assert frame.get("Exten") == "1"


def test_oversized_frame_arriving_whole_is_dropped_too() -> None:
    parser = AmiParser(max_frame=1024)
    out = parser.feed(b"Event: Hangup\r\nData: " + b"x" * 5000 + b"\r\n\r\nEvent: Newstate\r\n\r\n")
    assert [f.name for f in out if isinstance(f, AmiFrame)] == ["Newstate"]
    assert parser.stats.oversized == 1


def test_a_garbage_line_beside_a_line_with_two_separators_is_still_malformed() -> None:
    # As many ": " as lines, but one line has none and one has two: the alternating split
    # alone would pair keys with the wrong values, even keys that are all header names.
    parser = AmiParser()
    parser.feed(b"Event: Hangup\r\nChannel: a\r\nUniqueid: 1\r\n\r\n")
    out = parser.feed(b"Event: Hangup\r\nChannel: a: b\r\ngarbage\r\nCause: 16\r\n\r\n")
    out += parser.feed(b"Event: X\r\nUniqueid: a: Channel\r\ngarbage\r\n\r\n")
    assert out == [] and parser.stats.malformed == 2
    # A value holding ": " alone is fine (line by line, one key each).
    out = parser.feed(b"Event: Hangup\r\nChannel: a: b\r\nCause: 16\r\n\r\n")
    assert [f.get("Channel") for f in out if isinstance(f, AmiFrame)] == ["a: b"]


_NAMES = ["Event", "Channel", "Uniqueid", "Cause", "AppData", "Value"]
_LINE = st.one_of(
    st.tuples(
        st.sampled_from(_NAMES), st.sampled_from(["a", "b: c", "", "Channel", "x: Cause"])
    ).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.sampled_from(["garbage", "Channel", "Cause:", "Value", "a: b: c"]),
)


def _by_lines(frame: bytes) -> list[tuple[str, str]] | None:
    """The obvious parse, one line at a time (the oracle)."""
    fields = []
    for line in frame.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            fields.append((key, value))
        elif line.endswith(":") and " " not in line:
            fields.append((line[:-1], ""))
        else:
            return None
    return fields


@given(st.lists(st.lists(_LINE, min_size=1, max_size=6), min_size=1, max_size=20))
@settings(max_examples=300)
def test_frames_parse_as_a_line_by_line_reading_does(frames: list[list[str]]) -> None:
    # Values that hold ": " or are header names, beside bare lines that are header names
    # or garbage: each frame is parsed exactly as the obvious reading does, or refused.
    raws = [("Event: X\r\n" + "\r\n".join(lines)).encode() for lines in frames]
    parser = AmiParser()
    parser.feed(b"Event: X\r\nChannel: a\r\nUniqueid: 1\r\nCause: 2\r\n\r\n")
    got = [f.fields for f in parser.feed(b"".join(r + b"\r\n\r\n" for r in raws))]
    assert got == [f for f in map(_by_lines, raws) if f is not None]
    assert parser.stats.malformed == sum(1 for r in raws if _by_lines(r) is None)
