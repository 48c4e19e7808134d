"""Caller numbers are personal data: keyed hash + masked display form, never clear text.

``CallerPrivacy`` is pure (no I/O, no clock) so the normaliser and the IVR engine can use it.
The only place a number is kept reversibly is a call-back task, where an agent must be able
to dial it: ``seal``/``unseal`` use AES-GCM under a key derived from the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ANONYMOUS = "anonymous"
_NON_DIGITS = re.compile(r"[^0-9]")
# What Asterisk puts in CallerIDNum when there is no number.
_NO_NUMBER = {"", "<unknown>", "unknown", "anonymous", "restricted", "private"}


def canonical_number(raw: str) -> str:
    """Canonical Danish form used for hashing, so +45 12345678, 004512345678 and 12345678
    all give the same hash. Returns "" when the input holds no number."""
    value = raw.strip()
    if value.lower() in _NO_NUMBER:
        return ""
    digits = _NON_DIGITS.sub("", value)
    if not digits:
        return ""
    if value.startswith("+"):
        return "+" + digits
    if digits.startswith("00") and len(digits) > 4:
        return "+" + digits[2:]
    if len(digits) == 8:  # a Danish national number
        return "+45" + digits
    return digits


def mask_number(raw: str) -> str:
    """Display form: every digit but the last two replaced by '•'; country code kept.

    >>> mask_number("+4520123456")
    '+45 ••••••56'
    """
    number = canonical_number(raw)
    if not number:
        return ANONYMOUS
    prefix = ""
    body = number
    if number.startswith("+45") and len(number) == 11:
        prefix, body = "+45 ", number[3:]
    elif number.startswith("+"):
        prefix, body = number[:3] + " ", number[3:]
    if len(body) <= 2:
        return prefix + "•" * len(body)
    return prefix + "•" * (len(body) - 2) + body[-2:]


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller as the service keeps it: keyed hash and masked display form."""

    hash: str
    display: str

    @property
    def anonymous(self) -> bool:
        return self.display == ANONYMOUS


class CallerPrivacy:
    """Keyed hashing, masking and sealing of caller numbers and names."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("caller hash key must be at least 16 bytes")
        self._hash_key = hmac.new(key, b"acd/caller-hash/v1", hashlib.sha256).digest()
        self._seal_key = hmac.new(key, b"acd/callback-seal/v1", hashlib.sha256).digest()

    @classmethod
    def ephemeral(cls) -> CallerPrivacy:
        """A random key: hashes are stable only for this process's lifetime."""
        return cls(os.urandom(32))

    def hash(self, value: str) -> str:
        """Keyed hash (HMAC-SHA256, 32 hex chars) of a number or name; "" for none."""
        canon = canonical_number(value) if _looks_like_number(value) else value.strip()
        if not canon or canon.lower() in _NO_NUMBER:
            return ""
        digest = hmac.new(self._hash_key, canon.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:32]

    def caller(self, number: str) -> Caller:
        return Caller(hash=self.hash(number), display=mask_number(number))

    def seal(self, number: str) -> str:
        """Encrypt a number for a call-back task (AES-GCM, random nonce, base64)."""
        nonce = os.urandom(12)
        sealed = AESGCM(self._seal_key).encrypt(nonce, number.encode("utf-8"), b"callback")
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        return AESGCM(self._seal_key).decrypt(raw[:12], raw[12:], b"callback").decode("utf-8")


def _looks_like_number(value: str) -> bool:
    stripped = value.strip()
    return bool(stripped) and bool(re.fullmatch(r"\+?[0-9 ()-]+", stripped))
