"""Every call row against the simulator's truth: what a fault did to the record.

    truth = result.truth                      # app.sim.truth.TruthLog of the day
    rows = await read_call_rows(database_url)  # the service's ``calls`` table
    verdict = compare(truth, rows)
    print(verdict.summary())   # calls 1093: lost 0, duplicated 0, open 0, wrong 12 ...
    assert verdict.clean       # 0 lost, 0 duplicated, 0 open, 0 wrong without data_gap

The categories (each call counted in one of them, a phantom row in ``duplicated``):

``lost``        a simulated call without a row;
``duplicated``  a row too many: a second row for a call, or a row for no simulated call
                (a leg taken for a call of its own, say);
``open``        a row without an outcome after the day (the call stays "up" for ever);
``wrong``       a closed row that differs from the truth in outcome, first queue, agent,
                menu keys, or (answered calls) wait or talk time beyond ``tolerance``;
                ``flagged`` when the row says ``data_gap`` (the record admits it may be
                wrong: acceptable), ``unflagged`` when not (the bug a fault test hunts);
``right``       everything else (``flagged_right``: right although flagged).

A fault's goal: ``clean``, i.e. 0 lost, 0 duplicated, 0 open, 0 wrong without the flag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.acd.model import default_agent_id
from app.sim.truth import CallTruth

DEFAULT_TOLERANCE = 1.0  # seconds of wait or talk an answered call may be off


@dataclass(frozen=True, slots=True)
class CallRow:
    """What the comparison reads of a stored call (``calls`` table, or the API's item)."""

    linkedid: str
    outcome: str | None
    queue: str | None = None
    agent: str | None = None
    keys: str = ""
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    data_gap: bool = False
    ended: bool = True  # ended_at set

    @classmethod
    def of(cls, row: Any) -> CallRow:
        """From an ORM ``Call`` (or anything with its attribute names)."""
        return cls(
            linkedid=row.linkedid,
            outcome=row.outcome,
            queue=row.queue,
            agent=row.agent,
            keys=row.keys or "",
            wait_seconds=row.wait_seconds,
            talk_seconds=row.talk_seconds,
            data_gap=bool(row.data_gap),
            ended=row.ended_at is not None,
        )


@dataclass(frozen=True, slots=True)
class Mismatch:
    linkedid: str
    fields: tuple[str, ...]  # which of outcome, queue, agent, keys, wait, talk differ
    got: dict[str, Any]
    want: dict[str, Any]
    flagged: bool

    def __str__(self) -> str:
        diff = ", ".join(f"{f} {self.got.get(f)!r} != {self.want.get(f)!r}" for f in self.fields)
        flag = "data_gap" if self.flagged else "NOT flagged"
        return f"{self.linkedid}: {diff} ({flag}; truth {self.want.get('detail')!r})"


@dataclass
class Comparison:
    calls: int = 0  # simulated calls (the truth)
    rows: int = 0  # call rows read
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)
    wrong_flagged: list[Mismatch] = field(default_factory=list)
    wrong_unflagged: list[Mismatch] = field(default_factory=list)
    right: int = 0
    flagged_right: int = 0

    @property
    def wrong(self) -> int:
        return len(self.wrong_flagged) + len(self.wrong_unflagged)

    @property
    def clean(self) -> bool:
        """The goal for every fault: nothing lost, doubled, left open or silently wrong."""
        return not (self.lost or self.duplicated or self.open or self.wrong_unflagged)

    def kinds(self, flagged: bool = False) -> Counter[str]:
        """How the wrong rows are wrong: ``got -> want`` outcome pairs (or the fields)."""
        out: Counter[str] = Counter()
        for m in self.wrong_flagged if flagged else self.wrong_unflagged:
            if "outcome" in m.fields:
                out[f"{m.got['outcome']} -> {m.want['outcome']}"] += 1
            else:
                out["/".join(m.fields)] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "rows": self.rows,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "open": len(self.open),
            "wrong": self.wrong,
            "wrong_flagged": len(self.wrong_flagged),
            "wrong_unflagged": len(self.wrong_unflagged),
            "right": self.right,
            "flagged_right": self.flagged_right,
            "unflagged_kinds": dict(self.kinds()),
        }

    def summary(self, examples: int = 5) -> str:
        """One line of counts, then the kinds of silent errors and a few examples."""
        lines = [
            f"calls {self.calls} (rows {self.rows}): lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, open {len(self.open)}, wrong {self.wrong} "
            f"(flagged data_gap {len(self.wrong_flagged)}, NOT flagged "
            f"{len(self.wrong_unflagged)}), right {self.right} "
            f"(of them flagged {self.flagged_right})"
        ]
        if self.wrong_unflagged:
            kinds = ", ".join(f"{k}: {n}" for k, n in self.kinds().most_common())
            lines.append(f"  not flagged: {kinds}")
            lines.extend(f"    {m}" for m in self.wrong_unflagged[:examples])
        if self.open:
            lines.append(f"  open: {', '.join(self.open[:examples])}")
        if self.lost:
            lines.append(f"  lost: {', '.join(self.lost[:examples])}")
        if self.duplicated:
            lines.append(f"  duplicated: {', '.join(self.duplicated[:examples])}")
        return "\n".join(lines)


