"""API users for tests: created through the same use cases as `acd users add`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.store import auth
from app.store.db import create_engine, session_factory


async def make_user(
    db_url: str,
    name: str,
    role: str,
    *,
    agent_id: str | None = None,
    teams: Sequence[str] = (),
    grants: Sequence[str] = (),
    kind: auth.TokenKind = "key",
    expires_at: datetime | None = None,
) -> str:
    """Create the user with one credential; its secret."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine).begin() as session:
            await auth.add_user(session, name, role, agent_id=agent_id, teams=teams, grants=grants)
            _, secret = await auth.issue(session, name, kind, expires_at)
    finally:
        await engine.dispose()
    return secret


def key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def admin_headers(db_url: str, name: str = "admin") -> dict[str, str]:
    return key(await make_user(db_url, name, "admin"))


_viewers = 0


async def viewer_headers(app: object) -> dict[str, str]:
    """A read-only key (role integration) in the database of a running ``app``."""
    global _viewers
    _viewers += 1
    url = app.state.rt.settings.database_url  # type: ignore[attr-defined]
    return key(await make_user(url, f"viewer{_viewers}", "integration"))
