"""The fault tests' judge (app/sim/compare.py): each call row against the truth."""

from __future__ import annotations

from app.sim.compare import CallRow, compare
from app.sim.truth import CallTruth


def truth(linkedid: str, outcome: str, **kw: object) -> CallTruth:
    t = CallTruth(linkedid=linkedid, caller="x", arrived=0.0, **kw)  # type: ignore[arg-type]
    t.outcome = outcome
    return t


def answered(linkedid: str) -> CallTruth:
    return truth(
        linkedid, "answered", queues=["a"], agent="PJSIP/agent7", keys=["1"], wait=10.0, talk=60.0
    )


def row(linkedid: str, outcome: str | None = "answered", **kw: object) -> CallRow:
    base: dict[str, object] = {
        "queue": "a",
        "agent": "agent7",
        "keys": "1",
        "wait_seconds": 10.2,
        "talk_seconds": 59.5,
    }
    base.update(kw)
    return CallRow(linkedid=linkedid, outcome=outcome, **base)  # type: ignore[arg-type]


def test_every_category_is_counted_once() -> None:
    truths = [answered(str(i)) for i in range(8)]
    rows = [
        row("0"),  # right
        row("1", data_gap=True),  # right although flagged
        # 2: lost
        row("3", outcome=None, ended=False),  # open
        row("4", outcome="ivr_hangup", queue=None, agent=None),  # wrong, not flagged
        row("5", outcome="abandoned", agent=None, data_gap=True),  # wrong, flagged
        row("6", talk_seconds=20.0),  # answered, talk wrong: not flagged
        row("7"),
        row("7"),  # a second row for the same call
        row("999"),  # a row for no simulated call
    ]
    c = compare(truths, rows)
    assert (c.calls, c.rows) == (8, 9)
    assert c.lost == ["2"] and c.open == ["3"]
    assert sorted(c.duplicated) == ["7", "999"]
    assert [m.linkedid for m in c.wrong_unflagged] == ["4", "6"]
    assert c.wrong_unflagged[1].fields == ("talk",)
    assert [m.linkedid for m in c.wrong_flagged] == ["5"]
    assert (c.right, c.flagged_right) == (3, 1)
    assert not c.clean
    assert c.kinds() == {"ivr_hangup -> answered": 1, "talk": 1}
    text = c.summary()
    assert "lost 1, duplicated 2, open 1, wrong 3 (flagged data_gap 1, NOT flagged 2)" in text


def test_clean_when_only_flagged_rows_are_wrong_and_timing_can_be_left_out() -> None:
    truths = [answered("a"), truth("b", "ivr_hangup", keys=["1", "2"])]
    rows = [row("a", talk_seconds=1.0), row("b", "abandoned", queue="x", keys="12", data_gap=True)]
    assert not compare(truths, rows).clean
    c = compare(truths, rows, timing=False)
    assert c.clean and c.right == 1 and len(c.wrong_flagged) == 1
