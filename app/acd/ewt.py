"""Expected wait: position-aware, from the agents staffed and free and recent handle times.

Pure: the caller passes the agents' state and the time. The model, per queue:

- Staffed agents are the queue's members who can take a call now or soon: available,
  ringing, on a call (of any queue) or in wrap-up; paused and unavailable ones are not.
- Each staffed agent is free for this queue's next caller in ``free_in`` seconds:
  0 when available or ringing (a ringing agent is about to take the caller at the head
  of the line); the rest of the wrap-up when in wrap-up; when talking, the expected rest
  of the talk (the recent mean talk time minus what has passed, but at least
  ``RESIDUAL_FLOOR`` of the mean: long calls tend to go on) plus the wrap-up.
- Callers are served in line order: the caller at position k gets the k-th agent to
  become free, where an agent who takes a caller is free again one handle time (recent
  mean talk + the queue's wrap-up) later. The wait adds the recent mean ring time
  (from the agent's phone ringing to the answer).
- A caller joining now is at position ``waiting + 1``.
- No staffed agent: unknown (``None``); the menu then offers nothing on the estimate.

Recent handle times are the last ``window`` talks and rings of the queue, with a prior
(``DEFAULT_TALK_SECONDS``, ``DEFAULT_RING_SECONDS``) that fades out over the first
``window`` samples, so a queue's first calls of the day do not swing the estimate.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_TALK_SECONDS = 240.0
DEFAULT_RING_SECONDS = 4.0
RESIDUAL_FLOOR = 0.3
WINDOW = 40


@dataclass
class _Recent:
    talks: deque[float]
    rings: deque[float]


@dataclass
class HandleTimes:
    """Recent talk and ring times per queue (fed as talks end and calls are answered)."""

    window: int = WINDOW
    _queues: dict[str, _Recent] = field(default_factory=dict)

    def _recent(self, queue: str) -> _Recent:
        r = self._queues.get(queue)
        if r is None:
            r = self._queues[queue] = _Recent(deque(maxlen=self.window), deque(maxlen=self.window))
        return r

    def add_talk(self, queue: str, seconds: float) -> None:
        self._recent(queue).talks.append(max(0.0, seconds))

    def add_ring(self, queue: str, seconds: float) -> None:
        self._recent(queue).rings.append(max(0.0, seconds))

    def _mean(self, values: deque[float], prior: float) -> float:
        # The prior weighs as (window - n) samples: gone once the window is full.
        n = len(values)
        return (sum(values) + prior * (self.window - n)) / self.window

    def talk(self, queue: str) -> float:
        r = self._queues.get(queue)
        return self._mean(r.talks, DEFAULT_TALK_SECONDS) if r else DEFAULT_TALK_SECONDS

    def ring(self, queue: str) -> float:
        r = self._queues.get(queue)
        return self._mean(r.rings, DEFAULT_RING_SECONDS) if r else DEFAULT_RING_SECONDS


def residual_talk(mean_talk: float, elapsed: float) -> float:
    """Expected rest of a talk that has lasted ``elapsed`` seconds."""
    return max(mean_talk - elapsed, RESIDUAL_FLOOR * mean_talk)


def position_waits(
    free_in: Sequence[float], handle: float, positions: int, ring: float
) -> list[float | None]:
    """Expected wait from now of the callers at positions 1..``positions``.

    ``free_in``: per staffed agent, seconds until free; ``handle``: seconds an agent is
    busy per caller (talk + wrap-up); ``ring``: seconds from ring to answer.
    """
    if positions <= 0:
        return []
    if not free_in:
        return [None] * positions
    heap = [max(0.0, f) for f in free_in]
    heapq.heapify(heap)
    out: list[float | None] = []
    for _ in range(positions):
        t = heapq.heappop(heap)
        out.append(round(t + ring, 1))
        heapq.heappush(heap, t + max(handle, 1.0))
    return out
