"""The versioned live picture, its numbered updates and the clients that follow them.

One ``LiveStore`` per process holds the current snapshot (the board of ``app.acd.board``
plus its ``version``), a ring of the latest updates, and the stream subscribers.

- On the process that owns the AMI link, ``publish(board)`` turns each new board into a
  numbered update (what changed since the last version) and fans it out.
- On a reader replica, ``replace(snapshot)`` / ``apply(update)`` take what the owner
  mirrored to Redis; a gap in the numbers means "fetch the snapshot again".

Applying update ``n + 1`` to snapshot ``n`` gives snapshot ``n + 1`` exactly (tested), so
a client that follows the stream shows what ``GET /v1/queues`` shows for that version.

Versions start at the owner's start time in milliseconds and count up by one: a
newer owner's numbers are above an older one's (at most one version per tick), so a
``Last-Event-ID`` from before a restart is never mistaken for a current one.

Subscribers get pre-encoded SSE frames through bounded queues; one that falls
``client_queue`` frames behind is dropped (it reconnects and catches up by number)
and never slows anyone else down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app import jsoncodec

SECTIONS = ("queues", "agents", "calls", "tallies")
dumps = jsoncodec.dumps_bytes


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from board ``old`` to board ``new``: changed entries of each section
    (removed ones as ``null``) and every other top-level field that changed."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key in SECTIONS:
            before: dict[str, Any] = old.get(key) or {}
            changed = {k: v for k, v in value.items() if before.get(k) != v}
            changed.update({k: None for k in before if k not in value})
            if changed:
                out[key] = changed
        elif old.get(key) != value:
            out[key] = value
    return out


def apply_update(snapshot: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Snapshot ``n`` + update ``n + 1`` -> snapshot ``n + 1`` (a new dict)."""
    out = dict(snapshot)
    for key, value in update.items():
        if key == "published_at":
            continue
        if key in SECTIONS:
            section = dict(out.get(key) or {})
            for k, v in value.items():
                if v is None:
                    section.pop(k, None)
                else:
                    section[k] = v
            out[key] = section
        else:
            out[key] = value
    return out


def sse_frame(event: str, version: int, payload: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (version, event.encode(), payload)


class TooManyClients(Exception):
    pass


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[bytes]
    dropped: bool = False


@dataclass
class LiveStore:
    first_version: int = 1
    history: int = 300
    client_queue: int = 64
    max_clients: int = 500
    on_drop: Callable[[], None] | None = None
    # Called after each change of the snapshot (the centre's view follows its PBXs').
    listeners: list[Callable[[], None]] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    _board: dict[str, Any] | None = None
    _ring: deque[tuple[int, bytes]] = field(default_factory=deque)
    _subscribers: set[Subscriber] = field(default_factory=set)
    _cache: dict[str, bytes] = field(default_factory=dict)
    _cache_version: int = -1

    @property
    def version(self) -> int:
        return int(self.snapshot["version"]) if self.snapshot is not None else 0

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    # ---- the owner: boards in, numbered updates out ----------------------------------

    def publish(self, board: dict[str, Any], published_at: float) -> dict[str, Any] | None:
        """Take a new board; returns the update it made (None if nothing changed)."""
        if self.snapshot is None or self._board is None:
            self._board = board
            self.snapshot = {**board, "version": self.first_version}
            self._ring.clear()
            self._broadcast(self._snapshot_frame())
            self._changed()
            return None
        changes = diff(self._board, board)
        if not changes:
            return None
        version = self.version + 1
        update = {"version": version, **changes, "published_at": published_at}
        self._board = board
        self.snapshot = {**board, "version": version}
        self._remember(version, update)
        self._changed()
        return update

    # ---- a reader: the owner's snapshots and updates in ------------------------------

    def replace(self, snapshot: dict[str, Any]) -> None:
        """Start over from a full snapshot (first sight, a gap, an owner restart)."""
        self.snapshot = snapshot
        self._board = {k: v for k, v in snapshot.items() if k != "version"}
        self._ring.clear()
        self._broadcast(self._snapshot_frame())
        self._changed()

    def apply(self, update: dict[str, Any]) -> bool:
        """Apply the owner's next update; False when it does not follow on (refetch)."""
        version = int(update.get("version", 0))
        if self.snapshot is None:
            return False
        if version <= self.version:
            return True  # seen already
        if version != self.version + 1:
            return False
        self.snapshot = apply_update(self.snapshot, update)
        self._board = {k: v for k, v in self.snapshot.items() if k != "version"}
        self._remember(version, update)
        self._changed()
        return True

    def clear(self) -> None:
        """The owner is gone (its mirror expired): nothing live to show."""
        self.snapshot = None
        self._board = None
        self._ring.clear()
        self._changed()

    # ---- cached documents --------------------------------------------------------------

    def cached(self, name: str, build: Callable[[dict[str, Any]], Any]) -> bytes | None:
        """``build(snapshot)`` encoded once per version."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        if self._cache_version != self.version:
            self._cache = {}
            self._cache_version = self.version
        body = self._cache.get(name)
        if body is None:
            body = self._cache[name] = dumps(build(snapshot))
        return body

    # ---- stream subscribers ------------------------------------------------------------

    def subscribe(self, last_event_id: int | None = None) -> tuple[Subscriber, list[bytes]]:
        """A new subscriber and the frames it gets first: the updates after
        ``last_event_id`` if they are all still in the ring, else the snapshot."""
        if len(self._subscribers) >= self.max_clients:
            raise TooManyClients(f"{self.max_clients} stream clients already")
        sub = Subscriber(asyncio.Queue(self.client_queue))
        self._subscribers.add(sub)
        if self.snapshot is None:
            return sub, []
        version = self.version
        if last_event_id is not None and last_event_id == version:
            return sub, []
        if last_event_id is not None and last_event_id < version and self._ring:
            oldest = self._ring[0][0]
            if oldest <= last_event_id + 1:
                return sub, [frame for v, frame in self._ring if v > last_event_id]
        return sub, [self._snapshot_frame()]

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def close_streams(self) -> None:
        """End every stream (the server is stopping: a stream would hold its shutdown);
        clients reconnect with their last id, to this process's successor or a replica."""
        for sub in list(self._subscribers):
            sub.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(b"")  # wake it; a full queue wakes it anyway
        self._subscribers.clear()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def _snapshot_frame(self) -> bytes:
        assert self.snapshot is not None
        return sse_frame("snapshot", self.version, dumps(self.snapshot))

    def _remember(self, version: int, update: dict[str, Any]) -> None:
        frame = sse_frame("update", version, dumps(update))
        self._ring.append((version, frame))
        while len(self._ring) > self.history:
            self._ring.popleft()
        self._broadcast(frame)

    def _broadcast(self, frame: bytes) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(frame)
            except asyncio.QueueFull:
                # Too slow: drop it rather than buffer without bound or wait for it.
                sub.dropped = True
                self._subscribers.discard(sub)
                if self.on_drop is not None:
                    self.on_drop()
