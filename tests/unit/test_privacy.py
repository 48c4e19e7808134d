from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.privacy import ANONYMOUS, CallerPrivacy, canonical_number, mask_number

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("20123456", "+4520123456"),
        ("+45 20 12 34 56", "+4520123456"),
        ("004520123456", "+4520123456"),
        ("+46701234567", "+46701234567"),
        ("<unknown>", ""),
        ("anonymous", ""),
        ("", ""),
        ("4520001", "4520001"),  # the lab's short test numbers stay as they are
    ],
)
def test_canonical_number(raw: str, canon: str) -> None:
    assert canonical_number(raw) == canon


def test_same_person_same_hash_whatever_the_format() -> None:
    p = CallerPrivacy(KEY)
    assert p.hash("20123456") == p.hash("+45 20 12 34 56") == p.hash("004520123456")
    assert p.hash("20123456") != p.hash("20123457")


def test_hash_is_keyed() -> None:
    assert CallerPrivacy(KEY).hash("20123456") != CallerPrivacy(b"x" * 32).hash("20123456")


def test_no_number_gives_no_hash_and_anonymous_display() -> None:
    p = CallerPrivacy(KEY)
    caller = p.caller("<unknown>")
    assert caller.hash == "" and caller.display == ANONYMOUS and caller.anonymous


def test_mask_keeps_only_last_two_digits() -> None:
    assert mask_number("20123456") == "+45 ••••••56"
    assert mask_number("+46701234567") == "+46 •••••••67"
    assert mask_number("4520001") == "•••••01"


@given(st.text(alphabet="0123456789", min_size=3, max_size=15))
def test_display_and_hash_never_contain_the_number(digits: str) -> None:
    p = CallerPrivacy(KEY)
    caller = p.caller(digits)
    assert digits not in caller.display
    assert digits not in caller.hash or len(digits) <= 3


def test_seal_roundtrip_and_tamper_detection() -> None:
    p = CallerPrivacy(KEY)
    token = p.seal("+4520123456")
    assert "20123456" not in token
    assert p.unseal(token) == "+4520123456"
    assert p.seal("+4520123456") != token  # random nonce
    with pytest.raises(Exception):  # noqa: B017  (cryptography's InvalidTag)
        CallerPrivacy(b"y" * 32).unseal(token)


def test_short_key_refused() -> None:
    with pytest.raises(ValueError):
        CallerPrivacy(b"short")
