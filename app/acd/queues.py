"""Queue definitions (``ivr_flows/queues.yaml``): the one source for queues.conf, the
menu, the simulated PBX and the ACD core. Pure: parse from a mapping, no file I/O here."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Strategy = Literal["rrmemory", "leastrecent", "ringall", "fewestcalls", "random", "linear"]
EmptyRule = Literal[
    "paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"
]
QUEUE_NAME = re.compile(r"[a-z][a-z0-9_]{1,40}")


class QueueDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "rrmemory"
    ring_timeout: int = Field(15, ge=1, le=300)
    retry: int = Field(2, ge=0, le=300)
    wrapup_seconds: int = Field(30, ge=0, le=3600)
    maxlen: int = Field(0, ge=0)
    joinempty: tuple[EmptyRule, ...] = ("unavailable", "invalid")
    leavewhenempty: tuple[EmptyRule, ...] = ()
    max_wait_seconds: int = Field(1800, ge=10, le=14400)
    service_level_seconds: int = Field(180, ge=1, le=3600)


class QueueDef(QueueDefaults):
    name: str
    title: str
    calls_per_year: int = Field(0, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not QUEUE_NAME.fullmatch(value):
            raise ValueError("queue names are 2-41 of a-z, 0-9, '_', starting with a letter")
        return value


class QueueCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: QueueDefaults = QueueDefaults()
    queues: tuple[QueueDef, ...]

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        queues = data.get("queues") or []
        if isinstance(queues, list):
            data = {
                **data,
                "queues": [{**defaults, **q} if isinstance(q, dict) else q for q in queues],
            }
        return data

    @model_validator(mode="after")
    def _unique(self) -> QueueCatalogue:
        seen: set[str] = set()
        for q in self.queues:
            if q.name in seen:
                raise ValueError(f"queue {q.name!r} is defined twice")
            seen.add(q.name)
        return self

    def get(self, name: str) -> QueueDef | None:
        return next((q for q in self.queues if q.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.queues)
