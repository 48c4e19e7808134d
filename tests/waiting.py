"""Waiting in tests for a condition, never for a fixed time.

A fixed ``sleep`` before an assertion races the machine's load: on a shared box the thing
waited for may come later, and the test fails for no fault of the code. ``wait_for``
polls the condition instead (sync or async) and fails with what it waited for.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Condition = Callable[[], Any | Awaitable[Any]]


async def wait_for(
    condition: Condition, within: float = 20.0, step: float = 0.02, what: str = ""
) -> Any:
    """Poll ``condition`` until it is truthy; return its value. After ``within`` seconds an
    ``AssertionError`` says what was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not met within {within:g} s: {what or condition}")
        await asyncio.sleep(step)
