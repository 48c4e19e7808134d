"""The AMI connection: panoramisk's Manager, with our parser, reconnect and resync.

What we keep of panoramisk: ``Manager.send_action`` and its protocol's matching of
responses (and ``EventList`` item events) to actions by ActionID.

What we replace, and why:
- ``data_received``: panoramisk decodes each TCP chunk on its own with errors ignored,
  losing UTF-8 characters split across reads; ours buffers bytes in the sans-I/O
  ``AmiParser`` and hands events straight to the pipeline (no fnmatch dispatch per event).
- reconnection: panoramisk retries every ``reconnect_timeout`` seconds without backoff
  and, on a refused login, sits connected and silent for ever. Here a run loop connects,
  logs in (a refusal is logged clearly and retried with capped backoff, never in a tight
  loop), resyncs, pings with a deadline, and reconnects after any loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from app.ami.normalise import WANTED_EVENTS
from app.ami.parser import AmiFrame, AmiParser, Banner, RawPredicate
from app.clock import host_now
from app.components import Health, cancel_tasks
from app.metrics import Metrics

log = logging.getLogger(__name__)

# Events that answer an action (they carry its ActionID): the list items of the resync
# actions, and the OriginateResponse that ends an asynchronous Originate (call-backs).
# Unlike list items, OriginateResponse is an ordinary event that manager.conf's event
# filters must let through.
FILTERED_ANSWERS = ("OriginateResponse",)
LIST_EVENTS = (
    *FILTERED_ANSWERS,
    "QueueParams",
    "QueueMember",
    "QueueEntry",
    "QueueStatusComplete",
    "QueueSummary",
    "QueueSummaryComplete",
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "Status",  # the dialer's look for call-backs left ringing (app/dialer.py)
    "StatusComplete",
)


class LoginRefused(Exception):
    pass


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: 1, 2, 4, ... up to ``cap`` seconds."""

    initial: float = 1.0
    cap: float = 30.0
    refused_initial: float = 5.0  # a refused login waits longer: the secret will not fix itself
    refused_cap: float = 300.0

    def delay(self, attempt: int, refused: bool) -> float:
        base, cap = (
            (self.refused_initial, self.refused_cap) if refused else (self.initial, self.cap)
        )
        return float(min(cap, base * 2 ** min(attempt, 16)) * random.uniform(0.8, 1.0))


def to_message(frame: AmiFrame) -> Message:
    """A panoramisk Message for its response machinery (repeated keys become lists)."""
    headers: dict[str, Any] = {}
    for key, value in frame.fields:
        if key in headers:
            previous = headers[key]
            headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            headers[key] = value
    return Message(headers)


# The most the socket is read at a time. asyncio's own reads go up to 256 KiB: some 550
# events, 40 ms and more of work in one callback, and every round trip of the event
# writer to the database (begin, COPY, each upsert, commit) waits behind one such read.
# Under a burst the writer then fell seconds behind and the whole backlog's database time
# came after the last read, on the wall clock. At 32 KiB (~70 events) the loop turns
# over every few milliseconds, the database works beside the reader, and the writer's
# queue stays short (bench/ingest.py: event-to-durable p50 3.6 s -> 0.2 s at full speed,
# ~20 % more events/s). A read costs a few microseconds of system call; ~70 events cost
# some 4 ms.
READ_SIZE = 32 * 1024


