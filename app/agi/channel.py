"""The thin asyncio adapter around :mod:`app.agi.protocol` for one FastAGI connection.

Every wait is bounded: the environment must arrive within ``env_timeout``; each command
must be answered within ``reply_timeout`` plus the media time it asked for (a GET DATA
timeout, a RECORD maximum); a write must drain within ``write_timeout``; and the whole
session ends after ``session_seconds`` whatever happens. A peer that
breaks any bound gets :class:`AgiTimeout` and the caller of this class closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.agi.protocol import (
    MAX_ENV_LINES,
    MAX_LINE,
    AgiParser,
    Command,
    Environment,
    Event,
    HangupNotice,
    ProtocolError,
    Reply,
)

# Commands that touch the media path; their "200 result=-1" means the channel is gone
# (or the prompt could not be played). GET/SET VARIABLE and VERBOSE work on dead channels.
_MEDIA = ("ANSWER", "STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "RECORD FILE")


@dataclass(frozen=True, slots=True)
class AgiLimits:
    env_timeout: float = 5.0  # the environment; and again the first command's answer
    reply_timeout: float = 30.0
    write_timeout: float = 5.0
    hangup_grace: float = 0.5  # how long to wait for HANGUP after a result=-1
    session_seconds: float = 900.0  # a whole session, however it is spent
    max_line: int = MAX_LINE
    max_env_lines: int = MAX_ENV_LINES


class AgiError(Exception):
    """The session cannot go on; ``reason`` is a short word for metrics and logs."""

    reason = "error"


class AgiTimeout(AgiError):
    reason = "timeout"


class ConnectionLost(AgiError):
    reason = "closed"


class CommandFailed(AgiError):
    """Asterisk refused a command (510 unknown, 520 usage): a bug on one side or the
    other; the session cannot rely on its answers."""

    reason = "error"

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"command refused with {reply.code}")
        self.reply = reply


class ChannelHungUp(AgiError):
    """The caller hung up (``confirmed``: Asterisk said HANGUP or 511) or a media command
    failed with result=-1 and no HANGUP followed (e.g. a prompt file is missing)."""

    reason = "hangup"

    def __init__(self, confirmed: bool, reply: Reply | None = None) -> None:
        super().__init__("caller hung up" if confirmed else "media command failed")
        self.confirmed = confirmed
        self.reply = reply


class AgiChannel:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: AgiLimits,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.limits = limits
        self.parser = AgiParser(max_line=limits.max_line, max_env_lines=limits.max_env_lines)
        self._events: deque[Event] = deque()
        self.hungup = False
        self.commands_sent = 0
        self.proven = False  # answered a command (module doc)
        self.on_proven: Callable[[], None] | None = None
        self.evicted = False
        self._ends_at = asyncio.get_running_loop().time() + limits.session_seconds

    async def read_environment(self) -> Environment:
        loop = asyncio.get_running_loop()
        event = await self._next(loop.time() + self.limits.env_timeout)
        if not isinstance(event, Environment):  # the parser yields the environment first
            raise ProtocolError("expected the AGI environment")
        return event

    async def execute(self, command: Command) -> Reply:
        """Send one command and return its reply.

        Raises :class:`ChannelHungUp` on a dead channel (511, result=-1 of a media command,
        or a HANGUP seen before sending), :class:`CommandFailed` on 510/520,
        :class:`AgiTimeout`, :class:`ConnectionLost`, :class:`ProtocolError`.
        """
        while self._events and isinstance(self._events[0], HangupNotice):
            self._events.popleft()  # Asterisk said HANGUP between two commands
            self.hungup = True
        if self.hungup:
            raise ChannelHungUp(True)
        await self.send(command)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.reply_timeout + command.media_ms / 1000
        if not self.proven:
            deadline = min(deadline, loop.time() + self.limits.env_timeout)
        while True:
            event = await self._next(deadline)
            if isinstance(event, HangupNotice):
                # The reply to our command still follows (08b: result=-1 comes first,
                # but Asterisk may also interleave HANGUP before a dead-channel reply).
                self.hungup = True
                continue
            if isinstance(event, Environment):  # pragma: no cover - parser never does this
                raise ProtocolError("second AGI environment")
            if not self.proven:
                self.proven = True
                if self.on_proven is not None:
                    self.on_proven()
            if event.dead_channel:
                self.hungup = True
                raise ChannelHungUp(True, event)
            if not event.ok:
                raise CommandFailed(event)
            if event.result == "-1" and command.name in _MEDIA:
                raise ChannelHungUp(await self._confirm_hangup(), event)
            return event

    async def send(self, command: Command) -> None:
        self.writer.write(command.encode())
        self.commands_sent += 1
        if self.writer.transport.get_write_buffer_size() == 0:
            return  # it went straight to the socket: nothing to wait for
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(
                min(loop.time() + self.limits.write_timeout, self._ends_at)
            ):
                await self.writer.drain()
        except TimeoutError:
            raise AgiTimeout("peer does not read") from None
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(str(exc)) from None

    def evict(self) -> None:
        """Close the connection at once to make room (the session's next read fails)."""
        self.evicted = True
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()

    async def _confirm_hangup(self) -> bool:
        if self.hungup:
            return True
        loop = asyncio.get_running_loop()
        try:
            event = await self._next(loop.time() + self.limits.hangup_grace)
        except AgiError:
            return False
        if isinstance(event, HangupNotice):
            self.hungup = True
            return True
        return False

    async def _next(self, deadline: float) -> Event:
        loop = asyncio.get_running_loop()
        deadline = min(deadline, self._ends_at)
        while not self._events:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AgiTimeout("no answer from the peer in time")
            try:
                async with asyncio.timeout(remaining):
                    data = await self.reader.read(4096)
            except TimeoutError:
                raise AgiTimeout("no answer from the peer in time") from None
            except (ConnectionError, OSError) as exc:
                raise ConnectionLost(str(exc)) from None
            if not data:
                raise ConnectionLost("peer closed the connection")
            self._events.extend(self.parser.feed(data))
        return self._events.popleft()
