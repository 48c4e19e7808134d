"""The forecast (app/acd/forecast.py) on simulated traffic whose pattern is known: the
traffic model's expected calls per queue and half hour (app/sim/traffic.py) with a
weekday pattern, a month-start peak, busier days after holidays and a trend; the log
drawn from it with Poisson noise (app/sim/history.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from app.acd.calendar import Schedule, parse_interval
from app.acd.forecast import (
    AFTER_HOLIDAY,
    CENTRE,
    MONTH_START,
    ForecastError,
    History,
    backtest,
    day_kinds,
    forecast,
    open_slots,
    special_factors,
)
from app.sim.history import history_rows
from app.sim.runner import load_queues
from app.sim.traffic import TrafficConfig, expected_calls

ROOT = Path(__file__).resolve().parents[2]
QUEUES = load_queues(ROOT / "ivr_flows" / "queues.yaml")
NAMES = [q.name for q in QUEUES.queues]
WRAPUP = {q.name: float(q.wrapuptime) for q in QUEUES.queues}
OPEN = (parse_interval("08:00-15:00"),)  # the traffic model's hours
SCHEDULE = Schedule(
    weekly={"mon": OPEN, "tue": OPEN, "wed": OPEN, "thu": OPEN, "fri": OPEN, "sat": (), "sun": ()}
)
PATTERN = TrafficConfig(
    seed=5,
    weekday_weights={0: 1.3, 1: 1.05, 2: 1.0, 3: 0.95, 4: 0.75},
    month_start_factor=1.3,
    after_holiday_factor=1.4,
    trend_per_week=0.004,
    trend_from=dt.date(2014, 1, 1),
)
FIRST, ORIGIN = dt.date(2014, 1, 1), dt.date(2014, 10, 31)  # ten months of log


_logs: dict[tuple[int, dt.date, dt.date], History] = {}


def history(
    cfg: TrafficConfig = PATTERN, first: dt.date = FIRST, last: dt.date = ORIGIN
) -> History:
    """The log of ``cfg``'s traffic (kept per seed and span: drawing ten months of
    ~1,550 calls a day takes a second)."""
    key = (cfg.seed, first, last)
    if key not in _logs:
        h = History()
        for r in history_rows(QUEUES, cfg, first, last + dt.timedelta(days=1)):
            h.add(r.queue, r.day, r.slot, r.offered, r.handled, r.handle_seconds)
        _logs[key] = h
    return _logs[key]


def truth(day: dt.date, cfg: TrafficConfig = PATTERN) -> dict[str, list[float]]:
    return expected_calls(QUEUES, replace(cfg, date=day))


def test_the_forecast_recovers_the_known_pattern_within_its_stated_accuracy() -> None:
    h = history()
    days = [ORIGIN + dt.timedelta(days=i) for i in range(1, 22)]  # November, 3 weeks
    fcs = forecast(h, NAMES, days, SCHEDULE, wrapup=WRAPUP)
    stated = backtest(h, NAMES, SCHEDULE, weeks=4, horizon=7, wrapup=WRAPUP)[CENTRE]
    assert stated.days >= 15 and stated.wape_day is not None and stated.wape_half_hour is not None
    abs_day = abs_slot = total = 0.0
    for d in days:
        want = truth(d)
        got = [f for f in fcs if f.day == d]
        if not SCHEDULE.intervals(d):
            assert all(f.closed and not f.slots for f in got)
            continue
        day_total = sum(sum(v) for v in want.values())
        total += day_total
        abs_day += abs(sum(f.calls for f in got) - day_total)
        for f in got:
            for s in f.slots:
                abs_slot += abs(s.calls - want[f.queue][s.slot])
    # The forecast is closer to the truth than to the noisy counts the backtest scores
    # it against: its stated accuracy holds against the pattern itself.
    assert abs_day / total <= stated.wape_day
    assert abs_slot / total <= stated.wape_half_hour
    assert abs_day / total < 0.04  # days within a few per cent
    # Monday is the busiest day and Friday the quietest, as in the pattern.
    by_day = {d: sum(f.calls for f in fcs if f.day == d) for d in days}
    assert (
        by_day[dt.date(2014, 11, 10)]
        > by_day[dt.date(2014, 11, 11)]
        > by_day[dt.date(2014, 11, 14)]
    )


def test_the_time_of_day_shape_is_the_traffic_models() -> None:
    day = dt.date(2014, 11, 5)  # a Wednesday
    fcs = forecast(history(), NAMES, [day], SCHEDULE, wrapup=WRAPUP)
    want = truth(day)
    slots = open_slots(day, SCHEDULE)
    assert slots == list(range(16, 30))  # 08:00-15:00
    centre = {s: sum(f.slots[i].calls for f in fcs) for i, s in enumerate(slots)}
    total, true_total = sum(centre.values()), sum(sum(v) for v in want.values())
    for s in slots:
        true_share = sum(v[s] for v in want.values()) / true_total
        assert centre[s] / total == pytest.approx(true_share, abs=0.006)
    # one queue: 8 Wednesdays of ~50 calls a half hour, so ~5 % noise per share
    (f,) = [f for f in fcs if f.queue == "kontanthjaelp"]
    err = sum(abs(x.calls / f.calls - want["kontanthjaelp"][x.slot] / sum(want["kontanthjaelp"]))
              for x in f.slots)  # fmt: skip
    assert err < 0.09
    # 08-09 is the busiest hour, 14-15 the quietest (hour weights 1.45 ... 0.65)
    assert centre[16] + centre[17] > centre[22] + centre[23] > centre[28] + centre[29]
    # handle time: the model's mean talk (300 s) + ring (~3.75 s) + wrap-up (30 s)
    assert f.slots[0].aht_seconds == pytest.approx(300 + 3.75 + 30, rel=0.06)


def test_special_days_are_found_in_the_data_and_applied() -> None:
    factors = special_factors(history(), SCHEDULE, ORIGIN)
    assert factors[MONTH_START]["applied"] and factors[MONTH_START]["days"] >= 8
    assert factors[MONTH_START]["factor"] == pytest.approx(1.3, rel=0.12)
    assert factors[AFTER_HOLIDAY]["applied"]
    assert factors[AFTER_HOLIDAY]["factor"] == pytest.approx(1.4, rel=0.15)
    # 1 December 2014 is a Monday and the month's first working day
    d = dt.date(2014, 12, 1)
    assert MONTH_START in day_kinds(d, SCHEDULE)
    fcs = forecast(history(), NAMES, [d], SCHEDULE, wrapup=WRAPUP)
    got = sum(f.calls for f in fcs)
    want = sum(sum(v) for v in truth(d).values())
    assert got == pytest.approx(want, rel=0.08)
    assert all(f.explain["special_factor"] > 1.2 for f in fcs if f.calls)


def test_without_such_days_in_the_data_no_factor_is_applied() -> None:
    flat = TrafficConfig(seed=6)
    h = history(flat, dt.date(2014, 3, 1), dt.date(2014, 9, 30))
    factors = special_factors(h, SCHEDULE, dt.date(2014, 9, 30))
    assert not any(f["applied"] for f in factors.values()), factors


def test_holidays_and_weekends_are_closed_and_say_why() -> None:
    days = [dt.date(2014, 12, d) for d in (24, 25, 26, 27)] + [dt.date(2015, 4, 2)]
    fcs = forecast(history(), ["dagpenge"], days, SCHEDULE, wrapup=WRAPUP)
    reasons = {f.day: f.closed for f in fcs}
    assert reasons[dt.date(2014, 12, 24)] == "helligdag: Juleaftensdag"
    assert reasons[dt.date(2014, 12, 26)] == "helligdag: 2. juledag"
    assert reasons[dt.date(2014, 12, 27)] == "lukket om lørdagen"
    assert reasons[dt.date(2015, 4, 2)] == "helligdag: Skærtorsdag"
    assert all(f.calls == 0 and not f.slots for f in fcs)
    # the first working day after Christmas (Monday 29 December) is busier than a Monday
    assert AFTER_HOLIDAY in day_kinds(dt.date(2014, 12, 29), SCHEDULE)


def test_the_trend_is_followed() -> None:
    growing = TrafficConfig(seed=8, trend_per_week=0.02, trend_from=dt.date(2014, 1, 1))
    h = history(growing, dt.date(2014, 4, 1), dt.date(2014, 9, 30))
    d = dt.date(2014, 10, 22)  # three weeks ahead
    fcs = forecast(h, NAMES, [d], SCHEDULE, wrapup=WRAPUP)
    assert fcs[0].explain["trend_per_week"] == pytest.approx(0.02, abs=0.007)
    assert fcs[0].explain["trend_factor"] > 1.05
    want = sum(sum(v) for v in truth(d, growing).values())
    assert sum(f.calls for f in fcs) == pytest.approx(want, rel=0.05)


def test_the_interval_covers_about_what_it_says() -> None:
    acc = backtest(history(), NAMES, SCHEDULE, weeks=4, horizon=1, wrapup=WRAPUP)
    for q in ("kontanthjaelp", "dagpenge", "sygeopfoelgning", CENTRE):
        assert acc[q].interval_coverage is not None
        assert 0.65 <= acc[q].interval_coverage <= 0.95, (q, acc[q])
    assert acc["kontanthjaelp"].aht_wape is not None and acc["kontanthjaelp"].aht_wape < 0.15
    assert abs(acc[CENTRE].bias or 1) < 0.05


def test_bad_input_gets_a_clear_answer() -> None:
    with pytest.raises(ForecastError, match="no calls yet"):
        forecast(History(), NAMES, [dt.date(2014, 11, 4)], SCHEDULE)
    # a queue without a single call: no calls expected, handle time from the centre
    (f,) = forecast(history(), ["erhvervshuset"], [dt.date(2014, 11, 4)], SCHEDULE, wrapup=WRAPUP)
    assert f.calls == 0 and f.slots and all(s.aht_seconds for s in f.slots)
    # a line with no opening hours at all
    shut = Schedule(weekly=dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), ()))
    (g,) = forecast(history(), ["dagpenge"], [dt.date(2014, 11, 4)], shut)
    assert g.closed == "lukket om tirsdagen" and not g.slots
    # a backtest on an empty log says nothing rather than failing
    assert backtest(History(), NAMES, SCHEDULE) == {}
