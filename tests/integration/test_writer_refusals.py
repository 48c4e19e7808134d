"""One refused row never stops the event log (issue 14): on PostgreSQL, a batch with a
value too long for its column and a broken constraint among good rows writes the good
rows, sets the bad ones aside in dead_letters (or its file) and goes on; a spill file
holding a bad row is written around it, on start too; a writer that cannot write is not
ready and says why."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.acd.records import (
    DATACLASS_INIT,
    AgentStateRecord,
    CallRecord,
    EventRecord,
    Record,
    SurveyRecord,
)
from app.main import create_app
from app.metrics import Metrics
from app.settings import load_settings
from app.store import migrate
from app.store.db import create_engine, session_factory
from app.store.models import Call, DeadLetter, SurveyResponse
from app.store.tables import decode
from app.store.writer import EventWriter, PostgresBackend
from tests.auth_support import admin_headers
from tests.conftest import _pg_admin, _pg_server_url
from tests.integration.test_writer import (
    all_records,
    backend_for,
    spilled_by_a_previous_run,
    table_counts,
)

NOW = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


def unbounded(cls: type[Any], *args: Any) -> Any:
    """A record as the dataclass alone makes it, without fitting its values: what a bug
    upstream (or a path that forgot the bounds) would hand the writer."""
    record = object.__new__(cls)
    DATACLASS_INIT[cls](record, *args)
    return record


def too_long_event(n: int = 0) -> EventRecord:
    """call_events.linkedid is VARCHAR(64): PostgreSQL refuses 100 characters (22001)."""
    return EventRecord(
        "pbx1", f"poison-{n}", NOW, NOW, "L" * 100, "U", "ami", "hangup", {"cause": 0}, None
    )


def null_interface() -> AgentStateRecord:
    """agent_state_changes.interface is NOT NULL (23502), on both databases."""
    return unbounded(AgentStateRecord, "pbx1", "bad-agent-1", NOW, "a1", None, "q", "paused", None)


async def dead_letters(url: str) -> list[DeadLetter]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        rows = list((await s.execute(select(DeadLetter).order_by(DeadLetter.id))).scalars())
    await engine.dispose()
    return rows


def counter(metrics: Metrics, table: str) -> float:
    value: float = metrics.store_dead_letters.labels(table)._value.get()  # type: ignore[attr-defined]
    return value


def expected_counts(records: list[Record]) -> dict[str, int]:
    return {
        "events": len({r.event_key for r in records if isinstance(r, EventRecord)}),
        "agent": len({r.event_key for r in records if isinstance(r, AgentStateRecord)}),
        "calls": len({r.linkedid for r in records if isinstance(r, CallRecord)}),
    }


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A migrated database of the test's own, for tests that take a table away."""
    server = _pg_server_url()
    name = f"acd_refusals_{uuid.uuid4().hex[:8]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------------------


async def test_a_batch_with_a_too_long_value_and_a_broken_constraint_writes_the_rest(
    pg_url: str, tmp_path: Path
) -> None:
    good = all_records()
    third = len(good) // 3
    batch = [*good[:third], too_long_event(), *good[third : 2 * third], null_interface()]
    batch += good[2 * third :]
    metrics = Metrics()
    writer = EventWriter(PostgresBackend(pg_url), metrics, tmp_path / "spill.jsonl")
    await writer.start()
    writer.submit(batch)  # one batch: the writer flushes up to 10,000 at once
    await writer.drained(within=30)
    health = await writer.check()
    assert health.ok and health.state == "up", health
    assert health.detail["set_aside"] == 2 and writer.written == len(good)
    assert await table_counts(pg_url) == {**expected_counts(good), "visits": await _visits(pg_url)}

    letters = await dead_letters(pg_url)
    assert [(d.target, d.sqlstate) for d in letters] == [
        ("call_events", "22001"),
        ("agent_state_changes", "23502"),
    ]
    assert "StringDataRightTruncationError" in letters[0].error
    assert letters[0].record_key == "pbx1/poison-0"
    assert decode(letters[0].record) == too_long_event()
    assert decode(letters[1].record) == null_interface()
    assert counter(metrics, "call_events") == 1 and counter(metrics, "agent_state_changes") == 1

    # Nothing else stopped: the next batches go straight in, another bad row is set aside.
    later = [
        r._replace(event_key=r.event_key + "-later") for r in good if isinstance(r, EventRecord)
    ]
    writer.submit([*later[:50], too_long_event(1), *later[50:]])
    await writer.drained(within=30)
    await writer.stop()
    assert (await table_counts(pg_url))["events"] == expected_counts(good)["events"] + len(
        {r.event_key for r in later}
    )
    assert len(await dead_letters(pg_url)) == 3
    assert (await writer.check()).ok


