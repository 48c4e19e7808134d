"""The durable log: a batched writer with a bounded queue and a spill file.

The AMI reader hands records over with ``submit`` and never waits: a slow or absent
database must not stall the socket (Asterisk drops a manager client that does not drain
it). The writer flushes every ``batch`` records or ``interval`` seconds, each batch in one
transaction (events, call and visit upserts, agent states, surveys, call-backs, gaps).

When the database is down records wait in the queue; when it stays down longer than
``spill_after`` or the queue reaches ``max_queue``, everything goes to an append-only
JSON-lines spill file, in order, and keeps going there until the file has been written
back. Every row has an idempotency key (unique constraints, ``ON CONFLICT``), so a batch
that was committed but not acknowledged, or a spill file replayed after a crash, is
written exactly once.

A batch the database refuses for what is in it (a value its column cannot hold, a
constraint; ``failure_kind`` says ``rows``) is not retried as it is: the writer bisects
it, writes every record the database takes, in order, and sets the refused ones aside in
``dead_letters`` (or, if that table fails too, a JSON-lines file beside the spill file)
with the error, so the log never stops at one row. Only an unreachable or refusing
database is an outage, retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import hashlib
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app import jsoncodec
from app.acd.records import Record, SurveyRecord, tuple_getter
from app.clock import host_now
from app.components import Health, cancel_tasks
from app.metrics import Metrics
from app.store import models
from app.store.copy import KIND_OF, copy_binary
from app.store.tables import (
    EXTRA_TYPES,
    JSON,
    JSONB,
    NOW,
    SPECS,
    TableSpec,
    decode,
    encode,
    spec_of,
)

log = logging.getLogger(__name__)

_JSON = jsoncodec.dumps
_JSON_BYTES = jsoncodec.dumps_bytes


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class Backend(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, groups: dict[TableSpec, list[Any]], now: datetime) -> None: ...

    async def link_surveys(self) -> None: ...

    async def set_aside(self, letters: Sequence[DeadLetter]) -> None: ...


# --------------------------------------------------------------------------------------
# What a failed write means
# --------------------------------------------------------------------------------------

# ``rows``: the database refused what the batch holds; the same rows would be refused
# again, the others would go in. ``unreachable``: no connection, or the server going
# away. ``refusing``: the server is there but takes no writes (no disk, a permission, a
# missing table or column, a lock timeout): that is the database's state, not a row's.
FailureKind = Literal["rows", "unreachable", "refusing"]
# SQLSTATE: cardinality violation (a key twice in one upsert), data exception (too long,
# out of range, a NUL, a bad date), integrity constraint (NOT NULL, unique, foreign
# key, check), and an index row too large for its index.
_ROW_CLASSES = ("21", "22", "23")
_ROW_CODES = frozenset({"54000"})
# The server going away: connection exceptions, admin/crash shutdown, cannot connect now.
_GONE_CLASSES = ("08",)
_GONE_CODES = frozenset({"57P01", "57P02", "57P03"})
# A value a client-side encoder could not take: ours (copy_binary, orjson), asyncpg's
# (its DataError is a ValueError), SQLAlchemy's bind processors (naive datetimes).
_VALUE_ERRORS = (TypeError, ValueError, ArithmeticError)
# SQLite through SQLAlchemy: a constraint, a value it cannot hold or bind.
_SQLITE_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)


def failure_kind(exc: BaseException) -> FailureKind:
    """Why a write failed: the rows, or the database (see ``FailureKind``)."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        orig: BaseException = exc.orig
        if isinstance(orig, _SQLITE_ROW_ERRORS) or (
            isinstance(orig, sqlite3.ProgrammingError) and "binding parameter" in str(orig)
        ):
            return "rows"
        if isinstance(orig, sqlite3.Error) or isinstance(exc, sa_exc.DBAPIError):
            return "refusing"
        return failure_kind(orig)  # a bind processor's own error
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return "unreachable"
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg.PostgresError
    if isinstance(sqlstate, str):
        if sqlstate.startswith(_ROW_CLASSES) or sqlstate in _ROW_CODES:
            return "rows"
        if sqlstate.startswith(_GONE_CLASSES) or sqlstate in _GONE_CODES:
            return "unreachable"
        return "refusing"
    if isinstance(exc, _VALUE_ERRORS):
        return "rows"
    if type(exc).__module__.startswith("asyncpg"):  # InterfaceError: the connection
        return "unreachable"
    return "refusing"


