"""The virtual clock: fast (discrete-event), real (speed factor) and manual modes."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.sim.clock import Kernel, first_of

T0 = 1_000_000.0


async def test_fast_mode_jumps_to_the_next_timer() -> None:
    k = Kernel(T0, "fast")
    k.start()
    seen: list[tuple[str, float]] = []

    async def caller(name: str, delays: list[float]) -> None:
        for d in delays:
            await k.sleep(d)
            seen.append((name, k.now()))

    real0 = time.perf_counter()
    a = k.spawn(caller("a", [3600.0, 7200.0]))
    b = k.spawn(caller("b", [5400.0]))
    await asyncio.gather(a, b)
    assert seen == [("a", T0 + 3600), ("b", T0 + 5400), ("a", T0 + 10800)]
    assert time.perf_counter() - real0 < 1.0  # three hours in no time
    await k.stop()


async def test_virtual_time_stands_still_while_a_call_waits_for_io() -> None:
    """A FastAGI round trip must cost no virtual time: the coroutine is active."""
    k = Kernel(T0, "fast")
    k.start()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(k.now())
        k.call_later(1.0, tick)

    k.call_later(1.0, tick)

    async def call() -> tuple[float, float]:
        before = k.now()
        await asyncio.sleep(0.05)  # a socket read: real time, no virtual time
        return before, k.now()

    before, after = await k.spawn(call())
    assert before == after
    assert all(t <= after for t in ticks)
    await k.stop()


async def test_signals_wake_waiters_and_first_of() -> None:
    k = Kernel(T0, "fast")
    k.start()
    s1, s2 = k.signal(), k.signal()
    k.call_later(10, s2.set, "second")
    k.call_later(20, s1.set, "first")

    async def waiter() -> tuple[int, float, str]:
        idx = await first_of(k, s1, s2)
        value = await s1.wait()
        return idx, k.now(), value

    assert await k.spawn(waiter()) == (1, T0 + 20, "first")
    assert s1.done() and s1.value == "first"
    await k.stop()


async def test_manual_mode_moves_only_when_told() -> None:
    k = Kernel(T0, "manual")
    k.start()
    fired: list[float] = []
    for d in (1, 5, 9):
        k.call_later(d, lambda: fired.append(k.now()))
    await k.advance_to(T0 + 5)
    assert fired == [T0 + 1, T0 + 5] and k.now() == T0 + 5
    await asyncio.sleep(0.02)
    assert k.now() == T0 + 5  # nothing moves by itself
    await k.advance_to(T0 + 7.5)
    assert k.now() == T0 + 7.5 and fired == [T0 + 1, T0 + 5]
    await k.advance_to(T0 + 100)
    assert fired[-1] == T0 + 9
    await k.stop()


async def test_real_mode_runs_speed_times_faster_than_the_wall_clock() -> None:
    k = Kernel(T0, "real", speed=1000.0)
    k.start()
    real0 = time.perf_counter()

    async def nap() -> float:
        await k.sleep(200.0)  # 0.2 s of wall clock at speed 1000
        return k.now()

    woke = await k.spawn(nap())
    elapsed = time.perf_counter() - real0
    assert 0.15 < elapsed < 1.5
    assert woke >= T0 + 200.0
    await k.stop()


async def test_set_speed_changes_pace_without_a_jump_in_virtual_time() -> None:
    k = Kernel(T0, "real", speed=10.0)
    k.start()

    async def nap() -> float:
        await k.sleep(100.0)  # 10 s of wall clock at speed 10, 0.1 s at 1000
        return k.now()

    sleeper = k.spawn(nap())
    await asyncio.sleep(0.1)
    before = k.now()
    k.set_speed(1000.0)
    after = k.now()
    real0 = time.perf_counter()
    woke = await sleeper
    assert T0 <= before <= after < T0 + 5  # ~1 s of virtual time: no jump either way
    assert time.perf_counter() - real0 < 1.5
    assert woke >= T0 + 100.0
    with pytest.raises(ValueError):
        k.set_speed(0.0)
    await k.stop()


async def test_a_cancelled_sleeper_does_not_freeze_time() -> None:
    k = Kernel(T0, "fast")
    k.start()
    parked = k.spawn(k.sleep(1e6))
    await asyncio.sleep(0)
    parked.cancel()

    async def later() -> float:
        await k.sleep(10)
        return k.now()

    assert await asyncio.wait_for(k.spawn(later()), 2) == T0 + 10
    await k.stop()


async def test_real_mode_plays_fast_up_to_fast_until_then_keeps_pace() -> None:
    """The demo's start: hours before ``fast_until`` in no time, then the wall clock."""
    k = Kernel(T0, "real", speed=10.0, fast_until=T0 + 7200)
    k.start()
    await asyncio.sleep(0.05)
    assert k.fast_forwarding and k.now() == T0  # nothing scheduled yet: time waits
    seen: list[float] = []

    async def caller() -> None:
        for _ in range(3):
            await k.sleep(3000.0)  # 3000, 6000 (fast), 9000 (real: 180 s at x10 = 18 s)
            seen.append(k.now())

    real0 = time.perf_counter()
    task = k.spawn(caller())
    while len(seen) < 2:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert time.perf_counter() - real0 < 1.0
    assert seen == [T0 + 3000, T0 + 6000]
    # The horizon is reached once nothing before it is left; then it keeps pace.
    while k.fast_forwarding:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    switched = time.perf_counter()
    assert k.mode == "real" and T0 + 7200 <= k.now() < T0 + 7200 + 10 * 1.0
    await asyncio.sleep(0.2)
    assert T0 + 7200 + 1.0 <= k.now() <= T0 + 7200 + 10 * (time.perf_counter() - switched + 0.1)
    assert len(seen) == 2  # the third nap ends at 9000, 180 wall seconds away
    task.cancel()
    await k.stop()


async def test_stop_ends_a_task_that_lost_its_first_cancel() -> None:
    # Python 3.11's asyncio.wait_for can finish in the same turn as a cancel and drop it:
    # the task goes on and parks on virtual time, which a stopped driver never moves. A
    # demo's Ctrl-C hung there; stop() cancels until every task is done.
    kernel = Kernel(0.0, "real", speed=1.0)
    kernel.start()
    parked = asyncio.Event()

    async def loses_one_cancel() -> None:
        try:
            await kernel.sleep(3600)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        parked.set()
        await kernel.sleep(3600)  # no driver moves this once stop() has run

    task = kernel.spawn(loses_one_cancel())
    await asyncio.sleep(0)
    await asyncio.wait_for(kernel.stop(), 5)
    assert parked.is_set() and task.cancelled()
