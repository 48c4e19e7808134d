"""Sans-I/O AMI parser: bytes in, typed frames out.

Why not panoramisk's parser: it decodes every TCP chunk on its own with errors ignored,
so a UTF-8 character split across two reads ("Søren Ærø", "Møde") is silently dropped.
Here bytes are buffered and a frame is decoded only once it is complete.

What the stream looks like (see tests/fixtures/ami/README.md):
- first the banner ``Asterisk Call Manager/11.0.0\\r\\n`` with NO blank line after it;
- then messages of ``Key: Value\\r\\n`` lines, each ended by a blank line (``\\r\\n\\r\\n``);
- keys can repeat within a message (``Output:`` lines of a Command response);
- with ``timestampevents = yes`` events carry ``Timestamp: <sec>.<usec>``.

The buffer holds at most one partial frame: the work is O(bytes read). A frame larger than
``max_frame`` is discarded up to its end and counted; a frame that is neither an event nor
a response is counted as malformed and skipped. Nothing here ever raises on input.

``wanted``: event names the caller cares about, each with an optional predicate on the
frame's bytes. Other events are counted by name and skipped without decoding, which is
most of an unfiltered stream (VarSet, Newexten, RTCP).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BANNER_PREFIX = b"Asterisk Call Manager/"
SEP = b"\r\n\r\n"
EVENT_PREFIX = b"Event: "
DEFAULT_MAX_FRAME = 256 * 1024


@dataclass(frozen=True, slots=True)
class Banner:
    version: str


class AmiFrame:
    """One AMI message. ``fields`` gives every line in order (repeated keys too); ``get``
    answers the first value of a key (case-sensitive, as Asterisk spells them).

    The lines are kept as two lists (keys, values) and ``fields`` pairs them on demand:
    a (key, value) tuple per line was the parser's main cost and, being tracked by the
    garbage collector, made it collect every few frames."""

    __slots__ = ("_index", "_keys", "_values", "kind", "name", "raw")

    def __init__(
        self,
        kind: str,  # "event" or "response"
        name: str,  # the event name, or the response status (Success, Error, Follows, ...)
        raw: bytes,
        index: dict[str, str],
        keys: list[str],
        values: list[str],
    ) -> None:
        self.kind = kind
        self.name = name
        self.raw = raw
        self._index = index
        self._keys = keys
        self._values = values

    @property
    def fields(self) -> list[tuple[str, str]]:
        return list(zip(self._keys, self._values, strict=True))

    @property
    def repeats_keys(self) -> bool:
        return len(self._index) != len(self._keys)

    def get(self, key: str, default: str = "") -> str:
        return self._index.get(key, default)

    def getall(self, key: str) -> list[str]:
        return [v for k, v in zip(self._keys, self._values, strict=True) if k == key]

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __repr__(self) -> str:
        return f"AmiFrame({self.kind}, {self.name!r}, {self.fields!r})"

    def as_dict(self) -> dict[str, str]:
        """First value of each key (repeated keys: see ``getall``)."""
        return dict(self._index)

    @property
    def index(self) -> dict[str, str]:
        """First value of each key, read-only by contract (``as_dict`` copies)."""
        return self._index

    @property
    def action_id(self) -> str:
        return self._index.get("ActionID", "")

    @property
    def is_event(self) -> bool:
        return self.kind == "event"


@dataclass(slots=True)
class ParserStats:
    frames: int = 0
    malformed: int = 0
    oversized: int = 0
    skipped: Counter[bytes] = field(default_factory=Counter)  # unwanted events by name


def from_message(message: Mapping[str, Any]) -> AmiFrame | None:
    """The frame a message's headers were parsed from (a list item panoramisk handed over
    as a Message; its ``content`` is not a header). Repeated keys (lists) are lines again."""
    lines: list[str] = []
    for key, value in message.items():
        if key == "content":
            continue
        for one in value if isinstance(value, list) else (value,):
            lines.append(f"{key}: {one}")
    return parse_frame("\r\n".join(lines).encode("utf-8"))


def list_items(result: Any) -> list[AmiFrame]:
    """An action's list items (an ``as_list`` answer: panoramisk Messages) as the frames
    the parser made of them; the response itself and anything malformed left out."""
    if not isinstance(result, list):
        return []
    return [frame for m in result if "event" in m and (frame := from_message(m)) is not None]


def parse_frame(raw: bytes) -> AmiFrame | None:
    """Decode one complete message (without its terminating blank line); None if malformed."""
    split = split_lines(raw)
    if split is None:
        return None
    keys, values, index = split
    if not keys:
        return None
    first_key = keys[0]
    if first_key == "Event":
        kind = "event"
    elif first_key == "Response":
        kind = "response"
    else:
        return None
    name = values[0]
    if not name:
        return None
    return AmiFrame(kind, name, raw, index, keys, values)


Split = tuple[list[str], list[str], dict[str, str]]


def py_split_lines(raw: bytes) -> Split | None:
    """A message's lines as (keys, values, first value of each key); None if one is not AMI.

    Decoded as UTF-8 with errors="replace", cut into lines at "\\r\\n" and each line at
    its first ": ". An empty line is skipped; "Key:" (a colon at the end, no space) is a
    key with an empty value; any other line without ": " makes the message malformed.

    This is the reference: ``app/ami/_speedups.c`` does the same in C and is used when it
    was built (tests/unit/test_parser_speedups.py holds the two to the same results).

    Fast path, for lines that each hold exactly one ": " (what Asterisk writes): one split
    of the text into alternating keys and values. Every line is looked at before it is
    taken: with as many ": " as lines, the alternating split still pairs keys with the
    wrong values when one line has none and another two."""
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\r\n")
    if text.count(": ") == len(lines) and all(": " in line for line in lines):
        parts = text.replace(": ", "\r\n").split("\r\n")
        keys, values = parts[0::2], parts[1::2]
    else:
        keys, values = [], []
        for line in lines:
            key, sep, value = line.partition(": ")
            if sep:
                keys.append(key)
                values.append(value)
            elif line:
                # "Key:" with nothing after it (no space) is a key with an empty value;
                # anything else without ": " is not AMI.
                if line[-1] == ":" and " " not in line:
                    keys.append(line[:-1])
                    values.append("")
                else:
                    return None
    index = dict(zip(keys, values, strict=True))
    if len(index) != len(keys):  # repeated keys: the first value is the one ``get`` gives
        index = {}
        for key, value in zip(keys, values, strict=True):
            index.setdefault(key, value)
    return keys, values, index


split_lines: Callable[[bytes], Split | None]
try:
    from app.ami._speedups import split_lines
except ImportError:  # no C compiler at install: the same results, in Python
    split_lines = py_split_lines
SPEEDUPS = split_lines is not py_split_lines


# A cheap test on a frame's bytes before decoding it (e.g. "is this VarSet one we keep?").
RawPredicate = Callable[[bytes], bool]


class AmiParser:
    """Feed bytes as they arrive; get back banners and complete frames."""

    def __init__(
        self,
        *,
        wanted: Mapping[str, RawPredicate | None] | frozenset[str] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self._buf = bytearray()
        self._scan_from = 0  # bytes before this have no separator in them
        self._banner_done = False
        self._skipping = False  # inside an oversized frame: drop until its end
        self._max_frame = max_frame
        self._wanted: dict[bytes, RawPredicate | None] | None = None
        if wanted is not None:
            items = wanted.items() if isinstance(wanted, Mapping) else ((w, None) for w in wanted)
            self._wanted = {name.encode(): pred for name, pred in items}
        self.stats = ParserStats()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Banner | AmiFrame]:
        out: list[Banner | AmiFrame] = []
        buf = self._buf
        buf += data
        if not self._banner_done and not self._take_banner(out):
            return out
        if self._skipping:
            end = buf.find(SEP, self._scan_from)
            if end < 0:
                self._keep_tail()
                return out
            self._skipping = False
            del buf[: end + 4]
            self._scan_from = 0
        # Every complete frame in one go: cut the buffer at its last separator and split
        # that block in C, rather than a find, a copy and a delete per frame.
        last = buf.rfind(SEP, self._scan_from)
        if last >= 0:
            block = bytes(buf[:last])
            del buf[: last + 4]
            self._scan_from = 0
            max_frame = self._max_frame
            take = self._take_frame
            for raw in block.split(SEP):
                if len(raw) > max_frame:
                    self.stats.oversized += 1  # arrived complete within a read or two
                elif raw:
                    take(raw, out)
        # What is left is one partial frame. Keep 3 bytes of overlap: a separator may
        # straddle two reads.
        self._scan_from = max(0, len(buf) - 3)
        if len(buf) > self._max_frame:
            self.stats.oversized += 1
            self._skipping = True
            self._keep_tail()
        return out

    def _keep_tail(self) -> None:
        """Inside an oversized frame: drop what was read of it but a possible separator's
        first bytes."""
        del self._buf[: max(0, len(self._buf) - 3)]
        self._scan_from = 0

    def _take_banner(self, out: list[Banner | AmiFrame]) -> bool:
        buf = self._buf
        if len(buf) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(bytes(buf)):
            return False  # not enough bytes yet to tell
        if not buf.startswith(BANNER_PREFIX):
            self._banner_done = True  # no banner (e.g. a replayed stream): plain frames
            return True
        eol = buf.find(b"\r\n")
        if eol < 0:
            if len(buf) > 256:
                self._banner_done = True
                self.stats.malformed += 1
                return True
            return False
        version = bytes(buf[len(BANNER_PREFIX) : eol]).decode("ascii", "replace").strip()
        del buf[: eol + 2]
        self._banner_done = True
        out.append(Banner(version))
        return True

    def _take_frame(self, raw: bytes, out: list[Banner | AmiFrame]) -> None:
        # Leading blank lines (a stray "\r\n" between frames) are not part of the frame.
        while raw.startswith(b"\r\n"):
            raw = raw[2:]
        if not raw:
            return
        if self._wanted is not None and raw.startswith(EVENT_PREFIX):
            eol = raw.find(b"\r\n")
            name = raw[7:eol] if eol >= 0 else raw[7:]
            if name not in self._wanted:
                self.stats.skipped[name] += 1
                return
            predicate = self._wanted[name]
            if predicate is not None and not predicate(raw):
                self.stats.skipped[name] += 1
                return
        frame = parse_frame(raw)
        if frame is None:
            self.stats.malformed += 1
            return
        self.stats.frames += 1
        out.append(frame)
