"""Rendering the flows' Danish prompt texts to sound files Asterisk can play.

``espeak-ng`` (voice ``da``) speaks each text to a WAV; ``sox`` converts it to what
Asterisk's ``wav`` format expects: 8 kHz, mono, 16-bit signed PCM. A prompt named
``acd/menu-hovedmenu`` becomes ``<out>/acd/menu-hovedmenu.wav``; point ``<out>`` at the
language folder of Asterisk's sounds (``/var/lib/asterisk/sounds/da``: the dialplan sets
``CHANNEL(language)=da``). Recorded studio prompts can replace any file later.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEBIAN_PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}
TOOL_TIMEOUT_SECONDS = 60


class PromptToolsMissing(Exception):
    def __init__(self, missing: list[str]) -> None:
        packages = " ".join(DEBIAN_PACKAGES[m] for m in missing)
        super().__init__(
            f"{', '.join(missing)} not installed; on Debian: apt-get install {packages}"
        )
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Tools:
    espeak: str
    sox: str


def find_tools() -> Tools:
    found = {name: shutil.which(name) for name in DEBIAN_PACKAGES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise PromptToolsMissing(missing)
    return Tools(espeak=str(found["espeak-ng"]), sox=str(found["sox"]))


def prompt_path(out_dir: Path, name: str) -> Path:
    if ".." in name or name.startswith("/"):
        raise ValueError(f"bad prompt name {name!r}")
    return out_dir / f"{name}.wav"


def render_prompt(
    tools: Tools, text: str, target: Path, *, voice: str = "da", speed: int = 150
) -> None:
    """Speak ``text`` into ``target`` (8 kHz mono 16-bit WAV)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="acd-prompt-") as tmp:
        spoken = Path(tmp) / "spoken.wav"
        # The text goes in on stdin: a text starting with '-' is never read as an option.
        subprocess.run(
            [tools.espeak, "-v", voice, "-s", str(speed), "-w", str(spoken), "--stdin"],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
            timeout=TOOL_TIMEOUT_SECONDS,
        )
        partial = target.with_suffix(".part.wav")
        subprocess.run(
            [tools.sox, str(spoken), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
             str(partial)],
            check=True,
            capture_output=True,
            timeout=TOOL_TIMEOUT_SECONDS,
        )  # fmt: skip
        partial.replace(target)  # a half-written prompt is never played


def render_prompts(
    texts: dict[str, str],
    out_dir: Path,
    *,
    only: Iterable[str] | None = None,
    tools: Tools | None = None,
) -> list[Path]:
    """Render every prompt (or those whose name starts with one of ``only``)."""
    tools = tools or find_tools()
    prefixes = tuple(only or ())
    written = []
    for name, text in sorted(texts.items()):
        if prefixes and not name.startswith(prefixes):
            continue
        target = prompt_path(out_dir, name)
        render_prompt(tools, text, target)
        written.append(target)
    return written