class _Protocol(AMIProtocol, asyncio.BufferedProtocol):  # type: ignore[misc]
    """panoramisk's protocol with our parser in ``data_received``, fed by bounded reads
    into one reused buffer (``READ_SIZE``)."""

    link: AmiLink

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        wanted: dict[str, RawPredicate | None] = dict(WANTED_EVENTS)
        for name in LIST_EVENTS:
            wanted.setdefault(name, None)
        self.parser = AmiParser(wanted=wanted)
        self._read_buffer = bytearray(READ_SIZE)
        self._read_view = memoryview(self._read_buffer)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        # The parser copies what it is fed into its own buffer before this one is reused.
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | bytearray | memoryview) -> None:
        link = self.link
        received = link.clock()
        on_frame = link.on_frame
        responses = self.responses
        events = 0
        for item in self.parser.feed(data):
            if isinstance(item, Banner):
                self.version = item.version
                continue
            action_id = item.action_id
            if item.kind == "response" or (action_id and action_id in responses):
                self.handle_message(to_message(item))
            else:
                on_frame(item, received)
                events += 1
        if events:
            link.last_event_at = received
        stats = self.parser.stats
        if stats.skipped:
            link.on_skipped(stats.skipped)
            stats.skipped.clear()
        if stats.malformed or stats.oversized:
            link.metrics.ami_malformed.inc(stats.malformed + stats.oversized)
            stats.malformed = stats.oversized = 0
        link.on_batch_end()


class _NeverResend:
    """panoramisk re-queues unanswered actions on a lost connection (and logs each one,
    arguments and all: an Originate holds a citizen's number). Ours are never re-sent: a
    QueueAdd or an Originate from a lost session must not run twice; the caller sees the
    failure and the state is resynced."""

    def __contains__(self, item: object) -> bool:
        return True


class _Manager(Manager):  # type: ignore[misc]
    """A Manager that reports a lost connection instead of reconnecting on its own."""

    link: AmiLink

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.link.lost(exc)


