"""queues.conf (Asterisk's format) and the catalogue as sources of the simulated queues."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.acd.queues import QueueCatalogue
from app.sim.conf import (
    ConfigError,
    from_catalogue,
    merge_catalogue,
    parse_config,
    parse_empty,
    parse_queues_conf,
)

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "tests" / "fixtures" / "ami" / "lab-config" / "queues.conf"


def test_lab_queues_conf() -> None:
    conf = parse_queues_conf(LAB.read_text())
    assert conf.names == ("dagpenge", "kontanthjaelp", "sygedagpenge", "virksomhed")
    assert conf.shared_lastcall and conf.autofill and not conf.persistentmembers
    dag = conf.get("dagpenge")
    assert dag is not None
    assert (dag.strategy, dag.timeout, dag.retry, dag.wrapuptime) == ("rrmemory", 10, 2, 2)
    assert dag.joinempty == {"unavailable", "invalid"}
    assert dag.leavewhenempty == frozenset()
    assert dag.ringinuse is False and dag.servicelevel == 30
    assert [(m.interface, m.penalty, m.name, m.state) for m in dag.members] == [
        ("PJSIP/agent1", 0, "Agent One", "PJSIP/agent1"),
        ("PJSIP/agent2", 0, "Agent Two", "PJSIP/agent2"),
    ]
    assert conf.get("kontanthjaelp").strategy == "leastrecent"  # type: ignore[union-attr]
    assert conf.get("acd-tpl") is None  # a template is not a queue


def test_strategy_of_a_template_wins_other_keys_last_wins() -> None:
    conf = parse_queues_conf(
        """
[tpl](!)
strategy = leastrecent
timeout = 10
member => PJSIP/a1,0,A One
[q](tpl)
strategy = rrmemory      ; too late: ast_variable_retrieve sees the template's first
timeout = 20
member => PJSIP/a2,1,A Two
member => PJSIP/a1,3,A One again
"""
    )
    q = conf.get("q")
    assert q is not None
    assert q.strategy == "leastrecent"
    assert q.timeout == 20
    # template members first; a later line for the same interface replaces the earlier
    assert [(m.interface, m.penalty) for m in q.members] == [("PJSIP/a1", 3), ("PJSIP/a2", 1)]


def test_comments_block_comments_escapes_and_append() -> None:
    sections = parse_config(
        """
[general]
;-- a block
comment --; autofill = no
[q]
musicclass = a\\;b ; real comment
[q](+)
retry = 7
"""
    )
    general, q = sections
    assert general.items == [("autofill", "no")]
    assert q.items == [("musicclass", "a;b"), ("retry", "7")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retry = 1\n", r"outside any \[section\]"),
        ("[q](nosuch)\n", "inherits unknown"),
        ("[q]\nstrategy = fastest\n", "unknown strategy"),
        ("[q]\ntimeout = soon\n", "not a number"),
        ("[q]\njoinempty = sometimes\n", "unknown joinempty rule"),
        ("#include other.conf\n", "not supported"),
        ("[q\n", "missing ']'"),
    ],
)
def test_bad_config_is_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_queues_conf(text)


def test_empty_rules_like_app_queue() -> None:
    assert parse_empty("no", join=True) == {"penalty", "invalid", "paused"}
    assert parse_empty("yes", join=True) == frozenset()
    assert parse_empty("yes", join=False) == {"penalty", "invalid", "paused"}
    assert parse_empty("no", join=False) == frozenset()
    assert parse_empty("strict", join=True) == {"penalty", "invalid", "paused", "unavailable"}
    assert parse_empty("loose", join=True) == {"penalty", "invalid"}
    assert parse_empty("paused,inuse,wrapup", join=True) == {"paused", "inuse", "wrapup"}


def test_catalogue_as_source() -> None:
    data = yaml.safe_load((ROOT / "ivr_flows" / "queues.yaml").read_text(encoding="utf-8"))
    cat = QueueCatalogue.model_validate(data)
    conf = from_catalogue(cat)
    assert conf.names == cat.names
    k = conf.get("kontanthjaelp")
    g = conf.get("genregistrering")
    assert k is not None and g is not None
    assert k.strategy == "leastrecent" and k.calls_per_year == 113709
    assert (k.timeout, k.retry, k.wrapuptime, k.max_wait) == (15, 2, 30, 1800)
    assert g.wrapuptime == 15 and g.strategy == "rrmemory"
    assert k.joinempty == {"unavailable", "invalid"} and not k.ringinuse
    assert k.members == ()
    lab = merge_catalogue(parse_queues_conf(LAB.read_text()), cat)
    dag = lab.get("dagpenge")
    assert dag is not None
    assert (dag.timeout, dag.calls_per_year, dag.max_wait) == (10, 101977, 1800)
