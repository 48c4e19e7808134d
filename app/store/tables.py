"""How each record type lands in its table: columns, idempotency key, insert-once or upsert.

One table of specs drives both backends (PostgreSQL with asyncpg ``unnest`` statements,
SQLite with SQLAlchemy ``INSERT ... ON CONFLICT``) and the spill file's encoding. Each spec
says only what the schema cannot: which record goes to which table (app/store/models.py),
its tag in the spill file, insert-once or upsert (and the fields an upsert keeps), and the
columns the writer fills itself; the key, the columns' types and the upsert's columns are
read from the ORM models, the one description of each table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql.base import PGDialect

from app.acd.records import (
    AgentStateRecord,
    CallbackRecord,
    CallRecord,
    EventRecord,
    GapRecord,
    Record,
    SurveyRecord,
    VisitRecord,
)
from app.store.models import (
    AgentStateChange,
    Base,
    Call,
    Callback,
    CallEvent,
    DataGap,
    QueueVisit,
    SurveyResponse,
)

TEXT, TSTZ, FLOAT, INT, BIGINT, BOOL, JSONB, JSON = (
    "text",
    "timestamptz",
    "float8",
    "int4",
    "int8",
    "bool",
    "jsonb",
    "json",
)
NOW = object()  # placeholder in ``extra``: the time of the flush

# The array element type a column is written through, by the column's PostgreSQL type.
# Integers go as int4 arrays: the column's own type (smallint) applies on insert.
_ELEMENT = {
    "VARCHAR": TEXT,
    "TEXT": TEXT,
    "TIMESTAMP": TSTZ,
    "FLOAT": FLOAT,
    "DOUBLE": FLOAT,
    "SMALLINT": INT,
    "INTEGER": INT,
    "BIGINT": BIGINT,
    "BOOLEAN": BOOL,
    "JSONB": JSONB,
    "JSON": JSON,
}


_PG = PGDialect()  # type: ignore[no-untyped-call]


def _element(column: ColumnElement[Any]) -> str:
    declared = column.type.compile(dialect=_PG)
    word = declared.split("(")[0].split()[0].upper()
    if word not in _ELEMENT:
        raise TypeError(f"{column}: no writer type for {declared}")
    return _ELEMENT[word]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one spec per table
class TableSpec:
    record: type[Any]
    table: str
    tag: str  # short name in the spill file
    conflict: tuple[str, ...]
    # None: insert once (ON CONFLICT DO NOTHING); else the columns an upsert refreshes
    update: tuple[str, ...] | None
    pg_types: dict[str, str]  # column -> PostgreSQL array element type
    # Columns not in the record, with their value; NOW = the flush time.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_types: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(
        cls,
        record: type[Any],
        model: type[Base],
        tag: str,
        *,
        upsert: bool,
        keep: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> TableSpec:
        """The spec of ``record``'s rows in ``model``'s table, read from the ORM: the
        conflict key is the table's unique constraint on record fields, the types are
        the columns'; an upsert refreshes every field but the key and ``keep`` (fields set
        once, e.g. when a survey started)."""
        table = model.__table__
        assert isinstance(table, Table)
        columns = _fields(record)
        missing = [c for c in (*columns, *(extra or {})) if c not in table.c]
        if missing:
            raise TypeError(f"{table.name} has no column {', '.join(missing)}")
        conflict = next(
            tuple(c.name for c in u.columns)
            for u in table.constraints
            if isinstance(u, UniqueConstraint) and all(c.name in columns for c in u.columns)
        )
        update = tuple(c for c in columns if c not in conflict and c not in keep)
        return cls(
            record=record,
            table=table.name,
            tag=tag,
            conflict=conflict,
            update=update if upsert else None,
            pg_types={c: _element(table.c[c]) for c in columns},
            extra=dict(extra or {}),
            extra_types={c: _element(table.c[c]) for c in extra or {}},
        )

    @property
    def columns(self) -> tuple[str, ...]:
        return _fields(self.record)

    @property
    def datetime_columns(self) -> frozenset[str]:
        return frozenset(c for c, t in self.pg_types.items() if t == TSTZ)

    def key(self, record: Any) -> tuple[Any, ...]:
        return tuple(getattr(record, c) for c in self.conflict)


def _fields(record: type[Any]) -> tuple[str, ...]:
    fields: tuple[str, ...] | None = getattr(record, "_fields", None)  # named tuple
    if fields is not None:
        return fields
    return tuple(f.name for f in dataclasses.fields(record))


SPECS: tuple[TableSpec, ...] = (
    TableSpec.of(EventRecord, CallEvent, "ev", upsert=False),
    TableSpec.of(CallRecord, Call, "call", upsert=True, extra={"updated_at": NOW}),
    TableSpec.of(VisitRecord, QueueVisit, "visit", upsert=True),
    TableSpec.of(
        AgentStateRecord, AgentStateChange, "agent", upsert=False, extra={"source": "ami"}
    ),
    TableSpec.of(SurveyRecord, SurveyResponse, "survey", upsert=True, keep=("started_at",)),
    TableSpec.of(
        CallbackRecord, Callback, "callback", upsert=False, extra={"status": "open", "attempts": 0}
    ),
    TableSpec.of(GapRecord, DataGap, "gap", upsert=True),
)
# The types of the columns the writer fills itself (``extra``), by name.
EXTRA_TYPES = {c: t for s in SPECS for c, t in s.extra_types.items()}

BY_RECORD: dict[type[Any], TableSpec] = {s.record: s for s in SPECS}
BY_TAG: dict[str, TableSpec] = {s.tag: s for s in SPECS}


def spec_of(record: Record) -> TableSpec:
    return BY_RECORD[type(record)]


def encode(record: Record) -> dict[str, Any]:
    """A JSON-safe dict for the spill file (``t``: type tag)."""
    spec = spec_of(record)
    out: dict[str, Any] = {"t": spec.tag}
    for col in spec.columns:
        value = getattr(record, col)
        out[col] = value.isoformat() if isinstance(value, datetime) else value
    return out


def decode(doc: dict[str, Any]) -> Record:
    spec = BY_TAG[doc["t"]]
    times = spec.datetime_columns
    kwargs = {
        col: (datetime.fromisoformat(doc[col]) if col in times and doc[col] else doc[col])
        for col in spec.columns
        if col in doc  # a column added since the line was written keeps its default
    }
    record: Record = spec.record(**kwargs)
    return record
