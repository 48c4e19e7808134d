"""Virtual time for the simulated PBX.

Everything in the simulator lives on one virtual clock (epoch seconds, float). The
``Kernel`` owns it, holds the timers (a heap) and decides how virtual time moves:

``fast``
    As fast as possible, discrete-event style: virtual time jumps to the next timer
    whenever *nothing is pending*. "Pending" is counted, not guessed: every coroutine the
    kernel runs (``spawn``) counts as *active* unless it is parked on a virtual-time wait
    (``sleep``, ``Signal.wait``). A call waiting for the service's FastAGI reply is active,
    so virtual time stands still until the reply is in: a request/response over the socket
    costs no virtual time, exactly as a fast service costs (almost) no real time.
``real``
    Virtual time runs ``speed`` times faster than the wall clock (speed 60: a 7-hour day
    in 7 minutes). Timers fire when the wall clock reaches them. With ``fast_until`` the
    kernel plays ``fast`` up to that moment first, then goes on in real time from there
    (``acd demo``: the morning so far at once, then a centre at work).
``manual``
    Like ``fast``, but never beyond a horizon the owner moves with ``advance_to``; the
    fidelity tests use it to send an AMI action at an exact virtual moment.

Timer callbacks are plain synchronous functions: the PBX and queue models never await.
The accounting rule that makes ``fast`` safe: whoever wakes a parked coroutine counts it
active *at the moment of waking*, before the event loop runs it, so the driver can never
observe a false "idle" between a wake-up and the coroutine actually running.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Mode = Literal["fast", "real", "manual"]


class Timer:
    """A scheduled synchronous callback; ``cancel()`` before it fires to drop it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Kernel:
    """The virtual clock, its timers and the driver that moves time (see module doc)."""

    def __init__(
        self,
        start: float,
        mode: Mode = "fast",
        speed: float = 1.0,
        *,
        fast_until: float | None = None,
    ) -> None:
        if speed <= 0 or not math.isfinite(speed):
            raise ValueError("speed must be a positive finite number")
        # ``real`` with ``fast_until``: as ``fast`` up to that virtual moment, then at
        # ``speed`` (the demo: the morning so far at once, then a live centre).
        self._then_real = mode == "real" and fast_until is not None and fast_until > start
        if self._then_real:
            mode = "fast"
        self.mode: Mode = mode
        self.speed = speed
        self._now = float(start)
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._active = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed: asyncio.Event | None = None
        self._horizon = start if mode == "manual" else math.inf
        if self._then_real:
            assert fast_until is not None
            self._horizon = fast_until
        self._real0 = 0.0
        self._virt0 = float(start)
        self._driver: asyncio.Task[None] | None = None
        self._reached: asyncio.Event | None = None
        self.timers_fired = 0
        self._error: BaseException | None = None
        # Optional back-pressure (fast/manual): awaited before virtual time moves on.
        self.gate: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        if self.mode == "real" and self._driver is not None:
            loop = asyncio.get_running_loop()
            cont = self._virt0 + (loop.time() - self._real0) * self.speed
            return max(self._now, cont)
        return self._now

    def set_speed(self, speed: float) -> None:
        """From now on, ``speed`` times real time (mode ``real``; before a ``fast_until``
        stretch is over, the speed it goes on at). Virtual time does not jump: it goes on
        from where it is, faster or slower (a test plays a day's tail faster)."""
        if speed <= 0 or not math.isfinite(speed):
            raise ValueError("speed must be a positive finite number")
        if self.mode == "real" and self._driver is not None:
            self._virt0 = self.now()
            self._real0 = asyncio.get_running_loop().time()
        self.speed = speed
        self._poke()

    # ---------------------------------------------------------------- timers
    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(max(when, self._now), callback, args)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        self._poke()
        return timer

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self.call_at(self.now() + max(0.0, delay), callback, *args)

    def next_timer(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    # --------------------------------------------------- active accounting
    @property
    def active(self) -> int:
        return self._active

    def _inc(self, n: int = 1) -> None:
        self._active += n

    def _dec(self) -> None:
        self._active -= 1
        if self._active <= 0:
            self._active = 0
            self._poke()

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # ----------------------------------------------------- waits & tasks
    async def sleep(self, delay: float) -> None:
        """Park the calling (kernel-spawned) coroutine for ``delay`` virtual seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_at(self.now() + max(0.0, delay), self._wake, fut, None)
        self._dec()
        try:
            await fut
        except asyncio.CancelledError:
            timer.cancel()
            if not fut.done() or fut.cancelled():
                self._inc()
            raise

    async def sleep_until(self, when: float) -> None:
        await self.sleep(when - self.now())

    def _wake(self, fut: asyncio.Future[Any], value: Any) -> None:
        if not fut.done():
            self._inc()
            fut.set_result(value)

    def signal(self) -> Signal[Any]:
        return Signal(self)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a kernel task: active until it parks on virtual time."""
        self._inc()
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._dec()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    # --------------------------------------------------------------- driver
    def start(self) -> None:
        """Start the driver task on the running loop (idempotent)."""
        if self._driver is not None:
            return
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._reached = asyncio.Event()
        self._real0 = loop.time()
        self._virt0 = self._now
        self._driver = loop.create_task(self._drive(), name="sim-kernel")

    async def stop(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        # Cancel until every task is done. Once is not enough on Python 3.11: a task whose
        # asyncio.wait_for finishes in the same turn as the cancel loses the cancel and
        # goes on, then parks on virtual time that no driver moves any more (a demo's stop
        # hung on one); and a task cancelled may spawn another on its way out.
        for _ in range(100):
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.1)

    def raise_task_error(self) -> None:
        """Re-raise the first exception a kernel task died of (a simulator bug)."""
        if self._error is not None:
            raise self._error

    async def advance_to(self, when: float) -> None:
        """(manual mode) Run every timer up to ``when``, then stop there, idle."""
        if self.mode != "manual":
            raise RuntimeError("advance_to needs a manual-mode kernel")
        assert self._reached is not None
        self._horizon = max(self._horizon, when)
        self._reached.clear()
        self._poke()
        while not self._reached.is_set():
            await self._reached.wait()
        self.raise_task_error()

    async def settle(self) -> None:
        """Wait until no kernel coroutine is runnable (fast/manual)."""
        await self._wait_idle()

    async def _wait_idle(self) -> None:
        assert self._changed is not None
        # A bare yield first, so tasks created just now get a first step.
        await asyncio.sleep(0)
        while self._active > 0:
            self._changed.clear()
            if self._active <= 0:
                break
            await self._changed.wait()

    def _fire_due(self, upto: float) -> None:
        while self._heap and self._heap[0][0] <= upto:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            self.timers_fired += 1
            timer.callback(*timer.args)

    async def _drive(self) -> None:
        assert self._changed is not None and self._reached is not None
        if self.mode == "real":
            await self._drive_real()
            return
        loop = asyncio.get_running_loop()
        quiet = 0
        last_yield = loop.time()
        while True:
            # After a batch that woke nobody (a queue re-check that found no agent, say)
            # the next timer can fire at once; still hand the loop to the sockets every
            # few batches / milliseconds so AMI and FastAGI I/O keeps flowing.
            if self._active > 0 or quiet >= 32 or loop.time() - last_yield > 0.002:
                await self._wait_idle()
                quiet = 0
                last_yield = loop.time()
            nxt = self.next_timer()
            if nxt is not None and nxt <= self._horizon:
                if self.gate is not None and nxt > self._now:
                    await self.gate()
                # Fire the whole batch due at this instant, then let tasks run again.
                self._fire_due(nxt)
                quiet += 1
                continue
            await self._wait_idle()
            if self.next_timer() != nxt:
                continue
            if self._then_real and nxt is not None:
                # Everything up to the horizon has run; the next timer lies beyond it.
                self._go_real(loop.time())
                await self._drive_real()
                return
            if self.mode == "manual" and self._horizon > self._now and self._horizon != math.inf:
                self._now = self._horizon
            self._reached.set()
            self._changed.clear()
            await self._changed.wait()

    def _go_real(self, real_now: float) -> None:
        """The fast stretch is over: from its end, virtual time follows the wall clock."""
        self._now = max(self._now, self._horizon)
        self._horizon = math.inf
        self._then_real = False
        self.mode = "real"
        self._virt0 = self._now
        self._real0 = real_now

    @property
    def fast_forwarding(self) -> bool:
        """True while a ``fast_until`` stretch is still being played."""
        return self._then_real

    async def _drive_real(self) -> None:
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        while True:
            nxt = self.next_timer()
            self._changed.clear()
            if nxt is None:
                await self._changed.wait()
                continue
            due_real = self._real0 + (nxt - self._virt0) / self.speed
            delay = due_real - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=delay)
                continue
            cont = self._virt0 + (loop.time() - self._real0) * self.speed
            self._fire_due(max(nxt, cont))
            # Let woken coroutines run before the next batch.
            await asyncio.sleep(0)


