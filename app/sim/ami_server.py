"""The AMI server socket adapter: many clients, each a ``ManagerSession``.

- The banner goes out on connect; bytes in go to the session; its output is written.
- Every PBX event is offered to every session (``Events: on|off``, read permissions,
  event filters are the session's business).
- A client that does not read must not stall the PBX: writes never block, and when a
  client's unsent bytes stay above ``max_buffer`` for ``write_timeout`` seconds (or pass
  ``hard_limit``) it is dropped, as Asterisk drops a manager session whose socket write
  times out (manager.conf ``writetimeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field

from app.sim import amiproto
from app.sim.channels import Event
from app.sim.manager import ManagerSession, ManagerUser
from app.sim.pbx import Pbx

log = logging.getLogger("app.sim.ami")


@dataclass(eq=False)
class _Client:
    server: AmiServer
    writer: asyncio.StreamWriter
    session: ManagerSession | None = None
    closed: bool = False
    stalled_since: float | None = None
    sent_bytes: int = 0
    peak_pending: int = 0  # most bytes ever waiting in the transport
    dropped: bool = False
    login_index: int | None = None  # its entry in AmiServer.logins once logged in
    _tasks: set[asyncio.Handle] = field(default_factory=set)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            self.closed = True
            return
        transport.write(data)
        self.sent_bytes += len(data)
        pending = transport.get_write_buffer_size()
        self.peak_pending = max(self.peak_pending, pending)
        srv = self.server
        if pending > srv.hard_limit:
            self.drop(f"{pending} bytes unsent")
        elif pending > srv.max_buffer:
            now = asyncio.get_running_loop().time()
            if self.stalled_since is None:
                self.stalled_since = now
            elif now - self.stalled_since > srv.write_timeout:
                self.drop(f"not reading for {now - self.stalled_since:.1f} s")
        else:
            self.stalled_since = None

    def drop(self, why: str) -> None:
        if self.closed:
            return
        log.warning("dropping AMI client: %s", why)
        self.closed = True
        self.dropped = True
        self.server.dropped += 1
        self.writer.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    def auth_fail(self, action_id: str | None) -> None:
        # manager.c sleeps a second before "Authentication failed", then hangs up.
        loop = asyncio.get_running_loop()

        def later() -> None:
            self.send(amiproto.error(action_id, "Authentication failed"))
            self.close()

        self._tasks.add(loop.call_later(self.server.auth_fail_delay, later))


class AmiServer:
    """Asyncio TCP server for the simulated manager interface."""

    def __init__(
        self,
        pbx: Pbx,
        users: dict[str, ManagerUser],
        host: str = "127.0.0.1",
        port: int = 5038,
        *,
        timestampevents: bool | None = None,
        max_buffer: int = 1 << 20,
        hard_limit: int = 16 << 20,
        write_timeout: float = 5.0,
        auth_fail_delay: float = 1.0,
        sndbuf: int | None = None,
    ) -> None:
        self.pbx = pbx
        self.users = users
        self.host = host
        self.port = port
        self.timestampevents = (
            pbx.config.timestampevents if timestampevents is None else timestampevents
        )
        self.max_buffer = max_buffer
        self.hard_limit = hard_limit
        self.write_timeout = write_timeout
        self.auth_fail_delay = auth_fail_delay
        self.sndbuf = sndbuf  # SO_SNDBUF of client sockets (tests shrink it)
        self.clients: set[_Client] = set()
        self.dropped = 0
        self.connections = 0
        # Every successful login: (monotonic time in, time out or None while on), and the
        # most sessions ever logged in at once (several service processes for one PBX
        # must never hold two: app/ha).
        self.logins: list[tuple[float, float | None]] = []
        self.login_pbx_times: list[float] = []  # the PBX's clock at each of those logins
        self.most_at_once = 0
        self._server: asyncio.Server | None = None
        self._held: list[Event] = []
        self._holding = 0
        pbx.listeners.append(self.publish)

    @property
    def logged_in(self) -> int:
        """Sessions logged in now."""
        return sum(
            1
            for c in self.clients
            if not c.closed and c.login_index is not None and c.session is not None
        )

    # ----------------------------------------------------------------- hub
    def hold(self) -> None:
        self._holding += 1

    def release(self) -> None:
        self._holding -= 1
        if self._holding == 0 and self._held:
            held, self._held = self._held, []
            for ev in held:
                self._fan_out(ev)

    def publish(self, ev: Event) -> None:
        if self._holding:
            self._held.append(ev)
        else:
            self._fan_out(ev)

    def _fan_out(self, ev: Event) -> None:
        for client in tuple(self.clients):
            if client.session is not None and not client.closed:
                client.session.deliver(ev)

    async def backpressure(self) -> None:
        """For benchmarks in fast mode: let logged-in clients drain before virtual time
        moves on (a real Asterisk does not wait; it drops slow clients). A client that
        does not drain within ``write_timeout`` is dropped as usual."""
        for client in tuple(self.clients):
            if client.closed or client.session is None or not client.session.authenticated:
                continue
            if client.writer.transport.get_write_buffer_size() <= self.max_buffer // 4:
                continue
            try:
                await asyncio.wait_for(client.writer.drain(), self.write_timeout)
            except (TimeoutError, ConnectionError, OSError):
                client.drop("did not drain in time")

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen (again, after ``stop``: a restarted PBX, on the same port)."""
        if self.publish not in self.pbx.listeners:
            self.pbx.listeners.append(self.publish)
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    def cut(self) -> None:
        """Stop listening, close every session and hear no more events, all at once (no
        await: a PBX crash is one moment of virtual time; see ``SimulatedPbx.restart``)."""
        if self._server is not None:
            self._server.close()
        for client in tuple(self.clients):
            client.close()
        if self.publish in self.pbx.listeners:
            self.pbx.listeners.remove(self.publish)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sock = writer.get_extra_info("socket")
        if self.sndbuf is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        # drain() (back-pressure) waits below a quarter of the buffer limit
        writer.transport.set_write_buffer_limits(high=self.max_buffer, low=self.max_buffer // 4)
        client = _Client(self, writer)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = writer.get_extra_info("sockname") or (self.host, self.port)
        session = ManagerSession(
            pbx=self.pbx,
            users=self.users,
            send=client.send,
            close=client.close,
            local=f"{local[0]}/{local[1]}",
            remote=f"{peer[0]}/{peer[1]}",
            auth_fail=client.auth_fail,
            timestampevents=self.timestampevents,
            hub=self,
        )
        client.session = session
        self.clients.add(client)
        client.send(amiproto.BANNER)
        try:
            while not client.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if session.closed:
                    continue
                session.data_received(data)
                if client.login_index is None and session.authenticated:
                    client.login_index = len(self.logins)
                    self.logins.append((time.monotonic(), None))
                    self.login_pbx_times.append(self.pbx.now())
                    self.most_at_once = max(self.most_at_once, self.logged_in)
        except (ConnectionError, OSError):
            pass
        finally:
            if client.login_index is not None:
                at, _ = self.logins[client.login_index]
                self.logins[client.login_index] = (at, time.monotonic())
            self.clients.discard(client)
            # A refused login closes itself once its delayed answer went out.
            if not client.closed and not session.closed:
                client.close()
