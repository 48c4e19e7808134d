"""The writer's column specs (app/store/tables.py) are read from the ORM models; here they
are held to the migrated PostgreSQL database itself: every column a record writes exists
with a type its array element type goes into, and the conflict key is a unique
constraint of the table."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]

from app.store.tables import EXTRA_TYPES, SPECS

# information_schema data_type -> the array element type that writes it
WRITES = {
    "character varying": "text",
    "text": "text",
    "timestamp with time zone": "timestamptz",
    "double precision": "float8",
    "smallint": "int4",
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
    "json": "json",
    "jsonb": "jsonb",
}


async def _catalog(url: str) -> tuple[dict[tuple[str, str], str], set[tuple[str, tuple[str, ...]]]]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        types = {
            (r["table_name"], r["column_name"]): r["data_type"]
            for r in await conn.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
        }
        uniques = {
            (r["table"], tuple(r["columns"]))
            for r in await conn.fetch(
                "SELECT c.conrelid::regclass::text AS table, "
                "array_agg(a.attname ORDER BY k.n) AS columns "
                "FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), "
                "pg_attribute a WHERE c.contype = 'u' AND a.attrelid = c.conrelid "
                "AND a.attnum = k.attnum GROUP BY c.oid, c.conrelid"
            )
        }
    finally:
        await conn.close()
    return types, uniques


def test_specs_match_the_migrated_database(pg_url: str) -> None:
    types, uniques = asyncio.run(_catalog(pg_url))
    for spec in SPECS:
        written = {**spec.pg_types, **{c: EXTRA_TYPES[c] for c in spec.extra}}
        assert set(written) == {*spec.columns, *spec.extra}
        for column, element in written.items():
            assert WRITES[types[(spec.table, column)]] == element, (spec.table, column)
        assert (spec.table, spec.conflict) in uniques, spec.table
        if spec.update is not None:
            assert not set(spec.update) & set(spec.conflict)
