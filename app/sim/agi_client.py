"""FastAGI, Asterisk's side: for a call's ``AGI(agi://host:port/script,args)`` connect to
the service, send the ``agi_*`` environment and a blank line, then carry out each
command it sends and answer as res_agi does (docs/dialplan-contract.md).

Sans-I/O parts (``environment``, ``parse_args``, ``match``, ``usage_reply``) are plain
functions; ``run_agi`` is the thin socket adapter. What res_agi does, and this too:
- replies end with ``\\n``; ``200 result=0``, ``200 result=0 endpos=15962``,
  ``200 result=1`` for GET DATA digits, ``200 result= (timeout)``,
  ``200 result=1 (<value>)`` for GET (FULL) VARIABLE, ``200 result=0`` for an unset one;
- a hang-up during GET DATA answers ``200 result=-1`` and then a separate ``HANGUP``
  line; a hang-up while the service thinks also sends ``HANGUP``; afterwards commands
  that need a live channel answer ``511 Command Not Permitted on a dead channel or
  intercept routine``; the session lasts until the service closes the socket;
- an unknown command answers ``510 Invalid or unknown command``, a bad argument count
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``
- every command emits AGIExecStart/AGIExecEnd on AMI (CommandId, Command, ResultCode,
  Result); keys pressed emit DTMF events.
- AGISTATUS: SUCCESS (the service closed, channel up), HANGUP (channel hung up),
  FAILURE (could not connect, or the connection broke / went silent).
A reply the service never sends would hang a real Asterisk forever; here a read waits at
most ``agi_reply_timeout`` real seconds, then the session fails (AGISTATUS FAILURE).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.sim.channels import P_AGI, UP, Channel

if TYPE_CHECKING:
    from app.sim.dialplan import CallRun
    from app.sim.pbx import Pbx

DEAD_REPLY = "511 Command Not Permitted on a dead channel or intercept routine"
UNKNOWN_REPLY = "510 Invalid or unknown command"
SAMPLE_RATE = 8000


def environment(fields: Sequence[tuple[str, str]]) -> bytes:
    """The ``agi_*: value`` lines and the closing blank line."""
    return ("".join(f"agi_{k}: {v}\n" for k, v in fields) + "\n").encode("utf-8")


def env_fields(
    chan: Channel,
    host: str,
    script: str,
    args: Sequence[str],
    version: str,
    threadid: int,
) -> list[tuple[str, str]]:
    """The environment res_agi sends for ``chan`` (order as in 08_fastagi.agi.rx.raw)."""
    fields = [
        ("network", "yes"),
        ("network_script", script),
        ("request", f"agi://{host}/{script}"),
        ("channel", chan.name),
        ("language", chan.language),
        ("type", chan.device.split("/", 1)[0]),
        ("uniqueid", chan.uniqueid),
        ("version", version),
        ("callerid", chan.cid_num if chan.cid_num != "<unknown>" else "unknown"),
        ("calleridname", chan.cid_name if chan.cid_name != "<unknown>" else "unknown"),
        ("callingpres", "0"),
        ("callingani2", "0"),
        ("callington", "0"),
        ("callingtns", "0"),
        ("dnid", chan.dnid or "unknown"),
        ("rdnis", "unknown"),
        ("context", chan.context),
        ("extension", chan.exten),
        ("priority", str(chan.priority)),
        ("enhanced", "0.0"),
        ("accountcode", chan.accountcode),
        ("threadid", str(threadid)),
    ]
    fields += [(f"arg_{i}", a) for i, a in enumerate(args, 1)]
    return fields


def parse_args(line: str) -> list[str]:
    """res_agi's parse_args: blanks split, double quotes group, backslash escapes."""
    args: list[str] = []
    cur: list[str] = []
    in_arg = quoted = escaped = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
            in_arg = True
            continue
        if ch == "\\":
            escaped = True
            continue
        if ch == '"':
            quoted = not quoted
            in_arg = True
            continue
        if ch in " \t" and not quoted:
            if in_arg:
                args.append("".join(cur))
                cur = []
                in_arg = False
            continue
        cur.append(ch)
        in_arg = True
    if in_arg:
        args.append("".join(cur))
    return args


@dataclass(frozen=True, slots=True)
class Command:
    words: tuple[str, ...]
    min_args: int  # total argc, command words included
    max_args: int
    dead_ok: bool
    usage: str


