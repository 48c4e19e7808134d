"""Read use cases over the live snapshot: plain functions of a ``LiveStore``.

Each document is built from one snapshot and encoded once per version (the store caches
it), so 200 requests a second cost a dictionary lookup each; every document carries the
``version`` and ``as_of`` of the snapshot it shows.
"""

from __future__ import annotations

from typing import Any

from app.acd.estimates import EstimateSource, QueueEstimate
from app.live.store import LiveStore


def _head(snap: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": snap["version"],
        "as_of": snap["as_of"],
        "day": snap["day"],
        "history_loaded": snap.get("history_loaded", True),
        "pbxs": snap.get("pbxs") or [snap["pbx"]],
        "missing_pbxs": snap.get("missing_pbxs", []),
    }


def _queues(snap: dict[str, Any]) -> dict[str, Any]:
    return {
        **_head(snap),
        "config": snap["config"],
        "goals": snap["goals"],
        "centre": snap["centre"],
        "queues": list(snap["queues"].values()),
    }


def _waiting_in(snap: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    calls = [c for c in snap["calls"].values() if c["state"] == "waiting" and c["queue"] == queue]
    calls.sort(key=lambda c: (c["position"] is None, c["position"] or 0))
    return calls


def queues(store: LiveStore) -> bytes | None:
    return store.cached("queues", _queues)


def queue(store: LiveStore, name: str) -> bytes | None:
    """One queue with its waiting callers in line order; None if unknown (or no snapshot)."""
    snap = store.snapshot
    if snap is None or name not in snap["queues"]:
        return None
    return store.cached(
        f"queue:{name}",
        lambda s: {
            **_head(s),
            **s["queues"][name],
            "config": s["config"],
            "goals": s["goals"],
            "waiting_calls": _waiting_in(s, name),
        },
    )


def agents(store: LiveStore) -> bytes | None:
    return store.cached(
        "agents",
        lambda s: {
            **_head(s),
            "agents": sorted(s["agents"].values(), key=lambda a: (a["id"], a["interface"])),
        },
    )


def live_calls(store: LiveStore) -> bytes | None:
    return store.cached(
        "calls",
        lambda s: {
            **_head(s),
            "calls": sorted(s["calls"].values(), key=lambda c: (c["started_at"], c["linkedid"])),
        },
    )


def estimate_from(store: LiveStore) -> EstimateSource:
    """The menu's queue figures on a replica: from the mirrored snapshot."""

    def estimate(queue: str) -> QueueEstimate | None:
        snap = store.snapshot
        q = snap["queues"].get(queue) if snap is not None else None
        if q is None:
            return None
        return QueueEstimate(
            queue=queue,
            waiting=q["waiting"],
            agents_logged_in=q["agents"]["logged_in"],
            agents_available=q["agents"]["available"],
            estimated_wait_seconds=q["estimated_wait_seconds"],
        )

    return estimate
