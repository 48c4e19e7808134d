"""API users, their keys and tokens, and the audit log: plain functions taking a session.

Secrets are 32 random bytes, shown once (``acd users add``, ``POST /v1/auth/token``) and
kept only as SHA-256. A fast hash is right here: the secret is random, not a human
password, so there is nothing to guess; a slow KDF would only slow every request.

A secret reads ``acdk_<id>_<random>`` (API key, header ``X-API-Key``) or
``acdt_<id>_<random>`` (bearer token, ``Authorization: Bearer``): the id finds the row in
one primary-key lookup, the hash comparison (constant time) proves the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.access import Principal, Role, check_user
from app.store.models import ApiToken, ApiUser, AuditLog

TokenKind = Literal["key", "bearer"]
_PREFIX: dict[TokenKind, str] = {"key": "acdk", "bearer": "acdt"}
_SECRET = re.compile(r"(acdk|acdt)_([a-z0-9]{16})_([A-Za-z0-9_-]{43})")
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserError(ValueError):
    """A user or token operation that cannot be done; the message says why."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(kind: TokenKind) -> tuple[str, str]:
    """(token id, secret) for a new credential."""
    token_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    return token_id, f"{_PREFIX[kind]}_{token_id}_{secrets.token_urlsafe(32)}"


def parse_secret(secret: str) -> tuple[TokenKind, str] | None:
    """(kind, token id) of a well-formed secret, else None."""
    m = _SECRET.fullmatch(secret)
    if m is None:
        return None
    return ("key" if m.group(1) == "acdk" else "bearer"), m.group(2)


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    role: str
    agent_id: str | None
    teams: list[str]
    grants: list[str]
    active: bool
    tokens: list[dict[str, Any]]


# ---- users ---------------------------------------------------------------------------


async def add_user(
    session: AsyncSession,
    name: str,
    role: str,
    *,
    agent_id: str | None = None,
    teams: Sequence[str] = (),
    grants: Sequence[str] = (),
) -> None:
    if not USER_NAME.fullmatch(name):
        raise UserError("user names are 1-64 of letters, digits, '.', '_', '@', '-'")
    problems = check_user(role, agent_id, teams, grants)
    if problems:
        raise UserError("; ".join(problems))
    if await session.get(ApiUser, name) is not None:
        raise UserError(f"user {name!r} exists (revoke it first, or pick another name)")
    session.add(
        ApiUser(
            name=name,
            role=role,
            agent_id=agent_id,
            teams=sorted(set(teams)),
            grants=sorted(set(grants)),
            active=True,
        )
    )
    await session.flush()


