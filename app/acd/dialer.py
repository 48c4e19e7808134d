"""Which call-backs to place now: a pure decision from the live state and the open tasks.

Rules (issue 7):
- only when agents of the task's queue are free: an agent counts if it is a member of that
  queue and ``available`` (logged in, not paused, not ringing, talking or in wrap-up, its
  phone reachable);
- never more call-backs ringing at once than free agents: each placed call-back reserves
  one free agent until the citizen is in the queue, and callers already waiting in a queue
  take that queue's free agents first (they are ahead in line);
- one per number: never two call-backs to one number at once (ringing, or planned in the
  same round); when one reaches the citizen the number's other open call-back tasks of that
  queue are closed as duplicates (the dialer adapter does that);
- in the caller's original place in line: the oldest ``requested_at`` first (for a caller
  who chose a call-back while waiting, the time they joined the queue).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from app.acd.state import CallCentre


@dataclass(frozen=True, slots=True)
class Candidate:
    task_id: int
    queue: str
    caller_hash: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Dial:
    task_id: int
    queue: str
    interface: str  # the free agent this call-back is counted against
    caller_hash: str


def free_agents(centre: CallCentre) -> dict[str, set[str]]:
    """interface -> the queues in which that agent is free now."""
    out: dict[str, set[str]] = {}
    for (queue, interface), member in centre.members.items():
        if centre.member_state(member) == "available":
            out.setdefault(interface, set()).add(queue)
    return out


def waiting_counts(centre: CallCentre) -> dict[str, int]:
    out: dict[str, int] = {}
    for call in centre.calls.values():
        if call.ended_at is not None:
            continue
        for visit in call.visits:
            if visit.waiting:
                out[visit.queue] = out.get(visit.queue, 0) + 1
    return out


def _take(available: dict[str, set[str]], queue: str) -> str | None:
    """A free agent of ``queue``; the one serving the fewest queues (keeps the others
    for queues that have fewer people)."""
    best = min(
        (i for i, qs in available.items() if queue in qs),
        key=lambda i: (len(available[i]), i),
        default=None,
    )
    if best is not None:
        del available[best]
    return best


def plan_dials(
    candidates: Iterable[Candidate],
    free: Mapping[str, set[str]],
    waiting: Mapping[str, int],
    reserved: Iterable[str] = (),
    ringing_numbers: Iterable[str] = (),
) -> list[Dial]:
    taken = set(reserved)
    available = {i: set(qs) for i, qs in free.items() if i not in taken}
    for queue in sorted(waiting):
        for _ in range(waiting[queue]):
            if _take(available, queue) is None:
                break
    numbers = set(ringing_numbers)
    out: list[Dial] = []
    for c in sorted(candidates, key=lambda c: (c.requested_at, c.task_id)):
        if c.caller_hash in numbers:
            continue
        interface = _take(available, c.queue)
        if interface is None:
            continue
        numbers.add(c.caller_hash)
        out.append(Dial(c.task_id, c.queue, interface, c.caller_hash))
    return out
