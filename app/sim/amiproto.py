"""Asterisk manager (AMI) wire format, server side and a reader for clients. Sans-I/O.

What Asterisk 22 does on the wire (tests/fixtures/ami):
- On connect it sends the banner ``Asterisk Call Manager/11.0.0\\r\\n`` with *no* blank
  line after it; every later message is ``Key: Value\\r\\n`` lines closed by ``\\r\\n``.
- Responses are ``Response``, then ``ActionID`` (when the action had one), then the rest.
  Events are ``Event``, ``Privilege`` (list items have none), with ``timestampevents``
  a ``Timestamp: <epoch>.<6 digits>`` right after ``Privilege``, then the fields.
- Keys may repeat within one message (``Output:`` of ``Command``).
- Incoming lines end with ``\\r\\n`` or a bare ``\\n`` (manager.c accepts both); a line
  longer than 1024 bytes is dumped, as manager.c does. Header names are matched
  case-insensitively (``astman_get_header``).

Bytes are split into lines *before* decoding, so a UTF-8 character cut in two by TCP
("Møde" across two reads) is decoded whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_LINE = 1024  # manager.c: inbuf of 1025 bytes
MAX_HEADERS = 128  # AST_MAX_MANHEADERS

Header = tuple[str, str]


def _clean(value: str) -> str:
    # A value must never break the framing; Asterisk values never contain CR/LF.
    if "\r" in value or "\n" in value:
        return value.replace("\r", " ").replace("\n", " ")
    return value


def encode(headers: Iterable[Header]) -> bytes:
    """One AMI message: ``Key: Value`` lines and the closing blank line, UTF-8."""
    return ("".join(f"{k}: {_clean(v)}\r\n" for k, v in headers) + "\r\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI message as ordered headers (keys may repeat)."""

    headers: tuple[Header, ...]

    def get(self, key: str, default: str = "") -> str:
        low = key.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def has(self, key: str) -> bool:
        low = key.lower()
        return any(k.lower() == low for k, _ in self.headers)

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.headers if k.lower() == low]

    @property
    def name(self) -> str:
        """``Event`` or ``Response`` value, whichever the message has."""
        return self.get("Event") or self.get("Response")

    def keys(self) -> list[str]:
        return [k for k, _ in self.headers]

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.headers:
            out.setdefault(k, v)
        return out

    def encode(self) -> bytes:
        return encode(self.headers)


def parse_header_line(line: str) -> Header:
    """``Key: Value`` as manager.c reads it: value after the colon, leading blanks off."""
    key, sep, value = line.partition(":")
    if not sep:
        return (line, "")
    return (key.strip(), value.lstrip(" \t"))


@dataclass(slots=True)
class ActionParser:
    """Incremental parser of what a client sends: bytes in, ``Message`` actions out."""

    _buf: bytearray = field(default_factory=bytearray)
    _lines: list[Header] = field(default_factory=list)
    dumped_lines: int = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    # "Dumping long line with no return": the partial line is dropped.
                    self._buf.clear()
                    self.dumped_lines += 1
                break
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > MAX_LINE:
                self.dumped_lines += 1
                continue
            line = raw.decode("utf-8", errors="replace")
            if line == "":
                if self._lines:
                    out.append(Message(tuple(self._lines)))
                    self._lines = []
                continue
            if len(self._lines) < MAX_HEADERS:
                self._lines.append(parse_header_line(line))
        return out


@dataclass(slots=True)
class StreamReader:
    """Client side: the server's byte stream to messages, banner handled.

    The banner line has no blank line after it, so it is taken off the front before
    splitting on blank lines (splitting first glues it to the Login response).
    """

    banner: str | None = None
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        if self.banner is None:
            nl = self._buf.find(b"\r\n")
            if nl < 0:
                return []
            self.banner = self._buf[:nl].decode("utf-8", errors="replace")
            del self._buf[: nl + 2]
        out: list[Message] = []
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return out
            block = bytes(self._buf[:end]).decode("utf-8", errors="replace")
            del self._buf[: end + 4]
            if block:
                out.append(Message(tuple(parse_header_line(x) for x in block.split("\r\n"))))


def parse_stream(data: bytes) -> tuple[str | None, list[Message]]:
    """Whole captured stream (like ``NN_name.ami.txt``) to banner and messages."""
    reader = StreamReader()
    msgs = reader.feed(data)
    return reader.banner, msgs


def parse_sent(text: str) -> Iterator[tuple[float, Message]]:
    """A ``*.sent.txt`` capture: ``# t=<seconds>`` then the action's lines."""
    at = 0.0
    lines: list[Header] = []
    for raw in text.splitlines():
        if raw.startswith("# t="):
            at = float(raw[4:])
            continue
        if raw.strip() == "":
            if lines:
                yield at, Message(tuple(lines))
                lines = []
            continue
        lines.append(parse_header_line(raw))
    if lines:
        yield at, Message(tuple(lines))


# ------------------------------------------------------------------------- responses


def _with_id(action_id: str | None) -> list[Header]:
    return [("ActionID", action_id)] if action_id else []


def response(status: str, action_id: str | None, *rest: Header) -> bytes:
    """``Response: <status>``, ``ActionID``, then ``rest`` (astman_send_response_full)."""
    return encode([("Response", status), *_with_id(action_id), *rest])


def success(action_id: str | None, message: str | None = None, *rest: Header) -> bytes:
    extra = [("Message", message)] if message is not None else []
    return response("Success", action_id, *extra, *rest)


def error(action_id: str | None, message: str) -> bytes:
    return response("Error", action_id, ("Message", message))


def list_start(action_id: str | None, message: str) -> bytes:
    """``astman_send_listack``: Success, ActionID, EventList: start, Message."""
    return response("Success", action_id, ("EventList", "start"), ("Message", message))


def list_complete(event: str, action_id: str | None, items: int, *extra: Header) -> bytes:
    """``astman_send_list_complete``: Event, ActionID, EventList: Complete, ListItems."""
    return encode(
        [
            ("Event", event),
            *_with_id(action_id),
            ("EventList", "Complete"),
            ("ListItems", str(items)),
            *extra,
        ]
    )
