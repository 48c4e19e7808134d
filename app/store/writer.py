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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app import jsoncodec
from app.acd.records import Record, tuple_getter
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


class PostgresBackend:
    """asyncpg directly: the writer's own connection, no ORM on the hot path."""

    def __init__(self, url: str) -> None:
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self.conn: Any = None
        self._sql = {spec: _pg_statement(spec) for spec in SPECS}
        self.direct = True  # False after a batch met rows already logged (see above)
        self.retried = 0  # batches written again through the staging table

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn, timeout=5, command_timeout=30)
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

        rows = encode_rows(groups)  # once, for the retry through staging too
        await self.open()
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
        except BaseException:
            # A connection in an unknown state is not reused.
            await self.close()
            raise

    async def _transaction(self, rows: Rows, now: datetime, *, direct: bool) -> None:
        clean = True  # staged: every row was new (then the next batch goes straight)
        async with self.conn.transaction():
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
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

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
                survey, call = models.SurveyResponse, models.Call
                await conn.execute(
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

    def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._fh is None:
            self._fh = self.path.open("ab")
        self._fh.write(b"".join(jsoncodec.dumps_bytes(encode(r)) + b"\n" for r in records))
        self._fh.flush()
        self.pending += len(records)

    def sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def read(self, limit: int) -> tuple[list[Record], int]:
        """Up to ``limit`` records from the offset, and the offset after them."""
        offset = self._offset()
        records: list[Record] = []
        with self.path.open("rb") as fh:
            fh.seek(offset)
            while len(records) < limit:
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
        self.path.unlink(missing_ok=True)
        self.offset_path.unlink(missing_ok=True)
        self.pending = 0

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------


class EventWriter:
    """Component: ``submit`` from anywhere in the loop, flushed in the background."""

    name = "writer"
    required = False  # /ready reports it; the database part decides readiness

    def __init__(
        self,
        backend: Backend,
        metrics: Metrics,
        spill_path: Path,
        *,
        batch: int = 500,
        max_batch: int = 10_000,
        interval: float = 0.25,
        max_queue: int = 200_000,
        spill_after: float = 5.0,
        retry: float = 1.0,
        on_commit: Callable[[Sequence[Record], float], None] | None = None,
        clock: Callable[[], datetime] = host_now,  # rows' write time: the host's
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.spill = SpillFile(spill_path)
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
        self.written = 0

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
        if self._queue:
            self._start_spilling("stopping with the database unreachable")
        self.spill.close()
        await self.backend.close()

    async def check(self) -> Health:
        detail: dict[str, Any] = {
            "queued": len(self._queue),
            "spilled_pending": self.spill.pending,
            "written": self.written,
        }
        if self.last_error:
            detail["last_error"] = self.last_error
        state = "spilling" if self.spilling else ("retrying" if self.last_error else "up")
        return Health(not self.spilling and self.last_error is None, state, detail)

    async def drained(self, within: float = 30.0) -> None:
        """Wait until everything submitted so far is durable (tests, benchmarks)."""
        deadline = time.monotonic() + within
        while self.depth > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"writer still has {self.depth} records")
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
            self.spill.append(records)
            self.metrics.store_spilled.inc(len(records))
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
        self.metrics.store_queue_depth.set(self.depth)

    async def _write(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        await self.backend.write(_group(records), self.clock())
        self.written += len(records)
        self.metrics.store_written.inc(len(records))
        if self.on_commit is not None:
            self.on_commit(records, time.perf_counter() - started)

    def _failed(self, exc: Exception) -> None:
        self.metrics.store_errors.inc()
        message = f"{type(exc).__name__}: {exc}"[:300]
        if self.last_error is None:
            log.error("event log: database write failed (%s); will retry", message)
        self.last_error = message
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        elif now - self._down_since >= self.spill_after and self._queue:
            self._start_spilling(f"database down for {now - self._down_since:.0f} s")

    def _recovered(self) -> None:
        if self.last_error is not None:
            log.warning("event log: database writes work again")
        self.last_error = None
        self._down_since = None
