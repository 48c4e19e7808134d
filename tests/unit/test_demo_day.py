"""Which day `acd demo` plays and from when, at any hour: a centre at work at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from app.sim.harness import demo_day, demo_roster
from app.sim.runner import load_queues
from app.sim.traffic import plan_day

CPH = ZoneInfo("Europe/Copenhagen")
ROOT = Path(__file__).resolve().parents[2]


def _at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CPH)


def test_at_night_the_last_working_morning_up_to_half_past_nine_at_once() -> None:
    # Monday 7 Dec 2026, 02:50: Friday 4 Dec is played, fast up to 09:30.
    day = demo_day(_at(2026, 12, 7, 2, 50), "Europe/Copenhagen", 7, 1.0)
    assert day.traffic.date == dt.date(2026, 12, 4) and day.start is None
    assert day.live_from == _at(2026, 12, 4, 9, 30).timestamp()
    # Before the morning has filled (08:10) and late in the day (14:30) as well.
    for now in (_at(2026, 12, 8, 8, 10), _at(2026, 12, 8, 14, 30)):
        day = demo_day(now, "Europe/Copenhagen", 7, 1.0)
        assert day.traffic.date == dt.date(2026, 12, 7)
        assert day.live_from == _at(2026, 12, 7, 9, 30).timestamp()
    # After a public holiday (Monday 28 Dec 2026 follows Christmas): the last working day.
    day = demo_day(_at(2026, 12, 28, 7, 0), "Europe/Copenhagen", 7, 1.0)
    assert day.traffic.date == dt.date(2026, 12, 23)


def test_in_the_open_hours_today_up_to_now_at_once() -> None:
    now = _at(2026, 12, 8, 10, 15)
    day = demo_day(now, "Europe/Copenhagen", 7, 1.0)
    assert day.traffic.date == dt.date(2026, 12, 8)
    assert day.start is None and day.live_from == now.timestamp()
    # The whole day's calls are planned: the morning so far is there to be played.
    plan = plan_day(load_queues(ROOT / "ivr_flows" / "queues.yaml"), day.traffic)
    assert sum(1 for a in plan.arrivals if a.at < now.timestamp()) > 300


def test_continue_goes_on_where_the_last_run_stopped_or_with_the_next_day() -> None:
    stopped = _at(2026, 12, 4, 9, 42)
    day = demo_day(_at(2026, 12, 7, 3, 0), "Europe/Copenhagen", 7, 1.0, resume=stopped)
    assert day.traffic.date == dt.date(2026, 12, 4)
    assert day.start == day.live_from == stopped.timestamp() + 1
    # That day was over: the next working day (Friday -> Monday), its morning at once.
    day = demo_day(
        _at(2026, 12, 7, 3, 0), "Europe/Copenhagen", 7, 1.0, resume=_at(2026, 12, 4, 15, 5)
    )
    assert day.traffic.date == dt.date(2026, 12, 7) and day.start is None
    assert day.live_from == _at(2026, 12, 7, 9, 30).timestamp()


def test_the_roster_is_the_simulated_room() -> None:
    day = demo_day(_at(2026, 12, 7, 2, 50), "Europe/Copenhagen", 7, 1.0)
    plan = plan_day(load_queues(ROOT / "ivr_flows" / "queues.yaml"), day.traffic)
    roster = demo_roster(plan)
    assert [p.interface for p in roster] == [a.interface for a in plan.agents]
    assert roster[0].id == "agent101" and roster[0].interface == "PJSIP/agent101"
    assert all(p.team == p.skills[0][0] and p.name for p in roster)