class Signal(Generic[T]):
    """A one-shot value that kernel coroutines can wait for without counting as active.

    ``set`` marks every waiting coroutine active before waking it (see the module doc);
    plain callbacks (``on_set``) run synchronously inside ``set``.
    """

    __slots__ = ("_callbacks", "_done", "_kernel", "_value", "_waiters")

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._waiters: list[asyncio.Future[T]] = []
        self._callbacks: list[Callable[[T], None]] = []
        self._done = False
        self._value: T | None = None

    def done(self) -> bool:
        return self._done

    @property
    def value(self) -> T | None:
        return self._value

    def on_set(self, callback: Callable[[T], None]) -> None:
        if self._done:
            callback(self._value)  # type: ignore[arg-type]
        else:
            self._callbacks.append(callback)

    def set(self, value: T) -> None:
        if self._done:
            return
        self._done = True
        self._value = value
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                self._kernel._inc()
                fut.set_result(value)
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(value)

    async def wait(self) -> T:
        if self._done:
            return self._value  # type: ignore[return-value]
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._kernel._dec()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut in self._waiters:
                self._waiters.remove(fut)
            if not fut.done() or fut.cancelled():
                self._kernel._inc()
            raise


async def first_of(kernel: Kernel, *signals: Signal[Any]) -> int:
    """Wait until one of ``signals`` is set; the index of the first one set."""
    for i, s in enumerate(signals):
        if s.done():
            return i
    combined: Signal[int] = Signal(kernel)

    def relay(idx: int) -> Callable[[Any], None]:
        return lambda _value: combined.set(idx)

    for i, s in enumerate(signals):
        s.on_set(relay(i))
    return await combined.wait()