COMMANDS: tuple[Command, ...] = (
    Command(("answer",), 1, 1, False, " Usage: ANSWER"),
    Command(
        ("stream", "file"),
        4,
        5,
        False,
        " Usage: STREAM FILE <filename> <escape digits> [sample offset]",
    ),
    Command(
        ("get", "data"),
        3,
        5,
        False,
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]",
    ),
    Command(("wait", "for", "digit"), 4, 4, False, " Usage: WAIT FOR DIGIT <timeout>"),
    Command(
        ("get", "full", "variable"),
        4,
        5,
        True,
        " Usage: GET FULL VARIABLE <variablename> [<channel name>]",
    ),
    Command(("get", "variable"), 3, 3, True, " Usage: GET VARIABLE <variablename>"),
    Command(("set", "variable"), 4, 4, True, " Usage: SET VARIABLE <variablename> <value>"),
    Command(
        ("record", "file"),
        6,
        9,
        False,
        " Usage: RECORD FILE <filename> <format> <escape digits> <timeout> "
        "[offset samples] [BEEP] [s=silence]",
    ),
    Command(("verbose",), 2, 3, True, " Usage: VERBOSE <message> <level>"),
    Command(("hangup",), 1, 2, False, " Usage: HANGUP [<channelname>]"),
    Command(("noop",), 1, 99, True, " Usage: NoOp"),
    Command(("channel", "status"), 2, 3, False, " Usage: CHANNEL STATUS [<channelname>]"),
)


def match(args: Sequence[str]) -> Command | None:
    low = [a.lower() for a in args]
    best: Command | None = None
    for cmd in COMMANDS:
        n = len(cmd.words)
        if tuple(low[:n]) == cmd.words and (best is None or n > len(best.words)):
            best = cmd
    return best


def usage_reply(cmd: Command) -> str:
    return (
        f"520-Invalid command syntax.  Proper usage follows:\n{cmd.usage}\n520 End of proper usage."
    )


_VAR = re.compile(r"\$\{([^{}]+)\}")


def lookup(pbx: Pbx, chan: Channel, name: str) -> str | None:
    """A channel variable, a dialplan function or a built-in; None when unset."""
    m = re.fullmatch(r"(\w+)\((.*)\)", name)
    if m is not None:
        func, arg = m[1].upper(), m[2].strip().lower()
        if func == "CALLERID":
            return {
                "num": chan.cid_num,
                "name": chan.cid_name,
                "all": f'"{chan.cid_name}" <{chan.cid_num}>',
                "dnid": chan.dnid,
            }.get(arg, "")
        if func == "CHANNEL":
            return {
                "linkedid": chan.linkedid,
                "uniqueid": chan.uniqueid,
                "name": chan.name,
                "language": chan.language,
                "state": chan.state_desc(),
                "channeltype": chan.device.split("/", 1)[0],
            }.get(arg, "")
        if func == "STRFTIME":
            # STRFTIME(<epoch>,<timezone>,<format>): the PBX's (virtual) local time.
            parts = [p.strip() for p in m[2].split(",", 2)]
            try:
                epoch = float(parts[0]) if parts and parts[0] else pbx.now()
                tz = (
                    ZoneInfo(parts[1])
                    if len(parts) > 1 and parts[1]
                    else (ZoneInfo(pbx.config.timezone))
                )
            except (ValueError, KeyError):
                return ""
            fmt = parts[2] if len(parts) > 2 and parts[2] else "%c"
            return dt.datetime.fromtimestamp(epoch, tz).strftime(fmt)
        return ""
    builtin = {
        "EPOCH": str(int(pbx.now())),  # the PBX's clock: virtual time in the simulator
        "UNIQUEID": chan.uniqueid,
        "CHANNEL": chan.name,
        "EXTEN": chan.exten,
        "CONTEXT": chan.context,
        "PRIORITY": str(chan.priority),
        "LANGUAGE": chan.language,
    }
    if name in chan.vars:
        return chan.vars[name]
    if name in builtin:
        return builtin[name]
    return pbx.globals.get(name)


def substitute(pbx: Pbx, chan: Channel, expr: str) -> str:
    def repl(m: re.Match[str]) -> str:
        return lookup(pbx, chan, m[1]) or ""

    prev = None
    while prev != expr and "${" in expr:
        prev = expr
        expr = _VAR.sub(repl, expr)
    return expr


# ------------------------------------------------------------------------ session


