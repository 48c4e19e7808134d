"""The live picture on the process that owns the AMI link.

``LiveHub`` is fed what each ``drain()`` of the state machine decided (through the
pipeline's drain hooks, synchronously, O(visits)), keeps today's tallies and recent
handle times, and once per ``interval`` builds the board at the PBX's time, publishes it
to the ``LiveStore`` (REST, stream, Prometheus) and hands it to the Redis mirror.

"Today" survives a restart: when the hub first needs a day (at start, or when the PBX
clock passes midnight) it loads that day's decided visits (and calls, for the centre)
from the database and counts them; counting is idempotent per visit (and call), so what
the live path has already seen is not counted twice. Until the load succeeds (it is
retried) ``history_loaded`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from app.acd.board import QueueInfo, build_board, queue_estimate, wrapups
from app.acd.estimates import QueueEstimate
from app.acd.ewt import HandleTimes
from app.acd.kpi import CENTRE, CountedVisit, DayBook, Goals, KpiConfig
from app.acd.model import Drained
from app.acd.replay import take
from app.acd.state import CallCentre
from app.components import Health, cancel_tasks
from app.live.store import LiveStore, dumps
from app.metrics import Metrics

log = logging.getLogger(__name__)

DayLoader = Callable[[date], Awaitable[Sequence[CountedVisit]]]


class SnapshotSink:
    """Where each published snapshot goes besides this process (the Redis mirror)."""

    def push(self, snapshot: bytes, update: bytes | None) -> None:
        raise NotImplementedError


class LiveHub:
    name = "live"
    required = False

    def __init__(
        self,
        centre: CallCentre,
        clock: Callable[[], datetime],
        store: LiveStore,
        book: DayBook,
        catalogue: Callable[[], Sequence[QueueInfo]],
        metrics: Metrics,
        *,
        interval: float = 1.0,
        load_day: DayLoader | None = None,
        sink: SnapshotSink | None = None,
        queue_label: Callable[[str], str] = lambda q: q,
        goals: Callable[[date], Goals | None] = lambda _day: None,
    ) -> None:
        self.centre = centre
        self.clock = clock
        self.store = store
        self.book = book
        self.config: KpiConfig = book.config
        self.queues = catalogue  # the running queues (a reload adds or removes some)
        self.metrics = metrics
        self.interval = interval
        self.load_day = load_day
        self.sink = sink
        self.queue_label = queue_label
        self.goals = goals
        self.handle = HandleTimes()
        self._infos: Sequence[QueueInfo] | None = None  # what the two below were made of
        self._wrapup_of = wrapups(())
        self._known: set[str] = set()
        self._loaded: set[date] = set()
        self._loading: dict[date, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        # Add to each board before it is published (the intraday projection).
        self.decorators: list[Callable[[dict[str, Any], datetime], None]] = []

    # ---- fed by the pipeline (synchronous, on the AMI reader's path) -------------------

    def on_drained(self, drained: Drained) -> None:
        for visit in take(self.book, drained, self.handle):
            if visit.outcome == "answered" and visit.estimated_wait_seconds is not None:
                if visit.wait_seconds is None:
                    continue
                error = visit.wait_seconds - visit.estimated_wait_seconds
                label = self.queue_label(visit.queue)
                self.metrics.ewt_error.labels(label).observe(error)
                self.metrics.ewt_abs_error.labels(label).observe(abs(error))

    def _catalogue(self) -> Sequence[QueueInfo]:
        """The running queues; their wrap-ups and names are re-read when they changed."""
        infos = self.queues()
        if infos is not self._infos:
            self._infos = infos
            self._wrapup_of = wrapups(infos)
            self._known = {q.name for q in infos}
        return infos

    def estimate(self, queue: str) -> QueueEstimate | None:
        """For the menu: the queue as a caller joining now would find it."""
        self._catalogue()
        if self._known and queue not in self._known:
            return None
        return queue_estimate(self.centre, self.handle, self.clock(), queue, self._wrapup_of)

    @property
    def history_loaded(self) -> bool:
        return self.book.day_of(self.clock()) in self._loaded or self.load_day is None

    # ---- the tick --------------------------------------------------------------------

    def refresh(self) -> dict[str, object] | None:
        """Build and publish the board now; returns the update (None: nothing changed)."""
        now = self.clock()
        day = self.book.day_of(now)
        self._ensure_loaded(day)
        self.book.prune(day)
        board = build_board(
            self.centre,
            self.book,
            self.handle,
            now,
            self._catalogue(),
            config=self.config,
            day=day,
            goals=self.goals(day),
        )
        board["history_loaded"] = day in self._loaded or self.load_day is None
        for decorate in self.decorators:
            try:
                decorate(board, now)
            except Exception:
                log.exception("a live board decorator failed")
        update = self.store.publish(board, time.time())
        if self.sink is not None and self.store.snapshot is not None:
            self.sink.push(dumps(self.store.snapshot), dumps(update) if update else None)
        return update

    async def start(self) -> None:
        self.refresh()
        self._task = asyncio.create_task(self._loop(), name="live-hub")

    async def stop(self) -> None:
        await cancel_tasks(self._task, *self._loading.values())

    async def check(self) -> Health:
        return Health(
            True,
            "up",
            {
                "version": self.store.version,
                "history_loaded": self.history_loaded,
                "stream_clients": self.store.clients,
            },
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.refresh()
            except Exception:
                log.exception("live refresh failed")

    # ---- today's history from the database -------------------------------------------

    def _ensure_loaded(self, day: date) -> None:
        if self.load_day is None or day in self._loaded or day in self._loading:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._load(day), name=f"live-load-{day}")
        self._loading[day] = task

    async def _load(self, day: date) -> None:
        assert self.load_day is not None
        delay = 0.5
        try:
            while True:
                try:
                    visits = await self.load_day(day)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("loading %s from the database failed (%s); retrying", day, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 15.0)
                    if self.book.day_of(self.clock()) != day:
                        return  # that day is over: its figures are no longer shown
            counted = 0
            for v in visits:
                whole_call = v.queue == CENTRE  # the centre's: no queue's handle times
                if self.book.decided(v) and not whole_call:
                    counted += 1
                    if v.outcome == "answered" and v.ring_seconds:
                        self.handle.add_ring(v.queue, v.ring_seconds)
                if self.book.talked(v) and v.talk_seconds is not None and not whole_call:
                    self.handle.add_talk(v.queue, v.talk_seconds)
            self._loaded.add(day)
            log.info("today (%s) rebuilt from the database: %d visits", day, counted)
        finally:
            self._loading.pop(day, None)
