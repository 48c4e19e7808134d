"""Key rotation's look-ups and the re-key's search, the retention defaults and the data
map (docs/privacy.md) that a data-protection officer reads: pure, no database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from app.config.kinds import RETENTION
from app.config.loader import load_config
from app.privacy import CallerPrivacy
from app.retention import DEFAULTS, RetentionConfig
from app.services.rekey import _mapped, search

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = b"o" * 32, b"n" * 32


def test_during_a_rotation_look_ups_find_both_keys_hashes() -> None:
    rotated = CallerPrivacy(NEW, previous=OLD)
    assert rotated.hashes("20 12 34 56") == (
        CallerPrivacy(NEW).hash("+4520123456"),
        CallerPrivacy(OLD).hash("+4520123456"),
    )
    assert CallerPrivacy(NEW).hashes("20123456") == (CallerPrivacy(NEW).hash("20123456"),)
    assert rotated.hashes("anonymous") == ()
    assert rotated.hash("20123456") == CallerPrivacy(NEW).hash("20123456")  # new rows: new key


def test_a_number_sealed_under_the_previous_key_still_opens() -> None:
    token = CallerPrivacy(OLD).seal("+4520123456")
    rotated = CallerPrivacy(NEW, previous=OLD)
    assert rotated.unseal(token) == "+4520123456"
    assert not rotated.sealed_by_current(token)
    assert rotated.sealed_by_current(rotated.seal("+4520123456"))
    with pytest.raises(InvalidTag):
        CallerPrivacy(NEW).unseal(token)


def test_the_search_finds_the_numbers_behind_stored_hashes() -> None:
    old = CallerPrivacy(OLD)
    numbers = ["+4520000007", "+4520099999", "+4520012345"]
    hashes = [old.hash(n) for n in numbers]
    found = search(old.hash_key, [*hashes, "f" * 32], ("+45200",), 5)
    assert found == dict(zip(hashes, numbers, strict=True))  # the unknown one not
    assert search(old.hash_key, [], ("+45200",), 5) == {}


def test_rekeyed_json_keeps_what_is_not_a_known_hash() -> None:
    doc = {"caller": {"hash": "a" * 32, "display": "+45 ••••••56"}, "x": ["b" * 32, 3]}
    assert _mapped(doc, {"c" * 32: "d" * 32}) is doc
    assert _mapped(doc, {"a" * 32: "e" * 32})["caller"]["hash"] == "e" * 32


def test_the_shipped_retention_file_is_the_defaults() -> None:
    assert load_config(ROOT / "ivr_flows")[RETENTION] == DEFAULTS


def test_the_data_map_names_every_period_and_its_default() -> None:
    """docs/privacy.md's retention table holds each kind, its default and its reason."""
    text = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) days \|", text, re.M))
    assert {k: int(v) for k, v in rows.items()} == DEFAULTS.model_dump()
    for name, info in RetentionConfig.model_fields.items():
        assert info.description, name
