"""Reading the catalogue files beside the menus: ``<ACD_IVR_FLOWS>/queues.yaml`` (the
queues) and ``<ACD_IVR_FLOWS>/work.yaml`` (pause reasons, registration reasons,
transfer destinations, scorecard goals)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from app.acd.queues import QueueCatalogue
from app.acd.work import WORK_FILE, WorkConfig, parse_work
from app.reports.goals import GOALS_FILE

CATALOGUE_FILE = "queues.yaml"
# Beside the flows, but no menus.
NOT_FLOWS = frozenset({CATALOGUE_FILE, WORK_FILE, GOALS_FILE})


class WorkConfigError(ValueError):
    """``work.yaml`` is unreadable or invalid; the message names the file and each problem."""


def load_catalogue(flows_dir: Path) -> QueueCatalogue:
    path = flows_dir / CATALOGUE_FILE
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return QueueCatalogue.model_validate(data)


def load_work(flows_dir: Path, queues: tuple[str, ...] | None = None) -> WorkConfig:
    """``work.yaml``, validated (and its queue names checked against ``queues``)."""
    path = flows_dir / WORK_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        work = parse_work(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WorkConfigError(f"{path}: cannot read: {exc}") from None
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise WorkConfigError(f"{path}:\n  " + "\n  ".join(lines)) from None
    problems = work.check_queues(queues) if queues is not None else []
    if problems:
        raise WorkConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return work
