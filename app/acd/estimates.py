"""What the IVR may know of a queue when it decides (live figures, computed by app/acd)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueEstimate:
    queue: str
    waiting: int  # callers waiting now
    agents_logged_in: int
    agents_available: int  # logged in, not paused, not on a call, not in wrap-up
    estimated_wait_seconds: float | None  # for a caller joining now; None = unknown


# The live state offers this; the IVR engine gets the result as plain data.
EstimateSource = Callable[[str], QueueEstimate | None]


def no_estimates(queue: str) -> QueueEstimate | None:
    """Used until the live state is running: nothing known, so nothing offered."""
    return None
