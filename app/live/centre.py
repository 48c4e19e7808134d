"""The whole centre across its PBXs: one live picture made of each PBX's.

A centre with several Asterisk boxes (``ACD_PBXS``) has one owner per PBX, each building
its PBX's board and mirroring it to Redis (app/live/mirror.py). Every process follows
every PBX's picture (its own, and the others' through Redis) and ``CentreView`` adds them
up into one board of the same shape, published into the process's main ``LiveStore``: so
``/v1/queues``, ``/v1/stream``, the wallboard and the Prometheus gauges show the centre,
and ``?pbx=`` (the per-PBX stores) shows one PBX.

How the figures add up (``merge_boards``, pure):
- today's figures are made again from the sum of the PBXs' tallies (counts and
  millisecond sums, app/acd/kpi.py), never averaged from rates: a call goes through one
  PBX, so the sums are exactly those of one board fed every call;
- waiting and agents by state add up; the longest wait is the longest anywhere; the
  expected wait of a queue is the longest of the PBXs' (a caller joining now, whichever
  PBX the call reaches, waits about that long at most);
- agents and live calls are keyed ``<pbx>/<key>`` (an interface or a linkedid may exist
  on two PBXs) and carry their ``pbx``;
- a PBX whose picture is missing (no owner, its mirror expired) is left out and named in
  ``missing_pbxs``: the figures say they are partial rather than look whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.acd.kpi import CENTRE, Tally, figures
from app.components import Health, cancel_tasks
from app.live.store import LiveStore

log = logging.getLogger(__name__)

# Fields of a queue's agents that are not counts.
_NOT_COUNTS = ("paused_reasons",)


def _tally(board: Mapping[str, Any], name: str) -> Tally:
    data = board["tallies"].get(name)
    return Tally.from_dict(data) if data else Tally()


def _max_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _add_counts(views: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reasons: dict[str, int] = {}
    for view in views:
        for key, value in view.items():
            if key in _NOT_COUNTS:
                continue
            out[key] = out.get(key, 0) + int(value)
        for reason, n in (view.get("paused_reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    if any("paused_reasons" in v for v in views):
        out["paused_reasons"] = dict(sorted(reasons.items()))
    return out


Board = Mapping[str, Any]


def _merge_queue(
    name: str, parts: Sequence[tuple[Board, Mapping[str, Any]]]
) -> tuple[dict[str, Any], Tally]:
    """One queue from its view on each PBX that has it ((board, queue view) pairs), and
    its summed tally."""
    first = parts[0][1]
    waiting = [q for _, q in parts if q["waiting"]]
    total = Tally()
    for board, _ in parts:
        total.add(_tally(board, name))
    return {
        **first,
        "waiting": sum(int(q["waiting"]) for _, q in parts),
        "longest_wait_seconds": max((q["longest_wait_seconds"] for q in waiting), default=0.0),
        "estimated_wait_seconds": _max_or_none([q["estimated_wait_seconds"] for _, q in parts]),
        "agents": _add_counts([q["agents"] for _, q in parts]),
        "today": figures(total).as_dict(),
        "projection": None,
    }, total


def merge_boards(boards: Mapping[str, Board | None], order: Sequence[str]) -> dict[str, Any] | None:
    """The centre's board from each PBX's (``None``: that PBX's picture is missing), in
    the PBXs' ``order``; None when no PBX has a picture. Boards without tallies (made by
    an older version of the service) cannot be added exactly and count as missing."""
    shown: list[tuple[str, Board]] = [
        (p, b) for p in order if (b := boards.get(p)) is not None and "tallies" in b
    ]
    present = [p for p, _ in shown]
    missing = [p for p in order if p not in present]
    if not shown:
        return None
    newest = max((b for _, b in shown), key=lambda b: datetime.fromisoformat(b["as_of"]))
    queues: dict[str, list[tuple[Board, Mapping[str, Any]]]] = {}
    for _, board in shown:
        for name, view in board["queues"].items():
            queues.setdefault(name, []).append((board, view))
    merged_queues: dict[str, Any] = {}
    tallies: dict[str, dict[str, int]] = {}
    for name, parts in queues.items():
        merged_queues[name], total = _merge_queue(name, parts)
        tallies[name] = total.as_dict()
    centre = Tally()
    agents: dict[str, Any] = {}
    calls: dict[str, Any] = {}
    for pbx, board in shown:
        centre.add(_tally(board, CENTRE))
        for key, agent in board["agents"].items():
            agents[f"{pbx}/{key}"] = {**agent, "pbx": pbx}
        for key, call in board["calls"].items():
            calls[f"{pbx}/{key}"] = {**call, "pbx": pbx}
    tallies[CENTRE] = centre.as_dict()
    longest = [b["centre"]["longest_wait_seconds"] for _, b in shown if b["centre"]["waiting"]]
    return {
        "as_of": newest["as_of"],
        "day": newest["day"],
        "pbx": None,
        "pbxs": present,
        "missing_pbxs": missing,
        "timezone": newest["timezone"],
        "config": newest["config"],
        "goals": newest["goals"],
        "history_loaded": all(b.get("history_loaded", True) for _, b in shown),
        "centre": {
            "waiting": sum(int(b["centre"]["waiting"]) for _, b in shown),
            "longest_wait_seconds": max(longest, default=0.0),
            "agents": _add_counts([b["centre"]["agents"] for _, b in shown]),
            "today": figures(centre).as_dict(),
            "projection": None,
        },
        "queues": merged_queues,
        "agents": agents,
        "calls": calls,
        "tallies": tallies,
    }


class CentreView:
    """Follows each PBX's ``LiveStore`` and publishes their sum into ``out`` as soon as
    one changes (and at least every ``interval``, so a PBX whose picture expired is shown
    missing)."""

    name = "centre-view"
    required = False  # a missing PBX makes the picture partial, not this process unready

    def __init__(
        self,
        pbxs: Sequence[str],
        stores: Mapping[str, LiveStore],
        out: LiveStore,
        *,
        clock: Callable[[], datetime],
        interval: float = 1.0,
    ) -> None:
        self.pbxs = tuple(pbxs)
        self.stores = stores
        self.out = out
        self.clock = clock
        self.interval = interval
        # Add to each merged board before it is published (the intraday projection).
        self.decorators: list[Callable[[dict[str, Any], datetime], None]] = []
        self.merges = 0
        self._scheduled = False
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """A PBX's picture changed: merge once, soon (several changes in one turn of the
        loop make one merge)."""
        if self._scheduled:
            return
        with contextlib.suppress(RuntimeError):  # no loop: the next tick merges
            asyncio.get_running_loop().call_soon(self._merge_now)
            self._scheduled = True

    def _merge_now(self) -> None:
        self._scheduled = False
        try:
            self.merge()
        except Exception:
            log.exception("merging the PBXs' live pictures failed")

    def merge(self) -> None:
        board = merge_boards({p: self.stores[p].snapshot for p in self.pbxs}, self.pbxs)
        self.merges += 1
        if board is None:
            if self.out.snapshot is not None:
                self.out.clear()
            return
        now = self.clock()
        for decorate in self.decorators:
            try:
                decorate(board, now)
            except Exception:
                log.exception("a live board decorator failed")
        self.out.publish(board, time.time())

    async def start(self) -> None:
        for store in self.stores.values():
            store.listeners.append(self.changed)
        self.merge()
        self._task = asyncio.create_task(self._loop(), name="centre-view")

    async def stop(self) -> None:
        for store in self.stores.values():
            with contextlib.suppress(ValueError):
                store.listeners.remove(self.changed)
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        snap = self.out.snapshot
        missing = list(snap["missing_pbxs"]) if snap is not None else list(self.pbxs)
        return Health(
            not missing,
            "up" if not missing else "partial",
            {"pbxs": list(self.pbxs), "missing": missing},
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._merge_now()
