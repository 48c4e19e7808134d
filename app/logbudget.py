"""A log budget: at most ``lines`` warnings per ``interval`` seconds from one source, then
one summary line with what was left out.

A hostile or broken peer can make the same warning happen thousands of times a second
(10,000 FastAGI connections that never send an environment wrote 9,105 lines); the log
must still say what happened without drowning everything else. The first ``lines``
messages of each interval are logged as they come; the rest are counted by kind and, at the
end of the interval, summed up in one line: ``FastAGI: 8,412 more warnings in the last 60 s
left out (timeout 8,000, protocol_error 412)``. Counting costs a dict increment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable


class LogBudget:
    """Rate-limits the warnings of one source (module doc). Not thread-safe; one event
    loop."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        lines: int = 20,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.lines = lines
        self.interval = interval
        self.clock = clock
        self._window_start = clock()
        self._logged = 0
        self._left_out: Counter[str] = Counter()
        self._flush_handle: asyncio.TimerHandle | None = None
        self.left_out_total = 0  # over the process's life (a test, a metric)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` at WARNING if the budget allows, else count it under
        ``kind`` (a short word: the summary groups by it)."""
        self.log(logging.WARNING, kind, msg, *args)

    def log(self, level: int, kind: str, msg: str, *args: object) -> None:
        now = self.clock()
        if now - self._window_start >= self.interval:
            self.flush(now)
        if self._logged < self.lines:
            self._logged += 1
            self.logger.log(level, msg, *args)
            return
        self._left_out[kind] += 1
        self.left_out_total += 1
        self._schedule_flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write the summary of what was left out (if anything) and start a new window."""
        now = self.clock() if now is None else now
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._left_out:
            total = sum(self._left_out.values())
            kinds = ", ".join(f"{k} {n:,}" for k, n in self._left_out.most_common())
            seconds = max(now - self._window_start, 0.0)
            self.logger.warning(
                "%s: %s more warnings in the last %.0f s left out (%s)",
                self.what,
                f"{total:,}",
                seconds,
                kinds,
            )
            self._left_out.clear()
        self._window_start = now
        self._logged = 0

    def _schedule_flush(self, now: float) -> None:
        # The summary must come even if no later warning arrives to trigger it.
        if self._flush_handle is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop (a sync caller)
            loop = asyncio.get_running_loop()
            delay = max(self._window_start + self.interval - now, 0.0)
            self._flush_handle = loop.call_later(delay, self.flush)