async def _visits(url: str) -> int:
    return (await table_counts(url))["visits"]


async def test_isolation_keeps_a_calls_states_in_order_and_links_its_survey(
    db_url: str, tmp_path: Path
) -> None:
    """Rows of one batch depend on each other. Bisection writes them in their order, so
    the call's row holds its last state the database took (a refused later state is set
    aside, not applied, and a good state after it wins); a survey written before its call
    (the halves split them) is linked to it at the end."""
    rec = next(r for r in all_records() if isinstance(r, CallRecord) and r.outcome == "answered")
    first = dataclasses.replace(rec, outcome=None, ended_at=None, talk_seconds=None)
    # A later state the database refuses: a NULL in a NOT NULL column (on both databases).
    refused_state = unbounded(CallRecord, *(
        None if f.name == "caller_hash" else getattr(rec, f.name)
        for f in dataclasses.fields(CallRecord)
    ))  # fmt: skip
    survey = SurveyRecord(rec.pbx, rec.linkedid, "agent1", "dagpenge", NOW, 7, 5, 8, True)
    metrics = Metrics()
    writer = EventWriter(backend_for(db_url), metrics, tmp_path / "spill.jsonl")
    await writer.start()
    writer.submit([survey, null_interface(), first, refused_state])
    await writer.drained(within=30)
    row = await _call(db_url, rec.linkedid)
    assert row.outcome is None and row.ended_at is None, "the last state the database took"
    assert await _survey_call_id(db_url, rec.linkedid) == row.id
    assert [d.target for d in await dead_letters(db_url)] == ["agent_state_changes", "calls"]

    writer.submit([null_interface(), rec])  # the good final state comes after all
    await writer.drained(within=30)
    await writer.stop()
    row = await _call(db_url, rec.linkedid)
    assert row.outcome == "answered" and row.ended_at is not None
    assert len(await dead_letters(db_url)) == 2, "the same refused record is kept once"
    assert counter(metrics, "agent_state_changes") == 2  # counted each time it came


async def _call(url: str, linkedid: str) -> Call:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        row = (await s.execute(select(Call).where(Call.linkedid == linkedid))).scalar_one()
    await engine.dispose()
    return row


async def _survey_call_id(url: str, linkedid: str) -> int | None:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        value = (
            await s.execute(
                select(SurveyResponse.call_id).where(SurveyResponse.linkedid == linkedid)
            )
        ).scalar_one()
    await engine.dispose()
    return value


async def test_a_spill_file_holding_a_refused_row_is_written_around_it(
    pg_url: str, tmp_path: Path
) -> None:
    good = all_records()
    spill = tmp_path / "spill.jsonl"
    # A previous run spilled everything, the poison row first.
    spilled_by_a_previous_run(spill, [too_long_event(), *good, null_interface()])

    writer = EventWriter(PostgresBackend(pg_url), Metrics(), spill)
    assert writer.spilling and writer.depth == len(good) + 2
    await writer.start()
    await writer.drained(within=30)
    await writer.stop()
    assert not spill.exists()
    counts = await table_counts(pg_url)
    assert {k: counts[k] for k in ("events", "agent", "calls")} == expected_counts(good)
    assert [d.target for d in await dead_letters(pg_url)] == [
        "call_events",
        "agent_state_changes",
    ]


