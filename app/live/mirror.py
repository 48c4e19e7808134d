"""The live picture in Redis, for API replicas that do not own the AMI link.

Keys (``<pbx>`` is ``ACD_PBX_ID``):
- ``acd:live:<pbx>:snapshot``: the whole current snapshot (JSON), with a TTL of a few
  ticks, so a dead owner's picture disappears instead of showing stale numbers;
- channel ``acd:live:<pbx>:updates``: every numbered update, as published.

The owner (``RedisMirror``) writes one pipeline per tick: SET the snapshot, PUBLISH the
updates since the last write. Writing never blocks the tick or call handling: at most
one write is in flight; while it is, newer snapshots replace the pending one (updates
beyond a few are dropped, and readers see the gap and fetch the snapshot). A failed
write is retried on the next tick; the first write after an outage puts the whole
snapshot back, which is all the mirror is, so it is rebuilt at once.

A replica (``RedisReader``) subscribes to the updates, fetches the snapshot on start,
on any gap in the numbers and every few seconds, and serves its ``LiveStore`` from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio import Redis

from app.components import Health, cancel_tasks
from app.live.hub import SnapshotSink
from app.live.store import LiveStore
from app.metrics import Metrics

log = logging.getLogger(__name__)

MAX_PENDING_UPDATES = 30


def snapshot_key(pbx: str) -> str:
    return f"acd:live:{pbx}:snapshot"


def updates_channel(pbx: str) -> str:
    return f"acd:live:{pbx}:updates"


class RedisMirror(SnapshotSink):
    """Owner side: one pipeline per tick into Redis, never waited for."""

    name = "live-mirror"
    required = False  # a Redis outage must not make the call-handling process unready

    def __init__(
        self, client: Redis, pbx: str, metrics: Metrics, *, ttl: float = 10.0, timeout: float = 2.0
    ) -> None:
        self.client = client
        self.key = snapshot_key(pbx)
        self.channel = updates_channel(pbx)
        self.metrics = metrics
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.timeout = timeout
        self._snapshot: bytes | None = None
        self._updates: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._healthy: bool | None = None  # None: not tried yet
        self.writes = 0

    def push(self, snapshot: bytes, update: bytes | None) -> None:
        self._snapshot = snapshot
        if update is not None:
            self._updates.append(update)
            if len(self._updates) > MAX_PENDING_UPDATES:
                del self._updates[: len(self._updates) - MAX_PENDING_UPDATES]
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no loop: nothing to do
                self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        # What was pushed while a write was in flight goes in the next round, at once.
        while self._snapshot is not None:
            snapshot, updates = self._snapshot, self._updates
            self._snapshot, self._updates = None, []
            if not await self._write_once(snapshot, updates):
                return  # the next tick's push tries again

    async def _write_once(self, snapshot: bytes, updates: list[bytes]) -> bool:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.key, snapshot, px=self.ttl_ms)
            for update in updates:
                pipe.publish(self.channel, update)
            await asyncio.wait_for(pipe.execute(), self.timeout)
        except Exception as exc:
            self.metrics.live_mirror_errors.inc()
            self.metrics.live_mirror_up.set(0)
            if self._healthy is not False:
                log.warning("live mirror: Redis write failed (%s); retrying every tick", exc)
            self._healthy = False
            return False
        self.writes += 1
        self.metrics.live_mirror_up.set(1)
        if self._healthy is False:
            log.info("live mirror: Redis is back; snapshot rebuilt")
        self._healthy = True
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), self.timeout)

    async def check(self) -> Health:
        state = {None: "starting", True: "up", False: "down"}[self._healthy]
        return Health(self._healthy is not False, state, {"writes": self.writes})


class RedisReader:
    """Replica side: follows the owner's mirror into this process's ``LiveStore``."""

    # Redis itself is required on a replica (RedisComponent); an owner that has not
    # published yet leaves the rest of the API (call records, ...) worth serving.
    required = False

    def __init__(
        self,
        client: Redis,
        pbx: str,
        store: LiveStore,
        *,
        refresh_every: float = 5.0,
        name: str = "live-reader",
    ) -> None:
        self.name = name  # /ready's part: one per PBX followed
        self.client = client
        self.key = snapshot_key(pbx)
        self.channel = updates_channel(pbx)
        self.store = store
        self.refresh_every = refresh_every
        self.connected = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-reader")

    async def stop(self) -> None:
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        if not self.connected:
            return Health(False, "down")
        if self.store.snapshot is None:
            return Health(False, "no_owner", {"detail": "no live snapshot in Redis"})
        return Health(True, "up", {"version": self.store.version})

    async def refresh(self) -> None:
        raw = await self.client.get(self.key)
        if raw is None:
            self.store.clear()
            return
        snapshot: dict[str, Any] = json.loads(raw)
        if snapshot.get("version") != self.store.version:
            self.store.replace(snapshot)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.2
        lost_at: float | None = None
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.refresh()
                self.connected = True
                lost_at = None
                delay = 0.2
                checked = loop.time()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        update = json.loads(message["data"])
                        if not self.store.apply(update):
                            await self.refresh()
                            checked = loop.time()
                    if loop.time() - checked >= self.refresh_every:
                        await self.refresh()
                        checked = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning("live reader: Redis lost (%s); reconnecting", exc)
                self.connected = False
                lost_at = lost_at or loop.time()
                if loop.time() - lost_at > 2 * self.refresh_every:
                    self.store.clear()  # stale numbers are worse than none
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
