"""A restarted service reads back the calls left open, on both databases, after writing
the previous run's spill file: the log it replays must be whole."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.acd import events as ev
from app.acd.records import EventRecord, Record
from app.acd.state import CallCentre
from app.metrics import Metrics
from app.runtime import Runtime, build_runtime
from app.settings import Settings, load_settings
from app.store.db import create_engine, session_factory
from app.store.restore import OPEN_WITHIN, OpenCalls, open_calls
from app.store.writer import EventWriter
from tests.integration.test_writer import backend_for, spilled_by_a_previous_run, table_counts
from tests.integration.test_writer_refusals import dead_letters, too_long_event
from tests.unit.test_restore import capture_events, play

TRANSFER_ID = "1795362472.15"  # 09_blindtransfer's Linkedid
NOW = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


def restart_settings(db_url: str, tmp_path: Path, agi_port: int) -> Settings:
    return load_settings(
        database_url=db_url,
        spill_dir=str(tmp_path),
        agi_port=agi_port,
        caller_hash_key="test-caller-hash-key-0123456789",
    )


@asynccontextmanager
async def restarted(db_url: str, tmp_path: Path, agi_port: int) -> AsyncIterator[Runtime]:
    """The service's components started as a start after a stop does it (no AMI)."""
    rt = build_runtime(restart_settings(db_url, tmp_path, agi_port))
    started = []
    try:
        for component in rt.components:
            await component.start()
            started.append(component)
        yield rt
    finally:
        for component in reversed(started):
            await component.stop()


def transfer_left_open() -> list[Record]:
    """The previous run followed the transfer into its second queue (then stopped)."""
    events = capture_events("09_blindtransfer")
    second_join = [i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoined)][1]
    return play(CallCentre("pbx1"), events[: second_join + 1])  # type: ignore[return-value]


async def test_a_restart_restores_the_open_call_from_the_spill_file_of_the_previous_run(
    db_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    # The previous run could not reach the database and spilled everything, then stopped.
    spill = tmp_path / "spill-pbx1.jsonl"
    spilled_by_a_previous_run(spill, transfer_left_open())
    assert (await table_counts(db_url))["calls"] == 0
    async with restarted(db_url, tmp_path, unused_tcp_port) as rt:
        call = rt.pipeline.centre.calls[TRANSFER_ID]
        assert call.ended_at is None and call.keys == "1"
        assert [(v.seq, v.queue, v.outcome) for v in call.visits] == [
            (1, "dagpenge", "answered"),
            (2, "kontanthjaelp", None),
        ]
        assert not spill.exists() or spill.stat().st_size == 0
        assert (await table_counts(db_url))["calls"] == 1


async def test_a_start_restores_open_calls_past_a_refused_row_in_a_long_spill_file(
    pg_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    """The issue's start: the previous run left 38,214 records spilled with a poison row
    first; start-up waited 10 s on a writer stuck on it and skipped the restore. Now the
    file is written around the row, however long it takes, and the open call restored."""
    filler = [
        EventRecord("pbx1", f"filler-{i}", NOW, NOW, f"f{i}", f"f{i}", "ami", "hangup", {}, None)
        for i in range(40_000)
    ]
    spill = tmp_path / "spill-pbx1.jsonl"
    spilled_by_a_previous_run(spill, [too_long_event(), *filler, *transfer_left_open()])
    async with restarted(pg_url, tmp_path, unused_tcp_port) as rt:
        call = rt.pipeline.centre.calls[TRANSFER_ID]
        assert call.ended_at is None
        assert [v.queue for v in call.visits] == ["dagpenge", "kontanthjaelp"]
        assert rt.writer.depth == 0 and not spill.exists()
        assert (await table_counts(pg_url))["events"] >= 40_000
        assert [d.record_key for d in await dead_letters(pg_url)] == ["pbx1/poison-0"]


def _renamed(events: list[ev.DomainEvent], prefix: str, shift: timedelta) -> list[ev.DomainEvent]:
    """The same call under other ids, ``shift`` earlier."""

    def rid(value: str) -> str:
        return f"{prefix}{value}" if value else value

    return [
        dataclasses.replace(
            e,
            at=e.at - shift,
            key=prefix + e.key,
            linkedid=rid(e.linkedid),
            uniqueid=rid(e.uniqueid),
        )
        for e in events
    ]


def talking_call() -> list[ev.DomainEvent]:
    """01_answered up to its first hang-up: a call that is up."""
    events = capture_events("01_answered")
    first_hangup = next(i for i, e in enumerate(events) if isinstance(e, ev.ChannelHungUp))
    return events[:first_hangup]


async def open_after(db_url: str, tmp_path: Path, logged: list[Record], now: datetime) -> OpenCalls:
    """``logged`` written to the log, then what a start at ``now`` reads back."""
    writer = EventWriter(backend_for(db_url), Metrics(), tmp_path / "spill.jsonl")
    await writer.start()
    try:
        writer.submit(logged)
        await writer.drained()
    finally:
        await writer.stop()
    engine = create_engine(db_url)
    try:
        return await open_calls(session_factory(engine), "pbx1", now)
    finally:
        await engine.dispose()


async def test_open_calls_are_found_by_the_age_of_the_log_not_by_todays_date(
    db_url: str, tmp_path: Path
) -> None:
    """The window is measured back from the PBX's newest logged event: a service restarted
    weeks after its log stopped still finds the calls left open (its resync then closes
    them as data gaps), and a call that started longer ago than the window before the
    log's end is not read back."""
    talking = talking_call()
    recent = play(CallCentre("pbx1"), talking)
    old = play(CallCentre("pbx1"), _renamed(talking, "old-", OPEN_WITHIN + timedelta(hours=1)))
    linkedid = next(e.linkedid for e in talking if isinstance(e, ev.ChannelCreated))
    weeks_later = max(e.at for e in talking) + timedelta(days=40)
    found = await open_after(db_url, tmp_path, old + recent, weeks_later)
    assert {e.linkedid for e in found.events if e.linkedid} == {linkedid}
    assert len(found.events) == sum(1 for e in talking if e.linkedid == linkedid)
    assert found.last_event_at == max(e.at for e in talking)


async def test_a_stamp_from_a_wrong_clock_does_not_hide_the_open_calls(
    db_url: str, tmp_path: Path
) -> None:
    """One event stamped years ahead (a standby's menu before it learnt the PBX's clock)
    does not move the window past the calls left open: it is measured back from the
    PBX's time now when the log's newest stamp is ahead of it."""
    talking = talking_call()
    recent = play(CallCentre("pbx1"), talking)
    ahead = play(CallCentre("pbx1"), _renamed(talking, "ahead-", -timedelta(days=4400)))
    linkedid = next(e.linkedid for e in talking if isinstance(e, ev.ChannelCreated))
    soon = max(e.at for e in talking) + timedelta(minutes=5)
    found = await open_after(db_url, tmp_path, recent + ahead, soon)
    assert linkedid in {e.linkedid for e in found.events}
