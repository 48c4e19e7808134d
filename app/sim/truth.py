"""Ground truth: what really happened to every call the simulator created.

The benchmark and the end-to-end tests compare the service's call rows with these
records. One record per call (keyed by ``linkedid``), written as JSON lines.

Outcomes (exactly one per call):

``answered``    an agent took the call (the last queue the caller was in);
``abandoned``   the caller left a queue unanswered: hung up while waiting (or while an
                agent rang), or the queue gave up (``detail`` timeout / leaveempty);
``ivr_hangup``  the caller hung up in the keypad menu, before any queue;
``closed``      the service played a ``acd/closed-*`` prompt and ended the call;
``forwarded``   the service routed the call to an external number (``ACD_FORWARD``);
``message``     the caller left a message (``RECORD FILE``) and the service hung up;
``callback``    the caller accepted a call-back offer (``acd/offer-*`` answered ``1``);
``failed``      the call ended without any of the above: never got into a queue
                (joinempty, full, unknown queue), the service hanging up without a
                reason, or a caller-less end. ``detail`` says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args

from app.acd.model import Outcome

OUTCOMES: tuple[str, ...] = get_args(Outcome)  # the service's vocabulary


@dataclass(slots=True)
class CallTruth:
    linkedid: str
    caller: str
    arrived: float
    target_queue: str | None = None
    keys: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)  # every queue joined, in order
    outcome: str | None = None
    detail: str = ""
    queue: str | None = None  # the queue of the outcome (answered/abandoned/failed)
    agent: str | None = None  # interface of the agent who answered
    agent_name: str | None = None
    joined: float | None = None  # when the caller joined the (last) queue
    wait: float | None = None  # seconds from joining the (last) queue to answer/leave
    talk: float | None = None  # seconds bridged with the agent (answered only)
    ended: float | None = None
    survey: list[int] = field(default_factory=list)
    survey_flag: bool = False
    agi_status: str = ""
    origin: str = "inbound"  # inbound | originate
    # Who ended the call first (the service's calls.hangup_by): caller (a BYE on the
    # caller's leg), agent (an agent's BYE in a conversation) or system (the dialplan's
    # Hangup() or an AMI Hangup of the caller's leg); None if the run stopped first.
    hangup_by: str | None = None
    events: int = 0  # AMI events emitted for this call (all legs)

    def finish(self, outcome: str, at: float, detail: str = "") -> None:
        """Set the outcome once; later calls (a second teardown path) are ignored."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.detail = detail
        self.ended = at

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("arrived", "joined", "wait", "talk", "ended"):
            if d[k] is not None:
                d[k] = round(d[k], 3)
        return d


class TruthLog:
    """All records of a run, in arrival order."""

    def __init__(self) -> None:
        self.records: dict[str, CallTruth] = {}

    def add(self, record: CallTruth) -> CallTruth:
        self.records[record.linkedid] = record
        return record

    def get(self, linkedid: str) -> CallTruth | None:
        return self.records.get(linkedid)

    def __iter__(self) -> Any:
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def outcomes(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for r in self.records.values():
            if r.outcome is not None:
                counts[r.outcome] += 1
        return counts

    def write_jsonl(self, path: str | Path) -> int:
        return write_jsonl(self.records.values(), path)


def write_jsonl(records: Iterable[CallTruth], path: str | Path) -> int:
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
