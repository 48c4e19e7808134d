from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.acd.queues import QueueCatalogue
from app.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_catalogue_has_every_area_of_the_domain() -> None:
    cat = load_config(ROOT / "ivr_flows").queues
    assert cat is not None
    assert set(cat.names) >= {
        "kontanthjaelp",
        "dagpenge",
        "sygeopfoelgning",
        "genregistrering",
        "sygedagpenge",
        "leverandoer",
        "virksomhed",
        "andre_forvaltninger",
        "a_kasse",
        "ni_by",
    }
    assert sum(q.calls_per_year for q in cat.queues) == 388_901
    kontant = cat.get("kontanthjaelp")
    assert kontant is not None and kontant.strategy == "leastrecent"
    dagpenge = cat.get("dagpenge")
    assert dagpenge is not None and dagpenge.strategy == "rrmemory"  # from defaults


def test_defaults_apply_and_queue_values_win() -> None:
    cat = QueueCatalogue.model_validate(
        {
            "defaults": {"wrapup_seconds": 10},
            "queues": [
                {"name": "aa", "title": "A"},
                {"name": "bb", "title": "B", "wrapup_seconds": 5},
            ],
        }
    )
    assert [q.wrapup_seconds for q in cat.queues] == [10, 5]


@pytest.mark.parametrize(
    "queues",
    [
        [{"name": "aa", "title": "A"}, {"name": "aa", "title": "again"}],
        [{"name": "Bad Name", "title": "x"}],
        [{"name": "aa", "title": "A", "strategy": "fastest"}],
        [{"name": "aa", "title": "A", "unknown_key": 1}],
    ],
)
def test_bad_catalogues_are_refused(queues: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        QueueCatalogue.model_validate({"queues": queues})
