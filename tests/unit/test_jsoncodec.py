"""The log's JSON codec: orjson, with the standard library behind it."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from app import jsoncodec


def test_string_keys_take_the_fast_path_and_read_back() -> None:
    doc = {"Event": "Newchannel", "CallerIDName": "Søren Ærø", "n": 3, "x": None}
    assert jsoncodec.dumps_bytes(doc) == json.dumps(
        doc, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    assert jsoncodec.loads(jsoncodec.dumps(doc)) == doc


def test_non_string_keys_are_written_as_strings_like_the_standard_encoder() -> None:
    doc = {1: "a", False: "b", "c": {2: "d"}}
    assert json.loads(jsoncodec.dumps(doc)) == json.loads(json.dumps(doc))


def test_nan_is_null_and_huge_integers_fall_back_to_the_standard_encoder() -> None:
    assert jsoncodec.loads(jsoncodec.dumps({"x": math.nan})) == {"x": None}
    # (read back with the standard parser: orjson reads integers beyond 64 bits as floats)
    assert json.loads(jsoncodec.dumps({"x": 2**70 + 1})) == {"x": 2**70 + 1}


@given(
    st.dictionaries(
        st.text() | st.integers(-(2**80), 2**80),
        st.text() | st.integers(-(2**80), 2**80) | st.none() | st.booleans(),
        max_size=8,
    )
)
def test_whatever_the_standard_encoder_takes_reads_back_the_same(doc: dict[object, object]) -> None:
    assert json.loads(jsoncodec.dumps_bytes(doc)) == json.loads(json.dumps(doc))
