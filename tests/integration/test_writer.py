"""The event writer: every record written exactly once, on both databases, through
outages (spill file) and restarts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.acd.records import AgentStateRecord, CallRecord, EventRecord, Record
from app.metrics import Metrics
from app.store.db import create_engine, session_factory
from app.store.models import AgentStateChange, Call, CallEvent, QueueVisit
from app.store.writer import (
    Backend,
    EventWriter,
    PostgresBackend,
    SpillFile,
    SqliteBackend,
    _group,
)
from tests.ami_replay import SCENARIOS, replay_pure
from tests.conftest import OwnPostgres


def backend_for(url: str) -> Backend:
    if url.startswith("sqlite"):
        return SqliteBackend(create_engine(url), owns_engine=True)
    return PostgresBackend(url)


async def table_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        out = {
            name: int((await s.execute(select(func.count()).select_from(model))).scalar_one())
            for name, model in (
                ("events", CallEvent),
                ("calls", Call),
                ("visits", QueueVisit),
                ("agent", AgentStateChange),
            )
        }
    await engine.dispose()
    return out


async def call_rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        rows = (await s.execute(select(Call).order_by(Call.linkedid))).scalars().all()
        out = [
            (
                r.linkedid,
                r.outcome,
                r.queue,
                r.agent,
                r.keys,
                r.wait_seconds,
                r.talk_seconds,
                r.transferred_to,
                r.data_gap,
            )
            for r in rows
        ]
    await engine.dispose()
    return out


def spilled_by_a_previous_run(spill: Path, records: Sequence[Record]) -> None:
    """A spill file as a previous process left it: all spilled, nothing written back."""
    previous = SpillFile(spill)
    previous.append(records)
    previous.close()


def all_records() -> list[Record]:
    out: list[Record] = []
    for name in SCENARIOS:
        out += replay_pure(name).records  # type: ignore[arg-type]
    return out


async def test_records_land_once_even_when_written_twice(db_url: str, tmp_path: Path) -> None:
    records = all_records()
    writer = EventWriter(backend_for(db_url), Metrics(), tmp_path / "spill.jsonl", batch=100)
    await writer.start()
    writer.submit(records)
    await writer.drained()
    first = await table_counts(db_url)
    writer.submit(records)  # a replay: same keys
    await writer.drained()
    await writer.stop()
    assert await table_counts(db_url) == first
    n_events = len({r.event_key for r in records if isinstance(r, EventRecord)})
    assert first["events"] == n_events
    assert first["calls"] == len(SCENARIOS)
    rows = {r[0]: r for r in await call_rows(db_url)}
    assert rows["1795362472.15"][1:4] == ("answered", "dagpenge", "agent2")
    assert rows["1795362472.15"][7] == "kontanthjaelp"
    assert rows["1795362357.7"][1] == "abandoned"


async def test_postgres_copies_straight_and_falls_back_only_for_rows_already_logged(
    pg_url: str,
) -> None:
    """Straight COPY into call_events for new rows; a batch that meets rows already logged
    (a replay) is rolled back whole and written again through the staging table, and the
    next clean batch goes back to straight COPY. Each event is stored once."""

    def renamed(records: list[Any], suffix: str) -> list[Any]:
        return [
            r._replace(event_key=r.event_key + suffix)
            for r in records
            if isinstance(r, EventRecord)
        ]

    first: list[Record] = replay_pure("01_answered").records  # type: ignore[assignment]
    records = first + renamed(first, "-b")
    events = [r for r in records if isinstance(r, EventRecord)]
    assert len({r.event_key for r in events}) == len(events)
    backend = PostgresBackend(pg_url)
    now = datetime.now(UTC)
    try:
        await backend.write(_group(first), now)
        assert backend.direct and backend.retried == 0
        # The first call again, with another: the COPY fails on the unique key.
        await backend.write(_group(records), now)
        assert backend.retried == 1 and not backend.direct
        assert (await table_counts(pg_url))["events"] == len(events)
        # A batch of new events only: written staged, found clean, back to straight COPY.
        await backend.write(_group(renamed(events[:20], "-c")), now)
        assert backend.direct
        await backend.write(_group(renamed(events[:20], "-d")), now)
        assert backend.retried == 1
        assert (await table_counts(pg_url))["events"] == len(events) + 40
    finally:
        await backend.close()


async def test_agent_states_are_copied_too_and_a_repeated_one_falls_back_alone(
    pg_url: str,
) -> None:
    """Agent state changes go in with COPY (with their ``source`` column). Only they are
    there already (the events are new): the batch goes again through staging, each row
    once, and a clean batch after it goes straight again."""
    first: list[Record] = replay_pure("05_ami_actions").records  # type: ignore[assignment]
    agents = [r for r in first if isinstance(r, AgentStateRecord)]
    events = [r for r in first if isinstance(r, EventRecord)]
    assert len(agents) >= 4
    backend = PostgresBackend(pg_url)
    now = datetime.now(UTC)
    try:
        await backend.write(_group(first), now)
        assert backend.direct and backend.retried == 0
        counts = await table_counts(pg_url)
        assert (counts["agent"], counts["events"]) == (len(agents), len(events))
        again = [*[e._replace(event_key=e.event_key + "-b") for e in events], *agents]
        await backend.write(_group(again), now)
        assert backend.retried == 1 and not backend.direct
        counts = await table_counts(pg_url)
        assert (counts["agent"], counts["events"]) == (len(agents), 2 * len(events))
        fresh = [dataclasses.replace(a, event_key=a.event_key + "-c") for a in agents]
        await backend.write(_group(fresh), now)
        assert backend.direct and (await table_counts(pg_url))["agent"] == 2 * len(agents)
        sources = await _agent_sources(pg_url)
        assert sources == {"ami"}
    finally:
        await backend.close()


async def _agent_sources(url: str) -> set[str]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        rows = (await s.execute(select(AgentStateChange.source))).scalars().all()
    await engine.dispose()
    return set(rows)


async def test_last_state_of_a_call_wins_within_and_across_batches(
    db_url: str, tmp_path: Path
) -> None:
    rec = next(r for r in replay_pure("01_answered").records if isinstance(r, CallRecord))
    from dataclasses import replace

    older = replace(rec, outcome=None, ended_at=None, talk_seconds=None)
    writer = EventWriter(backend_for(db_url), Metrics(), tmp_path / "spill.jsonl", batch=2)
    await writer.start()
    writer.submit([older, rec])  # same batch: the later one wins
    await writer.drained()
    writer.submit([replace(rec, keys="12")])  # a later batch updates
    await writer.drained()
    await writer.stop()
    rows = await call_rows(db_url)
    assert len(rows) == 1 and rows[0][1] == "answered" and rows[0][4] == "12"


async def test_database_down_spills_then_everything_is_written_exactly_once(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    records = all_records()
    half = len(records) // 2
    metrics = Metrics()
    writer = EventWriter(
        PostgresBackend(own_postgres.url),
        metrics,
        tmp_path / "spill.jsonl",
        batch=50,
        spill_after=0.3,
        retry=0.1,
    )
    await writer.start()
    writer.submit(records[:100])
    await writer.drained()
    own_postgres.stop()
    writer.submit(records[100:half])
    for _ in range(100):
        await asyncio.sleep(0.05)
        if writer.spilling:
            break
    assert writer.spilling, "the writer should spill while the database is down"
    writer.submit(records[half:])  # goes straight to the file, in order
    assert (tmp_path / "spill.jsonl").exists()
    assert metrics.store_spilled._value.get() > 0  # type: ignore[attr-defined]
    health = await writer.check()
    assert not health.ok and health.state == "spilling"
    assert health.detail["reason"] == "database unreachable"
    # While the database is away the retries ask for a connection and read nothing back:
    # each used to decode a whole batch from the file only to drop it (memory, CPU).
    reads = 0
    read = writer.spill.read

    def counted(*args: Any, **kw: Any) -> Any:
        nonlocal reads
        reads += 1
        return read(*args, **kw)

    writer.spill.read = counted  # type: ignore[method-assign]
    errors = metrics.store_errors._value.get()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    assert metrics.store_errors._value.get() > errors  # type: ignore[attr-defined]
    assert reads == 0
    own_postgres.start()
    await writer.drained(within=30)
    await writer.stop()
    assert reads > 0 and not writer.spilling and not (tmp_path / "spill.jsonl").exists()

    # The same records written with no fault, into a fresh database, give the same rows.
    from tests.conftest import _pg_admin, _pg_server_url  # noqa: F401

    expected_events = len({r.event_key for r in records if isinstance(r, EventRecord)})
    counts = await table_counts(own_postgres.url)
    assert counts["events"] == expected_events
    assert counts["calls"] == len(SCENARIOS)


async def test_a_spill_file_left_by_a_crash_is_written_on_start(
    sqlite_url: str, tmp_path: Path
) -> None:
    records = all_records()
    spill = tmp_path / "spill.jsonl"
    # A previous process spilled and died before writing back (one torn last line).
    spilled_by_a_previous_run(spill, records)
    with spill.open("ab") as fh:
        fh.write(b'{"t":"ev","pbx":"pbx1"')  # torn: no newline
    second = EventWriter(backend_for(sqlite_url), Metrics(), spill)
    assert second.spilling and second.depth >= len(records)
    await second.start()
    await second.drained(within=30)
    await second.stop()
    counts = await table_counts(sqlite_url)
    assert counts["events"] == len({r.event_key for r in records if isinstance(r, EventRecord)})
    assert counts["calls"] == len(SCENARIOS)


async def test_a_full_queue_spills_instead_of_growing(sqlite_url: str, tmp_path: Path) -> None:
    records = all_records()
    writer = EventWriter(backend_for(sqlite_url), Metrics(), tmp_path / "s.jsonl", max_queue=200)
    writer.submit(records)  # not started: nothing drains the queue
    assert writer.spilling
    assert len(writer._queue) == 0 and writer.spill.pending == len(records)
    await writer.start()
    await writer.drained(within=30)
    await writer.stop()
    assert (await table_counts(sqlite_url))["calls"] == len(SCENARIOS)


class _Slow:
    """A real backend whose writes wait for ``release``: the queue fills meanwhile."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.writing = asyncio.Event()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, groups: dict[Any, list[Any]], now: datetime) -> None:
        self.writing.set()
        await self.release.wait()
        await self.inner.write(groups, now)


