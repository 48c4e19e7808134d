"""Recorded AMI captures, and a TCP server that plays them to a client as Asterisk would.

The server speaks enough AMI for the service's client: the banner without a blank line
after it, Login (wrong secret refused as Asterisk does), Ping, and the resync list
actions (QueueStatus, QueueSummary, CoreShowChannels) answered from a configurable
snapshot. After login it streams a capture's frames, optionally with ``Timestamp``
headers (as ``timestampevents = yes`` gives) taken from the capture's arrival times, in
chunks of chosen sizes, and can cut the connection after a given frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.acd.events import DomainEvent
from app.ami.parser import AmiFrame, AmiParser

FIXTURES = Path(__file__).parent / "fixtures" / "ami"
SCENARIOS = (
    "01_answered",
    "02_agent_hangup",
    "03_abandon",
    "04_ringnoanswer",
    "05_ami_actions",
    "06_invalid_then_valid",
    "07_closed",
    "08_fastagi",
    "08b_fastagi_hangup",
    "09_blindtransfer",
    "09b_redirect",
    "11_rfc4733_dtmf",
)
# When the lab recorded (its events carry no Timestamp): a base for synthesised ones.
T0 = datetime(2026, 11, 22, 15, 45, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Capture:
    name: str
    banner: bytes
    frames: tuple[bytes, ...]  # each without its terminating blank line
    times: tuple[float, ...]  # seconds since connect, one per frame

    @property
    def raw(self) -> bytes:
        return (FIXTURES / f"{self.name}.ami.txt").read_bytes()

    def events(self) -> list[tuple[bytes, float]]:
        """The frames after the login response, with their times."""
        return [
            (f, t)
            for f, t in zip(self.frames, self.times, strict=True)
            if not f.startswith(b"Response: ")
        ]


def load_capture(name: str) -> Capture:
    raw = (FIXTURES / f"{name}.ami.txt").read_bytes()
    banner_end = raw.index(b"\r\n") + 2
    banner, body = raw[:banner_end], raw[banner_end:]
    frames = tuple(f for f in body.split(b"\r\n\r\n") if f)
    times = tuple(
        float(line.split("\t", 1)[0])
        for line in (FIXTURES / f"{name}.times.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    assert len(frames) == len(times), (name, len(frames), len(times))
    return Capture(name, banner, frames, times)


def capture_events(name: str) -> list[DomainEvent]:
    """A capture's frames through the parser and the normaliser, as the service reads
    them (pbx1, a fixed hash key), each at T0 plus its recorded offset."""
    from app.ami.normalise import Normaliser
    from app.privacy import CallerPrivacy

    cap = load_capture(name)
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    parser = AmiParser()
    parser.feed(cap.banner)
    out = []
    for frame, t in zip(cap.frames, cap.times, strict=True):
        for item in parser.feed(frame + b"\r\n\r\n"):
            if isinstance(item, AmiFrame):
                event = normaliser.normalise(item, T0 + timedelta(seconds=t))
                if event is not None:
                    out.append(event)
    return out


def with_timestamp(frame: bytes, at: datetime) -> bytes:
    """Insert ``Timestamp:`` after ``Privilege:`` (or after the first line), as Asterisk
    does with ``timestampevents = yes``."""
    stamp = f"Timestamp: {int(at.timestamp())}.{at.microsecond:06d}".encode()
    lines = frame.split(b"\r\n")
    where = 2 if len(lines) > 1 and lines[1].startswith(b"Privilege: ") else 1
    lines.insert(where, stamp)
    return b"\r\n".join(lines)


def stream(capture: Capture, *, timestamps: bool, base: datetime = T0) -> bytes:
    """The capture's events as one byte string (no banner, no login response)."""
    out = []
    for frame, t in capture.events():
        if timestamps:
            frame = with_timestamp(frame, base + timedelta(seconds=t))
        out.append(frame + b"\r\n\r\n")
    return b"".join(out)


def chunks(data: bytes, sizes: Iterator[int]) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        n = max(1, next(sizes))
        yield data[i : i + n]
        i += n


def random_sizes(seed: int, low: int = 1, high: int = 700) -> Iterator[int]:
    rnd = random.Random(seed)
    while True:
        yield rnd.randint(low, high)


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


