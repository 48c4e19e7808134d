"""The operations kit in deploy/: Prometheus config and alert rules checked and unit-tested
with promtool, thresholds equal to the service goals, and a Grafana dashboard that only
asks for metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.registry import CollectorRegistry

from app.acd.kpi import GOALS
from app.main import create_app
from app.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "acd.json"
NAME = re.compile(r"\b(acd_[a-z0-9_]+|acd:[a-z0-9_:]+)")


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail(
            "promtool is not installed (Debian: apt-get install prometheus; "
            "scripts/test.sh installs it)",
            pytrace=False,
        )
    result = subprocess.run(
        [tool, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_accepts_the_config_and_the_rules() -> None:
    out = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert "rules found" in out
    for rules in sorted((PROM / "rules").glob("*.yml")):
        promtool("check", "rules", str(rules))


def test_the_rules_pass_their_unit_tests() -> None:
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    out = promtool("test", "rules", *map(str, tests))
    assert "SUCCESS" in out and "FAILED" not in out


def rules() -> dict[str, dict[str, Any]]:
    out = {}
    for path in (PROM / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                out[rule.get("alert") or rule["record"]] = rule
    return out


def test_the_alert_thresholds_are_the_service_goals() -> None:
    r = rules()
    wanted = {
        "AcdAnswerRateBelowGoal": f"< {GOALS.answer_rate}",
        "AcdAnswerRateEarlyWarning": f"< {GOALS.answer_rate_warning}",
        "AcdQueueAnswerRateBelowGoal": f"< {GOALS.answer_rate}",
        "AcdAnswerRateLast30mBelowGoal": f"< {GOALS.answer_rate}",
        "AcdAverageWaitAboveGoal": f"> {GOALS.avg_wait_seconds:g}",
        "AcdAverageWaitEarlyWarning": f"> {GOALS.avg_wait_warning_seconds:g}",
        "AcdAverageWaitLast30mAboveGoal": f"> {GOALS.avg_wait_seconds:g}",
        "AcdLongestWaitAboveGoal": f"> {GOALS.avg_wait_seconds:g}",
        "AcdServiceLevelBelowTarget": f"< {GOALS.service_level}",
        "AcdAnswerRateGoalAtRisk": f"< {GOALS.answer_rate}",
        "AcdAverageWaitGoalAtRisk": f"> {GOALS.avg_wait_seconds:g}",
        "AcdServiceLevelGoalAtRisk": f"< {GOALS.service_level}",
    }
    for alert, threshold in wanted.items():
        assert threshold in r[alert]["expr"], (alert, threshold, r[alert]["expr"])
    assert f">= {GOALS.answer_rate}" in r["AcdAnswerRateEarlyWarning"]["expr"]
    severities = {name: rule["labels"]["severity"] for name, rule in r.items() if "alert" in rule}
    assert (
        severities["AcdAnswerRateBelowGoal"]
        == severities["AcdAverageWaitAboveGoal"]
        == ("critical")
    )
    assert set(severities.values()) == {"warning", "critical"}


def exported(registry: CollectorRegistry) -> set[str]:
    """Every sample name the service can export."""
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(family.name)
    return names


def test_rules_and_dashboard_ask_only_for_what_the_service_exports(sqlite_url: str) -> None:
    app = create_app(load_settings(database_url=sqlite_url, ivr_flows=str(ROOT / "ivr_flows")))
    metrics = exported(app.state.rt.metrics.registry)
    # What the issue names, with their types.
    for name in (
        "acd_calls_waiting",
        "acd_longest_wait_seconds",
        "acd_estimated_wait_seconds",
        "acd_agents",
        "acd_calls_total",
        "acd_wait_seconds_bucket",
        "acd_talk_seconds_bucket",
        "acd_ivr_keys_total",
        "acd_ami_connected",
        "acd_ami_events_total",
        "acd_store_queue_depth",
        "acd_event_lag_seconds_bucket",
    ):
        assert name in metrics, name
    records = {name for name, rule in rules().items() if "record" in rule}
    exprs = [rule["expr"] for rule in rules().values()]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs += [t["expr"] for p in panels for t in p["targets"]]
    used = {m for expr in exprs for m in NAME.findall(expr)}
    assert used - metrics - records == set()
    assert records <= used  # every recording rule is used by an alert or a panel


def test_the_dashboard_is_provisionable_and_covers_the_four_views() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Servicemål i dag (hele centret)",
        "Køer nu",
        "Agenter",
        "IVR",
        "Tjenesten",
    ]
    provisioning = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/acd.yml").read_text(encoding="utf-8")
    )
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text(
            encoding="utf-8"
        )
    )
    assert provisioning["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    uid = datasource["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    # Goals against targets: the thresholds are the agreement's.
    rate = next(p for p in dashboard["panels"] if p["title"].startswith("Besvarelsesprocent i dag"))
    steps = [s["value"] for s in rate["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, GOALS.answer_rate, GOALS.answer_rate_warning]
