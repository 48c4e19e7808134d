"""ivr_flows/goals.yaml: the file as shipped loads and says what DOMAIN.md says; a broken
file is refused with each problem on its line; goals judge values met, at risk, missed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from app.acd.plan import PlanTargets
from app.config.kinds import GOALS
from app.config.loader import flow_files, load_config
from app.reports.goals import GoalsInvalid, live_goals, load_goals, load_goals_text

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "ivr_flows"
TEXT = (FLOWS / "goals.yaml").read_text(encoding="utf-8")
SNAPSHOT = load_config(FLOWS)  # the one loader the service reads the folder with
QUEUES = SNAPSHOT.queue_names
DESTINATIONS = [d.name for d in SNAPSHOT.work.destinations]  # type: ignore[union-attr]


def load(text: str):  # type: ignore[no-untyped-def]
    return load_goals_text(text, "goals.yaml", QUEUES, DESTINATIONS)


def errors(text: str) -> list[str]:
    with pytest.raises(GoalsInvalid) as info:
        load(text)
    return [str(e) for e in info.value.errors]


def test_the_shipped_file_says_what_the_agreements_say() -> None:
    goals = load_goals(FLOWS, QUEUES, DESTINATIONS)
    assert SNAPSHOT[GOALS] == goals  # the configuration registry's kind reads the same
    a2013 = next(a for a in goals.agreements if a.name == "aftale_2013")
    assert {g.metric: (g.direction, g.target) for g in a2013.goals} == {
        "avg_wait_seconds": ("at_most", 150.0),
        "answer_rate": ("at_least", 0.92),
        "first_contact_resolution": ("at_least", 0.60),
        "satisfaction": ("above", 6.5),
        "service_level": ("at_least", 0.93),
    }
    assert a2013.goal("answer_rate").ambition == 0.95  # type: ignore[union-attr]
    old = next(a for a in goals.agreements if a.name == "kommune_2009")
    assert old.comparison and {g.metric: g.target for g in old.goals} == {
        "answer_rate": 0.90,
        "avg_wait_seconds": 25.0,
        "first_contact_resolution": 0.40,
    }
    assert goals.scope("erhvervshuset").queues == ("erhvervshuset",)  # type: ignore[union-attr]
    assert "erhvervshuset" not in goals.scope("jobcenter").queues  # type: ignore[union-attr]
    # As shipped, every queue is in one department; JKA's unit in the sickness department.
    owners = [q for d in goals.departments for q in d.queues]
    assert sorted(owners) == sorted(QUEUES)
    assert goals.department_of_destination("jka") == "sygdom"
    assert goals.department_of_queue("dagpenge") == "ydelse"
    # The whole centre's live figures follow the 2013 agreement, with its early warnings.
    live = live_goals(goals, date(2014, 11, 4))
    assert (live.answer_rate, live.answer_rate_warning, live.answer_rate_ambition) == (
        0.92, 0.94, 0.95,
    )  # fmt: skip
    assert (live.avg_wait_seconds, live.avg_wait_warning_seconds) == (150.0, 120.0)
    assert goals.primary(date(2010, 1, 1)) is None  # before 2013 only the comparison
    with pytest.raises(LookupError):
        live_goals(goals, date(2010, 1, 1))
    # A staffing plan made without the file aims at the same numbers.
    plain = PlanTargets()
    assert (plain.answer_rate, plain.avg_wait_seconds, plain.service_level) == (
        live.answer_rate,
        live.avg_wait_seconds,
        live.service_level,
    )
    # Not a menu: the flow loader leaves it alone.
    assert FLOWS / "goals.yaml" not in flow_files(FLOWS)


def test_a_broken_file_is_refused_with_each_problem_on_its_line() -> None:
    lines = TEXT.splitlines()

    def line_of(fragment: str, after: int = 0) -> int:
        return next(i for i, text in enumerate(lines, 1) if i > after and fragment in text)

    broken = TEXT.replace(
        "target: 0.92\n        warning: 0.94", "target: 1.92\n        warning: 0.94", 1
    )
    broken = broken.replace(
        "scope: erhvervshuset\n    valid_from", "scope: erhverv\n    valid_from"
    )
    broken = broken.replace("queues: [genregistrering]", "queues: [genregistrering, dagpenge]")
    broken = broken.replace("destinations: [jc_vest]", "destinations: [jc_syd]")
    got = errors(broken)
    target = line_of("target: 0.92")
    assert got == [
        f"goals.yaml:{target}: agreements.0.goals.1.target: 1.92 is a share: between 0 and 1",
        f"goals.yaml:{target + 1}: agreements.0.goals.1.warning: 0.94 must be on the good side "
        "of the target 1.92 (at_least)",
        f"goals.yaml:{target + 2}: agreements.0.goals.1.ambition: 0.95 must be beyond the target "
        "1.92 (at_least)",
        f"goals.yaml:{line_of('scope: erhvervshuset', line_of('name: erhvervshuset', 60))}: "
        "agreements.2.scope: unknown scope 'erhverv' (scopes: erhvervshuset, jobcenter)",
        f"goals.yaml:{line_of('queues: [genregistrering]')}: departments.2.queues.1: queue "
        "'dagpenge' belongs to 'ydelse' already",
        f"goals.yaml:{line_of('destinations: [jc_vest]')}: departments.8.destinations.0: "
        "unknown destination 'jc_syd' (work.yaml destinations)",
    ]

    assert errors("scopes: [1, 2\n") == [
        "goals.yaml:2: not valid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    dup = TEXT.replace(
        "    valid_from: 2013-01-01\n    goals:",
        "    valid_from: 2013-01-01\n    valid_from: 2014-01-01\n    goals:",
        1,
    )
    assert any("duplicate key 'valid_from'" in e for e in errors(dup))
    unknown = TEXT.replace("metric: satisfaction", "metric: happiness", 1)
    (problem,) = errors(unknown)
    assert problem.startswith(
        f"goals.yaml:{line_of('metric: satisfaction')}: agreements.0.goals.3.metric:"
    )
    assert "'happiness'" in problem
    # A queue in no department (one added by a reload, say) is allowed: it counts in the
    # centre and as a queue.
    missing = TEXT.replace(
        "  - name: erhvervshuset\n    title: Erhvervshuset\n    queues: [erhvervshuset]\n", ""
    )
    assert load(missing).department_of_queue("erhvervshuset") is None
    overlap = TEXT.replace("valid_to: 2012-12-31\n    comparison: true", "valid_to: 2012-12-31")
    assert any(
        "overlaps" in e or "2009" in e for e in errors(overlap.replace("valid_to: 2012-12-31", ""))
    )


def test_goals_judge_met_at_risk_and_missed() -> None:
    goals = load(TEXT)
    a = next(x for x in goals.agreements if x.name == "aftale_2013")
    rate, wait, sat = a.goal("answer_rate"), a.goal("avg_wait_seconds"), a.goal("satisfaction")
    assert rate is not None and wait is not None and sat is not None
    assert [rate.status(v) for v in (0.95, 0.94, 0.9399, 0.92, 0.9199, None)] == [
        "met", "met", "at_risk", "at_risk", "missed", "no_data",
    ]  # fmt: skip
    assert [wait.status(v) for v in (100, 120, 120.1, 150, 150.1)] == [
        "met", "met", "at_risk", "at_risk", "missed",
    ]  # fmt: skip
    assert [sat.status(v) for v in (6.7, 6.6, 6.5)] == ["met", "at_risk", "missed"]
