"""The service goals and the departments, as data: ``<ACD_IVR_FLOWS>/goals.yaml``.

Each agreement has its goals (metric, target, direction, early-warning level, long-term
ambition), the period it is in force and its scope (the queues whose calls it covers); a
``comparison`` entry (the municipal 2009 goals) is shown beside it in every report. The
departments say which queues and which transfer destinations (``work.yaml``) belong to
which job-centre department: the weekly report goes to each.

Loading is a plain function (``parse_goals``, ``load_goals_text``, ``load_goals``),
raising ``GoalsInvalid`` with every problem as ``<file>:<line>: <path>: <what is
wrong>``, like every configuration file. The configuration registry (app/config) owns the
one live snapshot and its reload: goals.yaml is its ``GOALS`` kind
(app/config/kinds.py), read as ``registry.current[GOALS]``. The live figures (wallboard,
``/v1/queues``, the alert rules' test, the staffing targets) read ``live_goals``; the
reports read the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.acd.kpi import Goals
from app.config.errors import ConfigError, ConfigInvalid, Lines, from_validation, line_of
from app.config.yamlfile import load_yaml

GOALS_FILE = "goals.yaml"
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
Name = Annotated[str, Field(pattern=f"^{NAME.pattern}$", max_length=40)]
Title = Annotated[str, Field(min_length=1, max_length=120)]
Direction = Literal["at_least", "above", "at_most"]
Unit = Literal["share", "seconds", "score"]

# The report figures a goal may be set on (docs/kpis.md defines each), with their unit.
GOAL_METRICS: dict[str, Unit] = {
    "answer_rate": "share",
    "answer_rate_raw": "share",
    "abandon_rate": "share",
    "avg_wait_seconds": "seconds",
    "asa_seconds": "seconds",
    "max_wait_seconds": "seconds",
    "service_level": "share",
    "service_level_offered": "share",
    "service_level_sl2": "share",
    "service_level_abandons": "share",
    "avg_talk_seconds": "seconds",
    "avg_handle_seconds": "seconds",
    "first_contact_resolution": "share",
    "first_contact_resolution_repeat": "share",
    "registration_share": "share",
    "satisfaction": "score",
    "survey_response_rate": "share",
    "tasks_in_time_share": "share",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goal(_Model):
    metric: Literal[tuple(GOAL_METRICS)]  # type: ignore[valid-type]
    title: Title
    direction: Direction
    target: float
    warning: float | None = None  # early warning, on the good side of the target
    ambition: float | None = None  # long-term target, beyond the target

    def problems(self) -> list[tuple[str, str]]:
        """(field, problem) of its levels: in the metric's range, the warning on the good
        side of the target, the ambition beyond it."""
        out: list[tuple[str, str]] = []
        unit = GOAL_METRICS[self.metric]
        for name in ("target", "warning", "ambition"):
            value = getattr(self, name)
            if value is None:
                continue
            if unit == "share" and not 0 <= value <= 1:
                out.append((name, f"{value:g} is a share: between 0 and 1"))
            if unit == "score" and not 1 <= value <= 9:
                out.append((name, f"{value:g} is a 1-9 score"))
            if unit == "seconds" and value < 0:
                out.append((name, f"{value:g}: seconds cannot be negative"))
        if self.warning is not None and not self.better(self.warning, self.target, True):
            out.append(
                (
                    "warning",
                    f"{self.warning:g} must be on the good side of the target "
                    f"{self.target:g} ({self.direction})",
                )
            )
        if self.ambition is not None and not self.better(self.ambition, self.target, True):
            out.append(
                (
                    "ambition",
                    f"{self.ambition:g} must be beyond the target {self.target:g} "
                    f"({self.direction})",
                )
            )
        return out

    def better(self, a: float, b: float, or_equal: bool = False) -> bool:
        """Is ``a`` better than ``b`` in this goal's direction?"""
        if a == b:
            return or_equal
        return a > b if self.direction in ("at_least", "above") else a < b

    def met(self, value: float) -> bool:
        if self.direction == "at_least":
            return value >= self.target
        if self.direction == "above":
            return value > self.target
        return value <= self.target

    def status(self, value: float | None) -> Literal["met", "at_risk", "missed", "no_data"]:
        """met; at_risk = met, but not as well as the warning level; missed; no_data."""
        if value is None:
            return "no_data"
        if not self.met(value):
            return "missed"
        if self.warning is not None and not self.better(value, self.warning, True):
            return "at_risk"
        return "met"


class Scope(_Model):
    name: Name
    title: Title
    queues: tuple[Name, ...] = Field(min_length=1)


class Agreement(_Model):
    name: Name
    title: Title
    scope: Name
    valid_from: date
    valid_to: date | None = None
    comparison: bool = False
    goals: tuple[Goal, ...] = Field(min_length=1)

    def in_force(self, first: date, last: date | None = None) -> bool:
        """In force on some day of [first, last]."""
        last = last or first
        return self.valid_from <= last and (self.valid_to is None or self.valid_to >= first)

    def goal(self, metric: str) -> Goal | None:
        return next((g for g in self.goals if g.metric == metric), None)


