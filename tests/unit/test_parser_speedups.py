"""The C line splitter and scrub (app/ami/_speedups.c) against their pure-Python twins."""

from __future__ import annotations

import os
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ami import normalise, parser
from app.ami.normalise import _FREE_TEXT_KEYS, Normaliser, _mask_text, parse_timestamp, py_scrub
from app.ami.parser import parse_frame, py_split_lines
from app.privacy import CallerPrivacy
from tests.ami_replay import SCENARIOS, load_capture

try:
    from app.ami._speedups import scrub as c_scrub
    from app.ami._speedups import split_lines as c_split_lines
    from app.ami._speedups import utc_time as c_utc_time
except ImportError:  # pragma: no cover - only where the extension could not be built
    c_split_lines = None
    c_scrub = None
    c_utc_time = None

needs_c = pytest.mark.skipif(
    c_split_lines is None and not os.environ.get("ACD_REQUIRE_SPEEDUPS"),
    reason="the C extension is not built here (no C compiler at install)",
)


def test_the_extension_is_built_where_the_test_command_requires_it() -> None:
    # scripts/test.sh sets ACD_REQUIRE_SPEEDUPS where a C compiler is: there, a build that
    # silently fell back to Python would leave the service at half speed unnoticed.
    if os.environ.get("ACD_REQUIRE_SPEEDUPS"):
        assert c_split_lines is not None, "app/ami/_speedups.c was not built; see setup.py"
        assert parser.SPEEDUPS and parser.split_lines is c_split_lines
        assert normalise.scrub_index is c_scrub
        assert normalise.utc_time is c_utc_time is not None
    else:
        assert parser.SPEEDUPS is (c_split_lines is not None)
        assert (normalise.scrub_index is c_scrub) is (c_scrub is not None)


# Bytes that matter to the splitter, and some that must merely pass through: multi-byte
# UTF-8 (ø, Æ, €, an emoji), bytes that are not UTF-8 (a lone continuation byte, a cut
# sequence), NUL, a bare CR or LF.
_PIECES = [
    b":",
    b": ",
    b" ",
    b"\r\n",
    b"\r",
    b"\n",
    b"a",
    b"Key",
    b"Event",
    b"\xc3\xb8",
    b"\xc3\x86",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\x80",
    b"\xc3",
    b"\xff",
    b"\x00",
]


