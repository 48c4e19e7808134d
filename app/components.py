"""What the lifespan starts and stops, and what ``/ready`` asks about.

A component is an adapter with a life: the database engine, the Redis mirror, the AMI
link, the FastAGI server, the event writer. The lifespan starts them in order and stops
them in reverse; ``/ready`` asks each one ``check()``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store.db import ping


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    state: str  # short word: up, down, connecting, disabled, ...
    detail: dict[str, Any] = field(default_factory=dict)


class Component(Protocol):
    name: str
    required: bool  # does ``/ready`` fail when this is not ok?

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check(self) -> Health: ...


CHECK_TIMEOUT = 2.0
log = logging.getLogger(__name__)


async def cancel_tasks(*tasks: asyncio.Task[Any] | None, rounds: int = 20) -> None:
    """A component's stop: cancel its background tasks and wait until each has ended. A
    task that had already failed is logged, not raised: stopping must go on.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` returns
    the inner result, and drops the cancellation, when the inner future completes in the
    same loop pass as the cancel (fixed in 3.12). A task caught there would run on and a
    plain ``await task`` would wait for ever, so a task still running half a second after
    its cancel is cancelled again (at most ``rounds`` times, then it is left, logged)."""
    live = [t for t in tasks if t is not None]
    pending = {t for t in live if not t.done()}
    for task in pending:
        task.cancel()
    for _ in range(rounds):
        if not pending:
            break
        _done, pending = await asyncio.wait(pending, timeout=0.5)
        for task in pending:
            task.cancel()
    for task in pending:
        log.error("%s did not end after %d cancels; left running", task.get_name(), rounds)
    for task in live:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())


async def checked(component: Component) -> Health:
    """``component.check()`` bounded in time; an exception or timeout is a ``down``."""
    try:
        return await asyncio.wait_for(component.check(), CHECK_TIMEOUT)
    except TimeoutError:
        return Health(False, "timeout")
    except Exception as exc:  # a probe must never raise into /ready
        return Health(False, "down", {"error": type(exc).__name__, "message": str(exc)[:200]})


class DatabaseComponent:
    name = "database"
    required = True

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.engine.dispose()

    async def check(self) -> Health:
        await ping(self.engine)
        return Health(True, "up", {"backend": self.engine.dialect.name})


class RedisComponent:
    name = "redis"

    def __init__(self, client: Redis, required: bool = True) -> None:
        self.client = client
        # Required on an API replica (its live picture comes from Redis); not on the
        # process that handles calls, whose work goes on without Redis.
        self.required = required

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> Health:
        await self.client.ping()
        return Health(True, "up")


class PeriodicJob:
    """Base of a component that runs ``run_once`` every ``interval`` seconds in the
    background (the report tallies, the reports kept each period): its start and stop,
    and a ``check`` that says when it last ran, what it did (``progress``) and its last
    error. A run that raises is logged and tried again next time; ``run_once`` sets
    ``last_run`` and clears ``last_error`` when it succeeds, or sets ``last_error`` itself
    for a partial failure."""

    name = "job"
    required = False
    interval = 60.0

    def __init__(self) -> None:
        self.last_run: datetime | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> object:
        raise NotImplementedError

    def progress(self) -> dict[str, Any]:
        """What the last run did, for ``/ready``."""
        return {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel_tasks(self._task)

    async def check(self) -> Health:
        detail = self.progress()
        if self.last_run is not None:
            detail["last_run"] = self.last_run.astimezone(UTC).isoformat()
        if self.last_error:
            detail["last_error"] = self.last_error
        ok = self.last_error is None
        return Health(ok, "up" if ok else "failing", detail)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, say: try again next time
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("%s failed; next try in %.0f s", self.name, self.interval)
            await asyncio.sleep(self.interval)
