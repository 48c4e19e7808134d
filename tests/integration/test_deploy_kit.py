"""The operations kit in deploy/: Prometheus config and alert rules checked and unit-tested
with promtool, thresholds equal to the service goals, and a Grafana dashboard that only
asks for metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.registry import CollectorRegistry

from app.main import create_app
from app.reports.goals import live_goals, load_goals
from app.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "acd.json"
NAME = re.compile(r"\b(acd_[a-z0-9_]+|acd:[a-z0-9_:]+)")
# The goals the rules must use: those of the agreement in force, from ivr_flows/goals.yaml.
GOALS = live_goals(load_goals(ROOT / "ivr_flows"), date.today())


def _run(tool_name: str, package: str, *args: str) -> str:
    tool = shutil.which(tool_name)
    if tool is None:
        pytest.fail(
            f"{tool_name} is not installed (Debian: apt-get install {package}; "
            "scripts/test.sh installs it)",
            pytrace=False,
        )
    result = subprocess.run(
        [tool, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def promtool(*args: str) -> str:
    return _run("promtool", "prometheus", *args)


def amtool(*args: str) -> str:
    # amtool warns on stderr that --config.file overrides --alertmanager.url: stdout only.
    return _run("amtool", "prometheus-alertmanager", *args).split("Warning:")[0].strip()


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
        "Opfølgning i dag",
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


def test_the_dashboard_filters_by_queue_and_shows_the_follow_up_goals() -> None:
    from app.config.loader import load_config

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "queue" and variable["multi"] and variable["includeAll"]
    assert "label_values(acd_calls_waiting, queue)" in variable["definition"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    # Every panel that shows queues one by one follows the filter; the centre's figures
    # (queue="_all") stay the whole centre's.
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            if "by (queue" in expr or "{{queue}}" in target.get("legendFormat", ""):
                assert 'queue=~"$queue"' in expr, (panel["title"], expr)
    titles = {p["title"]: p for p in panels}
    work = load_config(ROOT / "ivr_flows").work
    assert work is not None
    goals = work.goals
    fcr = titles["Straksafklaring i dag (mål 60 %)"]
    assert "acd_today_registrations" in fcr["targets"][0]["expr"]
    steps = [s["value"] for s in fcr["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, goals.first_contact_resolution]
    satisfaction = titles["Tilfredshed i dag (mål over 6,5)"]
    assert "acd_today_survey_score_sum" in satisfaction["targets"][0]["expr"]
    steps = [s["value"] for s in satisfaction["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps[0] is None and goals.satisfaction < steps[1] <= goals.satisfaction + 0.01
    callbacks = {e for p in panels for t in p["targets"] for e in NAME.findall(t["expr"])}
    assert {"acd_callbacks_overdue", "acd_callbacks_open", "acd_dialer_originations_total"} <= (
        callbacks
    )


def test_alerts_reach_someone_through_alertmanager() -> None:
    config = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    assert "SUCCESS" in amtool("check-config", str(config))
    # Prometheus sends its alerts to the compose file's Alertmanager.
    prometheus = yaml.safe_load((PROM / "prometheus.yml").read_text(encoding="utf-8"))
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    assert compose["services"]["alertmanager"]["ports"] == ["9093:9093"]
    # Critical alerts page the on-call operator and tell the team; warnings the team.
    route = ["config", "routes", "test", f"--config.file={config}"]
    assert amtool(*route, "severity=critical", "alertname=AcdServiceDown") == (
        "driftsvagt,kontaktcenter-drift"
    )
    assert amtool(*route, "severity=warning", "alertname=AcdAnswerRateEarlyWarning") == (
        "kontaktcenter-drift"
    )
    receivers = yaml.safe_load(config.read_text(encoding="utf-8"))["receivers"]
    assert all(r["email_configs"][0]["to"] for r in receivers)
    # Every alert a rule can raise carries a severity the routes know.
    severities = {rule["labels"]["severity"] for rule in rules().values() if "alert" in rule}
    assert severities == {"warning", "critical"}


def test_the_service_itself_down_is_alerted() -> None:
    r = rules()
    assert r["AcdServiceDown"]["expr"] == 'absent(up{job="acd"} == 1)'
    assert r["AcdServiceDown"]["labels"]["severity"] == "critical"
    assert 'up{job="acd"} == 0' in r["AcdInstanceDown"]["expr"]
    # The job name the rules watch is the one Prometheus scrapes.
    prometheus = yaml.safe_load((PROM / "prometheus.yml").read_text(encoding="utf-8"))
    assert [c["job_name"] for c in prometheus["scrape_configs"]] == ["acd"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query (as a recording rule), the queue filter set to
    "All": a typo in a panel would otherwise only show as an empty panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        t["expr"].replace("$queue", ".+")
        for p in dashboard["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]
    group = {"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)
    ]}  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
    assert f"SUCCESS: {len(exprs)} rules found" in promtool("check", "rules", str(path))