@needs_c
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
@settings(max_examples=2000)
def test_c_splits_any_bytes_as_python_does(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert c_split_lines is not None
    assert c_split_lines(raw) == py_split_lines(raw)


@needs_c
@given(st.binary(max_size=200))
@settings(max_examples=1000)
def test_c_splits_random_bytes_as_python_does(raw: bytes) -> None:
    assert c_split_lines is not None
    assert c_split_lines(raw) == py_split_lines(raw)


@needs_c
@pytest.mark.parametrize("name", SCENARIOS)
def test_c_splits_every_captured_frame_as_python_does(name: str) -> None:
    assert c_split_lines is not None
    frames = load_capture(name).frames
    assert frames
    for raw in frames:
        got = c_split_lines(raw)
        assert got == py_split_lines(raw)


@needs_c
def test_c_results_in_detail() -> None:
    assert c_split_lines is not None
    assert c_split_lines(b"Event: X\r\nOutput: 1\r\nOutput: 2\r\nEmpty:\r\n") == (
        ["Event", "Output", "Output", "Empty"],
        ["X", "1", "2", ""],
        {"Event": "X", "Output": "1", "Empty": ""},
    )
    assert c_split_lines(b"Event: X\r\nnot ami\r\n") is None
    assert c_split_lines(b"Event: S\xc3\xb8ren \xc3\x86r\xc3\xb8") == (
        ["Event"],
        ["Søren Ærø"],
        {"Event": "Søren Ærø"},
    )
    assert c_split_lines(b"") == ([], [], {})
    with pytest.raises(TypeError):
        c_split_lines("Event: X")  # type: ignore[arg-type]


@needs_c
def test_c_reuses_recurring_names_and_short_values_and_stays_exact_past_its_table() -> None:
    assert c_split_lines is not None
    first = c_split_lines(b"Event: Hangup\r\nChannel: PJSIP/agent1-00000001\r\nCause: 16")
    second = c_split_lines(b"Event: Hangup\r\nChannel: PJSIP/agent1-00000001\r\nCause: 17")
    assert first is not None and second is not None
    # The same name or short value is the same (interned) object, frame after frame.
    assert all(a is b for a, b in zip(first[0], second[0], strict=True))
    assert first[1][1] is second[1][1] and first[0][0] is "Event"  # noqa: F632
    # Far more distinct names and values than the table has slots, in 1-byte text with
    # and without Latin-1 letters, some longer than the cached length: every one exact.
    for i in range(5000):
        raw = (
            f"Event: E{i}\r\nKey{i % 3000}: v{i * 7919 % 4001}\r\n"
            f"N\u00e6vn{i % 50}: {'x' * (i % 40)}\u00f8\r\nLong: {'y' * 33}{i}"
        ).encode()
        assert c_split_lines(raw) == py_split_lines(raw), raw


# ---- scrub ---------------------------------------------------------------------------

_KEYS = [
    "Event",
    "Channel",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "DestCallerIDNum",
    "TransfererConnectedLineName",
    "CallerIDNumber",  # not a caller key: the suffix must end the name
    "IDNum",
    "Name",
    "\u00c6CallerIDNum",  # Latin-1 text
    "\u20acConnectedLineName",  # wider than Latin-1
    "\u20acCallerIDNam",
    *_FREE_TEXT_KEYS,
]
_VALUE_PIECES = ["", "1", "12345", "123456", "+", "4520001234", " ", "a", "\u0661\u0662\u0663", "ø"]


def _hash(value: str) -> str:
    return f"H({len(value)})"


@needs_c
@given(
    st.dictionaries(
        st.sampled_from(_KEYS),
        st.lists(st.sampled_from(_VALUE_PIECES), max_size=6).map("".join),
        max_size=len(_KEYS),
    )
)
@settings(max_examples=2000)
def test_c_scrubs_as_python_does(index: dict[str, str]) -> None:
    assert c_scrub is not None
    expected = py_scrub(index, _hash, _mask_text, _FREE_TEXT_KEYS)
    got = c_scrub(index, _hash, _mask_text, _FREE_TEXT_KEYS)
    assert got == expected and list(got) == list(expected)
    assert got is not index and index == dict(index)  # a copy; the frame's own is untouched


@needs_c
def test_c_scrub_in_detail() -> None:
    assert c_scrub is not None
    index = {
        "Event": "VarSet",
        "CallerIDNum": "4520001234",
        "\u00c6ConnectedLineName": "Søren",
        "Value": "ring 4520001234 now",
        "Data": "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits: \\d too
        "Result": "12345",  # five digits are not masked
    }
    assert c_scrub(index, _hash, _mask_text, _FREE_TEXT_KEYS) == {
        "Event": "VarSet",
        "CallerIDNum": "H(10)",
        "\u00c6ConnectedLineName": "H(5)",
        "Value": "ring • now",
        "Data": "•",
        "Result": "12345",
    }
    with pytest.raises(TypeError):
        c_scrub(list(index.items()), _hash, _mask_text, _FREE_TEXT_KEYS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_scrub({"CallerIDNum": 1}, _hash, _mask_text, _FREE_TEXT_KEYS)  # type: ignore[dict-item]
    with pytest.raises(ZeroDivisionError):  # the hash's own error comes through
        c_scrub(index, lambda v: str(1 / 0), _mask_text, _FREE_TEXT_KEYS)


@needs_c
@pytest.mark.parametrize("name", SCENARIOS)
def test_c_scrubs_every_captured_frame_as_python_does(name: str) -> None:
    for raw, _t in load_capture(name).events():
        frame = parse_frame(raw)
        assert frame is not None
        expected = py_scrub(frame.index, _hash, _mask_text, _FREE_TEXT_KEYS)
        assert c_scrub is not None
        assert c_scrub(frame.index, _hash, _mask_text, _FREE_TEXT_KEYS) == expected


# ---- timestamps ----------------------------------------------------------------------

_TIMESTAMPS = (
    st.text(alphabet="0123456789.x-+ ²٣", max_size=16)
    | st.integers(0, 2**40).map(str)
    | st.builds(
        lambda sec, frac: f"{sec}.{frac}",
        st.integers(0, 260_000_000_000),
        st.text(alphabet="0123456789", max_size=9),
    )
)


@needs_c
@given(_TIMESTAMPS)
@settings(max_examples=3000)
def test_c_reads_timestamps_as_python_does(value: str) -> None:
    assert c_utc_time is not None
    assert c_utc_time(value) == parse_timestamp(value)


@given(_TIMESTAMPS)
@settings(max_examples=1000)
def test_the_python_timestamp_memo_reads_as_parse_timestamp(value: str) -> None:
    n = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    assert n._timestamp(value) == parse_timestamp(value)


@needs_c
def test_c_timestamps_at_the_edges() -> None:
    assert c_utc_time is not None
    for value in ["0", "951782400.5", "253402300799.999999", "253402300800", "", ".1", "1."]:
        assert c_utc_time(value) == parse_timestamp(value), value
    got = c_utc_time("1415088000.611")
    assert got is not None and got.tzinfo is UTC and got.microsecond == 611000
    with pytest.raises(TypeError):
        c_utc_time(b"1415088000")  # type: ignore[arg-type]
