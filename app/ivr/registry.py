"""The flows the service runs, and reloading them without a restart.

``load_flow_set(dir)`` reads the queue catalogue (``queues.yaml``) and every flow file
(``*.yaml`` besides it, except ``work.yaml``: app/acd/work.py) and checks them all;
``FlowRegistry.reload()`` swaps the running set only when everything is valid: a broken
file is rejected with its errors and the running flows stay. Sessions keep the
(immutable) flow they started with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from app.acd.queues import QueueCatalogue
from app.ivr.catalogue import CATALOGUE_FILE, NOT_FLOWS
from app.ivr.model import Flow
from app.ivr.validate import FlowError, FlowInvalid, line_of, load_flow_text, load_yaml


@dataclass(frozen=True, slots=True)
class FlowSet:
    catalogue: QueueCatalogue
    flows: dict[str, Flow]
    version: str  # hash of the files' contents, to tell which set is running


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    version: str  # of the set running after the attempt ("" if none)
    flows: tuple[str, ...]
    errors: tuple[FlowError, ...] = field(default=())


def load_catalogue_text(text: str, file: str) -> QueueCatalogue:
    data, lines = load_yaml(text, file)
    try:
        return QueueCatalogue.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            errors.append(FlowError(file, ".".join(loc), msg, line_of(lines, loc)))
        raise FlowInvalid(errors) from None


def flow_files(flows_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in [*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]
        if p.name not in NOT_FLOWS and p.is_file()
    )


def load_flow_set(flows_dir: Path) -> FlowSet:
    """Everything in ``flows_dir``, checked; raises ``FlowInvalid`` with all errors."""
    digest = hashlib.sha256()
    catalogue_path = flows_dir / CATALOGUE_FILE
    try:
        text = catalogue_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowInvalid([FlowError(str(catalogue_path), "", f"cannot read: {exc}")]) from None
    digest.update(text.encode("utf-8"))
    catalogue = load_catalogue_text(text, str(catalogue_path))
    flows: dict[str, Flow] = {}
    errors: list[FlowError] = []
    files = flow_files(flows_dir)
    if not files:
        raise FlowInvalid([FlowError(str(flows_dir), "", "no flow files (*.yaml) found")])
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(FlowError(str(path), "", f"cannot read: {exc}"))
            continue
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
        try:
            flow = load_flow_text(text, str(path), catalogue)
        except FlowInvalid as exc:
            errors.extend(exc.errors)
            continue
        flows[flow.name] = flow
    if errors:
        raise FlowInvalid(errors)
    return FlowSet(catalogue=catalogue, flows=flows, version=digest.hexdigest()[:12])


class FlowRegistry:
    def __init__(self, flows_dir: Path) -> None:
        self.flows_dir = flows_dir
        self.current: FlowSet | None = None
        self.last_errors: tuple[FlowError, ...] = ()

    def get(self, name: str) -> Flow | None:
        return self.current.flows.get(name) if self.current is not None else None

    def reload(self) -> ReloadResult:
        try:
            new = load_flow_set(self.flows_dir)
        except FlowInvalid as exc:
            self.last_errors = tuple(exc.errors)
            return ReloadResult(False, self._version(), self._names(), tuple(exc.errors))
        self.current = new
        self.last_errors = ()
        return ReloadResult(True, new.version, self._names())

    def _version(self) -> str:
        return self.current.version if self.current is not None else ""

    def _names(self) -> tuple[str, ...]:
        return tuple(sorted(self.current.flows)) if self.current is not None else ()
