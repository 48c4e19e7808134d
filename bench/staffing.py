"""Forecast + staffing from a year of log, and one `acd plan --check` day.

    .venv/bin/python bench/staffing.py [--weeks 5] [--check-rounds 4] [--check-scale 1.0]

1. A year of synthetic log (app/sim/history.py: the traffic model with a weekday pattern,
   a month-start peak, busier days after holidays and a slight trend), 11 queues, open
   08:00-18:00 on working days (20 half hours). Not timed.
2. Timed: the forecast of 11 queues x 5 weeks x 20 half hours, its rolling backtest (the
   accuracy every forecast reports) and Erlang C + Erlang A staffing of every half hour.
   Goal: under 2 s.
3. The backtest WAPE per day and per half hour, next to two naive forecasts (the same
   weekday last week; the mean of the last 4 weeks' days) and the floor no forecast can
   beat on this data (the Poisson noise of the known arrival rates).
4. One planned day played with `--check` in the simulated PBX (full volume, fast mode):
   the time per simulated day and in all.

Prints JSON. The machine is shared: compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import time
from dataclasses import replace
from pathlib import Path

from app.acd.calendar import Schedule, parse_interval
from app.acd.forecast import CENTRE, History, backtest, forecast, is_open, open_slots
from app.acd.kpi import KpiConfig
from app.acd.plan import PlanInputs, PlanTargets, build_plan
from app.sim.check import Checker
from app.sim.history import history_rows
from app.sim.runner import load_queues
from app.sim.traffic import HOUR_WEIGHTS, TrafficConfig, expected_calls

ROOT = Path(__file__).resolve().parents[1]
HOURS = {**HOUR_WEIGHTS, 15: 0.55, 16: 0.45, 17: 0.35}  # 08:00-18:00
OPEN = (parse_interval("08:00-18:00"),)
SCHEDULE = Schedule(
    weekly={"mon": OPEN, "tue": OPEN, "wed": OPEN, "thu": OPEN, "fri": OPEN, "sat": (), "sun": ()}
)
TRAFFIC = TrafficConfig(
    seed=11,
    close_hour=18,
    hour_weights=HOURS,
    weekday_weights={0: 1.25, 1: 1.05, 2: 1.0, 3: 0.95, 4: 0.8},
    month_start_factor=1.25,
    after_holiday_factor=1.35,
    trend_per_week=0.002,
    trend_from=dt.date(2014, 1, 1),
)
FIRST, ORIGIN = dt.date(2014, 1, 1), dt.date(2014, 12, 31)


def poisson_mad(mean: float) -> float:
    """E|X - mean| for X ~ Poisson(mean): 2 e^-m m^(n+1) / n!, n = floor(m)."""
    if mean <= 0:
        return 0.0
    n = math.floor(mean)
    return 2.0 * math.exp(-mean + (n + 1) * math.log(mean) - math.lgamma(n + 1))


def naive(history: History, names: list[str], origin: dt.date, weeks: int) -> dict[str, float]:
    """WAPE per day and half hour of two naive forecasts over the backtest days."""
    out: dict[str, float] = {}
    days = [
        origin - dt.timedelta(days=i)
        for i in range(7 * weeks)
        if (origin - dt.timedelta(days=i)) in history.observed
    ]
    for label in ("last_week", "mean_4_weeks"):
        abs_day = abs_slot = total = 0.0
        for d in days:
            slots = open_slots(d, SCHEDULE)
            if label == "last_week":
                refs = [d - dt.timedelta(days=7)]
            else:
                refs = [d - dt.timedelta(days=k) for k in range(1, 29)]
                refs = [r for r in refs if r in history.observed]
            for q in names:
                actual = history.day(q, d)
                logs = [history.day(q, r) for r in refs]
                fc = [
                    sum(log.offered[s] for log in logs if log is not None) / max(1, len(logs))
                    for s in slots
                ]
                real = [actual.offered[s] if actual else 0 for s in slots]
                total += sum(real)
                abs_day += abs(sum(fc) - sum(real))
                abs_slot += sum(abs(f - a) for f, a in zip(fc, real, strict=True))
        out[f"{label}_wape_day"] = round(abs_day / total, 4)
        out[f"{label}_wape_half_hour"] = round(abs_slot / total, 4)
    return out


def floor(names: list[str], origin: dt.date, weeks: int, history: History) -> dict[str, float]:
    """The Poisson noise of the true rates: the WAPE a perfect forecast would still show
    (per queue summed over queues, the day level per queue-day)."""
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    abs_day = abs_slot = total = 0.0
    for i in range(7 * weeks):
        d = origin - dt.timedelta(days=i)
        if d not in history.observed or not is_open(d, SCHEDULE):
            continue
        rates = expected_calls(queues, replace(TRAFFIC, date=d))
        for q in names:
            lam = rates[q]
            total += sum(lam)
            abs_day += poisson_mad(sum(lam))
            abs_slot += sum(poisson_mad(x) for x in lam)
    return {
        "perfect_wape_day": round(abs_day / total, 4),
        "perfect_wape_half_hour": round(abs_slot / total, 4),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    queues = load_queues(ROOT / "ivr_flows" / "queues.yaml")
    names = [q.name for q in queues.queues]
    wrapup = {q.name: float(q.wrapuptime) for q in queues.queues}
    t0 = time.perf_counter()
    history = History()
    calls = 0
    for r in history_rows(queues, TRAFFIC, FIRST, ORIGIN + dt.timedelta(days=1)):
        history.add(r.queue, r.day, r.slot, r.offered, r.handled, r.handle_seconds)
        calls += r.offered
    made = time.perf_counter() - t0

    start = ORIGIN + dt.timedelta(days=5)  # Monday 5 January 2015
    days = [start + dt.timedelta(days=i) for i in range(7 * args.weeks)]
    patience = dict.fromkeys(names, 600.0)
    best = {}
    for _ in range(args.repeat):
        t1 = time.perf_counter()
        fcs = forecast(history, names, days, SCHEDULE, origin=ORIGIN, wrapup=wrapup)
        t2 = time.perf_counter()
        acc = backtest(
            history, names, SCHEDULE, origin=ORIGIN, weeks=4, horizon=(start - ORIGIN).days,
            wrapup=wrapup,
        )  # fmt: skip
        t3 = time.perf_counter()
        plans = build_plan(fcs, PlanInputs(patience=patience, shrinkage=0.25))
        t4 = time.perf_counter()
        run = {"forecast": t2 - t1, "backtest": t3 - t2, "staffing": t4 - t3, "total": t4 - t1}
        if not best or run["total"] < best["total"]:
            best = run
    cells = sum(len(p.cells) for p in plans)
    open_days = sorted({f.day for f in fcs if f.closed is None})

    # One planned day, full volume, played in the simulator.
    day = open_days[1]  # Tuesday
    day_fcs = [f for f in fcs if f.day == day]
    day_plans = [p for p in plans if p.day == day]
    t5 = time.perf_counter()
    checker = Checker(
        queues, day, day_fcs, day_plans, PlanTargets(), KpiConfig(),
        tz="Europe/Copenhagen", rounds=args.check_rounds,
    )  # fmt: skip
    result = await checker.run()
    checked = time.perf_counter() - t5
    centre = acc[CENTRE]
    return {
        "history": {
            "days": len(history.observed),
            "calls": calls,
            "seconds_to_draw": round(made, 2),
        },
        "planned": {
            "queues": len(names),
            "days": len(days),
            "open_days": len(open_days),
            "half_hours_staffed": cells,
            "erlang_evaluations": 2 * cells,
        },
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "goal_seconds": 2.0,
        "ratio_to_goal": round(best["total"] / 2.0, 3),
        "backtest": {
            "days": centre.days,
            "horizon_days": centre.horizon_days,
            "centre_wape_day": centre.wape_day,
            "centre_wape_half_hour": centre.wape_half_hour,
            "centre_bias": centre.bias,
            "centre_interval_coverage": centre.interval_coverage,
            "queue_wape_day": {q: a.wape_day for q, a in acc.items() if q != CENTRE},
            "queue_wape_half_hour": {q: a.wape_half_hour for q, a in acc.items() if q != CENTRE},
            "queues_pooled_wape_day": _pooled(acc, "wape_day"),
            "queues_pooled_wape_half_hour": _pooled(acc, "wape_half_hour"),
            **naive(history, names, ORIGIN, 4),
            **floor(names, ORIGIN, 4, history),
        },
        "check": {
            "date": day.isoformat(),
            "calls": result.rounds[0].calls if result.rounds else 0,
            "rounds": len(result.rounds),
            "seconds": round(checked, 2),
            "seconds_per_simulated_day": round(checked / max(1, len(result.rounds)), 2),
            "met": result.met,
            "agent_hours": {
                "erlang_c": result.erlang_c_hours,
                "erlang_a": result.erlang_a_hours,
                "simulated_optimal": result.best.agent_hours if result.best else None,
            },
        },
    }


def _pooled(acc: dict[str, object], field: str) -> float | None:
    """The queues' WAPE together: sum of absolute errors over the sum of calls."""
    num = den = 0.0
    for q, a in acc.items():
        if q == CENTRE:
            continue
        value, calls = getattr(a, field), a.actual_calls  # type: ignore[attr-defined]
        if value is not None:
            num += value * calls
            den += calls
    return round(num / den, 4) if den else None


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weeks", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3, help="best of N timed runs")
    p.add_argument("--check-rounds", type=int, default=4)
    print(json.dumps(asyncio.run(main(p.parse_args())), indent=2))
