"""Today's figures across a restart while PostgreSQL is down: the new service counts what
it sees live at once, reads the earlier visits back when the database returns, and counts
each visit once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.conftest import OwnPostgres
from tests.integration.test_live_api import live_app, staff
from tests.live_support import Feed


def answered(feed: Feed, call: str, wait: float = 10.0) -> None:
    feed.arrive(call)
    feed.join(call, "dagpenge")
    feed.at(wait).answer(call, "dagpenge", "agent1")
    feed.at(30).hangup(call)


async def today(rt: Any) -> dict[str, Any]:
    rt.hub.refresh()
    snap = rt.live.snapshot
    return {"loaded": snap["history_loaded"], **snap["queues"]["dagpenge"]["today"]}


async def test_a_restart_with_the_database_down_counts_each_visit_once(
    own_postgres: OwnPostgres,
) -> None:
    first = live_app(own_postgres.url)
    async with first.router.lifespan_context(first):
        rt: Any = first.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        for call in ("c1", "c2", "c3"):
            answered(feed, call)
        await asyncio.sleep(0)
        await rt.writer.drained(within=20)
        before = await today(rt)
    assert (before["offered"], before["answered"]) == (3, 3)

    own_postgres.stop()
    second = live_app(own_postgres.url)
    async with second.router.lifespan_context(second):
        rt = second.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        answered(feed, "c4", wait=200.0)
        await asyncio.sleep(0)
        meanwhile = await today(rt)
        assert meanwhile["loaded"] is False
        assert (meanwhile["offered"], meanwhile["answered"]) == (1, 1)

        await asyncio.to_thread(own_postgres.start)
        for _ in range(200):  # the loader retries with backoff
            after = await today(rt)
            if after["loaded"]:
                break
            await asyncio.sleep(0.1)
        assert after["loaded"] is True
        # The writer puts c4 into the database too; once it has, reading the day back
        # again (as a next restart would) still counts c4 once.
        await rt.writer.drained(within=30)
        rt.hub._loaded.clear()
        for _ in range(100):
            again = await today(rt)
            if again["loaded"]:
                break
            await asyncio.sleep(0.05)
        assert again == after
    assert (after["offered"], after["answered"]) == (4, 4)
    assert after["answered_within_sl"] == 3  # c4 waited 200 s
    assert after["asa_seconds"] == round((3 * 10 + 200) / 4, 1)
