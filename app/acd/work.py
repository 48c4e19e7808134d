"""How agents work, as data (``ivr_flows/work.yaml``): pause reasons, the call
registration catalogue per queue, the external units calls are transferred to (with their
best contact hours), and the goals of the agent scorecard.

Pure: validated from a mapping, no file I/O and no clock here; the API asks it questions
with the time passed in. The queue names it uses are checked against the queue catalogue
(``queue_problems``) when the configuration registry loads it (app/config/kinds.py).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.acd.calendar import WEEKDAYS, Schedule, Weekday, parse_interval

CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
Code = Annotated[str, Field(pattern=f"^{CODE.pattern}$", max_length=40)]
NUMBER = re.compile(r"\+?[0-9]{3,15}")


class Choice(BaseModel):
    """A code the API accepts, with the Danish title people see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code = Field(description="The code to send and store (e.g. `frokost`, `straksafklaret`).")
    title: str = Field(min_length=1, max_length=80, description="What agents read for it (Danish).")


def _unique(choices: tuple[Choice, ...], what: str) -> tuple[Choice, ...]:
    seen: set[str] = set()
    for c in choices:
        if c.code in seen:
            raise ValueError(f"{what} {c.code!r} is listed twice")
        seen.add(c.code)
    return choices


class Dispositions(BaseModel):
    """Registration reasons: ``common`` for every queue, plus each queue's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    common: tuple[Choice, ...] = ()
    queues: dict[Code, tuple[Choice, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_clash(self) -> Dispositions:
        _unique(self.common, "reason")
        for queue, own in self.queues.items():
            _unique(self.common + own, f"reason (queue {queue})")
        return self

    def for_queue(self, queue: str | None) -> tuple[Choice, ...]:
        return self.common + (self.queues.get(queue, ()) if queue else ())


class Destination(BaseModel):
    """An external unit (a job centre, JKA, ...) calls can be transferred to.

    ``hours``: its best contact hours per weekday (``mon: ["09:00-10:00"]``); Danish public
    holidays are always closed. Outside them a transfer goes to ``backup_number`` (the
    bagvagt) if there is one, else it is refused with the next window.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Code
    title: str = Field(min_length=1, max_length=120)
    number: str
    hours: dict[Weekday, tuple[str, ...]] = Field(default_factory=dict)
    backup_number: str | None = None

    @field_validator("number", "backup_number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is not None and not NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} is not a phone number (digits, optional leading +)")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[Weekday, tuple[str, ...]]) -> dict[Weekday, tuple[str, ...]]:
        for intervals in value.values():
            for text in intervals:
                parse_interval(text)  # raises with the text in the message
        return value

    @property
    def schedule(self) -> Schedule:
        return Schedule(
            weekly={
                day: tuple(parse_interval(t) for t in self.hours.get(day, ())) for day in WEEKDAYS
            }
        )

    def route(self, local: datetime) -> tuple[str | None, bool, datetime | None]:
        """(number to dial now or None, within best hours?, next window start)."""
        schedule = self.schedule
        if not self.hours or schedule.is_open(local):
            return self.number, True, None
        return self.backup_number, False, schedule.next_opening(local)


class Goals(BaseModel):
    """What the agent scorecard measures against (DOMAIN.md where it says; ours else)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_contact_resolution: float = Field(
        0.60,
        ge=0,
        le=1,
        description="Goal for an agent's first-contact resolution (share 0-1, at least).",
    )
    satisfaction: float = Field(
        6.5,
        ge=1,
        le=9,
        description="Goal for an agent's mean 'overall' survey answer (1-9, above).",
    )
    registration_rate: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Goal for the share of answered calls an agent registers (0-1, at least).",
    )
    average_handle_seconds: float = Field(
        420.0,
        gt=0,
        description="Goal for an agent's average handling time, talk plus wrap-up (seconds, "
        "at most).",
    )
    ready_share: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Goal for the share of logged-in time an agent is ready for calls (0-1, "
        "at least).",
    )


class WorkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pause_reasons: tuple[Choice, ...] = Field(min_length=1)
    dispositions: Dispositions
    destinations: tuple[Destination, ...] = ()
    goals: Goals = Goals()

    @model_validator(mode="after")
    def _checks(self) -> WorkConfig:
        _unique(self.pause_reasons, "pause reason")
        names: set[str] = set()
        for d in self.destinations:
            if d.name in names:
                raise ValueError(f"destination {d.name!r} is listed twice")
            names.add(d.name)
        return self

    # ---- questions the API asks --------------------------------------------------

    def pause_reason(self, code: str) -> Choice | None:
        return next((c for c in self.pause_reasons if c.code == code), None)

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)

    def disposition(self, queue: str | None, code: str) -> Choice | None:
        return next((c for c in self.dispositions.for_queue(queue) if c.code == code), None)

    def queue_problems(self, queues: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
        """(place in the file, problem) for each queue name this file gets wrong."""
        problems: list[tuple[tuple[str, ...], str]] = [
            (("dispositions", "queues", q), f"{q!r} is not a queue of queues.yaml")
            for q in self.dispositions.queues
            if q not in queues
        ]
        problems += [
            (
                ("destinations", str(i), "name"),
                f"{d.name!r} has the name of a queue; transfers could not tell them apart",
            )
            for i, d in enumerate(self.destinations)
            if d.name in queues
        ]
        return problems