def describe(exc: BaseException) -> str:
    """The error for the log, ``/ready`` and a dead letter: type, SQLSTATE, message (for
    SQLAlchemy's, the driver's own: its message would quote the statement and values)."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        exc = exc.orig
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" {sqlstate}" if isinstance(sqlstate, str) else ""
    return f"{type(exc).__name__}{code}: {exc}"[:500]


_WHY = {
    "rows": "records refused",
    "unreachable": "database unreachable",
    "refusing": "database refuses the writes",
}


# --------------------------------------------------------------------------------------
# Dead letters: records the database refused
# --------------------------------------------------------------------------------------


class DeadLetter(NamedTuple):
    """One refused record as ``dead_letters`` keeps it (its columns, in order)."""

    at: datetime  # set aside
    digest: str
    target: str
    pbx: str | None
    record_key: str
    error: str
    sqlstate: str | None
    record: bytes  # JSON


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\\x00")


def dead_letter(record: Record, error: BaseException, at: datetime) -> DeadLetter:
    """``record`` and why it was refused, in a form no column refuses."""
    spec = spec_of(record)
    try:
        doc: Any = encode(record)
        data = _JSON_BYTES(doc)
    except (TypeError, ValueError):  # not even JSON: what Python says of it
        data = _JSON_BYTES({"t": spec.tag, "repr": repr(record)[:20_000]})
    key = "/".join(str(v) for v in spec.key(record))
    sqlstate = getattr(error, "sqlstate", None)
    pbx = getattr(record, "pbx", None)
    return DeadLetter(
        at=at,
        digest=hashlib.blake2b(data, digest_size=16).hexdigest(),
        target=spec.table,
        pbx=_no_nul(pbx) if isinstance(pbx, str) else None,
        record_key=_no_nul(key),
        error=_no_nul(describe(error)),
        sqlstate=sqlstate if isinstance(sqlstate, str) else None,
        record=data,
    )


_DEAD_SQL = (
    "INSERT INTO dead_letters (at, digest, target, pbx, record_key, error, sqlstate, record) "
    "SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::text[], $7::text[], $8::json[]) ON CONFLICT (digest) DO NOTHING"
)


def _group(records: Sequence[Record]) -> dict[TableSpec, list[Any]]:
    """Records by table, in order; upserts keep only the last state of each key."""
    groups: dict[TableSpec, list[Any]] = {}
    for record in records:
        groups.setdefault(spec_of(record), []).append(record)
    for spec, rows in groups.items():
        if spec.update is not None:
            latest: dict[tuple[Any, ...], Any] = {}
            for row in rows:
                latest[spec.key(row)] = row
            groups[spec] = list(latest.values())
    return groups


# --------------------------------------------------------------------------------------
# PostgreSQL: one ``INSERT ... SELECT FROM unnest(...)`` per table, arrays bound in binary
# --------------------------------------------------------------------------------------


def _columns(spec: TableSpec) -> list[str]:
    """The columns a row of ``spec`` is written to: the record's, then the extra ones."""
    return [*spec.columns, *spec.extra]


def _column_types(spec: TableSpec) -> list[str]:
    return [spec.pg_types[c] for c in spec.columns] + [EXTRA_TYPES[c] for c in spec.extra]


def _pg_statement(spec: TableSpec) -> str:
    cols = _columns(spec)
    types = _column_types(spec)
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    collist = ", ".join(f'"{c}"' for c in cols)
    conflict = ", ".join(f'"{c}"' for c in spec.conflict)
    if spec.update is None:
        action = "DO NOTHING"
    else:
        sets = [*spec.update, *(c for c in spec.extra if c == "updated_at")]
        action = "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in sets)
    return (
        f'INSERT INTO "{spec.table}" ({collist}) SELECT * FROM unnest({params}) '
        f"ON CONFLICT ({conflict}) {action}"
    )


_LINK_SURVEYS = (
    "UPDATE survey_responses SET call_id = (SELECT c.id FROM calls c "
    "WHERE c.pbx = survey_responses.pbx AND c.linkedid = survey_responses.linkedid) "
    "WHERE call_id IS NULL"
)


_EVENT_SPEC = next(s for s in SPECS if s.table == "call_events")
_AGENT_SPEC = next(s for s in SPECS if s.table == "agent_state_changes")
# The bulk of the log goes in with COPY, straight into its tables: call_events, and the
# agent state changes (insert-once too, a fifth as many rows). COPY cannot skip rows that
# are there already, but that only happens when records are written again (a batch whose
# commit was not acknowledged, a spill file read back after a crash). Then the batch fails
# on a unique key, is rolled back whole, and goes again through session-private staging
# tables and INSERT ... ON CONFLICT DO NOTHING; later batches take that path too until one
# finds no duplicates. Straight COPY costs PostgreSQL about half of COPY-to-staging plus
# INSERT ... SELECT (measured in bench/ingest.py), and the service less than binding the
# rows as arrays.
_COPIED = (_EVENT_SPEC, _AGENT_SPEC)
_COPY_COLUMNS = {spec: _columns(spec) for spec in _COPIED}
# Each column's kind for the binary COPY stream (app/store/copy.py)
_COPY_KINDS = {
    spec: "".join(KIND_OF[t] for t in _column_types(spec)).encode("ascii") for spec in _COPIED
}
_UNIQUE = {f"uq_{spec.table}_pbx_event_key" for spec in _COPIED}


