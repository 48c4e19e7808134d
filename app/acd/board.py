"""The live board: queues, agents and calls as operations see them, built from the state.

Pure: ``build_board(centre, book, handle_times, now, ...)`` reads the ``CallCentre`` (who
waits, who talks, who is paused), today's ``DayBook`` and recent handle times, and returns
a JSON-ready dict. The live adapter versions it, mirrors it and streams its changes; the
REST API, the wallboard and the Prometheus gauges all show this one dict, so they agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.acd.estimates import QueueEstimate
from app.acd.ewt import HandleTimes, position_waits, residual_talk
from app.acd.kpi import CENTRE, DayBook, Goals, KpiConfig, figures
from app.acd.model import DEFAULT_WRAPUP, Agent, Call, Visit
from app.acd.presence import MEMBER_STATES, STAFFED
from app.acd.state import CallCentre

_QUEUE_NAME = re.compile(r"[a-z][a-z0-9_]{1,40}")
MAX_EXTRA_QUEUES = 50  # queues the PBX has but the catalogue does not (bounded)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    title: str = ""
    wrapup_seconds: int = DEFAULT_WRAPUP


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _secs(a: datetime, b: datetime) -> float:
    return round(max(0.0, (b - a).total_seconds()), 1)


def board_queues(
    catalogue: Sequence[QueueInfo], centre: CallCentre, book: DayBook, day: date
) -> list[QueueInfo]:
    """The catalogue's queues in its order, then (bounded) others the PBX showed today."""
    known = {q.name for q in catalogue}
    extra: set[str] = set()
    seen = {q for q, _ in centre.members} | set(book.queues(day))
    for call in centre.calls.values():
        if call.ended_at is None:
            seen.update(v.queue for v in call.visits if v.waiting or v.talking)
    for name in sorted(seen - known):
        if len(extra) >= MAX_EXTRA_QUEUES:
            break
        if _QUEUE_NAME.fullmatch(name):
            extra.add(name)
    return [*catalogue, *(QueueInfo(name) for name in sorted(extra))]


def _talking_visit(call: Call, interface: str) -> Visit | None:
    for v in reversed(call.visits):
        if v.agent_interface == interface and v.talking:
            return v
    return None


def build_board(
    centre: CallCentre,
    book: DayBook,
    handle: HandleTimes,
    now: datetime,
    catalogue: Sequence[QueueInfo],
    *,
    config: KpiConfig,
    day: date | None = None,
    goals: Goals | None = None,
) -> dict[str, Any]:
    """The whole live picture at ``now`` (PBX clock); ``day`` defaults to now's local day;
    ``goals``: those of the agreement in force (ivr_flows/goals.yaml), if there is one."""
    day = day or book.day_of(now)
    queues = board_queues(catalogue, centre, book, day)
    wrapup_of = wrapups(queues)

    # Who waits where, in line order.
    waiting = {q: line for q in centre.queues_waited_in() if (line := centre.waiting(q))}
    live_calls = [c for c in centre.calls.values() if c.ended_at is None]

    queue_views: dict[str, dict[str, Any]] = {}
    # The counts and sums "today" is made of: several PBXs' boards add up exactly
    # (app/live/centre.py); the REST documents do not show them.
    whole = book.tally(day, CENTRE)
    tallies: dict[str, dict[str, int]] = {CENTRE: whole.as_dict()}
    call_estimates: dict[tuple[str, int], tuple[int, float | None]] = {}
    for q in queues:
        line = waiting.get(q.name, [])
        counts, reasons, waits = _queue_state(centre, handle, now, q.name, len(line), wrapup_of)
        tally = book.tally(day, q.name)
        for i, (call, v) in enumerate(line):
            call_estimates[(call.linkedid, v.seq)] = (i + 1, waits[i])
        queue_views[q.name] = {
            "name": q.name,
            "title": q.title,
            "waiting": len(line),
            "longest_wait_seconds": _secs(line[0][1].entered_at, now) if line else 0.0,
            "estimated_wait_seconds": waits[len(line)],
            "agents": {**counts, "paused_reasons": reasons},
            "today": figures(tally).as_dict(),
        }
        tallies[q.name] = tally.as_dict()

    calls: dict[str, dict[str, Any]] = {}
    for call in live_calls:
        calls[call.linkedid] = _call_view(call, now, call_estimates, centre.pbx)

    agents: dict[str, dict[str, Any]] = {}
    memberships: dict[str, list[dict[str, Any]]] = {}
    for (queue, interface), m in sorted(centre.members.items()):
        memberships.setdefault(interface, []).append(
            {
                "queue": queue,
                "paused": m.paused,
                "reason": m.paused_reason or None,
                "penalty": m.penalty,
            }
        )
    by_state = dict.fromkeys(("logged_in", *MEMBER_STATES), 0)
    for interface, agent in sorted(centre.agents.items()):
        if agent.state != "logged_out":
            by_state["logged_in"] += 1
            if agent.state in by_state:
                by_state[agent.state] += 1
        current = None
        if agent.on_call is not None:
            talking = centre.calls.get(agent.on_call)
            visit = _talking_visit(talking, interface) if talking is not None else None
            current = {
                "linkedid": agent.on_call,
                "queue": agent.call_queue,
                "answered_at": _iso(visit.answered_at if visit else None),
                "caller": talking.caller_display if talking is not None else "",
            }
        agents[interface] = {
            "pbx": centre.pbx,
            "id": agent.agent_id,
            "name": agent.name,
            "interface": interface,
            "state": agent.state,
            "since": _iso(agent.since),
            "reason": agent.reason,
            "call": current,
            "wrapup_until": _iso(agent.wrapup_until),
            "queues": memberships.get(interface, []),
        }

    longest = [v["longest_wait_seconds"] for v in queue_views.values() if v["waiting"]]
    return {
        "as_of": now.isoformat(),
        "day": day.isoformat(),
        "pbx": centre.pbx,
        "timezone": book.tz.key,
        "config": {
            "short_abandon_seconds": config.short_abandon_seconds,
            "service_level_seconds": config.service_level_seconds,
        },
        "goals": goals.as_dict() if goals is not None else None,
        "centre": {
            "waiting": sum(v["waiting"] for v in queue_views.values()),
            "longest_wait_seconds": max(longest) if longest else 0.0,
            "agents": by_state,
            "today": figures(whole).as_dict(),
        },
        "queues": queue_views,
        "agents": agents,
        "calls": calls,
        "tallies": tallies,
    }