async def test_refused_rows_go_to_a_file_when_dead_letters_fails_and_move_back_later(
    tmp_path: Path,
) -> None:
    async with scratch_database() as url:
        await _pg_admin(url, "ALTER TABLE dead_letters RENAME TO dead_letters_away")
        metrics = Metrics()
        writer = EventWriter(PostgresBackend(url), metrics, tmp_path / "spill.jsonl")
        await writer.start()
        good = all_records()
        writer.submit([*good, too_long_event()])
        await writer.drained(within=30)
        dead_file = tmp_path / "spill.dead.jsonl"
        assert dead_file.exists() and b"poison-0" in dead_file.read_bytes()
        assert (await writer.check()).ok, "the log goes on: the row is kept in the file"
        assert counter(metrics, "call_events") == 1
        assert (await table_counts(url))["events"] == expected_counts(good)["events"]

        await _pg_admin(url, "ALTER TABLE dead_letters_away RENAME TO dead_letters")
        writer._dead_file_tried = 0.0  # (tried at most once a minute)
        events = [r for r in good if isinstance(r, EventRecord)]
        writer.submit([r._replace(event_key=r.event_key + "-b") for r in events[:3]])
        await writer.drained(within=30)
        for _ in range(100):
            if not dead_file.exists():
                break
            await asyncio.sleep(0.05)
        await writer.stop()
        assert not dead_file.exists()
        letters = await dead_letters(url)
        assert [d.record_key for d in letters] == ["pbx1/poison-0"]
        assert decode(letters[0].record) == too_long_event()


async def test_a_writer_the_database_refuses_is_not_ready_and_the_log_says_why(
    tmp_path: Path, unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is up but refuses every write (a table missing: not a row's fault, so
    nothing is set aside): /ready answers 503 naming the writer and the reason, the log
    says the database refuses the writes, not that it is down; then it recovers."""
    caplog.set_level(logging.INFO, logger="app.store.writer")
    async with scratch_database() as url:
        headers = await admin_headers(url)
        settings = load_settings(
            database_url=url,
            spill_dir=str(tmp_path),
            agi_port=unused_tcp_port,
            caller_hash_key="test-caller-hash-key-0123456789",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            rt: Any = app.state.rt
            rt.writer.retry = 0.1
            rt.writer.spill_after = 0.5
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://acd", headers=headers
            ) as client:
                assert (await client.get("/ready")).status_code == 200
                await _pg_admin(url, "ALTER TABLE calls RENAME TO calls_away")
                good = all_records()
                rt.writer.submit(good)
                for _ in range(100):
                    if rt.writer.spilling:
                        break
                    await asyncio.sleep(0.05)
                r = await client.get("/ready")
                assert r.status_code == 503, r.text
                parts = r.json()["parts"]
                assert parts["database"]["ok"] is True
                writer = parts["writer"]
                assert writer["ok"] is False and writer["required"] is True
                assert writer["state"] == "spilling"
                assert writer["detail"]["reason"] == "database refuses the writes"
                assert "UndefinedTableError 42P01" in writer["detail"]["last_error"]
                await _pg_admin(url, "ALTER TABLE calls_away RENAME TO calls")
                await rt.writer.drained(within=30)
                assert (await client.get("/ready")).status_code == 200
        counts = await table_counts(url)
        assert counts["calls"] == expected_counts(good)["calls"]
        assert await dead_letters(url) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "app.store.writer"]
    assert any("database refuses the writes (UndefinedTableError" in m for m in messages)
    assert any("spilling" in m and "database refuses the writes for" in m for m in messages)
    assert not any("unreachable" in m or "down" in m for m in messages), messages
