"""A TCP proxy that can cut a link: between the service and the simulated PBX (AMI), for
the fault tests and benchmarks.

    async with LinkProxy(target_port=sim.ami_port) as proxy:
        # point the service at 127.0.0.1:proxy.port instead of the PBX
        proxy.cut()        # every connection through it is dropped, new ones refused
        ...
        proxy.restore()    # listening again, on the same port
        await proxy.cut_for(30.0)   # or both, N seconds apart (wall clock)

``cut()`` and ``restore()`` are plain functions, so a simulated PBX's timer (virtual time)
can call them: ``sim.kernel.call_at(t, proxy.cut)``. A cut aborts both sides of every
connection (the service sees the connection reset, as when a firewall or a PBX restart
drops it) and closes the listening socket, so a reconnect is refused (ECONNREFUSED) until
``restore()`` listens again. Listens on 127.0.0.1 only; forwards bytes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class LinkProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port`` until cut."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = "127.0.0.1"
        self.port = port  # the listening port, fixed at the first start (0: a free one)
        self.cuts = 0  # how many times the link was cut
        self.connections = 0  # connections accepted so far
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._cut = False
        self._sock: socket.socket | None = None
        self._starting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._listen()
        await self._serving()

    async def stop(self) -> None:
        self._cut = True
        self._drop_all()
        await self._close_server()

    async def __aenter__(self) -> LinkProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    # ------------------------------------------------------------------ the fault
    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        if self._cut:
            return
        self._cut = True
        self.cuts += 1
        self._drop_all()
        self._unlisten()
        log.info("link proxy :%d cut", self.port)

    def restore(self) -> None:
        """Listen again on the same port; new connections go through."""
        if not self._cut:
            return
        self._cut = False
        self._listen()
        log.info("link proxy :%d restored", self.port)

    async def cut_for(self, seconds: float) -> None:
        """Cut, wait ``seconds`` (wall clock), restore."""
        self.cut()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.restore()
        await self._serving()

    # ------------------------------------------------------------------ internals
    def _listen(self) -> None:
        # The socket is bound and listening at once (synchronously), so a connect right
        # after restore() waits in the backlog instead of being refused.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(100)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._starting = asyncio.get_running_loop().create_task(self._serve(sock))

    def _unlisten(self) -> None:
        """Close the listening socket now (connects are refused from here on)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        try:
            server = await asyncio.start_server(self._handle, sock=sock)
        except OSError:  # closed by a cut before the server was up
            return
        if sock is not self._sock:  # cut (or cut and restored) meanwhile
            server.close()
            return
        self._server = server

    async def _serving(self) -> None:
        if self._starting is not None:
            await self._starting

    async def _close_server(self) -> None:
        await self._serving()
        server = self._server
        self._unlisten()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def _drop_all(self) -> None:
        pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            pair.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        self.connections += 1
        pair = _Pair(writer)
        self._pairs.add(pair)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self._pairs.discard(pair)
            writer.transport.abort()
            return
        pair.upstream = up_writer
        if pair not in self._pairs:  # cut while connecting upstream
            pair.abort()
            return
        loop = asyncio.get_running_loop()
        pair.tasks = [
            loop.create_task(self._pump(reader, up_writer, pair)),
            loop.create_task(self._pump(up_reader, writer, pair)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        self._pairs.discard(pair)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair
    ) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end the other too (an orderly close is passed on).
            for w in (pair.client, pair.upstream):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()
            for task in pair.tasks:
                if task is not asyncio.current_task():
                    task.cancel()


__all__ = ["LinkProxy"]