def _stage(spec: TableSpec) -> str:
    return f"acd_stage_{spec.table}"


_CREATE_STAGES = [
    f"CREATE TEMP TABLE IF NOT EXISTS {_stage(spec)} "
    f"(LIKE {spec.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    for spec in _COPIED
]
_FROM_STAGE = {
    spec: (
        f"INSERT INTO {spec.table} ({', '.join(_COPY_COLUMNS[spec])}) "
        f"SELECT {', '.join(_COPY_COLUMNS[spec])} FROM {_stage(spec)} "
        "ON CONFLICT (pbx, event_key) DO NOTHING"
    )
    for spec in _COPIED
}
assert all(spec.conflict == ("pbx", "event_key") and spec.update is None for spec in _COPIED)
assert all(value is not NOW for spec in _COPIED for value in spec.extra.values())


class Fenced(Exception):
    """The database refused a write as coming from an owner whose lease has moved on
    (``acd_fence``, SQLSTATE AC001; app/ha/lease.py): nothing of it was written."""


FENCE_SQL = "SELECT acd_fence($1, $2)"


def _fenced(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == "AC001"


class PostgresBackend:
    """asyncpg directly: the writer's own connection, no ORM on the hot path.

    ``fence`` (several processes for one PBX): the lease's (pbx, epoch), checked first in
    every transaction, so the database refuses a deposed owner's writes (``Fenced``)."""

    def __init__(
        self,
        url: str,
        fence: Callable[[], tuple[str, int]] | None = None,
        application_name: str = "acd-writer",
    ) -> None:
        self.fence = fence
        # Seen in pg_stat_activity (and by the fencing test's audit trigger).
        self.application_name = application_name[:63]
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self.conn: Any = None
        self._sql = {spec: _pg_statement(spec) for spec in SPECS}
        self.direct = True  # False after a batch met rows already logged (see above)
        self.retried = 0  # batches written again through the staging table

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(
                self.dsn,
                timeout=5,
                command_timeout=30,
                server_settings={"application_name": self.application_name},
            )
            # ``json`` goes over the wire as the UTF-8 bytes orjson makes (the type's
            # binary form is its text): no decode to str here and encode again in asyncpg.
            await self.conn.set_type_codec(
                "json",
                schema="pg_catalog",
                encoder=_as_bytes,
                decoder=jsoncodec.loads,
                format="binary",
            )
            for create in _CREATE_STAGES:
                await self.conn.execute(create)

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.close(), 2)
            self.conn = None

    async def write(self, groups: dict[TableSpec, list[Any]], now: datetime) -> None:
        from asyncpg import UniqueViolationError

        await self.open()  # first: no rows encoded for a database that is away
        rows = encode_rows(groups)  # once, for the retry through staging too
        try:
            if self.direct:
                try:
                    await self._transaction(rows, now, direct=True)
                    return
                except UniqueViolationError as exc:
                    if getattr(exc, "constraint_name", None) not in _UNIQUE:
                        raise
                    # Rolled back whole; the connection is fine. Write it again, skipping
                    # what is there.
                    self.direct = False
                    self.retried += 1
            await self._transaction(rows, now, direct=False)
        except BaseException as exc:
            if _fenced(exc):
                raise Fenced(str(exc)) from exc
            # A connection in an unknown state is not reused; one whose transaction the
            # server refused for its rows was rolled back cleanly and is kept (the writer
            # is about to try the batch's halves on it).
            if not (isinstance(exc, Exception) and failure_kind(exc) == "rows"):
                await self.close()
            raise

    async def link_surveys(self) -> None:
        await self.open()
        await self._fenced_execute(_LINK_SURVEYS)

    async def set_aside(self, letters: Sequence[DeadLetter]) -> None:
        await self.open()
        columns: list[Any] = list(zip(*letters, strict=True))
        await self._fenced_execute(_DEAD_SQL, *columns)

    async def _fenced_execute(self, sql: str, *args: Any) -> None:
        if self.fence is None:
            await self.conn.execute(sql, *args)
            return
        try:
            async with self.conn.transaction():
                await self.conn.execute(FENCE_SQL, *self.fence())
                await self.conn.execute(sql, *args)
        except Exception as exc:
            if _fenced(exc):
                raise Fenced(str(exc)) from exc
            raise

    async def _transaction(self, rows: Rows, now: datetime, *, direct: bool) -> None:
        clean = True  # staged: every row was new (then the next batch goes straight)
        async with self.conn.transaction():
            if self.fence is not None:
                await self.conn.execute(FENCE_SQL, *self.fence())
            for spec in SPECS:  # calls before surveys, fixed order
                table_rows = rows.get(spec.table)
                if not table_rows:
                    continue
                if spec in _COPY_COLUMNS:
                    clean &= await self._copy(spec, table_rows, direct)
                    continue
                n = len(table_rows)
                arrays: list[Any] = list(zip(*table_rows, strict=True))  # one array a column
                for value in spec.extra.values():
                    arrays.append([now if value is NOW else value] * n)
                await self.conn.execute(self._sql[spec], *arrays)
            if rows.get(_SURVEY_SPEC.table):
                await self.conn.execute(_LINK_SURVEYS)
        if not direct and clean:
            self.direct = True  # nothing was there already: back to straight COPY

    async def _copy(self, spec: TableSpec, records: list[tuple[Any, ...]], direct: bool) -> bool:
        """COPY the rows in (their extra columns' values appended); staged, whether every
        row was new."""
        if spec.extra:
            tail = tuple(spec.extra.values())
            records = [(*r, *tail) for r in records]
        columns = _COPY_COLUMNS[spec]
        # The whole batch as one binary COPY stream, encoded in one pass (a memoryview:
        # asyncpg would take bytes for a file name).
        stream = memoryview(copy_binary(records, _COPY_KINDS[spec]))
        table = spec.table if direct else _stage(spec)
        await self.conn.copy_to_table(table, source=stream, columns=columns, format="binary")
        if direct:
            return True
        status = await self.conn.execute(_FROM_STAGE[spec])
        return bool(status == f"INSERT 0 {len(records)}")


