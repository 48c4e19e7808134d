"""The kinds of configuration file, one entry each: what the registry loads.

A kind is a file in the configuration folder (``ACD_IVR_FLOWS``, ``ivr_flows/``): its
name, whether the service needs it, and how its YAML becomes an immutable value (checked
against the kinds loaded before it). Every ``*.yaml`` of the folder that is no kind's file
is a menu flow (``app/ivr``), checked against the queues.

To add a kind (goals, departments, retention, ...): write its model (pure, frozen) and a
``parse`` that raises ``ConfigInvalid`` with line-numbered errors (``validated`` does that
for a pydantic model), then add one ``FileKind`` to ``KINDS``. The loader, the version,
the atomic reload, ``acd config validate`` and the flow loader's skipping of the file all
follow; consumers read ``registry.current[THE_KIND]`` (docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.acd.queues import QueueCatalogue
from app.acd.work import WorkConfig
from app.config.errors import ConfigError, ConfigInvalid, Lines, from_validation, line_of
from app.reports.goals import GOALS_FILE, GoalsConfig, parse_goals
from app.retention import RETENTION_FILE, RetentionConfig

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# The values of the kinds loaded before this one, by kind name (None: file absent).
Before = Mapping[str, Any]


@dataclass(frozen=True, eq=False)  # one object per kind: compared and hashed by identity
class FileKind(Generic[T]):
    name: str  # key of the value in a snapshot
    file: str  # its file name in the configuration folder
    parse: Callable[[Any, str, Lines, Before], T]  # (data, file, lines, before) -> value
    required: bool = False  # without the file the whole set is refused
    after: tuple[str, ...] = ()  # kinds whose values ``parse`` reads (loaded first)
    describe: Callable[[T], str] = lambda value: "valid"  # for ``acd ivr validate``


def validated(model: type[M], data: Any, file: str, lines: Lines) -> M:
    """``data`` as ``model``, or ``ConfigInvalid`` with each error at its line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, file, lines) from None


def _queues(data: Any, file: str, lines: Lines, before: Before) -> QueueCatalogue:
    return validated(QueueCatalogue, data, file, lines)


def _work(data: Any, file: str, lines: Lines, before: Before) -> WorkConfig:
    work = validated(WorkConfig, data, file, lines)
    queues: QueueCatalogue | None = before.get("queues")
    if queues is not None:
        problems = work.queue_problems(queues.names)
        if problems:
            raise ConfigInvalid(
                [
                    ConfigError(file, ".".join(path), message, line_of(lines, path))
                    for path, message in problems
                ]
            )
    return work


QUEUES: FileKind[QueueCatalogue] = FileKind(
    "queues",
    "queues.yaml",
    _queues,
    required=True,
    describe=lambda c: f"{len(c.queues)} queues",
)
WORK: FileKind[WorkConfig] = FileKind(
    "work",
    "work.yaml",
    _work,
    after=("queues",),
    describe=lambda w: f"{len(w.pause_reasons)} pause reasons, {len(w.destinations)} destinations",
)


def _goals(data: Any, file: str, lines: Lines, before: Before) -> GoalsConfig:
    queues: QueueCatalogue | None = before.get("queues")
    work: WorkConfig | None = before.get("work")
    return parse_goals(
        data,
        file,
        lines,
        queues.names if queues is not None else None,
        [d.name for d in work.destinations] if work is not None else None,
    )


# The service goals per agreement and the departments (app/reports/goals.py).
GOALS: FileKind[GoalsConfig] = FileKind(
    "goals",
    GOALS_FILE,
    _goals,
    after=("queues", "work"),
    describe=lambda g: f"{len(g.agreements)} agreements, {len(g.departments)} departments",
)


def _retention(data: Any, file: str, lines: Lines, before: Before) -> RetentionConfig:
    return validated(RetentionConfig, {} if data is None else data, file, lines)


# How long each kind of personal data is kept (app/retention.py; absent: its defaults).
RETENTION: FileKind[RetentionConfig] = FileKind(
    "retention",
    RETENTION_FILE,
    _retention,
    describe=lambda r: f"{len(RetentionConfig.model_fields)} periods, calls {r.calls} days",
)

# In load order: a kind comes after those it reads.
KINDS: tuple[FileKind[Any], ...] = (QUEUES, WORK, GOALS, RETENTION)
