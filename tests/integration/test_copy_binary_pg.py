"""What PostgreSQL reads from the binary COPY stream (app/store/copy.py): the same rows as
asyncpg's own row-by-row encoding gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.store.copy import copy_binary, py_copy_binary

_ROWS: list[tuple[Any, ...]] = [
    ("pbx1", '{"a":"Søren Ærø"}'.encode(), datetime(2014, 11, 4, 8, 0, 0, 611000, UTC)),
    (None, None, None),
    ("", "{}", datetime(1999, 12, 31, 23, 59, 59, 999999, UTC)),
    ("Møde €", b"[1,2]", datetime(2026, 12, 6, 9, 0, tzinfo=timezone(timedelta(hours=1)))),
    ("x" * 5000, b'"' + b"y" * 70000 + b'"', datetime(2200, 1, 1, tzinfo=UTC)),
]
_TABLE = "(n text, t text, j json, at timestamptz)"


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def test_postgres_reads_the_stream_as_asyncpg_writes_the_rows(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # json as the writer sends it: its binary form, the UTF-8 text
        await conn.set_type_codec(
            "json", schema="pg_catalog", encoder=_as_bytes, decoder=bytes, format="binary"
        )
        rows = [(str(i), *row) for i, row in enumerate(_ROWS)]
        for name in ("by_asyncpg", "by_c", "by_py"):
            await conn.execute(f"CREATE TEMP TABLE {name} {_TABLE}")
        await conn.copy_records_to_table("by_asyncpg", records=rows)
        for name, encode in (("by_c", copy_binary), ("by_py", py_copy_binary)):
            stream = memoryview(encode(rows, b"ttbT"))
            await conn.copy_to_table(name, source=stream, format="binary")
        query = "SELECT n::int AS n, t, j::text AS j, at FROM {} ORDER BY 1"
        expected = [tuple(r) for r in await conn.fetch(query.format("by_asyncpg"))]
        assert len(expected) == len(_ROWS)
        assert expected[3][3] == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
        assert expected[0][2] == '{"a":"Søren Ærø"}' and expected[1][1:] == (None,) * 3
        for name in ("by_c", "by_py"):
            got = [tuple(r) for r in await conn.fetch(query.format(name))]
            assert got == expected, name
    finally:
        await conn.close()
