"""The log budget: N lines a window, then one line counting the rest by kind."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.logbudget import LogBudget


def test_n_lines_a_window_then_a_count_by_kind(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    budget = LogBudget(
        logging.getLogger("t"), "FastAGI", lines=3, interval=60, clock=lambda: now[0]
    )
    caplog.set_level(logging.WARNING)
    for n in range(10):
        budget.warning("timeout" if n % 2 else "closed", "line %d", n)
    assert [r.getMessage() for r in caplog.records] == ["line 0", "line 1", "line 2"]
    now[0] = 61.0
    budget.warning("closed", "line %d", 10)  # a new window: the summary first, then it
    messages = [r.getMessage() for r in caplog.records]
    assert messages[3:] == [
        "FastAGI: 7 more warnings in the last 61 s left out (timeout 4, closed 3)",
        "line 10",
    ]
    assert budget.left_out_total == 7


async def test_the_summary_comes_without_a_later_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = LogBudget(logging.getLogger("t"), "auth", lines=1, interval=0.2)
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        budget.warning("refused", "refused")
    assert len(caplog.records) == 1
    await asyncio.sleep(0.35)
    assert caplog.records[-1].getMessage().startswith("auth: 4 more warnings")
