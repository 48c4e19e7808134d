"""The link proxy of the fault tests (app/sim/proxy.py): forwards both ways, a cut drops
every connection and refuses new ones, a restore listens again on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.sim.proxy import LinkProxy


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    finally:
        writer.close()


async def test_forwards_both_ways_on_loopback(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        assert proxy.port != echo and proxy.host == "127.0.0.1"
        big = bytes(range(256)) * 1000  # more than one read
        assert await roundtrip(proxy.port, big) == big
        assert proxy.connections == 1


async def test_a_cut_drops_connections_and_refuses_new_ones_until_restored(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        assert proxy.open_connections == 1

        proxy.cut()
        assert proxy.is_cut and proxy.cuts == 1 and proxy.open_connections == 0
        # The open connection is gone: the reader sees the end (or a reset).
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)

        port = proxy.port
        proxy.restore()
        assert not proxy.is_cut and proxy.port == port
        assert await roundtrip(proxy.port, b"again") == b"again"


async def test_cut_for_restores_after_the_given_time(echo: int) -> None:
    async with LinkProxy(echo) as proxy:
        loop = asyncio.get_running_loop()
        refused: list[bool] = []

        async def probe() -> None:
            await asyncio.sleep(0.1)
            try:
                await asyncio.open_connection("127.0.0.1", proxy.port)
                refused.append(False)
            except ConnectionRefusedError:
                refused.append(True)

        t0 = loop.time()
        await asyncio.gather(proxy.cut_for(0.4), probe())
        assert loop.time() - t0 >= 0.4
        assert refused == [True]
        assert await roundtrip(proxy.port, b"back") == b"back"
        assert proxy.cuts == 1


async def test_the_upstream_closing_closes_the_client(echo: int) -> None:
    async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(closer, "127.0.0.1", 0)
    try:
        async with LinkProxy(server.sockets[0].getsockname()[1]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            assert await asyncio.wait_for(reader.read(), 5) == b"bye"  # then EOF
            writer.close()
            for _ in range(50):
                if proxy.open_connections == 0:
                    break
                await asyncio.sleep(0.02)
            assert proxy.open_connections == 0
    finally:
        server.close()


async def test_a_cut_and_restore_from_plain_callbacks_before_the_server_is_up(echo: int) -> None:
    proxy = LinkProxy(echo)
    await proxy.start()
    try:
        # Timers of the simulated PBX call these synchronously, possibly back to back.
        proxy.cut()
        proxy.restore()
        proxy.cut()
        proxy.restore()
        assert await roundtrip(proxy.port, b"ok") == b"ok"
        assert proxy.cuts == 2
    finally:
        await proxy.stop()
