"""Owner or standby: the component that runs a process's owner parts only while it holds
its PBX's lease (app/ha/lease.py).

- At start it tries the lease once: taken, the owner parts start in order at once (a
  single process behaves as it always did); else the standby parts start (the live
  picture followed from Redis) and it tries again every ``poll`` seconds.
- A standby that takes the lease stops its standby parts and starts the owner parts: the
  writer, the pipeline (which restores the calls left open from the log), the live board,
  the AMI link (which logs in and resyncs from the PBX), the dialer, the relay receiver.
- The owner renews every ``renew`` seconds. When the lease is no longer its own (taken
  over after it hung), or the database refused a write as fenced, it *steps down*: the
  owner parts stop, the process says ``deposed`` (``/ready`` 503) and ``on_lost`` is
  called (``acd serve`` exits, so that its supervisor starts it again, as a standby). A
  deposed owner's state is not trusted again: its successor rebuilt the truth from the
  PBX and the log.
- A database that does not answer is not a reason to step down: nobody can take the lease
  in it meanwhile, and a write after a takeover is fenced anyway. The owner goes on
  (spilling, as one process does through an outage) with its lease *unconfirmed*: it does
  not act on the PBX (``may_act``) until a renewal answers.
- A clean stop releases the lease, so a standby takes over at its next try.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from app.components import Component, Health, cancel_tasks
from app.ha.lease import Lease, Taken
from app.ha.relay import ClockShare
from app.metrics import Metrics

log = logging.getLogger(__name__)

Role = Literal["starting", "owner", "standby", "deposed"]


class Ownership:
    """Component (module doc). ``name`` is ``lease``; ``/ready`` shows its role."""

    name = "lease"
    required = True

    def __init__(
        self,
        lease: Lease,
        *,
        owner_parts: Sequence[Component],
        standby_parts: Sequence[Component],
        metrics: Metrics,
        renew: float,
        poll: float,
        wall: Callable[[], datetime],
        on_lost: Callable[[str], None] | None = None,
        clock_share: ClockShare | None = None,
    ) -> None:
        # The PBX's clock: published by the owner at each renewal, followed by a standby
        # at each try (app/ha/relay.py).
        self.clock_share = clock_share
        self.wall = wall  # the host's time (PbxClock.wall): when a role began
        self.lease = lease
        self.pbx = lease.pbx
        self.owner_parts = list(owner_parts)
        self.standby_parts = list(standby_parts)
        self.metrics = metrics
        self.renew_every = renew
        self.poll_every = poll
        self.on_lost = on_lost
        self.role: Role = "starting"
        self.since: datetime | None = None
        self.taken: Taken | None = None
        self.takeover_seconds: float | None = None  # lease taken -> owner parts started
        self.lost_cause: str | None = None
        self._unconfirmed = False  # owner whose renewals the database does not answer
        self.last_error: str | None = None
        self._running: list[Component] = []
        self._task: asyncio.Task[None] | None = None
        self._losing: asyncio.Task[None] | None = None
        metrics.owner.labels(self.pbx).set(0)

    # ---- what others ask ----------------------------------------------------------------

    @property
    def is_owner(self) -> bool:
        """This process owns the PBX now (events go into its own pipeline)."""
        return self.role == "owner"

    def may_act(self) -> bool:
        """Owner and, by its own clock, still within its lease: may act on the PBX (the
        dialer's Originate). After a pause this is False before anything else runs."""
        return self.role == "owner" and self.lease.held

    def active(self) -> list[Component]:
        """The parts running now (``/ready`` checks them too)."""
        return list(self._running)

    def fenced(self) -> None:
        """The database refused a write of ours as stale: step down now."""
        if self.role == "owner" and self._losing is None:
            self._losing = asyncio.get_running_loop().create_task(self._lose("fenced"))

    # ---- component ----------------------------------------------------------------------

    async def start(self) -> None:
        taken = None
        try:
            taken = await self.lease.try_acquire()
        except Exception as exc:  # the database away: a standby until it answers
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("lease of %s: database unreachable at start (%s)", self.pbx, exc)
        if taken is not None:
            await self._become_owner(taken, time.monotonic())
        else:
            if self.clock_share is not None:
                await self.clock_share.follow()
            await self._become_standby()
        self._task = asyncio.create_task(self._loop(), name=f"acd-lease-{self.pbx}")

    async def stop(self) -> None:
        await cancel_tasks(self._task, self._losing)
        await self._stop_running()
        if self.role == "owner":
            await self.lease.release()
            log.info("pbx %s: lease released at stop", self.pbx)
        self.metrics.owner.labels(self.pbx).set(0)
        await self.lease.close()

    async def check(self) -> Health:
        detail: dict[str, Any] = {
            "pbx": self.pbx,
            "role": self.role,
            "holder": self.lease.holder,
        }
        if self.role == "owner":
            detail["epoch"] = self.lease.epoch
            if not self.lease.held:
                detail["lease"] = "unconfirmed: the database does not answer"
            if self.taken is not None:
                detail["cause"] = self.taken.cause
                detail["previous_holder"] = self.taken.previous
        elif self.role == "standby":
            try:
                who = await self.lease.who()
            except Exception as exc:
                return Health(False, "down", {**detail, "error": type(exc).__name__})
            if who is not None:
                detail["owner"] = who[0] if who[2] else None
                detail["epoch"] = who[1]
        if self.since is not None:
            detail["since"] = self.since.isoformat()
        if self.lost_cause is not None:
            detail["lost_cause"] = self.lost_cause
        if self.role == "deposed":
            return Health(False, "deposed", detail)
        return Health(self.role in ("owner", "standby"), self.role, detail)

    # ---- the loop -----------------------------------------------------------------------

    async def _loop(self) -> None:
        while self.role in ("owner", "standby"):
            share = self.clock_share
            if self.role == "owner":
                await asyncio.sleep(self.renew_every)
                await self._renew()
                if share is not None and self.role == "owner":
                    await share.publish()
            else:
                await asyncio.sleep(self.poll_every)
                if share is not None:
                    await share.follow()
                await self._try_take()

    async def _renew(self) -> None:
        try:
            mine = await asyncio.wait_for(self.lease.renew(), max(0.5, self.lease.ttl / 3))
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("lease of %s: renewal failed (%s)", self.pbx, self.last_error)
            mine = None
        else:
            self.last_error = None
        if mine is False:
            await self._lose("taken over")
        elif mine is None and not self.lease.held and not self._unconfirmed:
            # The database does not answer. No other process can take the lease meanwhile
            # unless it reaches that database (a partition), and then every write of ours
            # is refused by the fence and the next renewal that answers says "taken
            # over". So the owner keeps its parts through a database outage (the AMI link
            # goes on, the writer spills, as with one process) and only stops acting on
            # the PBX (may_act: the dialer waits) until the database confirms the lease.
            self._unconfirmed = True
            log.warning(
                "pbx %s: lease unconfirmed (the database does not answer); owning on, "
                "not acting on the PBX until it answers",
                self.pbx,
            )
        if mine is True and self._unconfirmed:
            self._unconfirmed = False
            log.warning("pbx %s: lease confirmed again (epoch %s)", self.pbx, self.lease.epoch)

    async def _try_take(self) -> None:
        try:
            taken = await self.lease.try_acquire()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return
        self.last_error = None
        if taken is None:
            return
        started = time.monotonic()
        await self._stop_running()
        try:
            await self._become_owner(taken, started)
        except Exception:
            log.exception("pbx %s: the owner parts did not start", self.pbx)
            await self._lose("start failed")

    async def _become_owner(self, taken: Taken, started: float) -> None:
        self.role, self.taken = "owner", taken
        self.since = self.wall()
        self.metrics.owner.labels(self.pbx).set(1)
        self.metrics.handovers.labels(self.pbx, taken.cause).inc()
        log.warning(
            "pbx %s: this process is now the owner (epoch %d, cause: %s, previous holder: %s)",
            self.pbx,
            taken.epoch,
            taken.cause,
            taken.previous or "none",
        )
        await self._start_all(self.owner_parts)
        self.takeover_seconds = time.monotonic() - started
        log.info("pbx %s: owner parts started in %.2f s", self.pbx, self.takeover_seconds)

    async def _become_standby(self) -> None:
        self.role = "standby"
        self.since = self.wall()
        log.info("pbx %s: standby (another process owns it)", self.pbx)
        await self._start_all(self.standby_parts)

    async def _lose(self, cause: str) -> None:
        if self.role != "owner":
            return
        self.role, self.lost_cause = "deposed", cause
        self.metrics.owner.labels(self.pbx).set(0)
        self.metrics.lease_lost.labels(self.pbx, cause).inc()
        log.critical(
            "pbx %s: lease lost (%s, epoch %s); this process stops owning the PBX",
            self.pbx,
            cause,
            self.taken.epoch if self.taken else None,
        )
        self.lease.epoch = None  # every write from here on is refused by the fence
        await self._stop_running()
        if self.on_lost is not None:
            self.on_lost(cause)

    async def _start_all(self, parts: Sequence[Component]) -> None:
        for part in parts:
            await part.start()
            self._running.append(part)

    async def _stop_running(self) -> None:
        running, self._running = self._running, []
        for part in reversed(running):
            try:
                await part.stop()
            except Exception:
                log.exception("stopping %s failed", part.name)
