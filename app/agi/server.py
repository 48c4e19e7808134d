"""The FastAGI server component: asyncio streams, one task per connection.

Not panoramisk's (it spins forever on a client that leaves mid-environment and does not
import on 3.11). Each connection is an independent task with its own deadlines, so a slow,
silent or garbage-sending peer only ever holds its own task. Beyond ``max_sessions`` a
connection is answered cleanly (its environment read, then closed without a route) and the
dialplan's fallback puts the caller in the general queue.

Flows are reloaded on SIGHUP and through :meth:`AgiServer.reload` (``POST
/v1/ivr/reload``); a broken flow set is rejected and the running one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.acd.estimates import EstimateSource, QueueEstimate
from app.acd.events import DomainEvent
from app.agi.channel import AgiChannel, AgiError, AgiLimits
from app.agi.protocol import ProtocolError
from app.agi.session import SessionDeps, run_session
from app.components import Health
from app.ivr.registry import FlowRegistry, ReloadResult
from app.metrics import Metrics
from app.privacy import CallerPrivacy

if TYPE_CHECKING:
    from app.main import Runtime

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
        registry: FlowRegistry,
        emit: Callable[[DomainEvent], None],
        estimates: EstimateSource,
        privacy: CallerPrivacy,
        metrics: Metrics,
        pbx: str,
        tz: ZoneInfo,
        clock: Callable[[], datetime],
        limits: AgiLimits | None = None,
        max_sessions: int = 500,
        sighup: bool = True,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.metrics = metrics
        self.limits = limits or AgiLimits()
        self.max_sessions = max_sessions
        self.sighup = sighup
        self.deps = SessionDeps(
            pbx=pbx,
            tz=tz,
            registry=registry,
            emit=emit,
            estimates=estimates,
            privacy=privacy,
            metrics=metrics,
            clock=clock,
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._active = 0
        self._reload_lock = asyncio.Lock()
        self._sighup_installed = False
        self._background: set[asyncio.Task[ReloadResult]] = set()

    @classmethod
    def from_runtime(cls, rt: Runtime, clock: Callable[[], datetime] | None = None) -> AgiServer:
        s = rt.settings

        def estimates(queue: str) -> QueueEstimate | None:
            return rt.estimates(queue)  # late-bound: the live state replaces it when it runs

        return cls(
            host=s.agi_host,
            port=s.agi_port,
            registry=FlowRegistry(Path(s.ivr_flows)),
            emit=rt.emit,
            estimates=estimates,
            privacy=rt.privacy,
            metrics=rt.metrics,
            pbx=s.pbx_id,
            tz=s.tz,
            clock=clock or rt.clock,  # the PBX's (app/clock.py): opening hours are its
            limits=AgiLimits(
                env_timeout=s.agi_env_timeout,
                reply_timeout=s.agi_reply_timeout,
                session_seconds=s.agi_session_timeout,
            ),
            max_sessions=s.agi_max_sessions,
        )

    # ---- Component ------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active(self) -> int:
        return self._active

    async def start(self) -> None:
        result = await self.reload()
        if not result.ok:
            log.error(
                "IVR flows not loaded; calls get the dialplan's fallback queue:\n  %s",
                "\n  ".join(str(e) for e in result.errors),
            )
        self._server = await asyncio.start_server(
            self._handle, self.host, self.requested_port, reuse_address=True
        )
        if self.sighup:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._sighup_installed = True
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._sighup_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup_installed = False
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
        current = self.registry.current
        detail: dict[str, object] = {
            "port": self.port,
            "active": self._active,
            "max_sessions": self.max_sessions,
            "flows": sorted(current.flows) if current else [],
            "version": current.version if current else "",
        }
        if self.registry.last_errors:
            detail["rejected"] = [str(e) for e in self.registry.last_errors[:20]]
        if self._server is None or not self._server.is_serving():
            return Health(False, "down", detail)
        if current is None:
            return Health(False, "no_flows", detail)
        return Health(True, "up", detail)

    # ---- reload ---------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Load and check every flow file; swap them in only if all are valid."""
        async with self._reload_lock:
            result = await asyncio.to_thread(self.registry.reload)
        self.metrics.ivr_flow_reloads.labels("ok" if result.ok else "rejected").inc()
        if result.ok:
            log.info("IVR flows loaded: %s (version %s)", ", ".join(result.flows), result.version)
        else:
            log.error(
                "IVR flow reload rejected, keeping version %s:\n  %s",
                result.version or "(none)",
                "\n  ".join(str(e) for e in result.errors),
            )
        return result

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- connections ----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        channel = AgiChannel(reader, writer, self.limits)
        over_limit = self._active >= self.max_sessions
        result = "error"
        try:
            if over_limit:
                result = await self._reject(channel)
                return
            self._active += 1
            self.metrics.agi_active.set(self._active)
            try:
                result = await run_session(channel, self.deps)
            finally:
                self._active -= 1
                self.metrics.agi_active.set(self._active)
        except asyncio.CancelledError:
            # The server is stopping. This task is the top of its own tree and asyncio's
            # start_server (3.11) logs an error for a handler task that ends cancelled,
            # so it ends normally; the dialplan falls back for this caller.
            result = "cancelled"
        except Exception:  # never let one connection's bug reach the server
            log.exception("FastAGI connection failed")
        finally:
            self.metrics.agi_sessions.labels(result).inc()
            await channel.close()
            self._sessions.discard(task)

    async def _reject(self, channel: AgiChannel) -> str:
        log.warning(
            "FastAGI: %d sessions active (limit %d); caller goes to the dialplan fallback",
            self._active,
            self.max_sessions,
        )
        # Read the environment (briefly) so Asterisk sees an orderly close, not a reset.
        with contextlib.suppress(AgiError, ProtocolError, TimeoutError):
            async with asyncio.timeout(REJECT_READ_SECONDS):
                await channel.read_environment()
        return "rejected"
