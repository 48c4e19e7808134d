"""What really happened in each recorded scenario, and the check of a call row against it.

``hold``/``talk`` are Asterisk's own HoldTime and TalkTime (whole seconds), which the
service's wait and talk must match within a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Want:
    outcome: str
    queue: str | None
    keys: str
    agent: str | None
    hold: int | None  # Asterisk's HoldTime
    talk: int | None  # Asterisk's TalkTime (summed over the visits)
    cause: int
    transferred_to: str | None = None
    # Who ended the call: a HangupRequest on the caller's or the agent's leg, or none at
    # all (07: the dialplan's Hangup() after the closed message: the system).
    hangup_by: str = "caller"


EXPECTED = {
    "01_answered": Want("answered", "dagpenge", "1", "agent1", 2, 3, 16),
    "02_agent_hangup": Want("answered", "dagpenge", "1", "agent2", 2, 3, 16, hangup_by="agent"),
    "03_abandon": Want("abandoned", "dagpenge", "1", None, 8, None, 0),
    "04_ringnoanswer": Want("answered", "dagpenge", "1", "agent2", 14, 16, 16),
    "05_ami_actions": Want("abandoned", "dagpenge", "1", None, 15, None, 0),
    "06_invalid_then_valid": Want("answered", "kontanthjaelp", "92", "agent3", 2, 8, 16),
    "07_closed": Want("ivr_hangup", None, "", None, None, None, 16, hangup_by="system"),
    "08_fastagi": Want("answered", "dagpenge", "1", "agent1", 2, 7, 16),
    "08b_fastagi_hangup": Want("ivr_hangup", None, "", None, None, None, 0),
    "09_blindtransfer": Want("answered", "dagpenge", "1", "agent2", 2, 3 + 13, 16, "kontanthjaelp"),
    # Redirect: Asterisk's first TalkTime is wrong (see the redirect test); no total here.
    "09b_redirect": Want("answered", "dagpenge", "1", "agent1", 2, None, 16, "kontanthjaelp"),
    "11_rfc4733_dtmf": Want("answered", "dagpenge", "1", "agent1", 2, 5, 16),
}


def check_row(call: Any, want: Want) -> None:
    """``call``: a CallRecord, a ``calls`` row or anything with those attributes."""
    assert call.outcome == want.outcome
    assert call.queue == want.queue
    assert call.keys == want.keys
    assert call.agent == want.agent
    assert call.hangup_cause == want.cause
    assert call.hangup_by == want.hangup_by
    assert call.transferred_to == want.transferred_to
    assert call.ended_at is not None and not call.data_gap
    assert call.dialled == "82565682" or call.dialled == "82565683"
    assert call.caller_display == "•••••01" and len(call.caller_hash) == 32
    if want.hold is None:
        assert call.wait_seconds is None
    else:
        assert call.wait_seconds is not None and abs(call.wait_seconds - want.hold) < 1
    if want.talk is not None:
        assert call.talk_seconds is not None and abs(call.talk_seconds - want.talk) < 1
    if want.outcome == "answered":
        assert call.ring_seconds is not None and 0 < call.ring_seconds < 11
        assert call.answered_at is not None


# The menu's promise for 82 56 56 82: the keys to each area from the top menu
# (DOMAIN.md's ten areas and Erhvervshuset), shared by the engine and the FastAGI tests.
AREA_KEYS: dict[str, list[str]] = {
    "kontanthjaelp": ["1"],
    "dagpenge": ["2"],
    "genregistrering": ["4"],
    "sygeopfoelgning": ["3", "2"],
    "sygedagpenge": ["3", "1"],
    "leverandoer": ["5", "1"],
    "virksomhed": ["5", "2"],
    "andre_forvaltninger": ["5", "3"],
    "a_kasse": ["5", "4"],
    "ni_by": ["5", "5"],
    "erhvervshuset": ["5", "6"],
}
