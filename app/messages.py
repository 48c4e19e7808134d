"""Voice messages on disk: where they are, and whether the folder can take them.

The menu (``callback.message_dir`` of a flow) tells Asterisk where ``RECORD FILE`` writes a
message; the task keeps that path without the extension (``callbacks.recording``). This
service reads and deletes the files through the same folder, or through
``ACD_MESSAGE_DIR`` where it sees the shared folder under another path. A file is found by
its task only (``GET /v1/callbacks/{id}/message``): never by a path a client gives.

``MessageFolder`` is the start-up check: on a real Asterisk a missing folder made
``RECORD FILE`` fail with ``result=-1 (writefile)`` while a caller was speaking, and the
message was lost. A missing or unwritable folder is logged at start and shown by
``/ready`` (``messages``); it makes the service not ready where ``ACD_MESSAGE_DIR`` says
the folder is on this host.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from app.components import Health

log = logging.getLogger(__name__)

FORMATS = ("wav", "gsm", "WAV")  # what RECORD FILE may have written (callback.message_format)
MEDIA_TYPES = {"wav": "audio/wav", "gsm": "audio/x-gsm"}


class MessageFiles:
    """The voice messages' folder(s) as this process sees them."""

    def __init__(self, override: Path | None, menu_dirs: Callable[[], Iterable[str]]) -> None:
        self.override = override
        self.menu_dirs = menu_dirs

    def folders(self) -> list[Path]:
        if self.override is not None:
            return [self.override]
        return sorted({Path(d) for d in self.menu_dirs()})

    def local(self, recording: str) -> Path:
        """Where ``recording`` (the menu's path, no extension) is on this host."""
        path = PurePosixPath(recording)
        if self.override is not None:
            return self.override / path.name
        return Path(str(path))

    def files_of(self, recording: str | None) -> list[Path]:
        """The file(s) of a recording that exist (one, normally)."""
        if not recording:
            return []
        base = self.local(recording)
        if base.name in ("", ".", ".."):
            return []
        found = [base.with_name(f"{base.name}.{ext}") for ext in FORMATS]
        return [p for p in found if p.is_file()]

    def delete(self, recording: str | None) -> int:
        """Delete a recording's file(s); the count deleted."""
        gone = 0
        for path in self.files_of(recording):
            try:
                path.unlink()
                gone += 1
            except FileNotFoundError:
                continue
        return gone


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot take a voice message, or None."""
    if not folder.exists():
        return "missing"
    if not folder.is_dir():
        return "not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "not writable"
    return None


class MessageFolder:
    """Component (module doc)."""

    name = "messages"

    def __init__(self, files: MessageFiles) -> None:
        self.files = files
        # Required where the folder is said to be on this host (ACD_MESSAGE_DIR); the
        # menu's own path may be on the Asterisk box only: shown, not required.
        self.required = files.override is not None

    async def start(self) -> None:
        for folder in self.files.folders():
            problem = folder_problem(folder)
            if problem is not None:
                log.error(
                    "voice messages: folder %s is %s: a caller's message would be lost "
                    "(RECORD FILE fails); create it, writable by Asterisk and this service",
                    folder,
                    problem,
                )

    async def stop(self) -> None:
        return None

    async def check(self) -> Health:
        folders = self.files.folders()
        problems = {str(f): p for f in folders if (p := folder_problem(f)) is not None}
        detail: dict[str, Any] = {"folders": [str(f) for f in folders]}
        if problems:
            detail["problems"] = problems
            states = set(problems.values())
            return Health(False, "missing" if states == {"missing"} else "unwritable", detail)
        return Health(True, "up" if folders else "none", detail)