def _queue_state(
    centre: CallCentre,
    handle: HandleTimes,
    now: datetime,
    queue: str,
    waiting: int,
    wrapup_of: Callable[[str | None], float],
) -> tuple[dict[str, int], dict[str, int], list[float | None]]:
    """Members by state, pause reasons, and the expected waits of positions 1..waiting+1."""
    members = centre.members_of(queue)
    counts = dict.fromkeys(("logged_in", *MEMBER_STATES), 0)
    counts["logged_in"] = len(members)
    reasons: dict[str, int] = {}
    free: list[float] = []
    talks: dict[str, float] = {}  # a queue's recent mean talk, once per build

    def talk_of(name: str) -> float:
        mean = talks.get(name)
        if mean is None:
            mean = talks[name] = handle.talk(name)
        return mean

    for m in members:
        state = centre.member_state(m)
        counts[state] += 1
        if state == "paused":
            reason = m.paused_reason or ""
            reasons[reason] = reasons.get(reason, 0) + 1
        if state in STAFFED:
            agent = centre.agents.get(m.interface)
            free.append(_free_in(centre, talk_of, now, agent, state, wrapup_of))
    waits = position_waits(free, talk_of(queue) + wrapup_of(queue), waiting + 1, handle.ring(queue))
    return counts, dict(sorted(reasons.items())), waits


def _free_in(
    centre: CallCentre,
    talk_of: Callable[[str], float],
    now: datetime,
    agent: Agent | None,
    state: str,
    wrapup_of: Callable[[str | None], float],
) -> float:
    """Seconds until ``agent`` (in ``state``) is free for a next caller."""
    if agent is None or state in ("available", "ringing"):
        return 0.0
    if state == "wrapup":
        until = agent.wrapup_until
        return max(0.0, (until - now).total_seconds()) if until else 0.0
    call = centre.calls.get(agent.on_call or "")
    visit = _talking_visit(call, agent.interface) if call is not None else None
    queue = agent.call_queue or (visit.queue if visit else None)
    elapsed = 0.0
    if visit is not None and visit.answered_at is not None:
        elapsed = max(0.0, (now - visit.answered_at).total_seconds())
    return residual_talk(talk_of(queue or ""), elapsed) + wrapup_of(queue)


def wrapups(catalogue: Sequence[QueueInfo]) -> Callable[[str | None], float]:
    """Wrap-up seconds by queue name (the state machine's default for unknown queues)."""
    table = {q.name: float(q.wrapup_seconds) for q in catalogue}
    return lambda name: table.get(name or "", float(DEFAULT_WRAPUP))


def queue_estimate(
    centre: CallCentre,
    handle: HandleTimes,
    now: datetime,
    queue: str,
    wrapup_of: Callable[[str | None], float],
) -> QueueEstimate:
    """What the menu may know of ``queue`` for a caller joining now (fresh, not a tick old)."""
    waiting = len(centre.waiting(queue))
    counts, _, waits = _queue_state(centre, handle, now, queue, waiting, wrapup_of)
    return QueueEstimate(
        queue=queue,
        waiting=waiting,
        agents_logged_in=counts["logged_in"],
        agents_available=counts["available"],
        estimated_wait_seconds=waits[waiting],
    )


def _call_view(
    call: Call,
    now: datetime,
    estimates: dict[tuple[str, int], tuple[int, float | None]],
    pbx: str,
) -> dict[str, Any]:
    current = call.visit()
    state = "ivr" if current is None else "queue"
    view: dict[str, Any] = {
        "pbx": pbx,
        "linkedid": call.linkedid,
        "started_at": call.started_at.isoformat(),
        "caller": call.caller_display,
        "keys": call.keys,
        "state": state,
        "queue": None,
        "position": None,
        "entered_at": None,
        "waited_seconds": None,
        "estimated_wait_seconds": None,
        "ringing": [],
        "agent": None,
        "answered_at": None,
        "data_gap": call.data_gap,
    }
    if current is None:
        return view
    view["queue"] = current.queue
    view["entered_at"] = current.entered_at.isoformat()
    if current.waiting:
        position, estimate = estimates.get((call.linkedid, current.seq), (None, None))
        view.update(
            state="waiting",
            position=position,
            waited_seconds=_secs(current.entered_at, now),
            estimated_wait_seconds=estimate,
            ringing=sorted(current.ringing),
        )
    elif current.talking:
        view.update(
            state="talking",
            agent=current.agent,
            answered_at=_iso(current.answered_at),
            waited_seconds=current.wait_seconds,
        )
    else:
        view.update(state="after_queue", waited_seconds=current.wait_seconds)
    return view