# Rows as PostgreSQL is sent them: per table, one tuple a row in the spec's column order,
# JSON already encoded (``json`` as bytes, ``jsonb`` as text).
Rows = dict[str, list[tuple[Any, ...]]]


def encode_rows(groups: dict[TableSpec, list[Any]]) -> Rows:
    out: Rows = {}
    dumps, dumps_text = _JSON_BYTES, _JSON
    for spec in SPECS:
        records = groups.get(spec)
        if not records:
            continue
        if spec is _EVENT_SPEC:
            # EventRecord is a tuple in column order: the first eight go as they are.
            out[spec.table] = [
                (*r[:8], dumps(r.data), None if r.raw is None else dumps(r.raw)) for r in records
            ]
            continue
        rows = list(map(_ROW_OF[spec], records))
        for i, col in enumerate(spec.columns):
            kind = spec.pg_types[col]
            if kind in (JSON, JSONB):
                enc = dumps if kind == JSON else dumps_text
                rows = [
                    (*row[:i], None if row[i] is None else enc(row[i]), *row[i + 1 :])
                    for row in rows
                ]
        out[spec.table] = rows
    return out


_ROW_OF = {spec: tuple_getter(spec.columns) for spec in SPECS}


_SURVEY_SPEC = next(s for s in SPECS if s.table == "survey_responses")


# --------------------------------------------------------------------------------------
# SQLite: SQLAlchemy Core INSERT ... ON CONFLICT, executemany
# --------------------------------------------------------------------------------------


_MODELS: dict[str, Any] = {
    m.__tablename__: m
    for m in (
        models.CallEvent,
        models.Call,
        models.QueueVisit,
        models.AgentStateChange,
        models.SurveyResponse,
        models.Callback,
        models.DataGap,
    )
}


class SqliteBackend:
    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        # The service shares its engine (the database component disposes of it); a
        # backend made with an engine of its own disposes of it when closed.
        self.owns_engine = owns_engine

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        if self.owns_engine:
            await self.engine.dispose()

    async def write(self, groups: dict[TableSpec, list[Any]], now: datetime) -> None:
        async with self.engine.begin() as conn:
            for spec in SPECS:
                rows = groups.get(spec)
                if not rows:
                    continue
                table = _MODELS[spec.table].__table__
                stmt = sqlite_insert(table)
                if spec.update is None:
                    stmt = stmt.on_conflict_do_nothing(index_elements=list(spec.conflict))
                else:
                    sets = [*spec.update, *(c for c in spec.extra if c == "updated_at")]
                    stmt = stmt.on_conflict_do_update(
                        index_elements=list(spec.conflict),
                        set_={c: stmt.excluded[c] for c in sets},
                    )
                params = []
                for r in rows:
                    row = {c: getattr(r, c) for c in spec.columns}
                    for col, value in spec.extra.items():
                        row[col] = now if value is NOW else value
                    params.append(row)
                await conn.execute(stmt, params)
            if groups.get(_SURVEY_SPEC):
                await conn.execute(_link_surveys_statement())

    async def link_surveys(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_link_surveys_statement())

    async def set_aside(self, letters: Sequence[DeadLetter]) -> None:
        stmt = sqlite_insert(models.DeadLetter).on_conflict_do_nothing(index_elements=["digest"])
        params = [
            {**letter._asdict(), "record": jsoncodec.loads(letter.record)} for letter in letters
        ]
        async with self.engine.begin() as conn:
            await conn.execute(stmt, params)