@dataclass
class ReplayServer:
    """A one-capture-at-a-time fake Asterisk on 127.0.0.1."""

    payloads: list[bytes] = field(default_factory=list)  # streamed to each new login, in turn
    secret: str = "acdsecret"
    chunk_sizes: Callable[[], Iterator[int]] | None = None
    pace: float = 0.0  # seconds between chunks
    cut_after: int | None = None  # close the connection after this many payload bytes
    answer_pings: bool = True  # False: a hung Asterisk that accepts but never answers
    list_items: dict[str, list[bytes]] = field(default_factory=dict)  # action -> items
    port: int = 0
    logins: int = 0
    refused: int = 0
    actions: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _next: int = 0

    async def __aenter__(self) -> ReplayServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def drop_clients(self) -> None:
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        streamer: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action = dict(
                    line.split(": ", 1)
                    for line in raw.decode("utf-8").split("\r\n")
                    if ": " in line
                )
                name = action.get("Action", "")
                aid = action.get("ActionID", "")
                self.actions.append(name)
                head = f"ActionID: {aid}\r\n" if aid else ""
                if name == "Login":
                    if action.get("Secret") != self.secret:
                        self.refused += 1
                        writer.write(
                            b"Response: Error\r\n"
                            + head.encode()
                            + b"Message: Authentication failed\r\n\r\n"
                        )
                        continue
                    self.logins += 1
                    writer.write(
                        b"Response: Success\r\n"
                        + head.encode()
                        + b"Message: Authentication accepted\r\n\r\n"
                    )
                    if self._next < len(self.payloads):
                        payload = self.payloads[self._next]
                        self._next += 1
                        streamer = asyncio.create_task(self._stream(writer, payload))
                elif name == "Ping":
                    if not self.answer_pings:
                        continue
                    writer.write(
                        f"Response: Success\r\n{head}Ping: Pong\r\nTimestamp: 0.0\r\n\r\n".encode()
                    )
                elif name in ("QueueStatus", "QueueSummary", "CoreShowChannels"):
                    complete = {
                        "QueueStatus": "QueueStatusComplete",
                        "QueueSummary": "QueueSummaryComplete",
                        "CoreShowChannels": "CoreShowChannelsComplete",
                    }[name]
                    items = self.list_items.get(name, [])
                    out = [
                        f"Response: Success\r\n{head}EventList: start\r\n"
                        f"Message: list will follow\r\n\r\n".encode()
                    ]
                    out += [item + f"\r\nActionID: {aid}\r\n\r\n".encode() for item in items]
                    out.append(
                        f"Event: {complete}\r\n{head}EventList: Complete\r\n"
                        f"ListItems: {len(items)}\r\n\r\n".encode()
                    )
                    writer.write(b"".join(out))
                else:
                    writer.write(f"Response: Success\r\n{head}Message: ok\r\n\r\n".encode())
                await writer.drain()
        finally:
            if streamer is not None:
                streamer.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, payload: bytes) -> None:
        sizes = self.chunk_sizes() if self.chunk_sizes else iter(lambda: 65536, None)
        sent = 0
        for piece in chunks(payload, sizes):
            if self.cut_after is not None and sent + len(piece) > self.cut_after:
                writer.write(piece[: self.cut_after - sent])
                await writer.drain()
                writer.close()
                return
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
            if self.pace:
                await asyncio.sleep(self.pace)


def parse_frames(data: bytes) -> list[AmiFrame]:
    return [f for f in AmiParser().feed(data) if isinstance(f, AmiFrame)]


def scenario_ids() -> Sequence[str]:
    return SCENARIOS


# --------------------------------------------------------------------------------------
# The pure path: bytes -> parser -> normaliser -> state machine -> records
# --------------------------------------------------------------------------------------


@dataclass
class Rows:
    calls: dict[str, object]  # linkedid -> CallRecord (last state)
    visits: dict[tuple[str, int], object]
    agent_states: list[object]
    records: list[object]


def replay_pure(
    name: str,
    pieces: Sequence[bytes] | None = None,
    extra: Callable[[object], list[object]] | None = None,
    catalogue: object = None,
) -> Rows:
    """Play a capture through the pure core with times from its times file.

    ``pieces``: the capture's bytes cut into reads (default: one read per frame, each at
    its recorded time). ``extra(centre)`` may return more events to apply at the end.
    """
    from app.acd.records import AgentStateRecord, CallRecord, VisitRecord
    from app.acd.state import CallCentre
    from app.ami.normalise import Normaliser
    from app.privacy import CallerPrivacy

    cap = load_capture(name)
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    centre = CallCentre("pbx1", catalogue)  # type: ignore[arg-type]
    parser = AmiParser()
    data = pieces if pieces is not None else [cap.banner, *(f + b"\r\n\r\n" for f in cap.frames)]
    times = iter(cap.times)
    records: list[object] = []
    last = T0
    for piece in data:
        for item in parser.feed(piece):
            if isinstance(item, AmiFrame):
                last = T0 + timedelta(seconds=next(times))
                event = normaliser.normalise(item, last)
                if event is not None:
                    centre.apply(event, last)
    if extra is not None:
        for event in extra(centre):
            centre.apply(event)  # type: ignore[arg-type]
    centre.tick(last + timedelta(minutes=10))
    records += centre.drain().records
    calls: dict[str, object] = {}
    visits: dict[tuple[str, int], object] = {}
    for r in records:
        if isinstance(r, CallRecord):
            calls[r.linkedid] = r
        elif isinstance(r, VisitRecord):
            visits[(r.linkedid, r.seq)] = r
    agent_states = [r for r in records if isinstance(r, AgentStateRecord)]
    return Rows(calls, visits, agent_states, records)