async def test_a_queue_that_spills_while_a_batch_is_written_loses_and_breaks_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The queue reaches its bound while a batch is in flight and goes to the spill file,
    that batch with it; the write then succeeds. Nothing is taken off the queue twice (the
    writer used to fail here with 'pop from an empty deque'), and every record lands."""
    records = all_records()
    backend = _Slow(backend_for(sqlite_url))
    metrics = Metrics()
    writer = EventWriter(backend, metrics, tmp_path / "s.jsonl", batch=50, max_queue=200)
    await writer.start()
    writer.submit(records[:60])
    await asyncio.wait_for(backend.writing.wait(), 5)
    writer.submit(records[60:])  # past max_queue: everything queued goes to the spill file
    assert writer.spilling
    backend.release.set()
    await writer.drained(within=30)
    await writer.stop()
    assert metrics.store_errors._value.get() == 0  # type: ignore[attr-defined]
    counts = await table_counts(sqlite_url)
    assert counts["events"] == len({r.event_key for r in records if isinstance(r, EventRecord)})
    assert counts["calls"] == len(SCENARIOS)


async def test_stop_with_the_database_down_keeps_everything_in_the_spill_file(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    records = all_records()
    own_postgres.stop()
    spill = tmp_path / "spill.jsonl"
    writer = EventWriter(
        PostgresBackend(own_postgres.url), Metrics(), spill, retry=0.05, spill_after=60
    )
    await writer.start()
    writer.submit(records)
    await writer.stop(grace=1)
    assert writer.spill.pending == len(records)
    own_postgres.start()
    again = EventWriter(PostgresBackend(own_postgres.url), Metrics(), spill)
    await again.start()
    await again.drained(within=30)
    await again.stop()
    assert (await table_counts(own_postgres.url))["calls"] == len(SCENARIOS)
    _ = timedelta
