"""The configuration registry: the running snapshot, and its reload without a restart.

Every consumer holds this registry (or a function reading it), never a copy of what it
held at start: the state machine's wrap-up times, the roster's queue rows, the live
board's queues, the metric labels, the API's checks, the dialer's gauges and the FastAGI
sessions' flows all read ``registry.current``. A reload (SIGHUP, ``POST
/v1/ivr/reload``) reads and checks every file in a thread and swaps the new snapshot in
with one assignment, so each reader sees either the old set or the new one, whole; a
set with any error is rejected with every error (file, line, place, problem) and the
running snapshot stays as it was.

At start the folder is loaded once (``load``) before the components start; a set with
errors leaves the service running on an empty snapshot, not ready (``/ready`` shows the
errors under ``config``), until a reload succeeds: the menu's calls take the dialplan's
fallback queue meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.components import Health
from app.config.errors import ConfigError, ConfigInvalid
from app.config.kinds import KINDS, FileKind
from app.config.loader import load_config
from app.config.snapshot import EMPTY, ConfigSnapshot
from app.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    version: str  # of the snapshot running after the attempt ("" if none)
    flows: tuple[str, ...]
    errors: tuple[ConfigError, ...] = field(default=())


class ConfigRegistry:
    """Component (module doc)."""

    name = "config"
    required = True

    def __init__(
        self,
        folder: Path,
        metrics: Metrics | None = None,
        *,
        kinds: tuple[FileKind[Any], ...] = KINDS,
        sighup: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.metrics = metrics
        self.kinds = kinds
        self.sighup = sighup
        self._current: ConfigSnapshot = EMPTY
        self.last_errors: tuple[ConfigError, ...] = ()
        self._lock = asyncio.Lock()
        self._sighup_installed = False
        self._background: set[asyncio.Task[ReloadResult]] = set()

    @property
    def current(self) -> ConfigSnapshot:
        return self._current

    # ---- loading ---------------------------------------------------------------------

    def load(self) -> ReloadResult:
        """Read, check and swap in now (at start, in tools); see ``reload``."""
        return self._swap(self._read())

    async def reload(self) -> ReloadResult:
        """Read and check every file off the event loop, then swap in, one at a time."""
        async with self._lock:
            outcome = await asyncio.to_thread(self._read)
            return self._swap(outcome)

    def _read(self) -> ConfigSnapshot | ConfigInvalid:
        try:
            return load_config(self.folder, self.kinds)
        except ConfigInvalid as exc:
            return exc

    def _swap(self, outcome: ConfigSnapshot | ConfigInvalid) -> ReloadResult:
        ok = isinstance(outcome, ConfigSnapshot)
        if isinstance(outcome, ConfigSnapshot):
            self._current = outcome  # the one assignment every reader sees
            self.last_errors = ()
            log.info(
                "configuration %s loaded: %d queues, flows %s, %s",
                outcome.version,
                len(outcome.queue_names),
                ", ".join(sorted(outcome.flows)),
                ", ".join(k.file for k in self.kinds if outcome[k] is not None),
            )
        else:
            self.last_errors = tuple(outcome.errors)
            log.error(
                "configuration rejected, keeping version %s:\n  %s",
                self._current.version or "(none)",
                "\n  ".join(str(e) for e in outcome.errors),
            )
        if self.metrics is not None:
            self.metrics.ivr_flow_reloads.labels("ok" if ok else "rejected").inc()
        return ReloadResult(
            ok, self._current.version, tuple(sorted(self._current.flows)), self.last_errors
        )

    # ---- Component -------------------------------------------------------------------

    async def start(self) -> None:
        if self.sighup:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._sighup_installed = True

    async def stop(self) -> None:
        if self._sighup_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup_installed = False

    async def check(self) -> Health:
        current = self._current
        detail: dict[str, object] = {
            "version": current.version,
            "folder": str(self.folder),
            "files": [Path(f).name for f in current.files],
        }
        if self.last_errors:
            detail["rejected"] = [str(e) for e in self.last_errors[:20]]
        if not current.version:
            return Health(False, "not_loaded", detail)
        return Health(True, "up", detail)

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
