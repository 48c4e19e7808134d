"""AMI streams for benchmarks, built from the recorded captures in tests/fixtures/ami.

Each copy of a capture gets fresh Uniqueid/Linkedid values (relations kept: an agent
leg's Linkedid stays its caller's Uniqueid) and ``Timestamp`` headers, copies overlapping
in time like concurrent calls. ``filtered`` keeps what manager.conf's eventfilter lets
through (the normaliser's table; VarSet only for the kept variables).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.ami.normalise import CONSUMED_EVENTS, KEPT_VARIABLES
from tests.ami_replay import SCENARIOS, load_capture

_ID = re.compile(rb"\b(1795\d{6})\.(\d+)\b")
T0 = datetime(2014, 11, 4, 8, 0, tzinfo=UTC)


def _events(name: str) -> list[tuple[bytes, float]]:
    # Events of calls and agents; not the login's own (FullyBooted, SuccessfulAuth), which
    # a real stream has once per connection, nor action list items.
    return [
        (f, t)
        for f, t in load_capture(name).events()
        if b"\r\nActionID: " not in f
        and not f.startswith((b"Event: FullyBooted", b"Event: SuccessfulAuth"))
    ]


def passes_filter(frame: bytes) -> bool:
    name = frame[7 : frame.index(b"\r\n")].decode()
    if name == "VarSet":
        m = re.search(rb"\r\nVariable: ([^\r]*)", frame)
        return bool(m) and m.group(1).decode() in KEPT_VARIABLES
    return name in CONSUMED_EVENTS


def _stamp(frame: bytes, at: datetime) -> bytes:
    lines = frame.split(b"\r\n")
    where = 2 if len(lines) > 1 and lines[1].startswith(b"Privilege: ") else 1
    lines.insert(where, f"Timestamp: {int(at.timestamp())}.{at.microsecond:06d}".encode())
    return b"\r\n".join(lines)


def build(min_events: int, *, filtered: bool) -> tuple[bytes, int]:
    """(stream bytes without banner, number of events in it)."""
    sets = {
        name: [(f, t) for f, t in _events(name) if not filtered or passes_filter(f)]
        for name in SCENARIOS
    }
    out: list[bytes] = []
    count = 0
    copy = 0
    while count < min_events:
        for i, name in enumerate(SCENARIOS):
            base = T0 + timedelta(seconds=copy * 7 + i * 0.5)
            shift = copy * 1000

            def fresh(m: re.Match[bytes], shift: int = shift) -> bytes:
                return m.group(1) + b"." + str(int(m.group(2)) + shift).encode()

            for frame, t in sets[name]:
                out.append(_stamp(_ID.sub(fresh, frame), base + timedelta(seconds=t)))
                out.append(b"\r\n\r\n")
                count += 1
        copy += 1
    return b"".join(out), count
