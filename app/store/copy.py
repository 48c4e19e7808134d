"""PostgreSQL's binary COPY stream, built in one call for a batch of rows.

asyncpg's ``copy_records_to_table`` encodes row by row and value by value through its
codecs: some 3-4 µs of the service's CPU per ``call_events`` row, the largest single cost
of the writer. ``copy_binary`` (app/ami/_speedups.c) writes the same stream in one pass
in C, and ``copy_to_table`` sends it as it is. ``py_copy_binary`` is its twin: the
reference, and the fallback where the extension was not built; tests hold the two to the
same bytes, and the database to the same rows as asyncpg's own encoding.

Column kinds: ``t`` text (str), ``b`` bytes as they are (``json``'s binary form is its
UTF-8 text; a str is encoded), ``T`` timestamptz (a datetime; one not in UTC, or naive,
goes through ``astimezone(UTC)`` first, as asyncpg does). None is NULL in any column.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime

from app.store.tables import JSON, TEXT, TSTZ

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
_NULL = struct.pack("!i", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
KIND_OF = {TEXT: "t", JSON: "b", TSTZ: "T"}  # the column types COPY-loaded tables have


def _micros(value: object) -> int:
    if not isinstance(value, datetime):
        raise TypeError("copy_binary(): a timestamptz must be a datetime")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    delta = value.replace(tzinfo=UTC) - _PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _value(kind: str, value: object) -> bytes:
    if value is None:
        return _NULL
    if kind in ("t", "b"):
        if isinstance(value, str):
            data = value.encode("utf-8")
        elif kind == "b" and isinstance(value, bytes):
            data = value
        else:
            wanted = "str" if kind == "t" else "bytes or str"
            raise TypeError(
                f"copy_binary(): column kind '{kind}' takes {wanted}, not {type(value).__name__}"
            )
        return struct.pack("!i", len(data)) + data
    if kind == "T":
        return struct.pack("!iq", 8, _micros(value))
    raise ValueError(f"copy_binary(): unknown column kind '{kind}'")


def py_copy_binary(rows: list[tuple[object, ...]], kinds: bytes) -> bytes:
    if not isinstance(rows, list) or not isinstance(kinds, bytes):
        raise TypeError("copy_binary(rows: list[tuple], kinds: bytes)")
    columns = kinds.decode("ascii", "replace")
    out = [_HEADER]
    for r, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) != len(columns):
            raise ValueError(f"copy_binary(): row {r} is not a tuple of {len(columns)}")
        out.append(struct.pack("!h", len(columns)))
        out.extend(_value(kind, value) for kind, value in zip(columns, row, strict=True))
    out.append(_TRAILER)
    return b"".join(out)


copy_binary: Callable[[list[tuple[object, ...]], bytes], bytes]
try:
    from app.ami._speedups import copy_binary
except ImportError:  # no C compiler at install: the same bytes, in Python
    copy_binary = py_copy_binary
