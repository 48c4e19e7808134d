"""A log for the planning tests: the synthetic history (app/sim/history.py) written as
queue visits, and agents' days with a known share of pauses, into a real database."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.sim.history import SlotRow
from app.store.db import create_engine, session_factory
from app.store.models import AgentStateChange, QueueVisit

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Europe/Copenhagen")


def visit_rows(
    rows: Iterable[SlotRow], tz: ZoneInfo = TZ, seed: int = 1
) -> list[dict[str, object]]:
    """One queue visit per offered call: answered ones with the row's handle time split
    evenly, the rest abandoned (waits drawn so that the mean patience is about 600 s)."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    n = 0
    for r in rows:
        start = dt.datetime.combine(r.day, dt.time(r.slot // 2, 30 * (r.slot % 2)), tz)
        handle = r.handle_seconds / r.handled if r.handled else 0.0
        for i in range(r.offered):
            n += 1
            at = start + dt.timedelta(seconds=rng.uniform(0, 1799))
            answered = i < r.handled
            wait = rng.uniform(0, 60) if answered else rng.uniform(5, 120)
            out.append(
                {
                    "pbx": "pbx1",
                    "linkedid": f"h{n}",
                    "seq": 1,
                    "queue": r.queue,
                    "entered_at": at.astimezone(dt.UTC),
                    "left_at": (at + dt.timedelta(seconds=wait)).astimezone(dt.UTC),
                    "answered_at": (at + dt.timedelta(seconds=wait)).astimezone(dt.UTC)
                    if answered
                    else None,
                    "wait_seconds": wait,
                    "ring_seconds": 4.0 if answered else None,
                    "talk_seconds": handle - 4.0 if answered else None,
                    "outcome": "answered" if answered else "abandoned",
                    "data_gap": False,
                }
            )
    return out


def agent_day(
    day: dt.date, agent: str, pause_minutes: float, tz: ZoneInfo = TZ
) -> list[dict[str, object]]:
    """08:00 log in, a pause of ``pause_minutes`` at 11:00, 15:00 log out (7 hours)."""

    def at(h: int, m: float = 0.0) -> dt.datetime:
        return (dt.datetime.combine(day, dt.time(h), tz) + dt.timedelta(minutes=m)).astimezone(
            dt.UTC
        )

    steps = [
        (at(8), "available", None),
        (at(11), "paused", "Pause"),
        (at(11, pause_minutes), "available", None),
        (at(15), "logged_out", None),
    ]
    return [
        {
            "pbx": "pbx1",
            "event_key": f"{agent}-{day}-{i}",
            "at": when,
            "agent_id": agent,
            "interface": f"PJSIP/{agent}",
            "queue": None,
            "state": state,
            "reason": reason,
            "source": "ami",
        }
        for i, (when, state, reason) in enumerate(steps)
    ]


async def write_log(
    url: str, visits: Sequence[dict[str, object]], states: Sequence[dict[str, object]] = ()
) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            for i in range(0, len(visits), 5000):
                await session.execute(insert(QueueVisit), list(visits[i : i + 5000]))
            if states:
                await session.execute(insert(AgentStateChange), list(states))
    finally:
        await engine.dispose()
