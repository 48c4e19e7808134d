"""Reading the queue catalogue file (``<ACD_IVR_FLOWS>/queues.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.acd.queues import QueueCatalogue

CATALOGUE_FILE = "queues.yaml"


def load_catalogue(flows_dir: Path) -> QueueCatalogue:
    path = flows_dir / CATALOGUE_FILE
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return QueueCatalogue.model_validate(data)
