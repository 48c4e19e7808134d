"""The FastAGI wire protocol, sans-I/O: bytes in, typed events out; commands as bytes.

What Asterisk sends on a FastAGI socket (``res_agi.c``, ``tests/fixtures/ami/08*.agi.*``):

1. The environment: ``agi_<name>: <value>\\n`` lines, then one blank line.
2. For every command the script sends, one reply line ``<code> <text>\\n``:
   ``200 result=<r>[ (<data>)][ endpos=<n>]`` on success, ``510 Invalid or unknown
   command``, ``511 Command Not Permitted on a dead channel or intercept routine``, or the
   multi-line ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of
   proper usage.``
3. At any moment after the channel hangs up: a bare ``HANGUP\\n`` line (in capture 08b it
   follows the ``200 result=-1`` of the interrupted ``GET DATA``).

The parser is bounded: a line longer than ``max_line`` bytes, an environment of more than
``max_env_lines`` lines, a line that is neither environment nor reply, or a usage block
longer than ``max_usage_lines`` raise :class:`ProtocolError`; the adapter then closes the
socket. Lines are decoded whole, so a UTF-8 character split across two TCP reads (a
caller name with æ, ø, å) is never lost; undecodable bytes become U+FFFD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 2048  # Asterisk's own AGI_BUF_LEN; replies and env lines are far shorter
MAX_ENV_LINES = 128  # Asterisk 22 sends ~24 plus one per AGI argument
MAX_USAGE_LINES = 64


class ProtocolError(Exception):
    """The peer does not speak FastAGI (garbage, overlong line, endless environment)."""


@dataclass(frozen=True, slots=True)
class Environment:
    """The ``agi_*`` variables, names without the ``agi_`` prefix (``uniqueid``, ...)."""

    variables: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(name, default)


@dataclass(frozen=True, slots=True)
class Reply:
    """One command reply. ``result`` is the text after ``result=`` (may be empty, e.g. a
    ``GET DATA`` timeout); ``data`` the parenthesised part; ``endpos`` the sample offset."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""  # the raw text after the code (or the usage block for 520)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def dead_channel(self) -> bool:
        """511: the channel is gone (hung up) and the command was refused."""
        return self.code == 511


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """Asterisk's asynchronous ``HANGUP`` line: the caller has gone."""


Event = Environment | Reply | HangupNotice

_ENV_LINE = re.compile(r"agi_([a-z0-9_]{1,64}): ?(.*)")
_REPLY_LINE = re.compile(r"([1-5][0-9][0-9])(?: (.*))?")
# "result=<r>" then an optional " (<data>)" (greedy up to the last ')' before an optional
# " endpos=<n>"), as res_agi formats it: "200 result=0 (timeout) endpos=8000".
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?[0-9]+))?(?: .*)?")


def parse_reply_text(code: int, text: str) -> Reply:
    """Parse the part of a reply line after the code (exposed for the tests)."""
    if code != 200:
        return Reply(code=code, text=text)
    m = _RESULT.fullmatch(text)
    if m is None:
        raise ProtocolError(f"200 reply without result= ({len(text)} characters)")
    result, data, endpos = m.groups()
    return Reply(
        code=200,
        result=result,
        data=data,
        endpos=int(endpos) if endpos is not None else None,
        text=text,
    )