class AmiLink:
    """Component: one AMI connection, kept up for ever."""

    name = "ami"
    required = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        metrics: Metrics,
        on_frame: Callable[[AmiFrame, datetime], None],
        on_batch_end: Callable[[], None] = lambda: None,
        on_skipped: Callable[[dict[bytes, int]], None] = lambda skipped: None,
        on_connected: Callable[[AmiLink], Awaitable[object]] | None = None,
        on_lost: Callable[[datetime], None] | None = None,
        clock: Callable[[], datetime] = host_now,  # receive times: the host's
        backoff: Backoff = Backoff(),
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.metrics = metrics
        self.on_frame = on_frame
        self.on_batch_end = on_batch_end
        self.on_skipped = on_skipped
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.clock = clock
        self.backoff = backoff
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self.state = "disconnected"  # connecting | logged_in | login_refused | disconnected
        self.last_error: str | None = None
        self.last_event_at: datetime | None = None
        self.connected_at: datetime | None = None
        self.version: str | None = None
        self.attempts = 0
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._logged_in_this_time = False
        self._stopping = False

    # ---- component -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="acd-ami")

    async def stop(self) -> None:
        self._stopping = True  # a cancel lost in a race must not let the loop go on
        await cancel_tasks(self._task)
        self._close()
        self.metrics.ami_connected.set(0)

    async def check(self) -> Health:
        detail: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "connected_at": self.connected_at.isoformat() if self.connected_at else None,
        }
        if self.last_error:
            detail["last_error"] = self.last_error
        return Health(self.state == "logged_in", self.state, detail)

    async def wait_ready(self, within: float = 10.0) -> None:
        await asyncio.wait_for(self._ready.wait(), within)

    # ---- actions ---------------------------------------------------------------------

    async def action(
        self, action: dict[str, str], *, as_list: bool | None = None, within: float | None = None
    ) -> Message | list[Message]:
        """Send an action and await its response (a list for EventList actions)."""
        if self._manager is None or self.state != "logged_in":
            raise ConnectionError("AMI is not connected")
        future = self._manager.send_action(dict(action), as_list=as_list)
        result: Message | list[Message] = await asyncio.wait_for(
            future, within or self.action_timeout
        )
        return result

    # ---- callbacks from the protocol -------------------------------------------------

    def lost(self, exc: Exception | None) -> None:
        if self.state == "logged_in":
            log.warning(
                "AMI connection to %s:%d lost%s", self.host, self.port, f": {exc}" if exc else ""
            )
            if self.on_lost is not None:
                self.on_lost(self.clock())
        if self.state != "login_refused":  # closing after a refusal keeps its reason
            self._set_state("disconnected")
        self._lost.set()

    # ---- the run loop ------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        self.state = state
        self.metrics.ami_connected.set(1 if state == "logged_in" else 0)
        if state == "logged_in":
            self._ready.set()
        else:
            self._ready.clear()

    def _close(self) -> None:
        if self._manager is not None:
            protocol = getattr(self._manager, "protocol", None)
            if protocol is not None and getattr(protocol, "transport", None) is not None:
                with contextlib.suppress(Exception):
                    protocol.transport.close()
            self._manager = None

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            refused = False
            self._logged_in_this_time = False
            try:
                await self._session()
            except LoginRefused as exc:
                refused = True
                self.last_error = f"login refused: {exc}"
                log.error(
                    "AMI login to %s:%d as %r refused (%s); check ACD_AMI_USERNAME and "
                    "ACD_AMI_SECRET. Retrying with backoff.",
                    self.host,
                    self.port,
                    self.username,
                    exc,
                )
                self._set_state("login_refused")
                self.metrics.ami_reconnects.labels("refused").inc()
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt == 0:
                    log.warning(
                        "AMI %s:%d: %s; reconnecting with backoff",
                        self.host,
                        self.port,
                        self.last_error,
                    )
                self._set_state("disconnected")
                self.metrics.ami_reconnects.labels(
                    "lost" if self._logged_in_this_time else "failed"
                ).inc()
            finally:
                self._close()
            if self._logged_in_this_time:
                attempt = 0  # it was up: the backoff starts afresh
            self.attempts += 1
            delay = self.backoff.delay(attempt, refused)
            attempt += 1
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """Connect, log in, resync, then ping until the connection is lost."""
        self._set_state("connecting")
        self._lost.clear()
        loop = asyncio.get_running_loop()
        manager = _Manager(
            loop=loop,
            host=self.host,
            port=self.port,
            encoding="utf-8",
            ping_delay=3600,
            reconnect_timeout=3600,
            forgetable_actions=_NeverResend(),
        )
        manager.link = self
        link = self

        class Protocol(_Protocol):
            def __init__(self) -> None:
                super().__init__()
                self.link = link

        async with asyncio.timeout(self.connect_timeout):
            _transport, protocol = await loop.create_connection(Protocol, self.host, self.port)
        manager.protocol = protocol
        protocol.factory = manager
        protocol.log = log
        protocol.config = manager.config
        protocol.encoding = "utf-8"
        manager.responses = protocol.responses
        self._manager = manager

        login = {
            "Action": "Login",
            "Username": self.username,
            "Secret": self._secret,
            "Events": "on",
        }
        async with asyncio.timeout(self.connect_timeout):
            response = await manager.send_action(login)
        if not response.success:
            raise LoginRefused(response.get("Message", "no reason given"))
        self.version = getattr(protocol, "version", None)
        self.connected_at = self.clock()
        self.last_error = None
        self._logged_in_this_time = True
        self._set_state("logged_in")
        self.metrics.ami_reconnects.labels("ok").inc()
        log.info("AMI logged in to %s:%d as %r", self.host, self.port, self.username)
        if self.on_connected is not None:
            await self.on_connected(self)
        while not self._lost.is_set() and not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ping_interval):
                    await self._lost.wait()
            if self._lost.is_set() or self._stopping:
                break
            try:
                async with asyncio.timeout(self.ping_timeout):
                    await manager.send_action({"Action": "Ping"})
            except TimeoutError:
                log.warning("AMI ping unanswered for %g s; reconnecting", self.ping_timeout)
                self._close()
                raise ConnectionError("ping timeout") from None
        raise ConnectionError("connection lost")
