"""A FastAGI client that speaks exactly as Asterisk 22 does (the tests' PBX).

The environment is the recorded one (``tests/fixtures/ami/08_fastagi.agi.rx.raw``: same
variables, same order, ``\\n`` line ends, one blank line), with the call's values put in.
Replies use res_agi's formats as recorded and as in ``res_agi.c``:

    ANSWER                      200 result=0
    STREAM FILE p ""            200 result=0 endpos=8000   | 200 result=<ascii> endpos=N
    GET DATA p t n              200 result=<digits>        | 200 result= (timeout)
    GET FULL VARIABLE "..."     200 result=1 (<value>)
    SET VARIABLE n "v"          200 result=1
    RECORD FILE ...             200 result=0 (timeout) endpos=N | 200 result=35 (dtmf) ...
    VERBOSE "..." n             200 result=1
    unknown                     510 Invalid or unknown command

A hang-up answers the interrupted media command ``200 result=-1`` and then sends a separate
``HANGUP`` line (capture 08b); later media commands get ``511 Command Not Permitted on a
dead channel or intercept routine``; variable commands still work, as on a dead channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

FIXTURE_ENV = Path(__file__).parent / "fixtures" / "ami" / "08_fastagi.agi.rx.raw"
HANGUP = "<hangup>"  # as a GET DATA answer: the caller hangs up during that prompt
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


def recorded_env_lines() -> list[tuple[str, str]]:
    raw = FIXTURE_ENV.read_bytes()
    env = raw.split(b"\n\n", 1)[0].decode("utf-8")
    out = []
    for line in env.split("\n"):
        name, _, value = line.partition(": ")
        out.append((name, value))
    return out


def asterisk_env(
    *,
    script: str = "ivr",
    flow: str = "jobcenter",
    uniqueid: str = "1795362443.12",
    callerid: str = "4520001",
    dnid: str = "82565682",
    callingpres: str = "0",
    port: int = 4573,
    args: tuple[str, ...] | None = None,
) -> bytes:
    """The environment Asterisk sends for ``AGI(agi://127.0.0.1:<port>/<script>,<flow>)``."""
    values = {
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:{port}/{script}",
        "agi_uniqueid": uniqueid,
        "agi_callerid": callerid,
        "agi_callingpres": callingpres,
        "agi_dnid": dnid,
        "agi_extension": dnid,
        "agi_priority": "3",
    }
    lines = []
    for name, value in recorded_env_lines():
        if name.startswith("agi_arg_"):
            continue
        lines.append(f"{name}: {values.get(name, value)}")
    for i, arg in enumerate(args if args is not None else (flow,), start=1):
        lines.append(f"agi_arg_{i}: {arg}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


@dataclass
class Caller:
    """How the simulated caller behaves.

    ``answers``: one per GET DATA, in order: the key(s), ``None`` (no key: timeout) or
    ``HANGUP``; when they run out the caller presses nothing. ``barge``: prompt -> key
    pressed while that STREAM FILE plays (if the service allows keys). ``hangup_on``: hang
    up while this prompt plays (STREAM FILE, GET DATA or RECORD FILE's file).
    ``record``: (samples, how) for RECORD FILE, how = dtmf | timeout | hangup.
    """

    answers: list[str | None] = field(default_factory=list)
    barge: dict[str, str] = field(default_factory=dict)
    hangup_on: str | None = None
    record: tuple[int, str] = (40000, "dtmf")
    linkedid: str | None = None
    think: float = 0.0  # seconds before each reply (real time)
    # Injected time passing as Asterisk works: each reply comes this much later on the
    # service's fake clock (an object with a ``now`` datetime), as a prompt would take.
    clock: Any = None
    seconds_per_reply: float = 1.0


@dataclass
class CallResult:
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)  # STREAM FILE prompts
    asked: list[str] = field(default_factory=list)  # GET DATA prompts
    recorded: list[str] = field(default_factory=list)
    hung_up: bool = False
    closed_by_service: bool = False

    @property
    def route(self) -> str:
        return self.variables.get("ACD_ROUTE", "")

    @property
    def prompts(self) -> list[str]:
        """Every prompt in the order the caller heard them."""
        out = []
        for c in self.commands:
            m = re.match(r"(?:STREAM FILE|GET DATA) (\S+)", c)
            if m:
                out.append(m.group(1))
        return out


_SET = re.compile(r'SET VARIABLE (\S+) "((?:[^"\\]|\\.)*)"')
_FULL = re.compile(r'GET FULL VARIABLE "((?:[^"\\]|\\.)*)"')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class FakeAsterisk:
    """Drives one FastAGI session against the service as Asterisk would."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def call(
        self,
        caller: Caller | None = None,
        *,
        env: bytes | None = None,
        wait: float = 10.0,
        **env_args: str,
    ) -> CallResult:
        caller = caller or Caller()
        answers = list(caller.answers)
        uniqueid = env_args.get("uniqueid", "1795362443.12")
        linkedid = caller.linkedid or uniqueid
        result = CallResult()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(env if env is not None else asterisk_env(port=self.port, **env_args))
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), wait)
                if not line:
                    result.closed_by_service = True
                    return result
                command = line.decode("utf-8").rstrip("\n")
                result.commands.append(command)
                if caller.think:
                    await asyncio.sleep(caller.think)
                if caller.clock is not None:
                    caller.clock.now += timedelta(seconds=caller.seconds_per_reply)
                reply = self._reply(command, caller, answers, linkedid, result)
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _reply(
        self,
        command: str,
        caller: Caller,
        answers: list[str | None],
        linkedid: str,
        result: CallResult,
    ) -> bytes:
        words = command.split(" ")
        if command.startswith("SET VARIABLE"):
            m = _SET.fullmatch(command)
            if m is None:
                return b"520-Invalid command syntax.  Proper usage follows:\n" + (
                    b" Usage: SET VARIABLE <variablename> <value>\n520 End of proper usage.\n"
                )
            result.variables[m.group(1)] = _unquote(m.group(2))
            return b"200 result=1\n"
        if command.startswith("GET FULL VARIABLE"):
            m = _FULL.fullmatch(command)
            expr = _unquote(m.group(1)) if m else ""
            if expr == "${CHANNEL(linkedid)}":
                return f"200 result=1 ({linkedid})\n".encode()
            return b"200 result=0\n"
        if words[0] == "VERBOSE":
            return b"200 result=1\n"
        if result.hung_up:
            return DEAD
        if command == "ANSWER":
            return b"200 result=0\n"
        if command.startswith("STREAM FILE "):
            prompt, escape = words[2], command.split(" ", 3)[3].strip('"')
            result.played.append(prompt)
            if caller.hangup_on == prompt:
                result.hung_up = True
                return b"200 result=-1 endpos=1200\nHANGUP\n"
            key = caller.barge.get(prompt)
            if key is not None and key in escape:
                return f"200 result={ord(key)} endpos=2400\n".encode()
            return b"200 result=0 endpos=8000\n"
        if command.startswith("GET DATA "):
            prompt = words[2]
            result.asked.append(prompt)
            if caller.hangup_on == prompt:
                result.hung_up = True
                return b"200 result=-1\nHANGUP\n"
            answer = answers.pop(0) if answers else None
            if answer == HANGUP:
                result.hung_up = True
                return b"200 result=-1\nHANGUP\n"
            if answer is None:
                return b"200 result= (timeout)\n"
            return f"200 result={answer}\n".encode()
        if command.startswith("RECORD FILE "):
            result.recorded.append(words[2])
            samples, how = caller.record
            if how == "hangup" or caller.hangup_on == words[2]:
                result.hung_up = True
                return f"200 result=-1 (hangup) endpos={samples}\nHANGUP\n".encode()
            if how == "timeout":
                return f"200 result=0 (timeout) endpos={samples}\n".encode()
            return f"200 result=35 (dtmf) endpos={samples}\n".encode()
        return b"510 Invalid or unknown command\n"
