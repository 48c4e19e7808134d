"""The binary COPY encoder in C (app/ami/_speedups.c copy_binary) against its Python twin
(app/store/copy.py py_copy_binary); the database's view of the bytes is in
tests/integration/test_copy_binary_pg.py."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.store import copy

try:
    from app.ami._speedups import copy_binary as c_copy_binary
except ImportError:  # pragma: no cover - only where the extension could not be built
    c_copy_binary = None

needs_c = pytest.mark.skipif(
    c_copy_binary is None and not os.environ.get("ACD_REQUIRE_SPEEDUPS"),
    reason="the C extension is not built here (no C compiler at install)",
)

_zones = st.sampled_from(
    [UTC, None, timezone(timedelta(hours=1)), timezone(timedelta(hours=-9, minutes=-30))]
)
_times = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    _zones,
)
_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
_value = {
    "t": st.none() | _text,
    "b": st.none() | st.binary(max_size=30) | _text,
    "T": st.none() | _times,
}


@st.composite
def _batches(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], bytes]:
    kinds = draw(st.text(alphabet="tbT", min_size=1, max_size=8))
    rows = draw(st.lists(st.tuples(*(_value[k] for k in kinds)), max_size=6))
    return rows, kinds.encode()


def test_the_extension_is_used_where_the_test_command_requires_it() -> None:
    if os.environ.get("ACD_REQUIRE_SPEEDUPS"):
        assert c_copy_binary is not None and copy.copy_binary is c_copy_binary
    else:
        assert (copy.copy_binary is c_copy_binary) is (c_copy_binary is not None)


@needs_c
@given(_batches())
@settings(max_examples=1500)
def test_c_encodes_as_python_does(batch: tuple[list[tuple[Any, ...]], bytes]) -> None:
    assert c_copy_binary is not None
    rows, kinds = batch
    assert c_copy_binary(rows, kinds) == copy.py_copy_binary(rows, kinds)


def test_the_stream_in_detail() -> None:
    at = datetime(2000, 1, 1, 0, 0, 1, 5, tzinfo=UTC)
    got = copy.copy_binary([("ø", b"{}", at), (None, "x", None)], b"tbT")
    expected = (
        b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
        + struct.pack("!h", 3)
        + struct.pack("!i", 2) + "ø".encode()
        + struct.pack("!i", 2) + b"{}"
        + struct.pack("!iq", 8, 1_000_005)
        + struct.pack("!h", 3)
        + struct.pack("!i", -1)
        + struct.pack("!i", 1) + b"x"
        + struct.pack("!i", -1)
        + struct.pack("!h", -1)
    )  # fmt: skip
    assert got == expected
    before = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert copy.copy_binary([(before,)], b"T")[-10:-2] == struct.pack("!q", -1_000_000)
    assert copy.copy_binary([], b"t") == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(copy.py_copy_binary, id="py"),
        pytest.param(c_copy_binary, id="c", marks=needs_c),
    ],
)
def test_bad_rows_are_refused_with_a_clear_error(encode: Any) -> None:
    assert encode is not None
    with pytest.raises(TypeError, match="str"):
        encode([(b"bytes in a text column",)], b"t")
    with pytest.raises(TypeError, match="datetime"):
        encode([("2026-12-06",)], b"T")
    with pytest.raises(ValueError, match="row 1"):
        encode([("a",), ("a", "b")], b"t")
    with pytest.raises(ValueError, match="kind"):
        encode([(1,)], b"x")
    with pytest.raises(TypeError):
        encode((("a",),), b"t")  # a tuple of rows, not a list