class AgiParser:
    """Incremental parser for the Asterisk side of one FastAGI connection."""

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_env_lines: int = MAX_ENV_LINES,
        max_usage_lines: int = MAX_USAGE_LINES,
    ) -> None:
        self.max_line = max_line
        self.max_env_lines = max_env_lines
        self.max_usage_lines = max_usage_lines
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no newline
        self._env: dict[str, str] | None = {}  # None once the environment is complete
        self._env_lines = 0
        self._usage: list[str] | None = None  # collecting a 520 usage block

    @property
    def environment_done(self) -> bool:
        return self._env is None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes read from the socket; return the events they complete."""
        self._buf += data
        events: list[Event] = []
        while True:
            nl = self._buf.find(b"\n", self._scanned)
            if nl < 0:
                self._scanned = len(self._buf)
                if self._scanned > self.max_line:
                    raise ProtocolError(f"line longer than {self.max_line} bytes")
                return events
            if nl > self.max_line:
                raise ProtocolError(f"line longer than {self.max_line} bytes")
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]  # bytearray front deletion is O(1) amortised in CPython
            self._scanned = 0
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if self._env is not None:
            return self._env_line(self._env, line)
        if self._usage is not None:
            if line.startswith("520 "):
                usage = "\n".join(self._usage)
                self._usage = None
                return Reply(code=520, text=usage)
            if len(self._usage) >= self.max_usage_lines:
                raise ProtocolError("520 usage block too long")
            self._usage.append(line)
            return None
        if line == "HANGUP":
            return HangupNotice()
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        m = _REPLY_LINE.fullmatch(line)
        if m is None:
            # No peer content in the message: it ends up in logs and could hold a number.
            raise ProtocolError(f"not an AGI reply line ({len(line)} characters)")
        return parse_reply_text(int(m.group(1)), m.group(2) or "")

    def _env_line(self, env: dict[str, str], line: str) -> Event | None:
        if line == "":
            if not env:
                raise ProtocolError("empty AGI environment")
            self._env = None
            return Environment(env)
        self._env_lines += 1
        if self._env_lines > self.max_env_lines:
            raise ProtocolError(f"AGI environment longer than {self.max_env_lines} lines")
        m = _ENV_LINE.fullmatch(line)
        if m is None:
            raise ProtocolError(f"not an AGI environment line ({len(line)} characters)")
        env[m.group(1)] = m.group(2)
        return None


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------

_PROMPT = re.compile(r"/?[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}")  # a sound or an absolute file
_VARNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_()]{0,63}")
_DIGITS = re.compile(r"[0-9*#]{0,12}")


@dataclass(frozen=True, slots=True)
class Command:
    """One AGI command line and how long Asterisk may legitimately take to answer it
    beyond the normal reply time (the prompt/record time it asked for)."""

    line: str
    media_ms: int = 0

    @property
    def name(self) -> str:
        words = self.line.split(" ", 3)
        # Two-word commands (STREAM FILE, GET DATA, SET VARIABLE, ...) and three-word GET
        # FULL VARIABLE; used for logs and metrics only.
        if words[0] in ("ANSWER", "HANGUP", "VERBOSE"):
            return words[0]
        if words[:3] in (["GET", "FULL", "VARIABLE"], ["WAIT", "FOR", "DIGIT"]):
            return " ".join(words[:3])
        return " ".join(words[:2])

    def encode(self) -> bytes:
        return (self.line + "\n").encode("utf-8")


def quote(value: str) -> str:
    """Quote an argument as res_agi's parser reads it: double quotes, backslash escapes."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("AGI arguments cannot hold line breaks or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prompt(name: str) -> str:
    if not _PROMPT.fullmatch(name) or ".." in name:
        raise ValueError(f"bad prompt/file name {name!r}")
    return name


def _digits(escape: str) -> str:
    if not _DIGITS.fullmatch(escape):
        raise ValueError(f"bad escape digits {escape!r}")
    return escape


def _ms(value: int) -> int:
    if not 0 <= value <= 3_600_000:
        raise ValueError(f"timeout out of range: {value}")
    return value


def answer() -> Command:
    return Command("ANSWER")


def hangup() -> Command:
    return Command("HANGUP")


def stream_file(prompt: str, escape: str = "") -> Command:
    return Command(f"STREAM FILE {_prompt(prompt)} {quote(_digits(escape))}")


def get_data(prompt: str, timeout_ms: int, max_digits: int = 1) -> Command:
    if not 1 <= max_digits <= 32:
        raise ValueError("max_digits must be 1-32")
    return Command(
        f"GET DATA {_prompt(prompt)} {_ms(timeout_ms)} {max_digits}", media_ms=timeout_ms
    )


def wait_for_digit(timeout_ms: int) -> Command:
    return Command(f"WAIT FOR DIGIT {_ms(timeout_ms)}", media_ms=timeout_ms)


def get_variable(name: str) -> Command:
    if not _VARNAME.fullmatch(name):
        raise ValueError(f"bad variable name {name!r}")
    return Command(f"GET VARIABLE {name}")


def get_full_variable(expression: str) -> Command:
    return Command(f"GET FULL VARIABLE {quote(expression)}")


def set_variable(name: str, value: str) -> Command:
    if not _VARNAME.fullmatch(name):
        raise ValueError(f"bad variable name {name!r}")
    return Command(f"SET VARIABLE {name} {quote(value)}")


def record_file(path: str, fmt: str, escape: str, timeout_ms: int, *, beep: bool = True) -> Command:
    if fmt not in ("wav", "gsm", "ulaw", "alaw", "sln", "wav49", "g722"):
        raise ValueError(f"bad record format {fmt!r}")
    line = f"RECORD FILE {_prompt(path)} {fmt} {quote(_digits(escape))} {_ms(timeout_ms)}"
    return Command(line + (" BEEP" if beep else ""), media_ms=timeout_ms)


def verbose(message: str, level: int = 1) -> Command:
    if not 1 <= level <= 4:
        raise ValueError("verbose level must be 1-4")
    return Command(f"VERBOSE {quote(message)} {level}")


def dtmf_from_result(result: str) -> str | None:
    """STREAM FILE / WAIT FOR DIGIT answer with the ASCII code of the key ('49' = '1');
    0 = none pressed. Returns the key or None."""
    try:
        code = int(result)
    except ValueError:
        return None
    if code <= 0:
        return None
    char = chr(code) if code < 128 else ""
    return char if char in "0123456789*#ABCD" else None
