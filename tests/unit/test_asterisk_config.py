"""asterisk_config/: the committed files are what `acd asterisk-config` renders from the
same queue catalogue and flow the service runs, and they keep the dialplan contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main
from app.config.loader import load_config
from app.tools.asterisk_config import render_extensions_conf, render_queues_conf

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "asterisk_config"
FLOWS = load_config(ROOT / "ivr_flows")
assert FLOWS.queues is not None
CATALOGUE = FLOWS.queues


def _sections(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, raw
        current[key.strip()] = value.strip()
    return out


def _dialplan(text: str) -> dict[str, list[str]]:
    """context -> its extension lines (exten => / same =>), comments dropped."""
    out: dict[str, list[str]] = {}
    context = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            context = m.group(1)
            out[context] = []
        elif line.startswith(("exten =>", "same =>")):
            out[context].append(line)
    return out


def test_committed_queues_conf_is_the_rendered_one() -> None:
    assert (CONFIG / "queues.conf").read_text(encoding="utf-8") == render_queues_conf(CATALOGUE)


def test_committed_extensions_conf_is_the_rendered_one() -> None:
    assert (CONFIG / "extensions.conf").read_text(encoding="utf-8") == render_extensions_conf(
        CATALOGUE, dict(FLOWS.flows)
    )


def test_acd_asterisk_config_check_and_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = str(ROOT / "ivr_flows")
    assert main(["asterisk-config", "--flows", flows, "--out", str(CONFIG), "--check"]) == 0
    assert main(["asterisk-config", "--flows", flows, "--out", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["asterisk-config", "--flows", flows, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "queues.conf").read_text() == (CONFIG / "queues.conf").read_text()
    assert main(["asterisk-config", "--flows", flows, "--out", str(tmp_path), "--check"]) == 0
    # Another AGI address is a global of the dialplan, nothing else changes.
    main(["asterisk-config", "--flows", flows, "--out", str(tmp_path), "--agi-address", "acd:4573"])
    text = (tmp_path / "extensions.conf").read_text()
    assert "ACD_AGI_ADDRESS = acd:4573" in text
    assert "127.0.0.1:4573" not in text


def test_every_queue_has_its_settings_from_the_catalogue() -> None:
    sections = _sections((CONFIG / "queues.conf").read_text(encoding="utf-8"))
    assert set(sections) == {"general", *CATALOGUE.names}
    for q in CATALOGUE.queues:
        s = sections[q.name]
        assert s["strategy"] == q.strategy  # per queue, never from a template
        assert s["timeout"] == str(q.ring_timeout)
        assert s["retry"] == str(q.retry)
        assert s["wrapuptime"] == str(q.wrapup_seconds)
        assert s["servicelevel"] == str(q.service_level_seconds)
        assert s["joinempty"] == ",".join(q.joinempty)
        assert "leavewhenempty" not in s  # empty in the catalogue: Asterisk's default
        assert s["musicclass"] == "default"
    assert sections["kontanthjaelp"]["strategy"] == "leastrecent"
    assert sections["genregistrering"]["wrapuptime"] == "15"


def test_both_numbers_run_the_menu_over_fastagi() -> None:
    plan = _dialplan((CONFIG / "extensions.conf").read_text(encoding="utf-8"))
    entry = plan["from-trunk"]
    for number in ("82565682", "+4582565682"):
        body = [ln for ln in entry if ln.startswith(f"exten => {number},")]
        assert body, number
        start = entry.index(body[0])
        block = entry[start : start + 6]
        assert "same => n,AGI(agi://${ACD_AGI_ADDRESS}/ivr,jobcenter)" in block
        assert "same => n,Set(ACD_ROUTE=)" in block  # no stale route from before
        assert block[-1] == "same => n,Goto(acd-route,s,1)"


def test_an_unreachable_service_still_reaches_a_queue_with_a_message() -> None:
    text = (CONFIG / "extensions.conf").read_text(encoding="utf-8")
    plan = _dialplan(text)
    route = plan["acd-route"]
    assert route[0] == 'exten => s,1,GotoIf($["${AGISTATUS}" != "SUCCESS"]?fallback,1)'
    assert route[4] == "same => n,Goto(fallback,1)"  # no route set: fallback too
    fallback = route[route.index(next(x for x in route if x.startswith("exten => fallback"))) :]
    assert fallback[1:4] == [
        "same => n,Answer()",
        "same => n,Playback(acd/info-fallback)",
        "same => n,Goto(acd-queue,${ACD_FALLBACK_QUEUE},1)",
    ]
    assert "ACD_FALLBACK_QUEUE = kontanthjaelp" in text
    assert "acd/info-fallback" in FLOWS.flows["jobcenter"].prompts


def test_every_queue_is_an_extension_with_its_max_wait() -> None:
    plan = _dialplan((CONFIG / "extensions.conf").read_text(encoding="utf-8"))
    lines = plan["acd-queue"]
    for q in CATALOGUE.queues:
        assert f"same => n,Queue({q.name},c,,,{q.max_wait_seconds})" in lines
    assert "exten => i,1,NoOp(ACD: no queue ${ACD_QUEUE}: fallback queue)" in lines


def test_survey_only_after_an_answered_call_of_a_flagged_caller() -> None:
    after = _dialplan((CONFIG / "extensions.conf").read_text(encoding="utf-8"))["acd-after-queue"]
    assert after[1] == 'same => n,GotoIf($["${QUEUESTATUS}" != "CONTINUE"]?unanswered)'
    assert after[2] == 'same => n,GotoIf($["${ACD_SURVEY}" != "1"]?done)'
    assert after[3] == "same => n,AGI(agi://${ACD_AGI_ADDRESS}/survey,${ACD_FLOW})"


def test_forward_and_hangup_routes() -> None:
    route = _dialplan((CONFIG / "extensions.conf").read_text(encoding="utf-8"))["acd-route"]
    assert "exten => forward,1,Dial(PJSIP/${ACD_FORWARD}@trunk,60)" in route
    assert "exten => hangup,1,Hangup(16)" in route


def test_pjsip_has_the_trunk_the_dialplan_dials_and_agent_templates() -> None:
    text = (CONFIG / "pjsip.conf").read_text(encoding="utf-8")
    assert re.search(r"^\[trunk\]\ntype = endpoint\n(.*\n)*?context = from-trunk$", text, re.M)
    assert re.search(r"^\[trunk\]\ntype = aor$", text, re.M)
    assert re.search(r"^\[trunk\]\ntype = identify$", text, re.M)
    for template in ("agent-endpoint", "agent-auth", "agent-aor"):
        assert f"[{template}](!)" in text
    # No secret in the repository: passwords only in comments of the example.
    assert not re.search(r"^\s*password\s*=", text, re.M)


def test_musiconhold_has_the_class_the_queues_use() -> None:
    sections = _sections((CONFIG / "musiconhold.conf").read_text(encoding="utf-8"))
    assert sections["default"]["mode"] == "files"
    assert sections["default"]["directory"]
