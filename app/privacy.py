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

from cryptography.exceptions import InvalidTag
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
    """Keyed hashing, masking and sealing of caller numbers and names.

    Key rotation: ``previous`` is the key being rotated out (``ACD_CALLER_HASH_KEY_PREVIOUS``).
    New hashes and seals are always under the current key; look-ups (``hashes``) try both
    and ``unseal`` opens either, until the re-key (app/services/rekey.py) has moved every
    stored hash and sealed number to the current key and the previous key is removed."""

    def __init__(self, key: bytes, previous: bytes | None = None) -> None:
        if len(key) < 16:
            raise ValueError("caller hash key must be at least 16 bytes")
        self._hash_key = hmac.new(key, b"acd/caller-hash/v1", hashlib.sha256).digest()
        self._seal_key = hmac.new(key, b"acd/callback-seal/v1", hashlib.sha256).digest()
        self.previous: CallerPrivacy | None = None
        if previous is not None and previous != key:
            self.previous = CallerPrivacy(previous)

    @property
    def hash_key(self) -> bytes:
        """The derived HMAC key of ``hash`` (for the re-key's search, in another process)."""
        return self._hash_key

    def hashes(self, value: str) -> tuple[str, ...]:
        """Every hash ``value`` may be stored under: the current key's, then the previous
        key's during a rotation (look-ups: a citizen's data, a repeat caller)."""
        first = self.hash(value)
        if not first:
            return ()
        if self.previous is None:
            return (first,)
        return (first, self.previous.hash(value))

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
        """The sealed number (under the current key, or the previous during a rotation)."""
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        try:
            plain = AESGCM(self._seal_key).decrypt(raw[:12], raw[12:], b"callback")
        except InvalidTag:
            if self.previous is None:
                raise
            return self.previous.unseal(token)
        return plain.decode("utf-8")

    def sealed_by_current(self, token: str) -> bool:
        """Whether ``token`` opens under the current key (the re-key's test)."""
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        try:
            AESGCM(self._seal_key).decrypt(raw[:12], raw[12:], b"callback")
        except InvalidTag:
            return False
        return True


def _looks_like_number(value: str) -> bool:
    stripped = value.strip()
    return bool(stripped) and bool(re.fullmatch(r"\+?[0-9 ()-]+", stripped))
