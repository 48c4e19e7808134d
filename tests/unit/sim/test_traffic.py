"""The callers-and-agents model of a day: seeded, with Copenhagen's volumes and mix."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path

import pytest

from app.acd.calendar import danish_holidays, is_working_day
from app.sim.runner import load_queues
from app.sim.traffic import (
    LAB_KEYS,
    Arrival,
    FunctionKeyPlanner,
    SimAgent,
    SimCaller,
    TrafficConfig,
    catalogue_key_planner,
    daily_volume,
    plan_day,
)

ROOT = Path(__file__).resolve().parents[3]
QUEUES = load_queues(ROOT / "ivr_flows" / "queues.yaml")
TUESDAY = dt.date(2014, 11, 4)


def test_same_seed_same_day_other_seed_other_day() -> None:
    a = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=7))
    b = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=7))
    c = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=8))
    assert a == b
    assert a.arrivals != c.arrivals


def test_volume_of_a_working_day() -> None:
    expected = 388_901 / 251
    assert daily_volume(QUEUES, TrafficConfig()) == pytest.approx(expected)
    counts = [len(plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=s)).arrivals) for s in range(8)]
    # in-hours Poisson(1549) plus 2 % before/after the hours; mean within 3 sigma/sqrt(8)
    mean = statistics.mean(counts)
    assert abs(mean - expected * 1.02) < 3 * math.sqrt(expected) / math.sqrt(8)
    half = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=1, calls_scale=0.5))
    assert abs(len(half.arrivals) - expected * 0.51) < 4 * math.sqrt(expected * 0.5)


def test_queue_mix_follows_the_yearly_volumes() -> None:
    counts: dict[str, int] = {}
    n = 0
    for s in range(6):
        for q, k in plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=s)).calls_by_queue().items():
            counts[q] = counts.get(q, 0) + k
            n += k
    total = sum(q.calls_per_year for q in QUEUES.queues)
    for q in QUEUES.queues:
        p = q.calls_per_year / total
        got = counts.get(q.name, 0)
        assert abs(got - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1, q.name
    assert "erhvervshuset" not in counts  # no 2014 volume, no calls
    plan = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=1))
    abroad = [a for a in plan.arrivals if a.dialled == "+4582565682"]
    assert 0.005 < len(abroad) / len(plan.arrivals) < 0.04
    assert all(a.number.startswith("+") for a in abroad)


def test_mornings_are_heavier_and_calls_stay_in_the_hours() -> None:
    tz = dt.timezone(dt.timedelta(hours=1))  # CET in November
    hours: dict[int, int] = {}
    for s in range(4):
        for a in plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=s)).arrivals:
            local = dt.datetime.fromtimestamp(a.at, tz)
            hours[local.hour] = hours.get(local.hour, 0) + 1
    assert set(hours) <= {7, 8, 9, 10, 11, 12, 13, 14, 15}
    inside = [hours[h] for h in range(8, 15)]
    assert inside[0] > inside[3] > inside[6]  # 08-09 > 11-12 > 14-15
    assert inside[0] / inside[6] == pytest.approx(1.45 / 0.65, rel=0.15)
    assert hours.get(7, 0) + hours.get(15, 0) < 0.04 * sum(inside)


def test_closed_days_get_only_the_trickle() -> None:
    assert danish_holidays(2014).keys() >= {
        dt.date(2014, 4, 20),
        dt.date(2014, 5, 16),
        dt.date(2014, 12, 25),
        dt.date(2014, 6, 9),
    }
    assert not is_working_day(dt.date(2014, 12, 25))
    # Grundlovsdag: the menu is closed, so the simulator must not send a working day
    assert not is_working_day(dt.date(2014, 6, 5))
    assert len(plan_day(QUEUES, TrafficConfig(date=dt.date(2014, 6, 5), seed=1)).arrivals) < 80
    assert not is_working_day(dt.date(2014, 11, 8))  # a Saturday
    assert is_working_day(TUESDAY)
    xmas = plan_day(QUEUES, TrafficConfig(date=dt.date(2014, 12, 25), seed=1))
    assert len(xmas.arrivals) < 80 and xmas.agents == ()


def test_staff_covers_every_queue_with_skills_breaks_and_shifts() -> None:
    plan = plan_day(QUEUES, TrafficConfig(date=TUESDAY, seed=7))
    assert 25 <= len(plan.agents) <= 60
    names = set(QUEUES.names)
    busy = {q.name for q in QUEUES.queues if q.calls_per_year > 0}
    primaries = {a.skills[0][0] for a in plan.agents}
    assert primaries == busy
    assert len({a.interface for a in plan.agents}) == len(plan.agents)
    for a in plan.agents:
        assert a.login < a.logout
        assert all(q in names for q, _ in a.skills) and a.skills[0][1] == 0
        assert all(p == 1 for _, p in a.skills[1:])
        ends = 0.0
        for b in a.breaks:
            assert b.reason in ("Frokost", "Pause", "Møde")
            assert b.start >= ends  # no overlap
            ends = b.start + b.seconds

    # fewer agents in the afternoon than in the morning
    def on(at: float) -> int:
        return sum(1 for a in plan.agents if a.login <= at < a.logout)

    morning = plan.arrivals[0].at + 3600
    assert on(morning) > on(plan.end - 600)


def _caller(seed: int, keys: tuple[str, ...] = ("1",)) -> SimCaller:
    arrival = Arrival(T0, "dagpenge", "40000000", "Åse Ærø", seed)
    return SimCaller(arrival, TrafficConfig(), keys, lambda: T0, lambda p: 6.0)


T0 = 1_415_088_000.0


def test_menu_behaviour_shares() -> None:
    kinds = {"right": 0, "wrong": 0, "timeout": 0, "hangup": 0}
    for s in range(3000):
        r = _caller(s).respond("acd/menu-main", 5.0, 1)
        if r.kind == "digits":
            kinds["right" if r.digits == "1" else "wrong"] += 1
            assert 0.2 <= r.after < 6.0 + 5.0
        else:
            kinds[r.kind] += 1
    assert kinds["wrong"] / 3000 == pytest.approx(0.06 * 0.985, abs=0.015)
    assert kinds["timeout"] / 3000 == pytest.approx(0.04 * 0.985, abs=0.012)
    assert kinds["hangup"] / 3000 == pytest.approx(0.015, abs=0.008)


def test_a_caller_walks_its_path_and_retries_after_its_own_mistake() -> None:
    caller = _caller(1, keys=("9", "2"))
    pressed: list[str] = []
    for _ in range(12):
        r = caller.respond("acd/menu-x", 5.0, 1)
        if r.kind == "hangup":
            break
        if r.kind == "digits" and r.digits in ("9", "2") and r.digits == ("9", "2")[len(pressed)]:
            pressed.append(r.digits)
            if len(pressed) == 2:
                break
    assert pressed == ["9", "2"]


def test_patience_talk_and_survey_models() -> None:
    patience = sorted(_caller(s).patience("dagpenge") or 0 for s in range(2000))
    assert statistics.median(patience) == pytest.approx(600, rel=0.1)
    talks = [_caller(s).talk("genregistrering") for s in range(2000)]
    assert statistics.mean(t.seconds for t in talks) == pytest.approx(150, rel=0.1)
    agent_ends = sum(not t.caller_hangs_up for t in talks) / 2000
    assert agent_ends == pytest.approx(0.35, abs=0.04)
    scores = [_caller(s).respond("acd/survey-tilfredshed", 5.0, 1) for s in range(500)]
    digits = [int(r.digits) for r in scores if r.kind == "digits"]
    assert all(1 <= d <= 9 for d in digits)
    assert sum(r.kind == "hangup" for r in scores) / 500 == pytest.approx(0.08, abs=0.04)
    assert _caller(3).respond("acd/confirm-tilbagekald", 5.0, 1).digits == "1"
    assert _caller(3).respond("acd/info-velkommen", 5.0, 1).kind == "timeout"


def test_agents_answer_with_a_share_of_no_answers() -> None:
    agent = SimAgent(5, TrafficConfig())
    delays = [agent.on_ring("q", T0) for _ in range(4000)]
    assert sum(d is None for d in delays) / 4000 == pytest.approx(0.03, abs=0.01)
    assert all(1.5 <= d <= 6.0 for d in delays if d is not None)


def test_key_planners() -> None:
    plan = catalogue_key_planner(QUEUES.names)
    assert plan.keys_for("kontanthjaelp") == ("1",)
    assert plan.keys_for("a_kasse") == ("9", "1")
    assert plan.keys_for("nosuch") == ()
    assert LAB_KEYS.keys_for("virksomhed") == ("4",)
    fn = FunctionKeyPlanner(lambda flow, q: [flow[:1], q[:1]], flow="jobcenter")
    assert fn.keys_for("dagpenge") == ("j", "d")