class Department(_Model):
    name: Name
    title: Title
    queues: tuple[Name, ...] = ()
    destinations: tuple[Name, ...] = ()


class GoalsConfig(_Model):
    scopes: tuple[Scope, ...] = Field(min_length=1)
    agreements: tuple[Agreement, ...] = Field(min_length=1)
    departments: tuple[Department, ...] = ()

    # ---- questions the reports and the live figures ask ---------------------------

    def scope(self, name: str) -> Scope | None:
        return next((s for s in self.scopes if s.name == name), None)

    def agreements_for(self, first: date, last: date) -> list[Agreement]:
        """The agreements in force on some day of [first, last], then the comparisons."""
        own = [a for a in self.agreements if not a.comparison and a.in_force(first, last)]
        return own + [a for a in self.agreements if a.comparison]

    def primary(self, day: date) -> Agreement | None:
        """The agreement in force on ``day`` whose scope has the most queues (the main line;
        first in the file on a tie): what the live figures of the whole centre show."""
        best: Agreement | None = None
        for a in self.agreements:
            if a.comparison or not a.in_force(day):
                continue
            if best is None or self._size(a) > self._size(best):
                best = a
        return best

    def _size(self, agreement: Agreement) -> int:
        scope = self.scope(agreement.scope)
        return len(scope.queues) if scope is not None else 0

    def department(self, name: str) -> Department | None:
        return next((d for d in self.departments if d.name == name), None)

    def department_of_queue(self, queue: str) -> str | None:
        return next((d.name for d in self.departments if queue in d.queues), None)

    def department_of_destination(self, destination: str) -> str | None:
        return next((d.name for d in self.departments if destination in d.destinations), None)

    @property
    def digest_parts(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
        """What the stored per-day figures of departments and scopes depend on (the
        queues and destinations of each); a change means those days are figured again."""
        return tuple(
            [(f"scope:{s.name}", s.queues, ()) for s in self.scopes]
            + [(f"department:{d.name}", d.queues, d.destinations) for d in self.departments]
        )


def live_goals(config: GoalsConfig, day: date) -> Goals:
    """The goals the live figures of the whole centre are coloured and alerted against:
    those of the agreement in force on ``day`` (``primary``). A level the file does not
    give falls back to the target (no early warning, no ambition)."""
    agreement = config.primary(day)
    if agreement is None:
        raise LookupError(f"no agreement is in force on {day}")
    answer = agreement.goal("answer_rate")
    wait = agreement.goal("avg_wait_seconds")
    sl = agreement.goal("service_level")
    assert answer is not None and wait is not None  # checked when loaded
    return Goals(
        answer_rate=answer.target,
        answer_rate_ambition=_or(answer.ambition, answer.target),
        answer_rate_warning=_or(answer.warning, answer.target),
        avg_wait_seconds=wait.target,
        avg_wait_warning_seconds=_or(wait.warning, wait.target),
        service_level=sl.target if sl is not None else None,
        service_level_warning=_or(sl.warning, sl.target) if sl is not None else None,
    )


def goals_on(config: GoalsConfig | None, day: date) -> Goals | None:
    """The live goals of ``day`` (None: no goals file, or no agreement in force then)."""
    if config is None:
        return None
    try:
        return live_goals(config, day)
    except LookupError:
        return None


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


# --------------------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------------------


class GoalsInvalid(ConfigInvalid):
    """``goals.yaml`` is unreadable or invalid; ``errors`` has each problem with its line."""


@dataclass(frozen=True, slots=True)
class _Where:
    file: str
    lines: Lines

    def error(self, path: Sequence[str], message: str) -> ConfigError:
        loc = tuple(str(p) for p in path)
        return ConfigError(self.file, ".".join(loc), message, line_of(self.lines, loc))


def parse_goals(
    data: Any,
    file: str,
    lines: Lines,
    queues: Iterable[str] | None = None,
    destinations: Iterable[str] | None = None,
) -> GoalsConfig:
    """The goals file's YAML as a checked ``GoalsConfig`` (raises ``GoalsInvalid``).

    ``queues`` (the catalogue's) and ``destinations`` (work.yaml's), when given, are what
    the scopes and departments may name (a queue belongs to one department at most)."""
    where = _Where(file, lines)
    if not isinstance(data, dict):
        raise GoalsInvalid([where.error((), "a goals file is a mapping (scopes, agreements)")])
    try:
        config = GoalsConfig.model_validate(data)
    except ValidationError as exc:
        raise GoalsInvalid(from_validation(exc, file, lines, _loc).errors) from None
    errors = check_goals(config, where, queues, destinations)
    if errors:
        raise GoalsInvalid(errors)
    return config


def load_goals_text(
    text: str,
    file: str,
    queues: Iterable[str] | None = None,
    destinations: Iterable[str] | None = None,
) -> GoalsConfig:
    """Parse and check a goals file's text (see ``parse_goals``)."""
    try:
        data, lines = load_yaml(text, file)
    except ConfigInvalid as exc:
        raise GoalsInvalid(exc.errors) from None
    return parse_goals(data, file, lines, queues, destinations)


def load_goals(
    flows_dir: Path,
    queues: Iterable[str] | None = None,
    destinations: Iterable[str] | None = None,
) -> GoalsConfig:
    """``<flows_dir>/goals.yaml``, checked (see ``parse_goals``)."""
    path = flows_dir / GOALS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GoalsInvalid([ConfigError(str(path), "", f"cannot read: {exc}")]) from None
    return load_goals_text(text, str(path), queues, destinations)


def _loc(loc: list[str]) -> list[str]:
    # pydantic names the literal's choices in a location for Literal[...] of a tuple: drop
    # what is not a key or an index of the file.
    return [p for p in loc if not p.startswith("literal[")]


def check_goals(
    config: GoalsConfig,
    where: _Where,
    queues: Iterable[str] | None = None,
    destinations: Iterable[str] | None = None,
) -> list[ConfigError]:
    """The checks across the file (and against the catalogue); every problem found."""
    errors: list[ConfigError] = []

    def problem(path: Sequence[str], message: str) -> None:
        errors.append(where.error(path, message))

    known_queues = set(queues) if queues is not None else None
    known_destinations = set(destinations) if destinations is not None else None

    def unique(kind: str, names: list[str]) -> None:
        first: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in first:
                problem(
                    (kind, str(i), "name"),
                    f"{name!r} is listed twice (first: {kind}.{first[name]})",
                )
            first.setdefault(name, i)

    unique("scopes", [s.name for s in config.scopes])
    unique("agreements", [a.name for a in config.agreements])
    unique("departments", [d.name for d in config.departments])

    scopes = {s.name for s in config.scopes}
    for i, s in enumerate(config.scopes):
        for j, q in enumerate(s.queues):
            if known_queues is not None and q not in known_queues:
                problem(("scopes", str(i), "queues", str(j)), f"unknown queue {q!r}")

    for i, a in enumerate(config.agreements):
        base = ("agreements", str(i))
        if a.scope not in scopes:
            problem(
                (*base, "scope"), f"unknown scope {a.scope!r} (scopes: {', '.join(sorted(scopes))})"
            )
        if a.valid_to is not None and a.valid_to < a.valid_from:
            problem((*base, "valid_to"), "ends before valid_from")
        seen: dict[str, int] = {}
        for j, g in enumerate(a.goals):
            for name, message in g.problems():
                problem((*base, "goals", str(j), name), message)
            if g.metric in seen:
                problem(
                    (*base, "goals", str(j), "metric"),
                    f"{g.metric!r} has a goal already (goals.{seen[g.metric]})",
                )
            seen.setdefault(g.metric, j)
        if not a.comparison:
            for metric in ("answer_rate", "avg_wait_seconds"):
                if metric not in seen:
                    problem(
                        (*base, "goals"),
                        f"an agreement needs a goal on {metric} (the live figures show it)",
                    )
    # Two agreements of one scope in force on the same day: which one counts is unclear.
    own = [(i, a) for i, a in enumerate(config.agreements) if not a.comparison]
    for n, (i, a) in enumerate(own):
        for k, b in own[n + 1 :]:
            if a.scope == b.scope and a.in_force(b.valid_from, b.valid_to or date.max):
                problem(
                    ("agreements", str(k), "valid_from"),
                    f"{b.name!r} overlaps {a.name!r} (agreements.{i}) for scope {a.scope!r}",
                )

    owner: dict[str, tuple[str, int, int]] = {}
    unit_owner: dict[str, str] = {}
    for i, d in enumerate(config.departments):
        base = ("departments", str(i))
        if not d.queues and not d.destinations:
            problem(base, "a department needs queues or destinations")
        for j, q in enumerate(d.queues):
            if known_queues is not None and q not in known_queues:
                problem((*base, "queues", str(j)), f"unknown queue {q!r}")
            if q in owner:
                problem(
                    (*base, "queues", str(j)), f"queue {q!r} belongs to {owner[q][0]!r} already"
                )
            owner.setdefault(q, (d.name, i, j))
        for j, dest in enumerate(d.destinations):
            if known_destinations is not None and dest not in known_destinations:
                problem(
                    (*base, "destinations", str(j)),
                    f"unknown destination {dest!r} (work.yaml destinations)",
                )
            if dest in unit_owner:
                problem(
                    (*base, "destinations", str(j)),
                    f"destination {dest!r} belongs to {unit_owner[dest]!r} already",
                )
            unit_owner.setdefault(dest, d.name)
    return errors
