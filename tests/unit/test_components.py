"""Stopping components: ``cancel_tasks`` must end a task even when a cancel is lost; a
``PeriodicJob`` runs again after a failure and says so in its health."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from app.components import PeriodicJob, cancel_tasks


async def _stops_within(seconds: float, *tasks: asyncio.Task[None]) -> bool:
    """Run ``cancel_tasks`` and report whether it returned in time. ``asyncio.wait`` does
    not cancel the stopper on time-out (``wait_for`` would, and so unstick it)."""
    stopper = asyncio.create_task(cancel_tasks(*tasks))
    done, _ = await asyncio.wait({stopper}, timeout=seconds)
    if not done:
        stopper.cancel()
    return bool(done)


async def test_a_task_whose_cancel_is_lost_in_wait_for_is_still_stopped() -> None:
    """Python 3.11's ``wait_for`` returns the inner result and drops the cancellation
    when both land in the same loop pass; a plain cancel-and-await then hangs for ever."""
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    went_on = asyncio.Event()

    async def session() -> None:
        await asyncio.wait_for(reply, 10)  # the login answer and the stop arrive together
        went_on.set()
        await asyncio.sleep(3600)  # ... and the session pings on

    task = asyncio.create_task(session(), name="session")
    await asyncio.sleep(0)
    reply.set_result("Success")
    assert await _stops_within(3, task)
    assert went_on.is_set() and task.cancelled()  # the first cancel was lost, not the stop


async def test_a_task_that_swallows_one_cancel_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await _stops_within(5, task)
    assert task.cancelled() and swallowed == 3


async def test_a_failed_task_is_logged_and_the_others_still_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    failed = asyncio.create_task(broken(), name="broken-part")
    sleeper = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.ERROR, logger="app.components"):
        await cancel_tasks(failed, None, sleeper)
    assert sleeper.cancelled()
    assert "broken-part ended with an error" in caplog.text and "boom" in caplog.text


async def test_a_periodic_job_runs_again_after_a_failure_and_says_so() -> None:
    class Job(PeriodicJob):
        name = "test-job"
        interval = 0.01

        def __init__(self) -> None:
            super().__init__()
            self.runs = 0

        async def run_once(self) -> int:
            self.runs += 1
            if self.runs == 1:
                raise OSError("database away")
            self.last_run, self.last_error = datetime.now(UTC), None
            return self.runs

        def progress(self) -> dict[str, Any]:
            return {"runs": self.runs}

    job = Job()
    assert (await job.check()).ok  # not run yet: nothing wrong
    await job.start()
    try:
        for _ in range(200):
            if job.runs >= 1 and job.last_error:
                break
            await asyncio.sleep(0.001)
        failing = await job.check()
        assert not failing.ok and failing.detail["last_error"] == "OSError: database away"
        for _ in range(500):
            if job.runs >= 2:
                break
            await asyncio.sleep(0.005)
        health = await job.check()
        assert health.ok and health.detail["runs"] >= 2 and "last_run" in health.detail
    finally:
        await job.stop()
    assert job._task is not None and job._task.done()
