"""The AMI protocol over a real socket: bounded reads into one reused buffer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from app.ami import link as ami_link
from app.ami.parser import AmiFrame
from app.metrics import Metrics


class _Collect:
    """Stands in for AmiLink: what the protocol hands over, read by read."""

    def __init__(self) -> None:
        self.frames: list[AmiFrame] = []
        self.reads = 0
        self.metrics = Metrics()
        self.last_event_at: datetime | None = None

    def clock(self) -> datetime:
        return datetime.now(UTC)

    def on_frame(self, frame: AmiFrame, received: datetime) -> None:
        self.frames.append(frame)

    def on_skipped(self, skipped: dict[bytes, int]) -> None:
        pass

    def on_batch_end(self) -> None:
        self.reads += 1


async def _receive(payload: bytes) -> tuple[_Collect, list[int]]:
    collect = _Collect()
    sizes: list[int] = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)  # all at once: the kernel hands over as much as it has
        await writer.drain()
        writer.close()

    class Protocol(ami_link._Protocol):
        def __init__(self) -> None:
            super().__init__()
            self.link: Any = collect

        def data_received(self, data: Any) -> None:
            sizes.append(len(data))
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(Protocol, "127.0.0.1", port)
        await asyncio.wait_for(done.wait(), 20)
        transport.close()
    finally:
        server.close()
        await server.wait_closed()
    return collect, sizes


async def test_a_burst_is_read_in_bounded_pieces_and_every_frame_is_intact() -> None:
    # ~1 MB of distinct frames with a two-byte character in each, so that the read
    # boundaries fall inside frames and inside characters; the buffer each read lands
    # in is reused, so a frame kept as a view of it would come out wrong.
    frames = [
        (
            f"Event: QueueMemberPause\r\nQueue: dagpenge\r\nMemberName: Søren Ærø {i}\r\n"
            f"Interface: PJSIP/agent{i % 50}\r\nPaused: 1\r\nPausedReason: Møde {i:07d}"
        ).encode()
        for i in range(8000)
    ]
    payload = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(f + b"\r\n\r\n" for f in frames)
    assert len(payload) > 20 * ami_link.READ_SIZE

    collect, sizes = await _receive(payload)

    assert max(sizes) <= ami_link.READ_SIZE
    assert collect.reads == len(sizes) >= len(payload) // ami_link.READ_SIZE
    assert [f.raw for f in collect.frames] == frames
    assert collect.frames[7999].get("MemberName") == "Søren Ærø 7999"
    assert collect.frames[4321].get("PausedReason") == "Møde 0004321"
    assert collect.last_event_at is not None
