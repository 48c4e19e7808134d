"""From events to state, records and metrics: the one path every producer feeds.

AMI frames (normalised here), IVR events (from FastAGI sessions, through ``Runtime.emit``)
and API events all go through ``Pipeline.on_event`` into the ``CallCentre``; after reads
from the AMI socket (at most every ``FLUSH_EVERY``) and soon after other events, ``flush``
hands what changed to the event writer and counts the metrics. Nothing here awaits on
the hot path: the writer's ``submit`` only enqueues, so the AMI socket is drained however
slow the database is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from app.acd import events as ev
from app.acd.model import Drained
from app.acd.resync import Snapshot
from app.acd.resync import resync as apply_resync
from app.acd.state import CallCentre
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, list_items
from app.clock import PbxClock
from app.components import Health, cancel_tasks
from app.metrics import Metrics
from app.store.restore import OpenCalls
from app.store.writer import EventWriter

log = logging.getLogger(__name__)

_EVENT_LABEL = re.compile(r"[A-Za-z0-9_]{1,40}")
_MAX_EVENT_LABELS = 300
_QUEUE_LABEL = re.compile(r"[a-z][a-z0-9_]{1,40}")
_MAX_QUEUE_LABELS = 100
_MAX_FAILURE_LOGS = 100  # distinct (event, error) kinds of untakeable frames logged
RESTORE_TIMEOUT = 10.0  # seconds the start waits for the log without progress (database down)
# After reads from the AMI socket, a flush at most this often: a burst arrives as many
# small reads (app/ami/link.py READ_SIZE), and each flush costs a fixed part (a record of
# every call touched, the metric labels, the live figures' hooks) besides its events.
FLUSH_EVERY = 0.01  # seconds


class Pipeline:
    """Component: also runs the ticker that lets time pass in the state machine."""

    name = "pipeline"
    required = False

    def __init__(
        self,
        centre: CallCentre,
        normaliser: Normaliser,
        metrics: Metrics,
        writer: EventWriter | None = None,
        *,
        clock: PbxClock | None = None,
        tick_interval: float = 1.0,
    ) -> None:
        self.centre = centre
        self.normaliser = normaliser
        self.metrics = metrics
        self.writer = writer
        # The runtime's PBX clock (app/clock.py), which this pipeline keeps set from the
        # Timestamp headers; ``clock`` is the host's clock it adds the skew to.
        self.pbx_clock = clock if clock is not None else PbxClock()
        self.clock = self.pbx_clock.host
        self.tick_interval = tick_interval
        self._flush_scheduled = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0  # time.monotonic() of the last flush
        self._event_labels: set[str] = set()
        self._failures: set[tuple[str, str]] = set()  # (event, error) already logged
        self._ticker: asyncio.Task[None] | None = None
        self._frame_counts: dict[str, int] = {}
        self._last_event: ev.DomainEvent | None = None
        self._last_received: datetime | None = None
        self.listeners: list[Callable[[ev.DomainEvent], None]] = []  # after the state moved
        # Called with every drain() in flush(), after the writer got its records; each must
        # return at once (the live figures count the decided visits here).
        self.drain_hooks: list[Callable[[Drained], None]] = []
        self._queue_names: frozenset[str] | None = None  # of ``_names_of``
        self._names_of: object = None  # the catalogue they were read from
        self._queue_labels: set[str] = set()
        # Reads back the calls the previous process left open (app/store/restore.py), at
        # start: before the AMI link, whose events would otherwise start them afresh.
        self.restore_from: Callable[[datetime], Awaitable[OpenCalls]] | None = None

    @property
    def skew(self) -> timedelta:
        """PBX clock minus ours (from Timestamp headers): the state machine runs on PBX
        time, so the ticker must too, or wrap-ups and stale-call sweeps fire early/late."""
        return self.pbx_clock.skew

    @skew.setter
    def skew(self, value: timedelta) -> None:
        self.pbx_clock.skew = value

    def pbx_now(self) -> datetime:
        """The PBX's time now (app/clock.py)."""
        return self.pbx_clock.now()

    # ---- producers ---------------------------------------------------------------------

    def on_ami_frame(self, frame: AmiFrame, received: datetime) -> None:
        # Per-event metric updates are batched: label lookups cost as much as normalising.
        counts = self._frame_counts
        counts[frame.name] = counts.get(frame.name, 0) + 1
        try:
            event = self.normaliser.normalise(frame, received)
            if event is not None:
                self._last_event = event
                self._last_received = received
                self._apply(event, received)
        except Exception as exc:
            # One frame the service cannot take must not cost the rest: raised into the
            # protocol it would close the link and drop what the read still held. Counted
            # and logged by event name and error type only (a message may quote a value,
            # and a value may be a caller's number).
            self.metrics.ami_malformed.inc()
            what = (self._label(frame.name), type(exc).__name__)
            if what not in self._failures and len(self._failures) < _MAX_FAILURE_LOGS:
                self._failures.add(what)  # logged once each: a PBX repeating it floods none
                log.warning("AMI %s frame could not be taken (%s); skipped", *what)

    def on_event(self, event: ev.DomainEvent) -> None:
        """For producers outside the AMI reader (IVR sessions, the API)."""
        self._apply(event, self.clock() + self.skew)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            with contextlib.suppress(RuntimeError):  # no loop: the caller flushes
                asyncio.get_running_loop().call_soon(self.flush)

    def after_read(self) -> None:
        """After a read from the AMI socket: flush now, or, when the last flush was under
        ``FLUSH_EVERY`` ago, once when that has passed (a burst of reads is flushed every
        ``FLUSH_EVERY``, a quiet line at once)."""
        if self._flush_timer is not None:
            return  # one is due already
        wait = self._last_flush + FLUSH_EVERY - time.monotonic()
        if wait <= 0:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test feeding frames by hand): at once
            self.flush()
            return
        self._flush_timer = loop.call_later(wait, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_timer = None
        self.flush()

    def _apply(self, event: ev.DomainEvent, received: datetime) -> None:
        self.centre.apply(event, received)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("pipeline listener failed on %s", event.kind)

    def _label(self, name: str) -> str:
        """Event names as metric labels: bounded, whatever the PBX sends."""
        if name in self._event_labels:
            return name
        if len(self._event_labels) < _MAX_EVENT_LABELS and _EVENT_LABEL.fullmatch(name):
            self._event_labels.add(name)
            return name
        return "other"

    def queue_label(self, queue: str) -> str:
        """Queue names as metric labels: the catalogue's (the running one: a queue added by
        a reload is labelled), else a bounded set; "other"."""
        catalogue = self.centre.catalogue
        if catalogue is not self._names_of:
            self._names_of = catalogue
            self._queue_names = frozenset(catalogue.names) if catalogue is not None else None
        if self._queue_names is not None:
            return queue if queue in self._queue_names else "other"
        if queue in self._queue_labels:
            return queue
        if len(self._queue_labels) < _MAX_QUEUE_LABELS and _QUEUE_LABEL.fullmatch(queue):
            self._queue_labels.add(queue)
            return queue
        return "other"

    def count_skipped(self, skipped: dict[bytes, int]) -> None:
        """Events the parser dropped by name still count as received."""
        for raw_name, count in skipped.items():
            self.metrics.ami_events.labels(self._label(raw_name.decode("ascii", "replace"))).inc(
                count
            )

    # ---- consumers ---------------------------------------------------------------------

    def flush(self) -> None:
        self._flush_scheduled = False
        self._last_flush = time.monotonic()
        if self._frame_counts:
            for name, count in self._frame_counts.items():
                self.metrics.ami_events.labels(self._label(name)).inc(count)
            self._frame_counts = {}
        last, received = self._last_event, self._last_received
        if last is not None and received is not None:
            # One lag sample per flush: the newest event's.
            self.skew = last.at - received
            lag = -self.skew.total_seconds()
            if lag >= 0:
                self.metrics.event_lag.observe(lag)
            self.metrics.ami_last_event_timestamp.set(last.at.timestamp())
            self._last_event = None
        drained = self.centre.drain()
        if self.writer is not None:
            self.writer.submit(drained.records)
        m = self.metrics
        for visit in drained.decided:
            queue = self.queue_label(visit.queue)
            m.calls.labels(queue, visit.outcome or "unknown").inc()
            wait = visit.wait_seconds
            if wait is not None:
                m.wait_seconds.labels(queue).observe(wait)
        for visit in drained.talked:
            talk = visit.talk_seconds
            if talk is not None:
                m.talk_seconds.labels(self.queue_label(visit.queue)).observe(talk)
        for call in drained.calls_ended:
            if not call.visits:
                m.calls.labels("none", call.outcome or "unknown").inc()
        for hook in self.drain_hooks:
            try:
                hook(drained)
            except Exception:
                log.exception("drain hook failed")

    async def start(self) -> None:
        if self.restore_from is not None:
            await self._restore(self.restore_from)
        self._ticker = asyncio.create_task(self._tick_loop(), name="acd-tick")

    async def stop(self) -> None:
        await cancel_tasks(self._ticker)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.flush()

    async def check(self) -> Health:
        centre = self.centre
        live = sum(1 for c in centre.calls.values() if c.ended_at is None)
        return Health(True, "up", {"live_calls": live, "members": len(centre.members)})

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.centre.tick(self.clock() + self.skew)
                self.flush()
            except Exception:
                log.exception("tick failed")

    # ---- the AMI link's life -----------------------------------------------------------

    def on_link_lost(self, at: datetime) -> None:
        self.centre.link_lost(at + self.skew)
        self.flush()

    async def resync(self, action: Callable[..., Any]) -> int:
        """Ask the PBX what is going on now and rebuild the live picture from it."""
        # Logged in again: what is heard of from here on is newer than the answers.
        self.centre.link_up()
        status = await action({"Action": "QueueStatus"}, as_list=True)
        channels = await action({"Action": "CoreShowChannels"}, as_list=True)
        # The answers' waits and durations count to when the PBX sent them: now, on the
        # PBX's clock as the newest events set it.
        self.flush()
        at = self.clock() + self.skew
        snapshot = build_snapshot(self.normaliser, [*list_items(status), *list_items(channels)], at)
        closed = apply_resync(self.centre, snapshot, at)
        self.flush()
        log.info(
            "AMI resync: %d channels, %d waiting, %d members; %d calls closed as data_gap",
            len(snapshot.channels),
            len(snapshot.entries),
            len(snapshot.members),
            closed,
        )
        return closed

    async def _restore(self, source: Callable[[datetime], Awaitable[OpenCalls]]) -> None:
        try:
            if self.writer is not None and self.writer.spill.pending:
                # The previous run's spill file first: the log read back must be whole
                # (however long it is, while the writer gets on with it).
                await self.writer.caught_up(stall=RESTORE_TIMEOUT)
            found = await asyncio.wait_for(source(self.clock() + self.skew), RESTORE_TIMEOUT)
        except Exception as exc:  # the database down: the PBX's view alone, as before
            log.warning(
                "could not read the calls left open from the log (%s); calls still up are "
                "followed from the PBX's view alone",
                exc,
            )
            return
        self.flush()  # restore() drops what the replay produces; hand the rest on first
        restored = self.centre.restore(found.events, found.last_event_at, found.open_gap_from)
        log.info(
            "restored %d calls left open by the previous run from %d logged events",
            restored,
            len(found.events),
        )


def build_snapshot(normaliser: Normaliser, frames: Iterable[AmiFrame], at: datetime) -> Snapshot:
    """QueueStatus and CoreShowChannels list items, through the normaliser (the one
    mapping of a member's fields, events' and list items' alike) -> the resync's Snapshot."""
    items = (normaliser.list_item(frame, at) for frame in frames)
    return Snapshot.of(item for item in items if item is not None)
