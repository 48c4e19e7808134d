"""A simulated day of many callers with real numbers, for the privacy tests: every call
goes through the real state machine and the service's writer into PostgreSQL, each caller
with the keyed hash and masked form of their own number, their AMI frames (callers
hashed) in the event log, call-backs with sealed numbers, voice messages on disk."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.acd import events as ev
from app.config.kinds import GOALS
from app.config.loader import load_config
from app.privacy import Caller, CallerPrivacy, mask_number
from app.reports.rollup import Context
from app.store.writer import PostgresBackend
from tests.report_support import TZ, Centre, Leg, Script, events, local

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("dagpenge", "kontanthjaelp", "sygedagpenge", "genregistrering")


@dataclass
class Day:
    day: date
    scripts: list[Script]
    numbers: dict[str, str]  # linkedid -> the caller's number
    sealed: dict[str, str] = field(default_factory=dict)  # linkedid -> sealed number
    recordings: dict[str, Path] = field(default_factory=dict)  # linkedid -> message file
    ctx: Context | None = None


def report_context() -> Context:
    snapshot = load_config(ROOT / "ivr_flows")
    goals = snapshot[GOALS]
    assert goals is not None and snapshot.queues is not None
    from app.acd.kpi import KpiConfig

    return Context(tz=TZ, config=KpiConfig(), goals=goals, catalogue=snapshot.queues)


def number_of(i: int) -> str:
    """A Danish number per caller; the last two digits never 77 (kept for the one erased)."""
    n = 20_000_000 + i * 37
    if n % 100 == 77:
        n += 1
    return f"+45{n}"


def scripts_of_day(
    day: date, callers: int, seed: int = 19, *, special: Sequence[tuple[str, str]] = ()
) -> tuple[list[Script], dict[str, str]]:
    """``callers`` calls between 08:00 and 15:30 (answered, abandoned, call-backs,
    messages, surveys), one number each, plus ``special`` (linkedid, number) calls made by
    the caller: answered with a survey, a call-back, a message (in that order)."""
    rnd = random.Random(seed)
    scripts: list[Script] = []
    numbers: dict[str, str] = {}
    for i in range(callers):
        lid = f"{1388534400 + (day - date(2014, 1, 1)).days * 86400 + i * 53}.{i}"
        start = local(day, 8) + timedelta(seconds=rnd.uniform(0, 7.5 * 3600))
        queue = rnd.choice(QUEUES)
        kind = rnd.random()
        agent = f"agent{rnd.randint(1, 8)}"
        if kind < 0.6:
            survey = (rnd.randint(1, 9), rnd.randint(1, 9), rnd.randint(1, 9))
            flagged = rnd.random() < 0.3
            s = Script(
                lid,
                start,
                "h",
                legs=[Leg(queue, rnd.uniform(5, 300), talk=rnd.uniform(60, 600), agent=agent)],
                flagged=flagged,
                survey=survey if flagged else None,
            )
        elif kind < 0.8:
            s = Script(lid, start, "h", legs=[Leg(queue, rnd.uniform(2, 400), "abandoned")])
        elif kind < 0.9:
            s = Script(lid, start, "h", route="callback", legs=[Leg(queue, 0)])
        else:
            s = Script(lid, start, "h", route="message", legs=[Leg(queue, 0)])
        scripts.append(s)
        numbers[lid] = number_of(i)
    for j, (lid, number) in enumerate(special):
        start = local(day, 9 + j, 17)
        if j % 3 == 0:
            s = Script(
                lid,
                start,
                "h",
                legs=[Leg("dagpenge", 20, talk=200, agent="agent1")],
                flagged=True,
                survey=(2, 3, 1),
            )
        elif j % 3 == 1:
            s = Script(lid, start, "h", route="callback", legs=[Leg("dagpenge", 0)])
        else:
            s = Script(lid, start, "h", route="message", legs=[Leg("dagpenge", 0)])
        scripts.append(s)
        numbers[lid] = number
    return scripts, numbers


def personal(
    scripts: Sequence[Script],
    numbers: dict[str, str],
    privacy: CallerPrivacy,
    message_dir: Path,
    day: Day,
) -> list[ev.DomainEvent]:
    """The scripts' events with each caller's own hash and masked number, the AMI
    frames' fields (caller hashed) in ``raw``, a sealed number on a call-back and a file
    for a message."""
    out: list[ev.DomainEvent] = []
    for s in scripts:
        number = numbers[s.id]
        caller = privacy.caller(number)
        name_hash = privacy.hash(f"Borger {s.id}")
        for e in events(s):
            changes: dict[str, Any] = {
                "raw": {
                    "Event": e.KIND,
                    "CallerIDNum": caller.hash,
                    "CallerIDName": name_hash,
                    "Linkedid": s.id,
                }
            }
            if hasattr(e, "caller"):
                changes["caller"] = Caller(caller.hash, mask_number(number))
            if isinstance(e, ev.IvrCallbackAccepted):
                if e.task == "callback":
                    sealed = privacy.seal(number)
                    changes["number_sealed"] = sealed
                    day.sealed[s.id] = sealed
                else:
                    base = message_dir / s.id.replace(".", "_")
                    changes["recording"] = str(base)
                    path = base.with_name(base.name + ".wav")
                    path.write_bytes(b"RIFF" + s.id.encode() + b"WAVEfmt voice")
                    day.recordings[s.id] = path
            out.append(dataclasses.replace(e, **changes))
    out.sort(key=lambda e: e.at)
    return out


async def load_day(
    url: str,
    day: date,
    privacy: CallerPrivacy,
    message_dir: Path,
    *,
    callers: int = 300,
    special: Sequence[tuple[str, str]] = (),
    until: datetime | None = None,
) -> Day:
    scripts, numbers = scripts_of_day(day, callers, special=special)
    out = Day(day, scripts, numbers, ctx=report_context())
    backend = PostgresBackend(url)
    centre = Centre(backend, out.ctx.catalogue if out.ctx else None)
    for event in personal(scripts, numbers, privacy, message_dir, out):
        centre.tick(event.at)
        centre.apply(event)
    end = until or local(day, 23, 59)
    centre.tick(end)
    await centre.flush(end)
    await backend.close()
    return out
