"""`acd asterisk-config --check` reads asterisk_config/ as Asterisk would: include paths
that resolve in Asterisk's own config folder, contexts, queues and endpoints that exist;
and the agents' phones, as configured, can dial nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app.cli import main
from app.tools.asterisk_check import SERVICE_CONTEXTS, _pattern, check_folder

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "asterisk_config"
FLOWS = str(ROOT / "ivr_flows")


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "acd"
    shutil.copytree(CONFIG, out)
    return out


def _edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once; the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def _section(text: str, name: str) -> dict[str, str]:
    m = re.search(rf"^\[{re.escape(name)}\](\([^)]*\))?\n((?:(?!\[).*\n)*)", text, re.M)
    assert m is not None, name
    out = {}
    for raw in m.group(2).splitlines():
        line = raw.split(";", 1)[0].strip()
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_the_shipped_folder_has_no_problem() -> None:
    assert check_folder(CONFIG) == []


def test_a_broken_folder_names_every_problem_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(tmp_path)
    ext, pjsip, manager = (folder / n for n in ("extensions.conf", "pjsip.conf", "manager.conf"))
    # What the real PBX showed: agents' endpoints in a context nobody defined, and the
    # secret include written as if it resolved beside manager.conf.
    ctx_line = _edit(pjsip, "context = agents", "context = agent-phones")
    inc_line = _edit(
        manager, '#include "acd/acd_ami_secret.conf"', '#include "acd_ami_secret.conf"'
    )
    try_line = _edit(pjsip, "#tryinclude acd/pjsip_secrets.conf", "#tryinclude pjsip_secrets.conf")
    # Other references to what is not there.
    goto_line = _edit(ext, " same => n,Goto(acd-route,s,1)", " same => n,Goto(acd-routes,s,1)")
    exten_line = _edit(ext, "same => n,Goto(fallback,1)", "same => n,Goto(fallbak,1)")
    queue_line = _edit(ext, "Queue(dagpenge,c,", "Queue(dagpengge,c,")
    dial_line = _edit(ext, "Dial(PJSIP/${ACD_FORWARD}@trunk,", "Dial(PJSIP/${ACD_FORWARD}@trunc,")
    _edit(ext, "[acd-transfer]", "[acd-transfers]")

    problems = {(p.file, p.line): p.message for p in check_folder(folder)}
    assert problems[("pjsip.conf", ctx_line)] == (
        "[agent-endpoint]: context 'agent-phones' is not defined in extensions.conf"
    )
    assert "write 'acd/acd_ami_secret.conf'" in problems[("manager.conf", inc_line)]
    assert "/etc/asterisk/acd_ami_secret.conf" in problems[("manager.conf", inc_line)]
    assert "write 'acd/pjsip_secrets.conf'" in problems[("pjsip.conf", try_line)]
    assert "context 'acd-routes' is not defined" in problems[("extensions.conf", goto_line)]
    assert (
        "no extension 'fallbak' in context 'acd-route'" in problems[("extensions.conf", exten_line)]
    )
    assert problems[("extensions.conf", queue_line)] == (
        "Queue(dagpengge): no such queue in queues.conf"
    )
    assert problems[("extensions.conf", dial_line)] == (
        "PJSIP/...@trunc: no such endpoint in pjsip.conf"
    )
    assert problems[("extensions.conf", 0)] == (
        "the service sends calls to context 'acd-transfer' is not defined in extensions.conf"
    )
    assert len(problems) == 8

    # The command: exit 1, each problem on stderr with its file and line.
    assert main(["asterisk-config", "--flows", FLOWS, "--out", str(folder), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{folder}/pjsip.conf:{ctx_line}: [agent-endpoint]: context 'agent-phones'" in err
    assert f"{folder}/manager.conf:{inc_line}: #include 'acd_ami_secret.conf'" in err
    assert "out of date" in err  # the hand edits of the rendered dialplan, too


def test_with_the_pbx_folder_an_included_file_must_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = tmp_path / "etc-asterisk"
    folder = etc / "acd"
    shutil.copytree(CONFIG, folder)
    problems = [str(p) for p in check_folder(folder, asterisk_dir=etc)]
    assert problems == [
        f"manager.conf:{_line_of(folder / 'manager.conf', '#include')}: "
        f"#include 'acd/acd_ami_secret.conf': {folder}/acd_ami_secret.conf does not exist"
    ]  # pjsip_secrets.conf is a #tryinclude: may be missing
    (folder / "acd_ami_secret.conf").write_text("secret = x\n", encoding="utf-8")
    assert check_folder(folder, asterisk_dir=etc) == []
    args = ["asterisk-config", "--flows", FLOWS, "--out", str(folder), "--check"]
    assert main([*args, "--asterisk-dir", str(etc)]) == 0
    assert "includes and references ok" in capsys.readouterr().out


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(needle):
            return number
    raise AssertionError(needle)


def test_writing_the_files_also_checks_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(tmp_path)
    _edit(folder / "pjsip.conf", "context = agents", "context = nowhere")
    assert main(["asterisk-config", "--flows", FLOWS, "--out", str(folder)]) == 1
    assert "context 'nowhere' is not defined" in capsys.readouterr().err


def test_extension_patterns_match_as_asterisk_does() -> None:
    def matches(pattern: str, exten: str) -> bool:
        compiled = _pattern(pattern)
        assert compiled is not None
        return compiled.fullmatch(exten) is not None

    assert matches("_X.", "4520001") and not matches("_X.", "4")
    assert matches("_+X.", "+4582565682") and not matches("_+X.", "4582565682")
    assert matches("_[0-9*#+]!", "*8") and matches("_[0-9*#+]!", "1")
    assert matches("_[0-9*#+]!", "+4520001")
    assert matches("_NXX", "212") and not matches("_NXX", "112")
    assert not matches("_[0-9*#+]!", "alice")
    assert _pattern("fallback") is None


def test_agent_phones_dial_nothing() -> None:
    text = (CONFIG / "extensions.conf").read_text(encoding="utf-8")
    body = text[text.index("[agents]") :].split("\n[", 1)[0]
    lines = [ln.strip() for ln in body.splitlines() if ln.strip().startswith(("exten", "same"))]
    assert lines == [
        "exten => _[0-9*#+]!,1,NoOp(ACD: agent phone ${CHANNEL(endpoint)} dialled out: refused)",
        "same => n,Hangup(21)",
    ]
    assert "Dial(" not in body and "Goto(" not in body
    assert set(SERVICE_CONTEXTS) <= set(re.findall(r"^\[([\w-]+)\]", text, re.M))


def test_agent_template_needs_tls_and_srtp_and_the_udp_one_neither() -> None:
    text = (CONFIG / "pjsip.conf").read_text(encoding="utf-8")
    secure = _section(text, "agent-endpoint")
    assert secure["transport"] == "transport-tls"
    assert secure["media_encryption"] == "sdes"
    assert secure["context"] == "agents"
    assert "[agent-endpoint-udp](!,agent-endpoint)" in text  # everything else inherited
    plain = _section(text, "agent-endpoint-udp")
    assert plain == {"transport": "transport-udp", "media_encryption": "no"}
    assert _section(text, "transport-udp")["protocol"] == "udp"
    # send_pai on the trunk: its re-INVITEs are documented where it is set.
    trunk_comment = text[: text.index("[trunk]")]
    assert "re-INVITE" in trunk_comment and "send_pai = yes" in trunk_comment
