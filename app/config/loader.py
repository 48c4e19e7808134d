"""The one loader: every configuration file of a folder, checked, as one snapshot.

``load_config(folder)`` reads each kind's file (``app/config/kinds.py``) and every other
``*.yaml``/``*.yml`` as a menu flow, checks them all (each against the kinds before it;
the flows against the queues) and returns a ``ConfigSnapshot``, or raises
``ConfigInvalid`` with every problem of every file, each at its line. File I/O only
here; the checks are the pure models'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.acd.queues import QueueCatalogue
from app.config.errors import ConfigError, ConfigInvalid
from app.config.kinds import KINDS, FileKind
from app.config.snapshot import ConfigSnapshot
from app.config.yamlfile import load_yaml
from app.ivr.model import Flow
from app.ivr.validate import load_flow_text


def flow_files(folder: Path, kinds: Iterable[FileKind[Any]] = KINDS) -> list[Path]:
    """The menu flows of ``folder``: every YAML file that is no kind's."""
    taken = {k.file for k in kinds}
    return sorted(
        p
        for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")]
        if p.name not in taken and p.is_file()
    )


def read_file(path: Path) -> str:
    """A configuration file's text, or ``ConfigInvalid`` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigInvalid([ConfigError(str(path), "", f"cannot read: {reason}")]) from None


def parse_kind(kind: FileKind[Any], text: str, file: str, before: dict[str, Any]) -> Any:
    """One kind's file from its text (raises ``ConfigInvalid``)."""
    data, lines = load_yaml(text, file)
    return kind.parse(data, file, lines, before)


def load_config(folder: Path, kinds: tuple[FileKind[Any], ...] = KINDS) -> ConfigSnapshot:
    """Everything in ``folder``, checked (module doc)."""
    digest = hashlib.sha256()
    errors: list[ConfigError] = []
    values: dict[str, Any] = {}
    files: list[str] = []
    failed: set[str] = set()
    for kind in kinds:
        path = folder / kind.file
        if any(name in failed for name in kind.after):
            failed.add(kind.name)  # its errors would follow from the others'
            continue
        if not path.is_file():
            if kind.required:
                errors.append(ConfigError(str(path), "", "missing (the service needs it)"))
                failed.add(kind.name)
            values[kind.name] = None
            continue
        try:
            text = read_file(path)
            values[kind.name] = parse_kind(kind, text, str(path), values)
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
            failed.add(kind.name)
            continue
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8") + b"\0")
        files.append(str(path))
    flows = _flows(folder, kinds, values.get("queues"), "queues" in failed, errors, digest, files)
    if errors:
        raise ConfigInvalid(errors)
    return ConfigSnapshot(digest.hexdigest()[:12], flows, values, tuple(files))


def _flows(
    folder: Path,
    kinds: tuple[FileKind[Any], ...],
    queues: QueueCatalogue | None,
    queues_failed: bool,
    errors: list[ConfigError],
    digest: Any,
    files: list[str],
) -> dict[str, Flow]:
    paths = flow_files(folder, kinds)
    if not paths:
        errors.append(ConfigError(str(folder), "", "no flow files (*.yaml) found"))
        return {}
    if queues is None:
        if not queues_failed:
            errors.append(ConfigError(str(folder), "", "flows need the queues (queues.yaml)"))
        return {}  # the queues' own errors say why
    flows: dict[str, Flow] = {}
    for path in paths:
        try:
            text = read_file(path)
            flow = load_flow_text(text, str(path), queues)
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
            continue
        if flow.name in flows:
            errors.append(ConfigError(str(path), "name", f"flow {flow.name!r} is defined twice"))
            continue
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8") + b"\0")
        files.append(str(path))
        flows[flow.name] = flow
    return flows
