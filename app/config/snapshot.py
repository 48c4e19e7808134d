"""One immutable, versioned view of every configuration file the service runs on.

A snapshot is never changed: a reload builds a new one and the registry swaps it in whole
(app/config/registry.py). Who keeps one across a call keeps a consistent set (a FastAGI
session keeps the flow it started with); who wants the running set asks the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from app.acd.queues import QueueCatalogue, QueueDef
from app.acd.work import WorkConfig
from app.config.kinds import QUEUES, WORK, FileKind
from app.ivr.model import Flow

T = TypeVar("T")


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    version: str  # hash of the files' names and contents ("" = nothing loaded)
    flows: Mapping[str, Flow] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)  # by kind name; None = absent
    files: tuple[str, ...] = ()  # the files it was read from

    def __post_init__(self) -> None:
        object.__setattr__(self, "flows", _frozen(self.flows))
        object.__setattr__(self, "values", _frozen(self.values))

    def __getitem__(self, kind: FileKind[T]) -> T | None:
        value: T | None = self.values.get(kind.name)
        return value

    @property
    def queues(self) -> QueueCatalogue | None:
        return self[QUEUES]

    @property
    def work(self) -> WorkConfig | None:
        return self[WORK]

    @property
    def queue_names(self) -> tuple[str, ...]:
        return self.queues.names if self.queues is not None else ()

    def queue(self, name: str) -> QueueDef | None:
        return self.queues.get(name) if self.queues is not None else None

    def flow(self, name: str) -> Flow | None:
        return self.flows.get(name)


EMPTY = ConfigSnapshot("")
