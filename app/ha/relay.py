"""The menu on every replica: a FastAGI session may run on any process, but the call's
state and its log belong to the PBX's owner. A standby hands each domain event it makes
(the menu's steps, a call registered through the API) to the owner through a Redis
stream; the owner reads it with a consumer group and feeds its pipeline, as if the event
had been made there.

Exactly once into the log: an entry is acknowledged (and deleted) once the owner's
pipeline has taken it; a new owner first takes over the entries its predecessor read but
did not acknowledge (``XAUTOCLAIM``), and goes on taking any another consumer has left
pending for ``abandoned_after`` seconds. An owner that is not sure of its lease (by its
own clock: after a pause, through a database outage) neither takes entries nor feeds its
own events into its pipeline: they go into the stream, for whichever process owns the
PBX (itself again, once its lease is confirmed). Events carry stable keys
(``agi:<uniqueid>:...``), and the log stores an event once per key, so an entry read
twice across a handover is logged once.

In order: a new owner's own events (its FastAGI sessions go on through the takeover) wait
in a ``Handoff`` until the entries relayed before them are in: what it relayed itself
while a standby is sent first, then the stream's backlog is read, then the held events
are delivered. Otherwise a caller's last key, pressed just after the takeover, would be
logged before the keys pressed just before it.

The survey's every-n-th caller is counted in Redis too (``INCR``), so that five callers
spread over three replicas still give one survey, not none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app import jsoncodec
from app.acd import events as ev
from app.clock import PbxClock
from app.components import Health, cancel_tasks
from app.metrics import Metrics
from app.privacy import Caller

log = logging.getLogger(__name__)

GROUP = "owner"
MAX_STREAM = 100_000  # entries kept at most (an owner away that long: the oldest go)
QUEUE = 10_000  # events waiting to be sent, per process
BACKLOG_SECONDS = 3.0  # a new owner reads the backlog for at most this long at start
SETTLE_SECONDS = 1.0  # ... after waiting at most this long for what it relayed itself
ABANDONED_SECONDS = 5.0  # entries pending this long with another consumer are taken over


def stream_key(pbx: str) -> str:
    return f"acd:ha:{pbx}:relay"


def survey_key(pbx: str, flow: str) -> str:
    return f"acd:ha:{pbx}:survey:{flow}"


def _event_classes() -> dict[str, type[ev.DomainEvent]]:
    """The event classes by name, as app/acd/events.py defines them (``__subclasses__``
    would also list the classes ``dataclass(slots=True)`` replaced)."""
    return {
        name: obj
        for name, obj in vars(ev).items()
        if isinstance(obj, type) and issubclass(obj, ev.DomainEvent)
    }


_CLASSES = _event_classes()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, Caller):
        return {"$c": [value.hash, value.display]}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _back(value: Any) -> Any:
    if isinstance(value, dict):
        if "$t" in value and len(value) == 1:
            return datetime.fromisoformat(value["$t"])
        if "$c" in value and len(value) == 1:
            return Caller(*value["$c"])
        return {k: _back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_back(v) for v in value]
    return value


def encode(event: ev.DomainEvent) -> bytes:
    """An event as the stream carries it (every field, the sealed number too: it is
    encrypted, and Redis is inside the service's trust boundary as the database is)."""
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return jsoncodec.dumps_bytes({"type": type(event).__name__, "fields": fields})


def decode(data: bytes) -> ev.DomainEvent:
    body = jsoncodec.loads(data)
    cls = _CLASSES.get(body.get("type"))
    if cls is None:
        raise ValueError(f"unknown event type {body.get('type')!r}")
    fields = {k: _back(v) for k, v in body["fields"].items()}
    for f in dataclasses.fields(cls):
        if isinstance(fields.get(f.name), list):
            fields[f.name] = tuple(fields[f.name])
    return cls(**fields)


class RelaySender:
    """Component on every replica: ``publish`` from anywhere (never blocks), sent in the
    background. While Redis is away, up to ``QUEUE`` events wait; more are lost, counted
    (``acd_relayed_events_total{direction="lost"}``) and logged."""

    name = "relay"
    required = False

    def __init__(self, client: Redis, pbx: str, metrics: Metrics) -> None:
        self.client = client
        self.key = stream_key(pbx)
        self.metrics = metrics
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.lost = 0
        self.last_error: str | None = None

    def publish(self, event: ev.DomainEvent) -> None:
        try:
            self._queue.put_nowait(encode(event))
        except asyncio.QueueFull:
            self.lost += 1
            self.metrics.relayed_events.labels("lost").inc()
            log.error("relay to the owner: queue full, event %s lost", event.kind)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acd-relay-send")

    async def stop(self) -> None:
        # What is queued goes out first (a clean stop of a standby loses nothing).
        await self.drained(3)
        await cancel_tasks(self._task)

    async def drained(self, within: float) -> None:
        """Until every event published so far is in the stream (or ``within`` passes)."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def check(self) -> Health:
        detail: dict[str, Any] = {
            "queued": self._queue.qsize(),
            "sent": self.sent,
            "lost": self.lost,
        }
        if self.last_error:
            detail["last_error"] = self.last_error
        return Health(
            self.last_error is None, "up" if self.last_error is None else "retrying", detail
        )

    async def _run(self) -> None:
        while True:
            data = await self._queue.get()
            batch = [data]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    pipe = self.client.pipeline(transaction=False)
                    for item in batch:
                        pipe.xadd(self.key, {"e": item}, maxlen=MAX_STREAM, approximate=True)
                    await pipe.execute()
                    self.sent += len(batch)
                    self.metrics.relayed_events.labels("sent").inc(len(batch))
                    self.last_error = None
                    break
                except RedisError as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    log.warning("relay to the owner: Redis unreachable (%s); retrying", exc)
                    await asyncio.sleep(0.5)
            for _ in batch:
                self._queue.task_done()


class Handoff:
    """The owner's own events, held from the takeover until the relayed backlog is in
    (module doc). Closed (holding) until the relay receiver opens it; ``emit`` from
    anywhere, never blocks."""

    def __init__(self, deliver: Callable[[ev.DomainEvent], None]) -> None:
        self.deliver = deliver
        self._held: list[ev.DomainEvent] | None = []

    @property
    def holding(self) -> int | None:
        """Events held now; None once open."""
        return None if self._held is None else len(self._held)

    def emit(self, event: ev.DomainEvent) -> None:
        if self._held is None:
            self.deliver(event)
        else:
            self._held.append(event)

    def open(self) -> None:
        """The held events, in the order they came, then every later one at once."""
        held, self._held = self._held, None
        for event in held or ():
            self.deliver(event)

    def close(self) -> None:
        if self._held is None:
            self._held = []


class RelayReceiver:
    """Owner part: reads the stream and hands each event to ``deliver`` (the pipeline).
    With a ``handoff``, the owner's own events wait there until the backlog is read;
    ``settle`` (this process's sender's ``drained``) is awaited first, so that what it
    relayed as a standby is in the backlog."""

    name = "relay_receiver"
    required = False

    def __init__(
        self,
        client: Redis,
        pbx: str,
        consumer: str,
        deliver: Any,
        metrics: Metrics,
        *,
        block_ms: int = 500,
        handoff: Handoff | None = None,
        settle: Callable[[float], Awaitable[None]] | None = None,
        may_take: Callable[[], bool] | None = None,
        abandoned_after: float = ABANDONED_SECONDS,
    ) -> None:
        self.client = client
        self.key = stream_key(pbx)
        self.consumer = consumer
        self.deliver = deliver
        self.handoff = handoff
        self.settle = settle
        # False while this process's lease is in doubt (Ownership.may_act): entries it
        # has read then stay pending, for its successor or for itself once sure again.
        self.may_take = may_take
        self.abandoned_after = abandoned_after
        self._refused = False  # entries left pending for ourselves
        self._reclaimed_at = 0.0
        self.metrics = metrics
        self.block_ms = block_ms
        self.received = 0
        self.undecodable = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = False

    async def start(self) -> None:
        """The backlog first (what the replicas relayed while no process owned the PBX),
        before the AMI link starts and resyncs: a call whose menu events waited here and
        that ended meanwhile is then closed by the resync, not left open by events that
        arrive after it. Then the owner's own events held meanwhile (``handoff``)."""
        try:
            if self.settle is not None:
                await self.settle(SETTLE_SECONDS)
            await asyncio.wait_for(self._backlog(), BACKLOG_SECONDS)
            self._ready = True
        except Exception as exc:  # Redis away or slow: the loop goes on trying
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("relay: backlog not read at start (%s)", self.last_error)
        finally:
            if self.handoff is not None:
                self.handoff.open()  # in order when the backlog was read; at once if not
        self._task = asyncio.create_task(self._run(), name="acd-relay-receive")

    async def stop(self) -> None:
        await cancel_tasks(self._task)
        if self.handoff is not None:
            self.handoff.close()

    async def _backlog(self) -> None:
        await self._group()
        await self._claim_left()
        await self._read_all(">")

    async def _read_all(self, start: str) -> None:
        """Read and take until nothing is left: ``>`` the entries no consumer has read,
        ``0`` those read by this one and not acknowledged. Stops at a refusal (``_take``),
        which leaves the entries pending (a ``0`` read would return them again)."""
        while True:
            reply: Any = await self.client.xreadgroup(
                GROUP, self.consumer, {self.key: start}, count=500
            )
            entries = [e for _key, batch in reply or () for e in batch]
            if not entries:
                return
            await self._take(entries)
            if self._refused:
                return

    async def check(self) -> Health:
        detail: dict[str, Any] = {"received": self.received, "undecodable": self.undecodable}
        if self.last_error:
            detail["last_error"] = self.last_error
        ok = self.last_error is None
        return Health(ok, "up" if ok else "retrying", detail)

    async def _group(self) -> None:
        try:
            await self.client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _take(self, entries: Any) -> None:
        if not entries:
            return
        if self.may_take is not None and not self.may_take():
            self._refused = True  # left pending (module doc)
            return
        ids = []
        for entry_id, fields in entries:
            ids.append(entry_id)
            data = fields.get(b"e") if fields else None
            if data is None:
                continue
            try:
                event = decode(data)
            except Exception:
                self.undecodable += 1
                log.exception("relay: an entry that is not an event, dropped")
                continue
            self.deliver(event)
            self.received += 1
        if ids:
            self.metrics.relayed_events.labels("received").inc(len(ids))
            pipe = self.client.pipeline(transaction=False)
            pipe.xack(self.key, GROUP, *ids)
            pipe.xdel(self.key, *ids)
            await pipe.execute()

    async def _claim_left(self) -> None:
        """Entries a previous owner read and did not acknowledge: ours now."""
        start = "0-0"
        while True:
            reply = await self.client.xautoclaim(
                self.key, GROUP, self.consumer, min_idle_time=0, start_id=start, count=500
            )
            start, entries = reply[0], reply[1]
            await self._take(entries)
            if start in (b"0-0", "0-0"):
                return

    async def reclaim_abandoned(self) -> None:
        """Entries another consumer (a former owner: paused, deposed) read and left
        pending for ``abandoned_after`` seconds: ours now."""
        idle = int(self.abandoned_after * 1000)
        pending: Any = await self.client.xpending_range(
            self.key, GROUP, min="-", max="+", count=500, idle=idle
        )
        mine = (self.consumer, self.consumer.encode())
        ids = [p["message_id"] for p in pending if p["consumer"] not in mine]
        if ids:
            log.warning("relay: %d entries left pending by a former owner taken over", len(ids))
            await self._take(await self.client.xclaim(self.key, GROUP, self.consumer, idle, ids))

    async def _run(self) -> None:
        while True:
            try:
                if not self._ready:
                    await self._group()
                    await self._claim_left()
                    self._ready = True
                if self.may_take is not None and not self.may_take():
                    await asyncio.sleep(0.2)
                    continue
                if self._refused:
                    # What it read while unsure of its lease, now that it is sure.
                    self._refused = False
                    await self._read_all("0")
                now = time.monotonic()
                if now - self._reclaimed_at >= self.abandoned_after:
                    self._reclaimed_at = now
                    await self.reclaim_abandoned()
                reply: Any = await self.client.xreadgroup(
                    GROUP, self.consumer, {self.key: ">"}, count=500, block=self.block_ms
                )
                for _key, entries in reply or ():
                    await self._take(entries)
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("relay from the replicas: Redis unreachable (%s)", exc)
                self._ready = False
                await asyncio.sleep(0.5)


class SharedCounter:
    """The survey's every-n-th caller, counted across replicas (Redis ``INCR``)."""

    def __init__(self, client: Redis, pbx: str) -> None:
        self.client = client
        self.pbx = pbx

    async def __call__(self, flow: str) -> int:
        return int(await self.client.incr(survey_key(self.pbx, flow)))


def skew_key(pbx: str) -> str:
    return f"acd:ha:{pbx}:skew"


class ClockShare:
    """The PBX's clock on every replica: only the owner hears the PBX's timestamps (AMI),
    so it publishes the skew it measured (PBX time minus its own, app/clock.py) and the
    standbys follow it, so that a menu run on a standby stamps its events, and judges
    opening hours, on the PBX's time (a simulated PBX runs days away from the host's
    clock; a real one by NTP's error)."""

    def __init__(self, client: Redis, pbx: str, clock: PbxClock) -> None:
        self.client = client
        self.key = skew_key(pbx)
        self.clock = clock

    async def publish(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.set(self.key, repr(self.clock.skew.total_seconds()), ex=3600)

    async def follow(self) -> None:
        with contextlib.suppress(RedisError, OSError, ValueError):
            raw = await self.client.get(self.key)
            if raw is not None:
                self.clock.skew = timedelta(seconds=float(raw))