def _link_surveys_statement() -> Any:
    survey, call = models.SurveyResponse, models.Call
    return (
        update(survey)
        .where(survey.call_id.is_(None))
        .values(
            call_id=select(call.id)
            .where(call.pbx == survey.pbx, call.linkedid == survey.linkedid)
            .scalar_subquery()
        )
    )


# --------------------------------------------------------------------------------------
# The spill file
# --------------------------------------------------------------------------------------

READ_BYTES = 4 << 20  # a spill file is read back at most this much at a time


class SpillFile:
    """Append-only JSON lines, read back from a persisted offset.

    The offset lives beside the file (``.offset``) so a restart resumes where the last
    successful write stopped; re-writing a few records twice is harmless (idempotent).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset_path = path.with_suffix(path.suffix + ".offset")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: Any = None
        self._unsynced = False  # appended since the last fsync
        self._cut_torn_tail()
        self.pending = self._count_pending()

    def _cut_torn_tail(self) -> None:
        """A process that died mid-write leaves a last line without its newline; that
        record never became durable. Cut it so reading back can reach the end."""
        if not self.path.exists():
            return
        with self.path.open("r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(max(0, size - 65536))
            tail = fh.read()
            if tail.endswith(b"\n"):
                return
            keep = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
            fh.truncate(keep)
            log.error("spill file %s: cut %d bytes of a torn last record", self.path, size - keep)

    def _count_pending(self) -> int:
        if not self.path.exists():
            return 0
        offset = self._offset()
        with self.path.open("rb") as fh:
            fh.seek(offset)
            return sum(1 for _ in fh)

    def _offset(self) -> int:
        try:
            return int(self.offset_path.read_text(encoding="ascii").strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def append(self, records: Sequence[Record]) -> list[tuple[Record, Exception]]:
        """Append ``records``; returns those that cannot be encoded at all (with why),
        which are not in the file (nor would any database take them)."""
        if not records:
            return []
        if self._fh is None:
            self._fh = self.path.open("ab")
        unfit: list[tuple[Record, Exception]] = []
        try:
            lines = b"".join(_JSON_BYTES(encode(r)) + b"\n" for r in records)
        except (TypeError, ValueError):
            parts = []
            for r in records:
                try:
                    parts.append(_JSON_BYTES(encode(r)) + b"\n")
                except (TypeError, ValueError) as exc:
                    unfit.append((r, exc))
            lines = b"".join(parts)
        self._fh.write(lines)
        self._fh.flush()
        self._unsynced = True
        self.pending += len(records) - len(unfit)
        return unfit

    def sync(self) -> None:
        """fsync what was appended since the last one (nothing to do otherwise)."""
        if self._fh is not None and self._unsynced:
            os.fsync(self._fh.fileno())
            self._unsynced = False

    def read(self, limit: int, max_bytes: int = READ_BYTES) -> tuple[list[Record], int]:
        """Up to ``limit`` records (and about ``max_bytes`` of lines) from the offset, and
        the offset after them."""
        offset = self._offset()
        end = offset + max_bytes
        records: list[Record] = []
        with self.path.open("rb") as fh:
            fh.seek(offset)
            while len(records) < limit and offset < end:
                line = fh.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    break  # a torn last line: its writer died mid-write; it is not ours yet
                offset += len(line)
                try:
                    records.append(decode(jsoncodec.loads(line)))
                except (ValueError, KeyError, TypeError):
                    log.error("spill file: skipping an unreadable line at byte %d", offset)
        return records, offset

    def commit(self, offset: int, count: int) -> None:
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(offset), encoding="ascii")
        tmp.replace(self.offset_path)
        self.pending = max(0, self.pending - count)

    def exhausted(self, offset: int) -> bool:
        return offset >= self.path.stat().st_size

    def clear(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._unsynced = False
        self.path.unlink(missing_ok=True)
        self.offset_path.unlink(missing_ok=True)
        self.pending = 0

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


class DeadLetterFile:
    """Where refused records go when ``dead_letters`` itself cannot take them: JSON lines
    (one ``DeadLetter`` each, its record as JSON), fsynced before the batch is let go, and
    moved into the table once it takes them again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, letters: Sequence[DeadLetter]) -> None:
        with self.path.open("ab") as fh:
            for letter in letters:
                doc = letter._asdict()
                doc["at"] = letter.at.isoformat()
                doc["record"] = jsoncodec.loads(letter.record)
                fh.write(_JSON_BYTES(doc) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn by a crash mid-write: that batch was not let go
                doc = jsoncodec.loads(line)
                doc["at"] = datetime.fromisoformat(doc["at"])
                doc["record"] = _JSON_BYTES(doc["record"])
                out.append(DeadLetter(**doc))
        return out

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def release_memory() -> None:
    """Give the memory a backlog took back to the system: collect, then ask glibc to
    return its free pages (Python's allocator keeps freed blocks in the C heap, which
    glibc only trims from its top; a long outage's decoded batches leave it fragmented).
    Nothing happens where the C library is not glibc."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return trim


_malloc_trim = _find_malloc_trim()


# --------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------

_LOG_REFUSED_EVERY = 600.0  # seconds: one log line per (table, error) kind, counted always
_DEAD_FILE_RETRY = 60.0  # seconds between tries to move the dead-letter file into its table


class SetAsideFailed(Exception):
    """Refused records could be kept neither in ``dead_letters`` nor in its file: the
    batch is not let go (it is tried again, as after an outage)."""


class EventWriter:
    """Component: ``submit`` from anywhere in the loop, flushed in the background."""

    name = "writer"
    # /ready fails while the writer cannot write (the database away or refusing, refused
    # records that cannot be kept): the log is what the service is for.
    required = True

    def __init__(
        self,
        backend: Backend,
        metrics: Metrics,
        spill_path: Path,
        *,
        batch: int = 500,
        max_batch: int = 10_000,
        interval: float = 0.25,
        max_queue: int = 50_000,  # ~1 KB a record in memory: ~50 MB at most
        spill_after: float = 5.0,
        retry: float = 1.0,
        on_commit: Callable[[Sequence[Record], float], None] | None = None,
        clock: Callable[[], datetime] = host_now,  # rows' write time: the host's
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        # Called when the database refuses a write as a deposed owner's (Fenced): the
        # records are dropped (the new owner rebuilt them from the PBX and the log).
        self.on_fenced = on_fenced
        self.fenced = 0
        self.metrics = metrics
        self.spill = SpillFile(spill_path)
        self.dead_file = DeadLetterFile(spill_path.with_suffix(".dead" + spill_path.suffix))
        self.batch = batch
        self.max_batch = max_batch
        self.interval = interval
        self.max_queue = max_queue
        self.spill_after = spill_after
        self.retry = retry
        self.on_commit = on_commit
        self.clock = clock
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._down_since: float | None = None
        self.spilling = self.spill.pending > 0  # leftovers of an earlier run
        self.last_error: str | None = None
        self.failing: str | None = None  # why the writes fail (``_WHY``), while they do
        self.written = 0
        self.set_aside = 0  # records refused and kept in dead_letters (or its file)
        self._logged_refusals: dict[tuple[str, str], float] = {}
        self._dead_file_tried = -_DEAD_FILE_RETRY  # (monotonic: may start near 0)
        for spec in SPECS:  # every table's series from 0: an alert on increase() sees the 1st
            metrics.store_dead_letters.labels(spec.table)

    # ---- producer side (synchronous, never blocks) ----------------------------------

    def submit(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self.spilling:
            self._append_spill(records)
        else:
            self._queue.extend(records)
            if len(self._queue) >= self.max_queue:
                self._start_spilling("queue full")
            elif len(self._queue) >= self.batch:
                self._wake.set()
        self.metrics.store_queue_depth.set(self.depth)

    @property
    def depth(self) -> int:
        return len(self._queue) + self.spill.pending

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acd-writer")

    async def stop(self, grace: float = 10.0) -> None:
        """Flush what can be flushed; spill the rest so nothing is lost."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, grace)
            except (TimeoutError, asyncio.CancelledError):
                await cancel_tasks(self._task)
        if self._queue and self.fenced:
            # A deposed owner's records: not kept for a later run to write under a
            # lease that is not theirs.
            self.fenced += len(self._queue)
            self.metrics.fenced_records.inc(len(self._queue))
            log.error("event log: %d records of a deposed owner dropped", len(self._queue))
            self._queue.clear()
        if self._queue:
            self._start_spilling("stopping with the database unreachable")
        self.spill.close()
        await self.backend.close()

    async def check(self) -> Health:
        detail: dict[str, Any] = {
            "queued": len(self._queue),
            "spilled_pending": self.spill.pending,
            "written": self.written,
            "set_aside": self.set_aside,
        }
        if self.last_error is None:
            # Writing: at once, or the spill file back after an outage (the depth says
            # how far behind).
            return Health(True, "catching_up" if self.spilling else "up", detail)
        detail["reason"] = self.failing
        detail["last_error"] = self.last_error
        if self._down_since is not None:
            detail["failing_for_seconds"] = round(time.monotonic() - self._down_since, 1)
        return Health(False, "spilling" if self.spilling else "retrying", detail)

    async def drained(self, within: float = 30.0) -> None:
        """Wait until everything submitted so far is durable (tests, benchmarks)."""
        deadline = time.monotonic() + within
        while self.depth > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"writer still has {self.depth} records")
            self._wake.set()
            await asyncio.sleep(0.01)

    async def caught_up(self, stall: float = 10.0) -> None:
        """Wait until everything submitted so far is durable, as long as the writer gets
        on: ``TimeoutError`` (with the reason) only after ``stall`` seconds in which it
        wrote nothing. A start that restores from the log waits here for a spill file
        of any length, but not for a database that is away."""
        progress = (self.written, self.set_aside, self.depth)
        deadline = time.monotonic() + stall
        while self.depth > 0:
            now = (self.written, self.set_aside, self.depth)
            if now != progress:
                progress, deadline = now, time.monotonic() + stall
            elif time.monotonic() > deadline:
                why = f"{self.failing}: {self.last_error}" if self.last_error else "no progress"
                raise TimeoutError(f"writer still has {self.depth} records ({why})")
            self._wake.set()
            await asyncio.sleep(0.01)

    # ---- the flush loop ---------------------------------------------------------------

    def _start_spilling(self, why: str) -> None:
        if not self._queue and self.spilling:
            return
        if not self.spilling:
            log.warning("event log: spilling to %s (%s)", self.spill.path, why)
        self.spilling = True
        records = list(self._queue)
        self._queue.clear()
        self._append_spill(records)
        self.metrics.store_queue_depth.set(self.depth)

    def _append_spill(self, records: Sequence[Record]) -> None:
        """Never raises into the caller (the AMI reader): a spill file that cannot be
        written (disk full) loses those records, loudly, and the service goes on."""
        try:
            unfit = self.spill.append(records)
            self.metrics.store_spilled.inc(len(records) - len(unfit))
            if unfit:  # no database would take them either: straight to the dead letters
                letters = [dead_letter(r, exc, self.clock()) for r, exc in unfit]
                self.dead_file.append(letters)
                self._count_set_aside(letters, "the dead-letter file")
        except OSError as exc:
            self.metrics.store_lost.inc(len(records))
            log.critical(
                "event log: %d records LOST, spill file not writable: %s", len(records), exc
            )

    async def _run(self) -> None:
        while True:
            if not self.spilling and len(self._queue) < self.batch and not self._stopping:
                # Wait for a full batch, or flush what there is after ``interval``.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                self._wake.clear()
            if self._stopping and not self._queue and not self.spilling:
                return
            try:
                if self.spilling:
                    await self._drain_spill()
                elif self._queue:
                    await self._flush_queue()
                else:
                    continue
                self._recovered()
                await self._move_dead_file()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                if self._stopping:
                    return
                await asyncio.sleep(self.retry)

    async def _flush_queue(self) -> None:
        size = min(len(self._queue), max(self.batch, min(len(self._queue), self.max_batch)))
        batch = list(itertools.islice(self._queue, size))  # (deque[i] walks from an end)
        await self._write(batch)
        # While the batch was being written the queue may have filled up and gone to the
        # spill file whole, this batch with it (written again from there, harmlessly):
        # then there is nothing left here to take off.
        if self._queue and self._queue[0] is batch[0]:
            for _ in range(size):
                self._queue.popleft()
        self.metrics.store_queue_depth.set(self.depth)

    async def _drain_spill(self) -> None:
        # Anything still queued belongs after what is in the file.
        if self._queue:
            self._start_spilling("draining the spill file")
        self.spill.sync()
        # The database first: while it is away, each retry would otherwise read back and
        # decode a batch only to drop it (what made a long outage cost 3x the memory).
        await self.backend.open()
        records, offset = self.spill.read(self.max_batch)
        if records:
            await self._write(records)
        elif not self.spill.exhausted(offset):
            self.spill._cut_torn_tail()  # a torn line mid-run: drop it, keep going
        self.spill.commit(offset, len(records))
        if self.spill.exhausted(offset):
            self.spill.clear()
            self.spilling = False
            log.warning("event log: spill file written back, back to normal")
            release_memory()
        self.metrics.store_queue_depth.set(self.depth)

    async def _write(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        now = self.clock()
        try:
            await self.backend.write(_group(records), now)
            written = len(records)
        except Fenced as exc:
            self.fenced += len(records)
            self.metrics.fenced_records.inc(len(records))
            log.error("event log: %d records refused, lease lost (%s)", len(records), exc)
            if self.on_fenced is not None:
                self.on_fenced()
            return
        except Exception as exc:
            if failure_kind(exc) != "rows":
                raise
            written = await self._isolate(records, exc, now)
        self.written += written
        self.metrics.store_written.inc(written)
        if self.on_commit is not None:
            self.on_commit(records, time.perf_counter() - started)

    async def _isolate(self, records: Sequence[Record], exc: Exception, now: datetime) -> int:
        """The batch was refused for what it holds: write every record the database
        takes and set the others aside. Returns the records written.

        Bisection, in order: each half is tried on its own (so a call's states still
        reach its row in the order they came, the last good one last), a refused half is
        split again, and a single refused record is a dead letter. A record refused only
        beside another (two rows that collide) goes in once they are apart. Records that
        depend on a refused one are still written: a visit without its call row, a
        survey whose call is missing stays unlinked (as when its call is not yet
        written), and surveys are linked once more at the end, since bisection may have
        written a survey before its call. An outage during it raises: the whole batch is
        tried again later (what was written is written once: idempotency keys)."""
        refused: list[tuple[Record, Exception]] = []
        written = await self._bisect(records, exc, now, refused)
        if written and any(isinstance(r, SurveyRecord) for r in records):
            await self.backend.link_surveys()
        if refused:
            await self._keep_refused([dead_letter(r, e, now) for r, e in refused])
        return written

    async def _bisect(
        self,
        records: Sequence[Record],
        exc: Exception,
        now: datetime,
        refused: list[tuple[Record, Exception]],
    ) -> int:
        if len(records) == 1:
            refused.append((records[0], exc))
            return 0
        mid = len(records) // 2
        written = 0
        for half in (records[:mid], records[mid:]):
            try:
                await self.backend.write(_group(half), now)
                written += len(half)
            except Exception as half_exc:
                if failure_kind(half_exc) != "rows":
                    raise
                written += await self._bisect(half, half_exc, now, refused)
        return written

    async def _keep_refused(self, letters: list[DeadLetter]) -> None:
        """Durably, before the batch is let go: the table, else the file, else raise."""
        try:
            await self.backend.set_aside(letters)
            where = "dead_letters"
        except Exception as exc:
            table_error = describe(exc)
            try:
                self.dead_file.append(letters)
            except OSError as file_exc:
                raise SetAsideFailed(
                    f"refused records cannot be set aside: dead_letters: {table_error}; "
                    f"{self.dead_file.path}: {file_exc}"
                ) from exc
            where = f"{self.dead_file.path} (dead_letters failed: {table_error})"
            log.critical(
                "event log: dead_letters failed (%s); refused records kept in %s",
                table_error,
                self.dead_file.path,
            )
        self._count_set_aside(letters, where)

    def _count_set_aside(self, letters: Sequence[DeadLetter], where: str) -> None:
        self.set_aside += len(letters)
        by_table: dict[str, int] = {}
        for letter in letters:
            by_table[letter.target] = by_table.get(letter.target, 0) + 1
        for table, n in by_table.items():
            self.metrics.store_dead_letters.labels(table).inc(n)
        # One line per kind (table, error) every _LOG_REFUSED_EVERY: a PBX that sends the
        # same bad value all day does not flood the log; the metric counts every one.
        now = time.monotonic()
        for letter in letters:
            kind = (letter.target, letter.sqlstate or letter.error.split(":", 1)[0])
            last = self._logged_refusals.get(kind)
            if last is not None and now - last < _LOG_REFUSED_EVERY:
                continue
            if len(self._logged_refusals) >= 1000:
                self._logged_refusals.clear()
            self._logged_refusals[kind] = now
            log.error(
                "event log: the database refused a record for %s (%s); set aside in %s, "
                "key %s; the rest written",
                letter.target,
                letter.error,
                where,
                letter.record_key[:200],
            )

    async def _move_dead_file(self) -> None:
        """Refused records kept in the file while dead_letters failed: into the table,
        once it takes them (tried at most every ``_DEAD_FILE_RETRY`` seconds)."""
        now = time.monotonic()
        if now - self._dead_file_tried < _DEAD_FILE_RETRY:
            return
        self._dead_file_tried = now
        if not self.dead_file.exists():
            return
        try:
            letters = self.dead_file.read()
            for i in range(0, len(letters), 1000):
                await self.backend.set_aside(letters[i : i + 1000])
        except Exception as exc:
            log.warning(
                "event log: %s not moved into dead_letters yet (%s)",
                self.dead_file.path,
                describe(exc),
            )
            return
        self.dead_file.clear()
        log.warning(
            "event log: %d dead letters moved from %s into dead_letters",
            len(letters),
            self.dead_file.path,
        )

    def _failed(self, exc: Exception) -> None:
        self.metrics.store_errors.inc()
        why = (
            "refused records cannot be kept"
            if isinstance(exc, SetAsideFailed)
            else _WHY[failure_kind(exc)]
        )
        message = describe(exc)
        if self.last_error is None or why != self.failing:
            log.error("event log: %s (%s); will retry every %g s", why, message, self.retry)
        self.last_error = message
        self.failing = why
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        elif now - self._down_since >= self.spill_after and self._queue:
            self._start_spilling(f"{why} for {now - self._down_since:.0f} s: {message}")

    def _recovered(self) -> None:
        if self.last_error is not None:
            log.warning(
                "event log: writes work again (after %.0f s: %s)",
                time.monotonic() - (self._down_since or time.monotonic()),
                self.failing,
            )
        self.last_error = None
        self.failing = None
        self._down_since = None
