"""A synthetic log: what ``queue_visits`` would hold after months of the traffic model,
per queue and half hour, without playing every call through the simulated PBX (a year is
~390,000 calls). For the planning tests and ``bench/staffing.py``: the arrivals are
Poisson with the traffic model's rates (``expected_calls``: weekday, time of day, month
start, the days after holidays, trend), handle times its lognormal talk plus ring time.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from app.sim.conf import QueuesConfig
from app.sim.traffic import TrafficConfig, expected_calls


@dataclass(frozen=True, slots=True)
class SlotRow:
    """One queue, one local day, one half hour: the shape of a history row."""

    queue: str
    day: dt.date
    slot: int
    offered: int
    handled: int  # answered, with a known ring + talk time
    handle_seconds: float  # their ring + talk, summed


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product for small means, a rounded normal above 60)."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def history_rows(
    queues: QueuesConfig,
    cfg: TrafficConfig,
    start: dt.date,
    end: dt.date,
    *,
    answered_share: float = 0.93,
) -> Iterator[SlotRow]:
    """Every non-empty (queue, day, half hour) from ``start`` up to ``end`` (exclusive),
    deterministic for ``cfg.seed``."""
    rng = random.Random(f"history:{cfg.seed}:{start}:{end}")
    sigma = cfg.talk_sigma
    day = start
    while day < end:
        rates = expected_calls(queues, replace(cfg, date=day))
        for queue, slots in rates.items():
            mean_talk = cfg.talk_means.get(queue, 270.0)
            mu = math.log(mean_talk) - sigma * sigma / 2
            for slot, rate in enumerate(slots):
                n = poisson(rng, rate)
                if not n:
                    continue
                handled = sum(1 for _ in range(n) if rng.random() < answered_share)
                seconds = sum(
                    max(10.0, rng.lognormvariate(mu, sigma)) + rng.uniform(*cfg.ring_seconds)
                    for _ in range(handled)
                )
                yield SlotRow(queue, day, slot, n, handled, seconds)
        day += dt.timedelta(days=1)
