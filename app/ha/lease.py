"""The lease of one PBX: a row in ``pbx_leases`` (migration 0011) with a holder, an epoch
and an expiry in the database's own time.

Why a lease row in PostgreSQL (and not an advisory lock or Redis):
- the fence must live where the writes land: ``acd_fence(pbx, epoch)`` is called inside
  each of the owner's transactions and refuses it once the epoch has moved on, so the
  check and the write commit together (Redis could say who owns, not stop a write);
- an advisory lock is held by a connection, and a paused process (SIGSTOP, a long GC, a
  frozen VM) keeps its connection open: the kernel still answers TCP keepalives, so the
  lock would never move. A lease expires by itself when its holder stops renewing;
- expiry is measured by the database's clock (``clock_timestamp()``), the one clock every
  replica shares; a process's own view of its lease uses its monotonic clock from the
  moment it *sent* the renewal, so it stops acting on the PBX no later than the others
  may take over.

Only plain SQL over one dedicated asyncpg connection (``lock_timeout`` short: a takeover
waits for an owner's transaction under way, never for long).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO pbx_leases (pbx, holder, epoch, expires_at, acquired_at, handovers, cause)
VALUES ($1, '', 0, clock_timestamp(), clock_timestamp(), 0, 'first')
ON CONFLICT (pbx) DO NOTHING
"""

# Taken when it was released ('' holder) or has expired; the epoch goes up by one.
_ACQUIRE = """
WITH old AS (
    SELECT pbx, holder, epoch FROM pbx_leases
    WHERE pbx = $1 AND (holder = '' OR expires_at < clock_timestamp())
    FOR UPDATE
)
UPDATE pbx_leases AS l
SET holder = $2,
    epoch = old.epoch + 1,
    expires_at = clock_timestamp() + make_interval(secs => $3),
    acquired_at = clock_timestamp(),
    handovers = l.handovers + CASE WHEN old.epoch > 0 THEN 1 ELSE 0 END,
    cause = CASE
        WHEN old.epoch = 0 THEN 'first'
        WHEN old.holder = '' THEN 'released'
        ELSE 'expired'
    END
FROM old
WHERE l.pbx = old.pbx
RETURNING l.epoch, l.cause, old.holder
"""

_RENEW = """
UPDATE pbx_leases SET expires_at = clock_timestamp() + make_interval(secs => $4)
WHERE pbx = $1 AND holder = $2 AND epoch = $3
RETURNING epoch
"""

_RELEASE = """
UPDATE pbx_leases SET holder = '', expires_at = clock_timestamp()
WHERE pbx = $1 AND holder = $2 AND epoch = $3
"""

_WHO = "SELECT holder, epoch, expires_at > clock_timestamp() FROM pbx_leases WHERE pbx = $1"


def holder_name() -> str:
    """This process, as the lease row names it: host (the pod's name on Kubernetes),
    process id and a random part (a restarted process is a new holder)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Taken:
    """A lease taken: its epoch, why it was free and who held it before."""

    epoch: int
    cause: str  # first | expired | released
    previous: str


class Lease:
    """One PBX's lease, for one process (module doc)."""

    def __init__(self, url: str, pbx: str, *, ttl: float, holder: str | None = None) -> None:
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self.pbx = pbx
        self.ttl = ttl
        self.holder = holder or holder_name()
        self.epoch: int | None = None  # while held
        self.valid_until = 0.0  # monotonic: this process's own view of its lease
        self._conn: Any = None

    # ---- what the owner's writes carry ------------------------------------------------

    def token(self) -> tuple[str, int]:
        """(pbx, epoch) for ``acd_fence``: -1 when not held, which no row has."""
        return (self.pbx, self.epoch if self.epoch is not None else -1)

    @property
    def held(self) -> bool:
        """Held and, by this process's own clock, not yet expired: may act on the PBX."""
        return self.epoch is not None and time.monotonic() < self.valid_until

    # ---- the database -----------------------------------------------------------------

    async def _connection(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None or self._conn.is_closed():
            timeout = max(0.5, self.ttl / 3)
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=timeout,
                command_timeout=timeout,
                server_settings={
                    "lock_timeout": str(int(timeout * 1000)),
                    "application_name": f"acd-lease-{self.pbx}"[:63],
                },
            )
        return self._conn

    async def _run(self, sql: str, *args: Any) -> Any:
        try:
            conn = await self._connection()
            return await conn.fetchrow(sql, *args)
        except BaseException:
            await self.close()  # a connection in an unknown state is not reused
            raise

    async def try_acquire(self) -> Taken | None:
        """Take the lease if it is free (released or expired); None if another holds it."""
        sent = time.monotonic()
        conn = await self._connection()
        try:
            await conn.execute(_INSERT, self.pbx)
        except BaseException:
            await self.close()
            raise
        row = await self._run(_ACQUIRE, self.pbx, self.holder, self.ttl)
        if row is None:
            return None
        self.epoch = int(row["epoch"])
        self.valid_until = sent + self.ttl
        return Taken(self.epoch, str(row["cause"]), str(row["holder"]))

    async def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (taken over). A database
        that does not answer raises (the lease may still be ours until it expires)."""
        if self.epoch is None:
            return False
        sent = time.monotonic()
        row = await self._run(_RENEW, self.pbx, self.holder, self.epoch, self.ttl)
        if row is None:
            self.epoch = None
            return False
        self.valid_until = sent + self.ttl
        return True

    async def release(self) -> None:
        """Give the lease up at a clean stop: a standby takes it at its next try."""
        epoch, self.epoch = self.epoch, None
        if epoch is None:
            return
        try:
            await asyncio.wait_for(self._run(_RELEASE, self.pbx, self.holder, epoch), 2)
        except Exception as exc:  # it expires by itself
            log.warning("could not release the lease of %s (%s)", self.pbx, exc)

    async def who(self) -> tuple[str, int, bool] | None:
        """(holder, epoch, unexpired) of the row, for ``/ready`` on a standby."""
        row = await self._run(_WHO, self.pbx)
        if row is None:
            return None
        return str(row[0]), int(row[1]), bool(row[2])

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1)
