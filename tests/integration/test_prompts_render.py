"""`acd prompts`: the Danish texts become 8 kHz mono 16-bit WAV files (real espeak-ng and
sox, which scripts/test.sh installs)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from app.cli import main
from app.config.loader import load_config
from app.ivr.validate import all_prompt_texts
from app.tools.prompts import PromptToolsMissing, find_tools, render_prompt

ROOT = Path(__file__).resolve().parents[2]
FLOWS = str(ROOT / "ivr_flows")


def _wav(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return (
            w.getframerate(),
            w.getnchannels(),
            w.getsampwidth(),
            w.getnframes() / w.getframerate(),
        )


def test_renders_menu_and_calendar_prompts_as_asterisk_wav(tmp_path: Path) -> None:
    out = tmp_path / "sounds" / "da"
    code = main(["prompts", "--flows", FLOWS, "--out", str(out),
                 "--only", "acd/menu-hovedmenu", "--only", "acd/cal-kl-0800"])  # fmt: skip
    assert code == 0
    menu = out / "acd" / "menu-hovedmenu.wav"
    clock = out / "acd" / "cal-kl-0800.wav"
    rate, channels, width, seconds = _wav(menu)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds > 8  # five choices and a repeat hint: a long prompt
    rate, channels, width, short = _wav(clock)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 0.3 < short < 4  # "klokken otte"
    assert sorted(p.name for p in (out / "acd").iterdir()) == [
        "cal-kl-0800.wav",
        "menu-hovedmenu.wav",
    ]


def test_text_starting_with_a_dash_is_spoken_not_parsed(tmp_path: Path) -> None:
    target = tmp_path / "x.wav"
    render_prompt(find_tools(), "-v en --help", target)
    assert _wav(target)[3] > 0.3


def test_list_names_every_prompt_the_service_can_play(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "--flows", FLOWS, "--list"]) == 0
    listed = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    flow = load_config(ROOT / "ivr_flows").flows["jobcenter"]
    assert listed == all_prompt_texts(flow)
    assert listed["acd/menu-sygdom"].startswith("Har du spørgsmål om udbetaling af sygedagpenge")
    assert listed["acd/cal-i-morgen"] == "i morgen"
    # Only opening times are ever said ("we open at ..."), so only they get a prompt.
    assert listed["acd/cal-kl-0800"] == "klokken otte"
    assert "acd/cal-kl-1700" not in listed


def test_missing_tools_exit_2_naming_the_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PromptToolsMissing):
        find_tools()
    assert main(["prompts", "--flows", FLOWS, "--out", str(tmp_path / "o")]) == 2
    assert "apt-get install espeak-ng sox" in capsys.readouterr().err