def expected(t: CallTruth, agent_of: Callable[[str], str] = default_agent_id) -> dict[str, Any]:
    """The row the service should have written for ``t``."""
    return {
        "outcome": t.outcome,
        "queue": t.queues[0] if t.queues else None,
        "agent": agent_of(t.agent) if t.agent else None,
        "keys": "".join(t.keys),
        "wait": t.wait if t.outcome == "answered" else None,
        "talk": t.talk if t.outcome == "answered" else None,
        "detail": t.detail,
    }


def _off(got: float | None, want: float | None, tolerance: float) -> bool:
    if want is None:
        return False
    return got is None or abs(got - want) > tolerance


def compare(
    truth: Iterable[CallTruth],
    rows: Iterable[CallRow],
    *,
    agent_of: Callable[[str], str] = default_agent_id,
    tolerance: float = DEFAULT_TOLERANCE,
    timing: bool = True,
) -> Comparison:
    """Every simulated call against its row(s); see the module doc for the categories.
    ``timing=False`` leaves wait and talk out (outcome, queue, agent and keys only)."""
    truths = {t.linkedid: t for t in truth}
    by_id: dict[str, list[CallRow]] = {}
    out = Comparison(calls=len(truths))
    for row in rows:
        out.rows += 1
        by_id.setdefault(row.linkedid, []).append(row)
    for linkedid, all_rows in by_id.items():
        if linkedid not in truths:
            out.duplicated.extend(r.linkedid for r in all_rows)
        elif len(all_rows) > 1:
            out.duplicated.extend(r.linkedid for r in all_rows[1:])
    for linkedid, t in truths.items():
        found = by_id.get(linkedid)
        if not found:
            out.lost.append(linkedid)
            continue
        row = found[0]
        if row.outcome is None or not row.ended:
            out.open.append(linkedid)
            continue
        want = expected(t, agent_of)
        got = {
            "outcome": row.outcome,
            "queue": row.queue,
            "agent": row.agent,
            "keys": row.keys,
            "wait": row.wait_seconds,
            "talk": row.talk_seconds,
        }
        fields = [f for f in ("outcome", "queue", "agent", "keys") if got[f] != want[f]]
        if timing and t.outcome == "answered" and row.outcome == "answered":
            if _off(row.wait_seconds, t.wait, tolerance):
                fields.append("wait")
            if _off(row.talk_seconds, t.talk, tolerance):
                fields.append("talk")
        if fields:
            m = Mismatch(linkedid, tuple(fields), got, want, row.data_gap)
            (out.wrong_flagged if row.data_gap else out.wrong_unflagged).append(m)
        else:
            out.right += 1
            out.flagged_right += row.data_gap
    return out


async def read_call_rows(database_url: str, pbx: str | None = None) -> list[CallRow]:
    """The ``calls`` table of ``database_url`` (of ``pbx`` if given), as ``CallRow``s."""
    from sqlalchemy import select

    from app.store.db import create_engine, session_factory
    from app.store.models import Call

    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s:
            query = select(Call)
            if pbx is not None:
                query = query.where(Call.pbx == pbx)
            return [CallRow.of(r) for r in (await s.execute(query)).scalars()]
    finally:
        await engine.dispose()


__all__ = [
    "DEFAULT_TOLERANCE",
    "CallRow",
    "Comparison",
    "Mismatch",
    "compare",
    "expected",
    "read_call_rows",
]
