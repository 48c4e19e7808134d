"""How simulated people act: callers (keys, patience, talk) and agents (answering).

The PBX asks; these objects answer. ``traffic.py`` has the seeded random models for a
working day; the scripted ones here replay an exact scenario (the fidelity tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

ReplyKind = Literal["digits", "timeout", "hangup"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A caller's answer to a prompt: keys (``digits``) ``after`` seconds from the start
    of the prompt, letting the input time out, or hanging up ``after`` seconds in."""

    kind: ReplyKind
    digits: str = ""
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Talk:
    seconds: float
    caller_hangs_up: bool = True


class CallerBehaviour(Protocol):
    number: str
    name: str
    target: str | None

    def respond(self, prompt: str, timeout: float, max_digits: int) -> Reply:
        """GET DATA / Read: what the caller does when asked ``prompt``."""

    def barge(self, prompt: str, escape: str) -> Reply | None:
        """STREAM FILE with escape digits: a key during playback, or None."""

    def patience(self, queue: str) -> float | None:
        """Seconds the caller waits in ``queue`` before hanging up (None: forever)."""

    def talk(self, queue: str) -> Talk:
        """The conversation once an agent answers."""

    def record(self, timeout: float, escape: str) -> Reply:
        """RECORD FILE: speaks, then a key (``digits``) or silence (``timeout``)."""


class AgentBehaviour(Protocol):
    def on_ring(self, queue: str, now: float) -> float | None:
        """Seconds until the agent answers this ring, or None (does not answer)."""


# --------------------------------------------------------------------------- scripted


@dataclass(slots=True)
class ScriptedCaller:
    """Replays a fixed script: replies in order, one patience, talks in order."""

    number: str = "4520001"
    name: str = "Borger 1"
    target: str | None = None
    replies: list[Reply] = field(default_factory=list)
    wait_limit: float | None = None
    talks: list[Talk] = field(default_factory=list)
    recordings: list[Reply] = field(default_factory=list)

    def respond(self, prompt: str, timeout: float, max_digits: int) -> Reply:
        if self.replies:
            return self.replies.pop(0)
        return Reply("timeout")

    def barge(self, prompt: str, escape: str) -> Reply | None:
        return None

    def patience(self, queue: str) -> float | None:
        return self.wait_limit

    def talk(self, queue: str) -> Talk:
        if self.talks:
            return self.talks.pop(0)
        return Talk(60.0, True)

    def record(self, timeout: float, escape: str) -> Reply:
        if self.recordings:
            return self.recordings.pop(0)
        return Reply("timeout", after=timeout)


@dataclass(slots=True)
class ScriptedAgent:
    """Answers each ring after the next delay of its list (None: lets it ring out)."""

    delays: list[float | None] = field(default_factory=list)
    default: float | None = 2.0

    def on_ring(self, queue: str, now: float) -> float | None:
        if self.delays:
            return self.delays.pop(0)
        return self.default


def script(*replies: Reply | Sequence[Reply]) -> list[Reply]:
    out: list[Reply] = []
    for r in replies:
        if isinstance(r, Reply):
            out.append(r)
        else:
            out.extend(r)
    return out
