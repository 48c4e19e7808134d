"""The FastAGI server component: asyncio streams, one task per connection.

Not panoramisk's (it spins forever on a client that leaves mid-environment and does not
import on 3.11). Each connection is an independent task with its own deadlines, so a slow,
silent or garbage-sending peer only ever holds its own task.

Sessions for the well-behaved: a connection holds one of ``max_sessions`` slots from the
start, but until it has answered a command (*unproven*, app/agi/channel.py) it may be
closed to make room: when every slot is taken and a new connection comes, the oldest
unproven one gives its slot up (``acd_agi_sessions{result="evicted"}``). Asterisk answers
within milliseconds, so a real call is proven long before it could be the oldest; clients
that send an environment and then never answer (600 of them used to hold every slot for
30 s each) only push each other out, and an unproven one waits at most ``env_timeout``.
Only when every slot holds a proven session is a connection answered cleanly (its
environment read, then closed without a route) and the dialplan's fallback puts the caller
in the general queue.

The warnings a flood causes go through a log budget (app/logbudget.py): 20 lines a
minute, then one line counting the rest.

The flows are the configuration registry's (app/config/registry.py): each session takes
the running flow when it starts and keeps it; a reload (SIGHUP, ``POST /v1/ivr/reload``)
changes what the next session takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from app.acd.estimates import EstimateSource
from app.acd.events import DomainEvent
from app.agi.channel import AgiChannel, AgiError, AgiLimits
from app.agi.protocol import ProtocolError
from app.agi.session import SessionDeps, run_session
from app.components import Health
from app.config.registry import ConfigRegistry
from app.metrics import Metrics
from app.privacy import CallerPrivacy

log = logging.getLogger(__name__)

REJECT_READ_SECONDS = 1.0


class AgiServer:
    name = "agi"
    required = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        config: ConfigRegistry,
        emit: Callable[[DomainEvent], None],
        estimates: EstimateSource,
        privacy: CallerPrivacy,
        metrics: Metrics,
        pbx: str,
        tz: ZoneInfo,
        clock: Callable[[], datetime],
        limits: AgiLimits | None = None,
        max_sessions: int = 500,
        counter: Callable[[str], Awaitable[int]] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.config = config
        self.metrics = metrics
        self.limits = limits or AgiLimits()
        self.max_sessions = max_sessions
        self.deps = SessionDeps(
            pbx=pbx,
            tz=tz,
            config=config,
            emit=emit,
            estimates=estimates,
            privacy=privacy,
            metrics=metrics,
            clock=clock,
            counter=counter,
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        # The channels holding a slot; the unproven ones among them, oldest first.
        self._admitted: set[AgiChannel] = set()
        self._unproven: OrderedDict[AgiChannel, None] = OrderedDict()
        self.evicted = 0

    # ---- Component ------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active(self) -> int:
        return len(self._admitted)

    @property
    def unproven(self) -> int:
        return len(self._unproven)

    async def start(self) -> None:
        if not self.config.current.flows:
            log.error("no IVR flows loaded; calls get the dialplan's fallback queue")
        self._server = await asyncio.start_server(
            self._handle, self.host, self.requested_port, reuse_address=True
        )
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Calls still in the menu lose their session; the dialplan falls back for them.
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def check(self) -> Health:
        current = self.config.current
        detail: dict[str, object] = {
            "port": self.port,
            "active": self.active,
            "unproven": self.unproven,
            "evicted": self.evicted,
            "max_sessions": self.max_sessions,
            "flows": sorted(current.flows),
            "version": current.version,
        }
        if self.config.last_errors:
            detail["rejected"] = [str(e) for e in self.config.last_errors[:20]]
        if self._server is None or not self._server.is_serving():
            return Health(False, "down", detail)
        if not current.flows:
            return Health(False, "no_flows", detail)
        return Health(True, "up", detail)

    # ---- connections ----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        channel = AgiChannel(reader, writer, self.limits)
        admitted = self._admit(channel)
        result = "error"
        try:
            if not admitted:
                result = await self._reject(channel)
                return
            try:
                result = await run_session(channel, self.deps)
            finally:
                self._release(channel)
        except asyncio.CancelledError:
            # The server is stopping. This task is the top of its own tree and asyncio's
            # start_server (3.11) logs an error for a handler task that ends cancelled,
            # so it ends normally; the dialplan falls back for this caller.
            result = "cancelled"
        except Exception:  # never let one connection's bug reach the server
            log.exception("FastAGI connection failed")
        finally:
            if channel.evicted:
                result = "evicted"
            self.metrics.agi_sessions.labels(result).inc()
            await channel.close()
            self._sessions.discard(task)

    def _admit(self, channel: AgiChannel) -> bool:
        """Give ``channel`` a slot, if need be the oldest unproven session's (module doc)."""
        if len(self._admitted) >= self.max_sessions:
            if not self._unproven:
                return False
            oldest, _ = self._unproven.popitem(last=False)
            self._admitted.discard(oldest)
            self.evicted += 1
            self.deps.warnings.warning(
                "evicted",
                "FastAGI: all %d sessions taken; the oldest that has not answered a command "
                "is closed for a new connection",
                self.max_sessions,
            )
            oldest.evict()
        self._admitted.add(channel)
        self._unproven[channel] = None
        channel.on_proven = lambda: self._unproven.pop(channel, None)
        self.metrics.agi_active.set(len(self._admitted))
        return True

    def _release(self, channel: AgiChannel) -> None:
        self._admitted.discard(channel)
        self._unproven.pop(channel, None)
        self.metrics.agi_active.set(len(self._admitted))

    async def _reject(self, channel: AgiChannel) -> str:
        self.deps.warnings.warning(
            "rejected",
            "FastAGI: %d sessions active (limit %d), all of them answering; caller goes to "
            "the dialplan fallback",
            len(self._admitted),
            self.max_sessions,
        )
        # Read the environment (briefly) so Asterisk sees an orderly close, not a reset.
        with contextlib.suppress(AgiError, ProtocolError, TimeoutError):
            async with asyncio.timeout(REJECT_READ_SECONDS):
                await channel.read_environment()
        return "rejected"
