"""Staffing plans (app/acd/plan.py), the intraday projection (app/acd/intraday.py) and
the planner's calculator `acd staffing`."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.acd.forecast import QueueDayForecast, SlotForecast
from app.acd.intraday import SoFar, project_day
from app.acd.plan import (
    PlanInputs,
    PlanTargets,
    build_plan,
    groups_of,
    mean_patience,
)
from app.acd.staffing import StaffingError
from app.cli import main

DAY = dt.date(2014, 11, 4)


def fc(
    queue: str, calls: list[float], aht: float | None = 300.0, first: int = 16
) -> QueueDayForecast:
    return QueueDayForecast(
        queue,
        DAY,
        None,
        tuple(SlotForecast(first + i, c, c * 0.8, c * 1.2, aht) for i, c in enumerate(calls)),
    )


def test_a_plan_staffs_each_half_hour_to_the_goals_with_both_models() -> None:
    fcs = [fc("dagpenge", [60, 40, 20]), fc("ni_by", [1, 0.5, 0])]
    inputs = PlanInputs(patience={"dagpenge": 600.0, "ni_by": 600.0}, shrinkage=0.2)
    plans = {p.group: p for p in build_plan(fcs, inputs)}
    d = plans["dagpenge"]
    for cell in d.cells:
        assert cell.erlang_a is not None and cell.erlang_c is not None
        assert cell.erlang_a.agents is not None and cell.erlang_c.agents is not None
        assert cell.erlang_a.agents <= cell.erlang_c.agents
        p = cell.erlang_a.performance
        assert p is not None
        assert p.answer_rate is not None and p.answer_rate >= 0.92
        assert p.service_level >= 0.93 and (p.avg_wait_seconds or 0) <= 150
    assert d.cells[0].agents > d.cells[2].agents  # more calls, more agents
    # half hours add up to agent-hours; rostered adds 20 % shrinkage, rounded up per half hour
    assert d.agent_hours("A") == sum(c.erlang_a.agents for c in d.cells) / 2  # type: ignore[union-attr]
    assert d.rostered(10) == 13 and d.rostered_hours() >= d.agent_hours() / 0.8
    fig = d.figures("A")
    assert fig.calls == 120 and fig.answer_rate is not None and fig.answer_rate >= 0.92
    # the last half hour of ni_by has no calls: no agents, and a note saying so
    last = plans["ni_by"].cells[-1]
    assert last.agents is None and last.note == "no calls expected"
    doc = d.as_dict()
    assert doc["agent_hours"]["erlang_c"] >= doc["agent_hours"]["erlang_a"]
    assert [h["start"] for h in doc["half_hours"]] == ["08:00", "08:30", "09:00"]


def test_queues_sharing_agents_need_fewer_than_apart() -> None:
    fcs = [fc("virksomhed", [6, 6]), fc("ni_by", [1, 1]), fc("a_kasse", [3, 3])]
    inputs = PlanInputs(patience=dict.fromkeys(("virksomhed", "ni_by", "a_kasse"), 600.0))
    apart = sum(p.agent_hours() for p in build_plan(fcs, inputs))
    pooled_inputs = PlanInputs(
        patience=inputs.patience, groups={"erhverv": ["virksomhed", "ni_by"]}
    )
    pooled = build_plan(fcs, pooled_inputs)
    assert {p.group: p.queues for p in pooled} == {
        "erhverv": ("virksomhed", "ni_by"),
        "a_kasse": ("a_kasse",),
    }
    assert sum(p.agent_hours() for p in pooled) < apart
    assert pooled[0].cells[0].calls == 7
    assert groups_of(["a", "b"], {"g": ["b", "unknown"]}) == {"g": ("b",), "a": ("a",)}


def test_without_patience_the_plan_is_erlang_c_and_bad_input_is_named() -> None:
    (p,) = build_plan([fc("dagpenge", [30])], PlanInputs())
    assert p.cells[0].erlang_a is None and p.cells[0].agents == p.cells[0].erlang_c.agents  # type: ignore[union-attr]
    (q,) = build_plan([fc("dagpenge", [30], aht=None)], PlanInputs())
    assert q.cells[0].agents is None and "handle time" in (q.cells[0].note or "")
    closed = QueueDayForecast("dagpenge", DAY, "helligdag: Juledag", ())
    (c,) = build_plan([closed], PlanInputs())
    assert c.closed == "helligdag: Juledag" and c.agent_hours() == 0
    with pytest.raises(StaffingError, match="100 %"):
        build_plan([fc("dagpenge", [30])], PlanInputs(targets=PlanTargets(service_level=1.0)))
    with pytest.raises(StaffingError, match="shrinkage"):
        build_plan([fc("dagpenge", [30])], PlanInputs(shrinkage=1.0))


def test_mean_patience_is_the_censored_exponential_estimate() -> None:
    per, centre = mean_patience({"a": (100, 60_000.0), "b": (2, 3_000.0)})
    assert centre == pytest.approx(63_000 / 102)
    assert per["a"] == pytest.approx((60_000 + 10 * centre) / 110)
    # b has 2 abandons: mostly the centre's mean, a little its own 1,500 s
    assert centre < per["b"] < 1_500  # type: ignore[operator]
    assert mean_patience({"a": (0, 500.0)}) == ({"a": None}, None)


# --------------------------------------------------------------------------------------
# Intraday: goal at risk
# --------------------------------------------------------------------------------------


def _today(calls: list[float]) -> tuple[dict[str, QueueDayForecast], dict[str, tuple]]:  # type: ignore[type-arg]
    f = fc("dagpenge", calls)
    (p,) = build_plan([f], PlanInputs(patience={"dagpenge": 600.0}))
    return {"dagpenge": f}, {"dagpenge": p.cells}


def test_a_day_on_forecast_is_not_at_risk() -> None:
    forecasts, cells = _today([40] * 14)
    # 10:00 (slot 20): four half hours done, as forecast, figures fine so far
    so_far = SoFar(offered=160, short_abandoned=2, answered=155, answered_within_sl=152,
                   wait_seconds=160 * 30.0)  # fmt: skip
    staffed = cells["dagpenge"][4].agents or 0
    per, centre = project_day(forecasts, cells, {"dagpenge": so_far}, {"dagpenge": staffed},
                              20.0, PlanTargets())  # fmt: skip
    p = per["dagpenge"]
    assert p.factor == pytest.approx(1.0) and p.at_risk == ()
    assert p.expected_calls == pytest.approx(560)
    assert p.answer_rate is not None and p.answer_rate >= 0.92
    assert centre.expected_calls == pytest.approx(560)


def test_calls_above_forecast_put_the_goals_at_risk_before_they_are_missed() -> None:
    forecasts, cells = _today([40] * 14)
    # 10:00: 240 calls instead of 160, and so far the figures still meet the goals
    so_far = SoFar(offered=240, short_abandoned=2, answered=225, answered_within_sl=215,
                   wait_seconds=240 * 100.0)  # fmt: skip
    assert so_far.answered / (so_far.offered - so_far.short_abandoned) > 0.92
    staffed = cells["dagpenge"][4].agents or 0
    per, centre = project_day(forecasts, cells, {"dagpenge": so_far}, {"dagpenge": staffed},
                              20.0, PlanTargets())  # fmt: skip
    p = per["dagpenge"]
    assert p.factor == pytest.approx(260 / 180)  # (240 + 20) / (160 + 20): damped
    assert p.expected_calls > 700
    assert p.at_risk == ("answer_rate", "service_level")  # waits stay short: callers give up
    assert centre.at_risk == p.at_risk


def test_nobody_staffed_now_is_a_risk_and_the_figures_mean_what_kpis_say() -> None:
    forecasts, cells = _today([40] * 14)
    so_far = SoFar(offered=40, short_abandoned=0, answered=40, answered_within_sl=40,
                   wait_seconds=40 * 10.0)  # fmt: skip
    per, _ = project_day(forecasts, cells, {"dagpenge": so_far}, {"dagpenge": 0}, 17.0,
                         PlanTargets())  # fmt: skip
    assert per["dagpenge"].answer_rate is not None and per["dagpenge"].answer_rate < 0.99
    # SoFar from the live "today" figures
    s = SoFar.from_figures({"offered": 10, "short_abandoned": 1, "answered": 8,
                            "answered_within_sl": 7, "avg_wait_seconds": 12.5})  # fmt: skip
    assert s.wait_seconds == 125.0 and s.answered == 8


# --------------------------------------------------------------------------------------
# acd staffing: the calculator
# --------------------------------------------------------------------------------------


def test_acd_staffing_prints_the_published_answer(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["staffing", "--calls", "100", "--aht", "180", "--interval", "1800",
            "--answer-within", "20", "--service-level", "0.8", "--shrinkage", "0.3",
            "--max-occupancy", "0.85"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "erlang_c" and out["agents"] == 14 and out["rostered"] == 20
    assert out["service_level"] == 0.8884 and out["asa_seconds"] == 7.84
    assert out["occupancy"] == 0.7143
    assert main([*args, "--patience", "600"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert a["model"] == "erlang_a" and a["agents"] <= 14 and a["erlang_c"]["agents"] == 14
    assert a["answer_rate"] > 0.98


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--aht", "0"], "handle time"),
        (["--service-level", "1"], "100 %"),
        (["--interval", "0"], "interval"),
        (["--calls", "-5"], "calls"),
        (["--shrinkage", "1.2"], "shrinkage"),
        (["--patience", "0"], "patience"),
    ],
)
def test_acd_staffing_refuses_bad_input(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--calls": "100", "--aht": "180"}
    for k, v in zip(extra[::2], extra[1::2], strict=True):
        base[k] = v
    args = ["staffing"] + [x for kv in base.items() for x in kv]
    assert main(args) == 2
    assert message in capsys.readouterr().err
