"""Compact JSON for the event log, the spill file and the live board: orjson, with the
standard library behind it for what orjson refuses.

Why orjson: encoding each event's ``data`` and ``raw`` (some 35 AMI headers) with the
standard encoder was a fifth of the AMI reader's time per event; orjson does it in a
fraction. What differs from ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``
and why it is fine here:
- NaN and infinities become ``null`` (the standard ``NaN`` is not JSON, and PostgreSQL's
  ``jsonb`` rejects it, which would fail a whole batch);
- dict keys that are not strings (ints, bools) are written as strings, like the standard
  encoder does (``OPT_NON_STR_KEYS``);
- integers beyond 64 bits and other types orjson does not know fall back to the standard
  encoder, so anything the old encoder took is still taken.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps_bytes(value: Any) -> bytes:
    """UTF-8 JSON bytes."""
    try:
        # Without options first: OPT_NON_STR_KEYS makes orjson check every key's type,
        # two thirds more time per dict, and the log's dicts have string keys.
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return _fallback(value).encode("utf-8")


def dumps(value: Any) -> str:
    """JSON text."""
    return dumps_bytes(value).decode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON; what orjson refuses (the standard encoder's ``NaN`` in a spill file an
    older version wrote) goes to the standard parser, whose errors are ``ValueError``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
