"""IVR statistics from the event log: keys pressed, invalid keys and timeouts per menu,
hang-ups inside the menu, outcomes, time from the start of the menu to a queue.

Pure. It reads what ``call_events`` holds for each IVR event (kind, time, channel, data),
so the same function serves the live events and a report over the database rows.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.acd.events import DomainEvent

# (kind, at, uniqueid, data): one row of call_events for an IVR event.
LoggedEvent = tuple[str, datetime, str, dict[str, Any]]


@dataclass
class IvrStats:
    sessions: int = 0
    keys: Counter[tuple[str, str]] = field(default_factory=Counter)  # (menu, key)
    invalid: Counter[str] = field(default_factory=Counter)  # menu
    timeouts: Counter[str] = field(default_factory=Counter)  # menu
    hangups: Counter[str] = field(default_factory=Counter)  # menu the caller left from
    outcomes: Counter[str] = field(default_factory=Counter)  # IvrEnded.reason
    routed: Counter[str] = field(default_factory=Counter)  # queue
    seconds_to_queue: list[float] = field(default_factory=list)

    @property
    def median_seconds_to_queue(self) -> float | None:
        return statistics.median(self.seconds_to_queue) if self.seconds_to_queue else None


def logged(events: Iterable[DomainEvent]) -> list[LoggedEvent]:
    """Domain events as the log keeps them."""
    return [(e.kind, e.at, e.uniqueid, e.data()) for e in events]


def ivr_stats(rows: Iterable[LoggedEvent]) -> IvrStats:
    """Aggregate menu sessions (``script`` ivr); survey sessions are left out.

    Rows must come in the order they happened (``ORDER BY at, id``)."""
    out = IvrStats()
    script: dict[str, str] = {}  # uniqueid -> script of its current session
    started: dict[str, datetime] = {}
    for kind, at, uniqueid, data in rows:
        if kind == "ivr_started":
            script[uniqueid] = str(data.get("script", ""))
            if script[uniqueid] == "ivr":
                out.sessions += 1
                started[uniqueid] = at
            continue
        if script.get(uniqueid) != "ivr":
            continue
        if kind == "ivr_key":
            out.keys[(data["menu"], data["digit"])] += 1
            if not data["valid"]:
                out.invalid[data["menu"]] += 1
        elif kind == "ivr_timeout":
            out.timeouts[data["menu"]] += 1
        elif kind == "ivr_routed":
            out.routed[data["queue"]] += 1
            if uniqueid in started:
                out.seconds_to_queue.append((at - started[uniqueid]).total_seconds())
        elif kind == "ivr_ended":
            out.outcomes[data["reason"]] += 1
            if data["reason"] == "hangup":
                out.hangups[data.get("menu") or "-"] += 1
    return out
