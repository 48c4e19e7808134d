"""Flow validation: exact, readable errors (file:line: path: what), every problem at once,
and `acd ivr validate` exiting non-zero on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.config.errors import ConfigInvalid
from app.config.kinds import QUEUES
from app.config.loader import load_config, parse_kind
from app.config.yamlfile import load_yaml
from app.ivr.validate import load_flow_text

ROOT = Path(__file__).resolve().parents[2]
FLOW_FILE = ROOT / "ivr_flows" / "jobcenter.yaml"
GOOD = FLOW_FILE.read_text(encoding="utf-8")
CATALOGUE = parse_kind(
    QUEUES, (ROOT / "ivr_flows" / "queues.yaml").read_text(encoding="utf-8"), "queues.yaml", {}
)
FILE = "ivr_flows/jobcenter.yaml"


def line(text: str, needle: str, nth: int = 1) -> int:
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    return text[:at].count("\n") + 1


def errors(text: str, file: str = FILE) -> list[str]:
    with pytest.raises(ConfigInvalid) as exc:
        load_flow_text(text, file, CATALOGUE)
    return [str(e) for e in exc.value.errors]


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_the_shipped_flow_is_valid() -> None:
    flow = load_flow_text(GOOD, FILE, CATALOGUE)
    assert flow.name == "jobcenter"
    assert load_config(ROOT / "ivr_flows").flows["jobcenter"] == flow


def test_unknown_queue() -> None:
    text = edit(
        "koe_dagpenge: {type: queue, queue: dagpenge}",
        "koe_dagpenge: {type: queue, queue: dagpenger}",
    )
    n = line(text, "koe_dagpenge: {type")
    assert errors(text) == [
        f"{FILE}:{n}: nodes.koe_dagpenge.queue: unknown queue 'dagpenger' (queues.yaml has: "
        "a_kasse, andre_forvaltninger, dagpenge, erhvervshuset, genregistrering, kontanthjaelp, "
        "leverandoer, ni_by, sygedagpenge, sygeopfoelgning, virksomhed)"
    ]


def test_unknown_node() -> None:
    text = edit('"3": sygdom\n', '"3": sygdomm\n')
    n = line(text, '"3": sygdomm')
    # The sygdom menu is now unreachable too: both are reported, in file order of checks.
    assert errors(text) == [
        f"{FILE}:{n}: nodes.hovedmenu.choices.3: unknown node 'sygdomm'",
        f"{FILE}:{line(text, '  sygdom:')}: nodes.sygdom: unreachable node 'sygdom': "
        "no path from 'velkommen'",
        f"{FILE}:{line(text, '  sygedagpenge:')}: nodes.sygedagpenge: unreachable node "
        "'sygedagpenge': no path from 'velkommen'",
        f"{FILE}:{line(text, '  viderestil_jka:')}: nodes.viderestil_jka: unreachable node "
        "'viderestil_jka': no path from 'velkommen'",
        f"{FILE}:{line(text, '  koe_sygedagpenge:')}: nodes.koe_sygedagpenge: unreachable node "
        "'koe_sygedagpenge': no path from 'velkommen'",
        f"{FILE}:{line(text, '  koe_sygeopfoelgning:')}: nodes.koe_sygeopfoelgning: unreachable "
        "node 'koe_sygeopfoelgning': no path from 'velkommen'",
    ]


def test_unreachable_node() -> None:
    text = edit(
        "  koe_erhvervshuset: {type: queue, queue: erhvervshuset}\n",
        "  koe_erhvervshuset: {type: queue, queue: erhvervshuset}\n"
        "  gammel_koe: {type: queue, queue: dagpenge}\n",
    )
    assert errors(text) == [
        f"{FILE}:{line(text, 'gammel_koe:')}: nodes.gammel_koe: unreachable node 'gammel_koe': "
        "no path from 'velkommen'"
    ]


def test_duplicate_key_is_caught_although_yaml_would_keep_the_last() -> None:
    text = edit('      "2": koe_dagpenge\n', '      "2": koe_dagpenge\n      2: koe_virksomhed\n')
    first = line(text, '"2": koe_dagpenge')
    assert errors(text) == [
        f"{FILE}:{first + 1}: nodes.hovedmenu.choices.2: duplicate key '2' (first at line {first})"
    ]


def test_duplicate_node_is_caught() -> None:
    text = edit(
        "  koe_ni_by: {type: queue, queue: ni_by}\n",
        "  koe_ni_by: {type: queue, queue: ni_by}\n  koe_dagpenge: {type: queue, queue: a_kasse}\n",
    )
    first = line(text, "  koe_dagpenge:")
    second = line(text, "  koe_dagpenge:", 2)
    assert errors(text) == [
        f"{FILE}:{second}: nodes.koe_dagpenge: duplicate key 'koe_dagpenge' (first at line {first})"
    ]


def test_loop_without_exit_between_messages() -> None:
    text = edit("    next: hovedmenu\n", "    next: info_a\n")
    text = edit(
        "  hovedmenu:\n",
        "  info_a: {type: message, prompt: acd/info-velkommen, next: info_b}\n"
        "  info_b: {type: message, prompt: acd/info-velkommen, next: info_a}\n"
        "  hovedmenu:\n",
        text,
    )
    found = errors(text)
    assert (
        f"{FILE}:{line(text, 'info_a: {')}: nodes.info_a: loop without exit: "
        "info_a → info_b → info_a"
    ) in found


def test_loop_without_exit_between_menus() -> None:
    # Two menus whose every key and fallback lead only to each other: a caller who gets in
    # can never reach a person.
    text = GOOD.replace("fallback: koe_sygeopfoelgning", "fallback: sygdom_mere")
    text = edit(
        '      "1": sygedagpenge\n      "2": koe_sygeopfoelgning\n      "0": hovedmenu\n'
        '      "*": sygdom\n',
        '      "1": sygdom_mere\n      "*": sygdom\n',
        text,
    )
    text = edit(
        "  # Sygedagpenge: in the unit's",
        "  sygdom_mere:\n    type: menu\n    prompt: acd/menu-sygdom\n    fallback: sygdom\n"
        '    choices: {"1": sygdom}\n'
        "  # Sygedagpenge: in the unit's",
        text,
    )
    found = errors(text)
    assert (
        f"{FILE}:{line(text, '  sygdom:')}: nodes.sygdom: loop without exit: "
        "sygdom → sygdom_mere → sygdom"
    ) in found, found


def test_a_loop_with_an_exit_is_fine() -> None:
    # hovedmenu <-> sygdom (keys 3 and 0) is a loop, but both menus lead to queues.
    load_flow_text(GOOD, FILE, CATALOGUE)


def test_missing_prompt() -> None:
    text = edit("    prompt: acd/info-velkommen\n", "    prompt: acd/info-hej\n")
    assert errors(text) == [
        f"{FILE}:{line(text, 'acd/info-hej')}: nodes.velkommen.prompt: missing prompt "
        "'acd/info-hej': add its Danish text under 'prompts'"
    ]


def test_prompt_roles_follow_the_dialplan_contract() -> None:
    text = edit("    prompt: acd/menu-sygdom\n", "    prompt: acd/info-velkommen\n")
    assert errors(text) == [
        f"{FILE}:{line(text, 'prompt: acd/info-velkommen', 2)}: nodes.sygdom.prompt: prompt "
        "'acd/info-velkommen' asks for a menu answer: name it acd/menu-*"
    ]
    text = edit("  offer_prompt: acd/offer-tilbagekald", "  offer_prompt: acd/menu-hovedmenu")
    assert errors(text) == [
        f"{FILE}:{line(text, 'offer_prompt:')}: callback.offer_prompt: prompt "
        "'acd/menu-hovedmenu' asks for a offer answer: name it acd/offer-*"
    ]


def test_model_errors_name_the_field() -> None:
    menu = "    timeout_ms: 6000\n    tries: 3\n"  # the first menu (hovedmenu)
    text = GOOD.replace(menu, "    timeout_ms: 6000\n    tries: 0\n", 1)
    assert errors(text) == [
        f"{FILE}:{line(text, 'tries: 0')}: nodes.hovedmenu.tries: "
        "Input should be greater than or equal to 1"
    ]
    text = edit("    interruptible: true ", "    interuptible: true ")
    assert errors(text) == [
        f"{FILE}:{line(text, 'interuptible')}: nodes.velkommen.interuptible: unknown field"
    ]
    text = edit("  sygedagpenge:\n    type: schedule\n", "  sygedagpenge:\n    type: skema\n")
    (only,) = errors(text)
    assert only.startswith(f"{FILE}:{line(text, '  sygedagpenge:')}: nodes.sygedagpenge: ")
    assert "'skema'" in only and "'schedule'" in only


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ('"5": samarbejdspartnere', '"55": samarbejdspartnere', "nodes.hovedmenu.choices",
         "choice key '55' is not one keypad key 0-9 or * ('#' ends input)"),
        ('"5": samarbejdspartnere', '"#": samarbejdspartnere', "nodes.hovedmenu.choices",
         "choice key '#' is not one keypad key 0-9 or * ('#' ends input)"),
        ('between: "09:00-10:00"', 'between: "10:00-09:00"', "nodes.sygedagpenge.rules.0.between",
         "'10:00-09:00' ends before it starts"),
        ('thu: "08:00-17:00"', 'thu: "8-17"', "hours.weekly",
         "'8' is not a time of day (HH:MM)"),
        ('number: "+4582565690"', 'number: "ring JKA"', "nodes.viderestil_jka.number",
         "'ringJKA' is not a phone number (digits, optional leading +)"),
        ("    sun: closed\n", "", "hours.weekly",
         "every weekday needs hours or 'closed'; missing ['sun']"),
        ("  every: 5\n", "  every: -1\n", "survey.every",
         "Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_field_errors(old: str, new: str, path: str, message: str) -> None:
    text = edit(old, new)
    (only,) = errors(text)
    assert only.split(": ", 2)[1:] == [path, message]


def test_every_problem_is_reported_at_once() -> None:
    text = edit("queue: dagpenge}", "queue: dagpenger}")
    text = edit("    prompt: acd/info-velkommen\n", "    prompt: acd/info-hej\n", text)
    assert len(errors(text)) == 2


def test_flow_name_must_match_the_file() -> None:
    assert errors(GOOD, "ivr_flows/andet.yaml") == [
        f"ivr_flows/andet.yaml:{line(GOOD, 'name: jobcenter')}: name: flow name 'jobcenter' "
        "must match the file name 'andet'"
    ]


def test_yaml_syntax_error_has_a_line() -> None:
    text = edit("  hovedmenu:\n", "  hovedmenu: [\n")
    (only,) = errors(text)
    assert only.startswith(f"{FILE}:") and "not valid YAML" in only


def test_times_are_not_sexagesimal_numbers() -> None:
    data, lines = load_yaml("at: 10:00\nn: 5\nd: 2025-12-23\n", "x.yaml")
    assert data["at"] == "10:00" and data["n"] == 5
    assert str(data["d"]) == "2025-12-23"
    assert lines[("n",)] == 2


def test_a_broken_catalogue_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigInvalid) as exc:
        parse_kind(QUEUES, "queues:\n  - name: Bad Name\n    title: x\n", "queues.yaml", {})
    (err,) = exc.value.errors
    assert str(err).startswith("queues.yaml:2: queues.0.name: queue names are")


# ---- acd ivr validate ------------------------------------------------------------------


def test_cli_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ivr", "validate", str(FLOW_FILE)]) == 0
    out = capsys.readouterr().out
    assert "ok: flow 'jobcenter', 17 nodes, 11 queues" in out
    assert "  3 1    sygedagpenge" in out


def test_cli_validate_broken_exits_1_with_each_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "queues.yaml").write_text(
        (ROOT / "ivr_flows" / "queues.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    broken = tmp_path / "jobcenter.yaml"
    text = edit("queue: dagpenge}", "queue: dagpenger}")
    text = edit("    prompt: acd/info-velkommen\n", "    prompt: acd/info-hej\n", text)
    broken.write_text(text, encoding="utf-8")
    assert main(["ivr", "validate", str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{broken}:{line(text, 'queue: dagpenger')}: nodes.koe_dagpenge.queue: unknown queue "
        "'dagpenger' (queues.yaml has: a_kasse, andre_forvaltninger, dagpenge, erhvervshuset, "
        "genregistrering, kontanthjaelp, leverandoer, ni_by, sygedagpenge, sygeopfoelgning, "
        "virksomhed)",
        f"{broken}:{line(text, 'acd/info-hej')}: nodes.velkommen.prompt: missing prompt "
        "'acd/info-hej': add its Danish text under 'prompts'",
    ]


def test_cli_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["ivr", "validate", str(tmp_path / "nope.yaml"), "--queues",
                 str(ROOT / "ivr_flows" / "queues.yaml")]) == 1  # fmt: skip
    assert "cannot read" in capsys.readouterr().err
