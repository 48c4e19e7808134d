"""A restarted service reads back the calls left open, on both databases, after writing
the previous run's spill file: the log it replays must be whole."""

from __future__ import annotations

from pathlib import Path

from app.acd import events as ev
from app.acd.state import CallCentre
from app.main import build_runtime
from app.metrics import Metrics
from app.settings import load_settings
from app.store.writer import EventWriter
from tests.integration.test_writer import backend_for, table_counts
from tests.unit.test_restore import capture_events, play

TRANSFER_ID = "1795362472.15"  # 09_blindtransfer's Linkedid


async def test_a_restart_restores_the_open_call_from_the_spill_file_of_the_previous_run(
    db_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    # The previous run followed the transfer into its second queue, could not reach the
    # database and spilled everything, then stopped.
    events = capture_events("09_blindtransfer")
    second_join = [i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoined)][1]
    records = play(CallCentre("pbx1"), events[: second_join + 1])
    spill = tmp_path / "spill-pbx1.jsonl"
    previous = EventWriter(backend_for(db_url), Metrics(), spill)
    previous.spilling = True
    previous.submit(records)
    previous.spill.close()
    assert (await table_counts(db_url))["calls"] == 0

    settings = load_settings(
        database_url=db_url,
        spill_dir=str(tmp_path),
        agi_port=unused_tcp_port,
        caller_hash_key="test-caller-hash-key-0123456789",
    )
    rt = build_runtime(settings)
    started = []
    try:
        for component in rt.components:
            await component.start()
            started.append(component)
        call = rt.pipeline.centre.calls[TRANSFER_ID]
        assert call.ended_at is None and call.keys == "1"
        assert [(v.seq, v.queue, v.outcome) for v in call.visits] == [
            (1, "dagpenge", "answered"),
            (2, "kontanthjaelp", None),
        ]
        assert not spill.exists() or spill.stat().st_size == 0
        assert (await table_counts(db_url))["calls"] == 1
    finally:
        for component in reversed(started):
            await component.stop()
