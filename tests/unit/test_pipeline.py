"""The pipeline: flushes after AMI reads (at once on a quiet line, every FLUSH_EVERY in a
burst), and a frame it cannot take skipped without stopping the rest."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app import pipeline as pl
from app.acd.model import Drained
from app.acd.state import CallCentre
from app.ami import normalise
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser
from app.metrics import Metrics
from app.privacy import CallerPrivacy
from tests.ami_replay import load_capture, stream


def _frames() -> list[AmiFrame]:
    data = stream(load_capture("01_answered"), timestamps=True)
    return [f for f in AmiParser().feed(data) if isinstance(f, AmiFrame)]


def _pipeline() -> tuple[pl.Pipeline, list[Drained]]:
    p = pl.Pipeline(CallCentre("pbx1"), Normaliser("pbx1", CallerPrivacy(b"k" * 32)), Metrics())
    flushed: list[Drained] = []
    p.drain_hooks.append(flushed.append)
    return p, flushed


async def test_a_burst_of_reads_is_flushed_once_per_interval_and_nothing_is_lost() -> None:
    p, flushed = _pipeline()
    frames = _frames()
    received = p.clock()
    p.on_ami_frame(frames[0], received)
    p.after_read()  # the line was quiet: at once
    assert len(flushed) == 1 and len(flushed[0].records) == 1
    for frame in frames[1:]:  # the rest, one read each, within the interval
        p.on_ami_frame(frame, received)
        p.after_read()
    assert len(flushed) == 1  # not yet: one flush is due at the interval's end
    await asyncio.sleep(pl.FLUSH_EVERY * 3)
    assert len(flushed) == 2
    records = [r for d in flushed for r in d.records if type(r).__name__ == "EventRecord"]
    assert len(records) == len([f for f in frames if p.normaliser.normalise(f, received)])
    ended = [c for d in flushed for c in d.calls_ended]
    assert [c.outcome for c in ended] == ["answered"]  # the call went through whole
    # Quiet again: the next read is flushed at once.
    p.after_read()
    assert len(flushed) == 3


async def test_stop_flushes_what_a_pending_flush_would_have() -> None:
    p, flushed = _pipeline()
    frames = _frames()
    p.after_read()
    p.on_ami_frame(frames[0], p.clock())
    p.after_read()  # within the interval: deferred
    await p.stop()
    assert sum(len(d.records) for d in flushed) == 1
    await asyncio.sleep(pl.FLUSH_EVERY * 3)  # the cancelled timer does not flush again
    assert len(flushed) == 2


def test_a_frame_that_cannot_be_taken_is_counted_and_skipped_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    p, flushed = _pipeline()
    frames = _frames()
    broken = next(f for f in frames if f.name == "Newchannel")

    def explode(frame: AmiFrame, ctx: object) -> None:
        raise ValueError(f"cannot take {frame.get('CallerIDNum')}")

    monkeypatch.setitem(normalise.HANDLERS, "Newchannel", explode)
    received = p.clock()
    with caplog.at_level(logging.WARNING):
        for frame in frames:
            p.on_ami_frame(frame, received)
    p.flush()
    newchannels = sum(1 for f in frames if f.name == "Newchannel")
    assert p.metrics.ami_malformed._value.get() == newchannels >= 1
    taken = [r for d in flushed for r in d.records if type(r).__name__ == "EventRecord"]
    monkeypatch.undo()
    expected = [f for f in frames if f.name != "Newchannel"]
    n = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    assert len(taken) == len([f for f in expected if n.normalise(f, received)]) > 10
    assert "Newchannel frame could not be taken (ValueError)" in caplog.text
    monkeypatch.setitem(normalise.HANDLERS, "Newchannel", explode)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # the same failure again: counted, not logged again
            p.on_ami_frame(broken, received)
    assert p.metrics.ami_malformed._value.get() == newchannels + 3
    assert caplog.text.count("could not be taken") == 1
    assert broken.get("CallerIDNum") not in caplog.text  # no value in the log