class AgiSession:
    """One FastAGI connection for one call."""

    def __init__(self, run: CallRun, script: str, args: list[str]) -> None:
        self.run = run
        self.pbx = run.pbx
        self.chan = run.chan
        self.script = script
        self.args = args
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.hangup_sent = False
        self.busy = False  # carrying out a command (vs waiting for the service)

    # --------------------------------------------------------------- I/O
    def _send(self, text: str) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write((text + "\n").encode("utf-8"))

    def dead(self) -> bool:
        return self.chan.dead or self.chan.hangup_requested or self.chan.goto is not None

    def notify_hangup(self) -> None:
        """The channel was hung up (or redirected): res_agi tells the script once."""
        if not self.hangup_sent and not self.busy:
            self.hangup_sent = True
            self._send("HANGUP")

    async def _readline(self, limit: float) -> bytes:
        assert self.reader is not None
        return await asyncio.wait_for(self.reader.readline(), limit)

    async def run_session(self) -> str:
        pbx, chan = self.pbx, self.chan
        cfg = pbx.config
        # Several FastAGI hosts ("a:1,b:2", as a dialplan spreads sessions over replicas
        # and falls back): each session starts at the next one, a refused connection
        # tries the others in turn.
        addresses = [
            a.strip()
            for a in pbx.globals.get("ACD_AGI_ADDRESS", cfg.agi_address).split(",")
            if a.strip()
        ]
        first = pbx.agi_turn % len(addresses)
        pbx.agi_turn += 1
        connected = None
        for address in addresses[first:] + addresses[:first]:
            host, _, port_s = address.rpartition(":")
            if not host:
                host, port_s = address, "4573"
            try:
                connected = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port_s)), cfg.agi_connect_timeout
                )
                break
            except (OSError, TimeoutError, ValueError):
                continue
        if connected is None:
            return "FAILURE"
        reader, writer = connected
        self.reader, self.writer = reader, writer
        status = "SUCCESS"
        try:
            threadid = 139754000000000 + pbx.rng.randrange(10**9)
            writer.write(
                environment(
                    env_fields(chan, address, self.script, self.args, cfg.agi_version, threadid)
                )
            )
            await writer.drain()
            received = 0
            while True:
                limit = cfg.agi_hangup_grace if self.hangup_sent else cfg.agi_reply_timeout
                try:
                    raw = await self._readline(limit)
                except TimeoutError:
                    status = "HANGUP" if self.dead() else "FAILURE"
                    break
                if cfg.agi_think is not None:
                    think = cfg.agi_think(self.script, received)
                    if think > 0:
                        await pbx.pause(chan, think)
                received += 1
                if not raw:
                    status = "HANGUP" if self.dead() else "SUCCESS"
                    break
                if not raw.endswith(b"\n"):
                    status = "HANGUP" if self.dead() else "FAILURE"
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                await self._execute(line)
                await writer.drain()
                if self.dead() and not self.hangup_sent:
                    self.hangup_sent = True
                    self._send("HANGUP")
                    await writer.drain()
        except (ConnectionError, OSError):
            status = "HANGUP" if self.dead() else "FAILURE"
        finally:
            with contextlib.suppress(Exception):
                writer.close()
        return status

    # ----------------------------------------------------------- commands
    def _exec_event(self, name: str, cmd_id: str, line: str, extra: list[tuple[str, str]]) -> None:
        self.pbx.chan_event(
            name, self.chan, [("CommandId", cmd_id), ("Command", line), *extra], P_AGI
        )

    async def _execute(self, line: str) -> None:
        pbx, chan = self.pbx, self.chan
        cmd_id = str(pbx.rng.randrange(2**31))
        args = parse_args(line)
        cmd = match(args)
        alive = not chan.dead
        if alive:
            self._exec_event("AGIExecStart", cmd_id, line, [])
        if cmd is None:
            reply, code, result = UNKNOWN_REPLY, "510", "Invalid or unknown command"
        elif self.dead() and not cmd.dead_ok:
            reply, code, result = DEAD_REPLY, "511", DEAD_REPLY[4:]
        elif not cmd.min_args <= len(args) <= cmd.max_args:
            reply, code, result = usage_reply(cmd), "520", "Usage"
        else:
            self.busy = True
            try:
                reply = await self._carry_out(cmd, args)
            finally:
                self.busy = False
            code, result = "200", "Success"
        if not chan.dead:
            self._exec_event("AGIExecEnd", cmd_id, line, [("ResultCode", code), ("Result", result)])
        self._send(reply)

    async def _carry_out(self, cmd: Command, args: list[str]) -> str:
        pbx, chan = self.pbx, self.chan
        name = " ".join(cmd.words)
        if name == "answer":
            if pbx.config.answer_delay:
                await pbx.pause(chan, pbx.config.answer_delay)
            if chan.state != UP:
                pbx.answer(chan)
            return "200 result=0"
        if name == "stream file":
            return await self._stream_file(args[2], args[3] if len(args) > 3 else "")
        if name == "get data":
            timeout_ms = int(args[3]) if len(args) > 3 and args[3].lstrip("-").isdigit() else 0
            max_digits = int(args[4]) if len(args) > 4 and args[4].isdigit() else 1024
            return await self._get_data(args[2], timeout_ms or 2000, max_digits)
        if name == "wait for digit":
            timeout_ms = int(args[3]) if args[3].lstrip("-").isdigit() else 0
            return await self._wait_digit(timeout_ms)
        if name == "get variable":
            value = lookup(pbx, chan, args[2])
            return "200 result=0" if value is None else f"200 result=1 ({value})"
        if name == "get full variable":
            return f"200 result=1 ({substitute(pbx, chan, args[3])})"
        if name == "set variable":
            pbx.varset(chan, args[2], args[3])
            return "200 result=1"
        if name == "record file":
            return await self._record(args)
        if name == "verbose" or name == "noop":
            return "200 result=1" if name == "verbose" else "200 result=0"
        if name == "hangup":
            if len(args) > 1 and args[1] != chan.name:
                other = pbx.find_channel(args[1])
                if other is None:
                    return "200 result=-1"
                pbx.remote_hangup(other)
                return "200 result=1"
            pbx.hangup_by_dialplan(chan, 16)
            return "200 result=1"
        if name == "channel status":
            return f"200 result={6 if chan.state == UP else 4}"
        return UNKNOWN_REPLY  # pragma: no cover - every COMMANDS entry is handled

    async def _stream_file(self, prompt: str, escape: str) -> str:
        pbx, chan, run = self.pbx, self.chan, self.run
        length = pbx.config.prompt_seconds(prompt)
        run.note_prompt(prompt)
        barge = run.behaviour.barge(prompt, escape) if escape else None
        if barge is not None and barge.kind == "digits" and barge.after < length:
            res = await pbx.pause(chan, barge.after)
            if res != "ok":
                return f"200 result=-1 endpos={int(barge.after * SAMPLE_RATE)}"
            key = barge.digits[:1]
            if key and key in escape:
                pbx.dtmf(chan, key)
                run.note_keys(prompt, key)
                return f"200 result={ord(key)} endpos={int(barge.after * SAMPLE_RATE)}"
            res = await pbx.pause(chan, length - barge.after)
        else:
            res = await pbx.pause(chan, length)
        if res != "ok":
            return "200 result=-1 endpos=0"
        pbx.varset(chan, "PLAYBACKSTATUS", "SUCCESS")
        return f"200 result=0 endpos={round(length * SAMPLE_RATE)}"

    async def _get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        run = self.run
        timeout = max(0.0, timeout_ms / 1000.0)
        reply = run.behaviour.respond(prompt, timeout, max_digits)
        digits, status = await run.collect(prompt, reply, timeout, max_digits)
        if status in ("hangup", "goto"):
            return "200 result=-1"
        if status == "timeout":
            return f"200 result={digits} (timeout)"
        return f"200 result={digits}"

    async def _wait_digit(self, timeout_ms: int) -> str:
        run = self.run
        timeout = timeout_ms / 1000.0 if timeout_ms >= 0 else 3600.0
        reply = run.behaviour.respond("", timeout, 1)
        digits, status = await run.collect("", reply, timeout, 1)
        if status in ("hangup", "goto"):
            return "200 result=-1"
        return f"200 result={ord(digits[0])}" if digits else "200 result=0"

    async def _record(self, args: list[str]) -> str:
        pbx, chan, run = self.pbx, self.chan, self.run
        escape = args[4]
        timeout_ms = int(args[5]) if args[5].lstrip("-").isdigit() else -1
        limit = timeout_ms / 1000.0 if timeout_ms > 0 else 3600.0
        beep = any(a.upper() == "BEEP" for a in args[6:])
        if beep:
            await pbx.pause(chan, 0.5)
        reply = run.behaviour.record(limit, escape)
        spoken = min(reply.after, limit) if reply.kind != "hangup" else reply.after
        res = await pbx.pause(chan, max(0.0, spoken))
        endpos = int(spoken * SAMPLE_RATE)
        if res != "ok":
            run.recorded = spoken > 1.0
            return f"200 result=-1 (hangup) endpos={endpos}"
        if reply.kind == "hangup":
            pbx.remote_hangup(chan)
            run.recorded = spoken > 1.0
            return f"200 result=-1 (hangup) endpos={endpos}"
        run.recorded = True
        key = reply.digits[:1]
        if reply.kind == "digits" and key and key in escape and reply.after < limit:
            pbx.dtmf(chan, key)
            return f"200 result={ord(key)} (dtmf) endpos={endpos}"
        return f"200 result=0 (timeout) endpos={endpos}"


async def run_agi(run: CallRun, script: str, args: list[str]) -> str:
    session = AgiSession(run, script, args)
    previous: Callable[[], None] | None = run.on_interrupt
    run.on_interrupt = session.notify_hangup
    try:
        return await session.run_session()
    finally:
        run.on_interrupt = previous
