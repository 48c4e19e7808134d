"""A running FastAGI server for the tests: real TCP, fake clock, collected events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.acd.estimates import EstimateSource, QueueEstimate, no_estimates
from app.acd.events import DomainEvent
from app.agi.channel import AgiLimits
from app.agi.server import AgiServer
from app.config.registry import ConfigRegistry
from app.metrics import Metrics
from app.privacy import CallerPrivacy
from tests.agi_fake_asterisk import FakeAsterisk

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "ivr_flows"
CPH = ZoneInfo("Europe/Copenhagen")
HASH_KEY = b"test-caller-hash-key-0123456789"


def cph(*args: int) -> datetime:
    """A Copenhagen wall-clock time as the aware UTC datetime the service's clock gives."""
    return datetime(*args, tzinfo=CPH).astimezone(UTC)  # type: ignore[misc]


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def waits(**seconds: float | None) -> EstimateSource:
    """Live estimates: queue -> estimated wait (None = unknown)."""

    def source(queue: str) -> QueueEstimate | None:
        if queue not in seconds:
            return None
        return QueueEstimate(queue, 10, 4, 0, seconds[queue])

    return source


@dataclass
class Harness:
    server: AgiServer
    config: ConfigRegistry
    events: list[DomainEvent]
    metrics: Metrics
    pbx: FakeAsterisk
    clock: FakeClock
    privacy: CallerPrivacy = field(default_factory=lambda: CallerPrivacy(HASH_KEY))

    def kinds(self, uniqueid: str | None = None) -> list[str]:
        return [e.kind for e in self.events if uniqueid is None or e.uniqueid == uniqueid]

    def of(self, kind: str, uniqueid: str | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if e.kind == kind and (uniqueid is None or e.uniqueid == uniqueid)
        ]

    def one(self, kind: str, uniqueid: str | None = None) -> Any:
        found = self.of(kind, uniqueid)
        assert len(found) == 1, (kind, [e.kind for e in self.events])
        return found[0]

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@asynccontextmanager
async def agi_service(
    *,
    at: datetime,
    estimates: EstimateSource = no_estimates,
    flows_dir: Path = FLOWS,
    limits: AgiLimits | None = None,
    max_sessions: int = 50,
    sighup: bool = False,
    emit: Callable[[DomainEvent], None] | None = None,
) -> AsyncIterator[Harness]:
    events: list[DomainEvent] = []
    metrics = Metrics()
    clock = FakeClock(at)
    privacy = CallerPrivacy(HASH_KEY)
    config = ConfigRegistry(flows_dir, metrics, sighup=sighup)
    config.load()
    server = AgiServer(
        host="127.0.0.1",
        port=0,
        config=config,
        emit=emit or events.append,
        estimates=estimates,
        privacy=privacy,
        metrics=metrics,
        pbx="pbx1",
        tz=CPH,
        clock=clock,
        limits=limits,
        max_sessions=max_sessions,
    )
    await config.start()
    await server.start()
    try:
        yield Harness(
            server, config, events, metrics, FakeAsterisk("127.0.0.1", server.port), clock, privacy
        )
    finally:
        await server.stop()
        await config.stop()
