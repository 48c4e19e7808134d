"""Pieces of the AMI link that need no socket."""

from __future__ import annotations

import itertools

from app.ami.link import Backoff, to_message
from app.ami.parser import parse_frame


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(initial=1, cap=30, refused_initial=5, refused_cap=300)
    delays = [b.delay(n, refused=False) for n in range(10)]
    assert 0.8 <= delays[0] <= 1.0
    assert all(later >= earlier * 0.8 for earlier, later in itertools.pairwise(delays))
    assert max(delays) <= 30 and delays[-1] >= 24
    assert 4 <= b.delay(0, refused=True) <= 5  # a refused login never retries quickly
    assert b.delay(20, refused=True) <= 300


def test_panoramisk_message_keeps_repeated_keys() -> None:
    frame = parse_frame(
        b"Response: Success\r\nActionID: 9\r\nMessage: Command output follows\r\n"
        b"Output: line one\r\nOutput: line two"
    )
    assert frame is not None
    msg = to_message(frame)
    assert msg.success and msg.action_id == "9"
    assert msg["Output"] == ["line one", "line two"]