async def issue(
    session: AsyncSession,
    name: str,
    kind: TokenKind,
    expires_at: datetime | None,
) -> tuple[str, str]:
    """A new credential for user ``name``: (token id, secret). The secret is not kept."""
    user = await session.get(ApiUser, name)
    if user is None or not user.active:
        raise UserError(f"no active user {name!r}")
    token_id, secret = new_secret(kind)
    session.add(
        ApiToken(
            id=token_id,
            user_name=name,
            kind=kind,
            secret_hash=hash_secret(secret),
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token_id, secret


async def revoke(session: AsyncSession, name: str, now: datetime) -> int:
    """Deactivate user ``name`` and revoke all its credentials; how many were live."""
    user = await session.get(ApiUser, name)
    if user is None:
        raise UserError(f"no user {name!r}")
    user.active = False
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def rotate(
    session: AsyncSession,
    name: str,
    kind: TokenKind,
    expires_at: datetime | None,
    now: datetime,
    *,
    reactivate: bool = False,
) -> tuple[str, str, int]:
    """A new credential for ``name`` with every older one revoked (a key that leaked, a
    revoked user back at work): (token id, secret, how many live ones were revoked).

    ``reactivate`` is for a deactivated user; without it such a user is refused, and
    with it an active user is, so neither command does the other's job by surprise.
    """
    user = await session.get(ApiUser, name)
    if user is None:
        raise UserError(f"no user {name!r} (`acd users add {name} --role ...` makes one)")
    if reactivate and user.active:
        raise UserError(f"user {name!r} is active; `acd users rotate {name}` gives a new key")
    if not reactivate and not user.active:
        raise UserError(
            f"user {name!r} is deactivated; `acd users reactivate {name}` gives it a new key"
        )
    user.active = True
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    token_id, secret = await issue(session, name, kind, expires_at)
    return token_id, secret, int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_users(session: AsyncSession, now: datetime) -> list[UserRow]:
    users = (await session.execute(select(ApiUser).order_by(ApiUser.name))).scalars().all()
    tokens = (await session.execute(select(ApiToken).order_by(ApiToken.created_at))).scalars().all()
    out = []
    for u in users:
        mine = [
            {
                "id": t.id,
                "kind": t.kind,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "state": "revoked"
                if t.revoked_at is not None
                else ("expired" if t.expires_at is not None and t.expires_at <= now else "live"),
            }
            for t in tokens
            if t.user_name == u.name
        ]
        out.append(
            UserRow(u.name, u.role, u.agent_id, list(u.teams), list(u.grants), u.active, mine)
        )
    return out


# ---- authentication ------------------------------------------------------------------


async def authenticate(
    session: AsyncSession, secret: str, kind: TokenKind, now: datetime
) -> Principal | None:
    """The principal a presented secret stands for, or None (unknown, wrong, expired,
    revoked, of the other kind, or its user deactivated)."""
    found = await verify(session, secret, kind, now)
    return None if found is None else found[0]


async def verify(
    session: AsyncSession, secret: str, kind: TokenKind, now: datetime
) -> tuple[Principal, datetime | None] | None:
    """``authenticate`` with the credential's expiry (None: does not expire)."""
    parsed = parse_secret(secret)
    if parsed is None or parsed[0] != kind:
        return None
    token = await session.get(ApiToken, parsed[1])
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
        return None
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    user = await session.get(ApiUser, token.user_name)
    if user is None or not user.active:
        return None
    role: Role = user.role  # type: ignore[assignment]
    principal = Principal(
        name=user.name,
        role=role,
        agent_id=user.agent_id,
        teams=frozenset(user.teams),
        grants=frozenset(user.grants),
        token_id=token.id,
    )
    return principal, token.expires_at


@dataclass(frozen=True, slots=True)
class Remembered:
    principal: Principal
    verified: float  # monotonic time of the last check against the database
    expires_at: datetime | None  # the credential's own expiry (host's clock)


class CredentialMemory:
    """Credentials the database has recently confirmed, by the hash of their secret
    (never the secret itself), at most ``max_entries`` (the least recently confirmed
    go first).

    Two uses (app/api/auth.py): a live status poll trusts a confirmation younger than
    ``poll_seconds`` without a database round trip; and while the database is
    unreachable a read is let through on a confirmation younger than
    ``outage_seconds`` (``ACD_AUTH_OUTAGE_SECONDS``) if the credential has not expired
    meanwhile. A credential the database refuses is forgotten at once, so a revoked key
    is never let through from here while the database can say so; one never confirmed
    is not here at all.
    """

    def __init__(
        self,
        outage_seconds: float,
        *,
        poll_seconds: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outage_seconds = outage_seconds
        self.poll_seconds = poll_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, secret: str, principal: Principal, expires_at: datetime | None) -> None:
        key = hash_secret(secret)
        self._entries[key] = Remembered(principal, self.clock(), expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, secret: str) -> None:
        self._entries.pop(hash_secret(secret), None)

    def fresh(self, secret: str, now: datetime) -> Principal | None:
        """Confirmed within ``poll_seconds`` (a live status poll's shortcut)."""
        return self._recall(secret, now, self.poll_seconds)

    def during_outage(self, secret: str, now: datetime) -> tuple[Principal, float] | None:
        """(principal, seconds since its confirmation) if confirmed within
        ``outage_seconds`` and not expired at ``now``; for when the database is away."""
        hit = self._entries.get(hash_secret(secret))
        if hit is None or not self._valid(hit, now, self.outage_seconds):
            return None
        return hit.principal, self.clock() - hit.verified

    def _recall(self, secret: str, now: datetime, within: float) -> Principal | None:
        hit = self._entries.get(hash_secret(secret))
        if hit is None or not self._valid(hit, now, within):
            return None
        return hit.principal

    def _valid(self, hit: Remembered, now: datetime, within: float) -> bool:
        if self.clock() - hit.verified > within:
            return False
        return hit.expires_at is None or _aware(hit.expires_at) > now


def _aware(at: datetime) -> datetime:
    # SQLite gives naive datetimes back (stored as UTC).
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def exchange(
    session: AsyncSession, name: str, key: str, ttl: timedelta, now: datetime
) -> tuple[str, datetime] | None:
    """OAuth2 client credentials: an API key of user ``name`` for a bearer token.

    Returns (token, expiry) or None when the key does not belong to an active ``name``.
    The user's expired bearer tokens are deleted on the way (they pile up otherwise).
    """
    principal = await authenticate(session, key, "key", now)
    if principal is None or principal.name != name:
        return None
    await session.execute(
        delete(ApiToken).where(
            ApiToken.user_name == name, ApiToken.kind == "bearer", ApiToken.expires_at <= now
        )
    )
    expires = now + ttl
    _, secret = await issue(session, name, "bearer", expires)
    return secret, expires


async def demo_key(
    sessions: async_sessionmaker[AsyncSession],
    name: str = "demo-admin",
    role: str = "admin",
    *,
    agent_id: str | None = None,
) -> str:
    """For ``acd demo``: a fresh API key of user ``name`` (by default ``demo-admin``,
    role admin), created or re-keyed (its older credentials revoked). Never call this for
    a production database."""
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        user = await session.get(ApiUser, name)
        if user is None:
            await add_user(session, name, role, agent_id=agent_id)
            _, secret = await issue(session, name, "key", None)
        else:
            user.role, user.agent_id = role, agent_id
            _, secret, _ = await rotate(session, name, "key", None, now, reactivate=not user.active)
    return secret


# ---- the audit log -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    role: str
    action: str
    method: str
    path: str
    status_code: int
    target: str | None
    detail: dict[str, Any] | None


async def write_audit(sessions: async_sessionmaker[AsyncSession], entry: AuditEntry) -> None:
    async with sessions.begin() as session:
        session.add(
            AuditLog(
                actor=entry.actor[:64],
                role=entry.role[:16],
                action=entry.action[:64],
                method=entry.method[:8],
                path=entry.path[:256],
                status_code=entry.status_code,
                target=entry.target[:128] if entry.target else None,
                detail=entry.detail,
            )
        )
