"""Several real service processes (``python -m app serve``) for one simulated PBX, one
PostgreSQL and one Redis: start them, find the owner, kill or pause it, and judge the
log against the simulator's truth. Used by tests/e2e/test_failover.py and
bench/failover.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Text, cast, func, select

from app.acd.state import default_agent_id
from app.sim.truth import CallTruth
from app.store.db import create_engine, session_factory
from app.store.models import Call, CallEvent

ROOT = Path(__file__).resolve().parents[2]
SECRET = "acdsecret"
HASH_KEY = "e2e-caller-hash-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Service:
    """One ``acd serve`` process."""

    name: str
    env: dict[str, str]
    log_path: Path
    http_port: int = field(default_factory=free_port)
    agi_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = {
            **os.environ,
            **self.env,
            "ACD_HTTP_PORT": str(self.http_port),
            "ACD_AGI_PORT": str(self.agi_port),
        }
        self.starts += 1
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(10)

    def stop(self, within: float = 15.0) -> int | None:
        """SIGTERM (a clean stop), then SIGKILL if it does not end."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
            try:
                self.proc.wait(within)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    async def get(self, path: str, limit: float = 2.0) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=limit) as client:
                return await client.get(f"http://127.0.0.1:{self.http_port}{path}")
        except httpx.HTTPError:
            return None

    async def role(self) -> str | None:
        """owner | standby | deposed | None (not answering)."""
        r = await self.get("/ready", limit=1.0)
        if r is None:
            return None
        part = r.json().get("parts", {}).get("lease")
        return None if part is None else str(part["state"])

    async def metric(self, name: str) -> float:
        r = await self.get("/metrics")
        if r is None:
            return float("nan")
        total = 0.0
        for line in r.text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total


class Cluster:
    """``n`` service processes for one PBX."""

    def __init__(
        self,
        n: int,
        *,
        pg_url: str,
        redis_url: str,
        ami_port: int,
        tmp: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.services: list[Service] = []
        for i in range(n):
            spill = tmp / f"svc{i}"
            spill.mkdir(parents=True, exist_ok=True)
            self.services.append(
                Service(
                    f"svc{i}",
                    {
                        "ACD_DATABASE_URL": pg_url,
                        "ACD_REDIS_URL": redis_url,
                        "ACD_AMI_HOST": "127.0.0.1",
                        "ACD_AMI_PORT": str(ami_port),
                        "ACD_AMI_SECRET": SECRET,
                        "ACD_IVR_FLOWS": str(ROOT / "ivr_flows"),
                        "ACD_SPILL_DIR": str(spill),
                        "ACD_CALLER_HASH_KEY": HASH_KEY,
                        "ACD_LEASE": "on",
                        "ACD_LOG_LEVEL": "INFO",
                        "ACD_REPORT_ARCHIVE": "false",
                        **(env or {}),
                    },
                    tmp / f"svc{i}.log",
                )
            )

    @property
    def agi_addresses(self) -> str:
        """The dialplan's FastAGI hosts: every replica, tried in turn."""
        return ",".join(f"127.0.0.1:{s.agi_port}" for s in self.services)

    def start(self) -> None:
        for s in self.services:
            s.start()

    def stop(self) -> list[int | None]:
        return [s.stop() for s in self.services]

    async def roles(self) -> dict[str, str | None]:
        found = await asyncio.gather(*(s.role() for s in self.services))
        return {s.name: r for s, r in zip(self.services, found, strict=True)}

    async def owner(self) -> Service | None:
        roles = await self.roles()
        owners = [s for s in self.services if roles[s.name] == "owner"]
        assert len(owners) <= 1, roles
        return owners[0] if owners else None

    async def settled(self, within: float = 60.0) -> Service:
        """Until one owner and every other live process a standby; the owner."""
        end = time.monotonic() + within
        while True:
            roles = await self.roles()
            live = [s for s in self.services if s.alive]
            owners = [s for s in live if roles[s.name] == "owner"]
            standbys = [s for s in live if s not in owners]
            if len(owners) == 1 and all(roles[s.name] == "standby" for s in standbys):
                return owners[0]
            if time.monotonic() > end:
                raise TimeoutError(f"no settled cluster: {roles}")
            await asyncio.sleep(0.2)

    async def clock_shared(self, redis_url: str, pbx: str = "pbx1", within: float = 30.0) -> None:
        """Until the owner has published the PBX's clock (app/ha/relay.py ClockShare) and
        the standbys had time to follow it (their next takeover try): before that a menu
        run on a standby stamps its events with the host's own time, years away from a
        simulated PBX's (and the restore window after a takeover is measured back from
        the newest stamp in the log)."""
        from redis.asyncio import Redis

        from app.ha.relay import skew_key

        client = Redis.from_url(redis_url)
        end = time.monotonic() + within
        try:
            while await client.get(skew_key(pbx)) is None:
                if time.monotonic() > end:
                    raise TimeoutError("the owner never published the PBX's clock")
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()
        await asyncio.sleep(2 * 0.5)  # two standby polls (ACD_LEASE_POLL_INTERVAL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {s.name}\n" + s.log_path.read_text(errors="replace")[-4000:]
            for s in self.services
            if s.log_path.exists()
        )


# ---- the log against the truth ------------------------------------------------------


@dataclass
class Judgement:
    calls: int
    rows: int
    lost: list[str]  # simulated calls with no row (or none with an outcome)
    extra: list[str]  # rows of calls the simulator never made
    wrong: list[tuple[Any, ...]]  # outcome, queue, agent or keys differ
    gap: list[str]  # rows flagged data_gap (the service could not see the whole call)
    wrong_outside_gap: list[tuple[Any, ...]]  # wrong, not flagged
    duplicated_events: int  # call events logged twice (same call, kind and time)

    def faults(self) -> dict[str, int]:
        """What went wrong, counted (``NO_FAULTS`` when every call is right)."""
        return {k: v for k, v in self.summary().items() if k not in ("calls", "rows")}

    def summary(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "rows": self.rows,
            "lost": len(self.lost),
            "extra": len(self.extra),
            "wrong": len(self.wrong),
            "data_gap": len(self.gap),
            "wrong_unflagged": len(self.wrong_outside_gap),
            "duplicated_events": self.duplicated_events,
        }


async def call_rows(url: str) -> list[Call]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return list((await s.execute(select(Call))).scalars().all())
    finally:
        await engine.dispose()


NO_FAULTS = dict.fromkeys(
    ("lost", "extra", "wrong", "data_gap", "wrong_unflagged", "duplicated_events"), 0
)


async def duplicated_events(url: str) -> int:
    """Events logged twice: the same call (pbx, linkedid), kind, time and data under two
    keys."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            q = (
                select(func.count())
                .select_from(CallEvent)
                .group_by(
                    CallEvent.pbx,
                    CallEvent.linkedid,
                    CallEvent.kind,
                    CallEvent.at,
                    cast(CallEvent.data, Text),
                )
                .having(func.count() > 1)
            )
            return len((await s.execute(q)).all())
    finally:
        await engine.dispose()


async def event_count(url: str, kind: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            q = select(func.count()).select_from(CallEvent).where(CallEvent.kind == kind)
            return int((await s.execute(q)).scalar_one())
    finally:
        await engine.dispose()


async def events_of(url: str, linkedid: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            q = (
                select(CallEvent.id, CallEvent.at, CallEvent.kind, CallEvent.received_at)
                .where(CallEvent.linkedid == linkedid)
                .order_by(CallEvent.id)
            )
            return [tuple(r) for r in (await s.execute(q)).all()]
    finally:
        await engine.dispose()


def judge(truth: Iterable[CallTruth], rows: Iterable[Call], duplicates: int = 0) -> Judgement:
    want = {t.linkedid: t for t in truth}
    got = {r.linkedid: r for r in rows}
    lost = sorted(lid for lid in want if lid not in got or got[lid].outcome is None)
    extra = sorted(lid for lid in got if lid not in want)
    wrong: list[tuple[Any, ...]] = []
    for lid, t in want.items():
        r = got.get(lid)
        if r is None or r.outcome is None:
            continue
        want_agent = default_agent_id(t.agent) if t.agent else None
        first_queue = t.queues[0] if t.queues else None
        if (r.outcome, r.queue, r.agent) != (t.outcome, first_queue, want_agent):
            wrong.append((lid, (r.outcome, r.queue, r.agent), (t.outcome, first_queue, want_agent)))
        elif "".join(t.keys) != r.keys:
            wrong.append((lid, r.keys, "".join(t.keys)))
    gap = sorted(lid for lid, r in got.items() if r.data_gap)
    return Judgement(
        calls=len(want),
        rows=len(got),
        lost=lost,
        extra=extra,
        wrong=wrong,
        gap=gap,
        wrong_outside_gap=[w for w in wrong if not got[w[0]].data_gap],
        duplicated_events=duplicates,
    )


async def wait_recorded(url: str, truth: Iterable[CallTruth], within: float = 60.0) -> list[Call]:
    """Until every simulated call has a row with its outcome (or ``within`` passes)."""
    want = {t.linkedid for t in truth}
    end = time.monotonic() + within
    while True:
        rows = await call_rows(url)
        done = {r.linkedid for r in rows if r.outcome is not None}
        if want <= done or time.monotonic() > end:
            return rows
        await asyncio.sleep(0.2)


def outcomes(truth: Iterable[CallTruth]) -> Counter[str]:
    return Counter(t.outcome or "none" for t in truth)


# ---- who wrote what: an audit trigger for the fencing test ----------------------------

AUDIT_TABLES = ("calls", "call_events", "queue_visits", "agent_state_changes")


async def install_audit(url: str) -> None:
    """Every statement that writes a log table leaves (its connection's application
    name, the database's time) in ``ha_write_audit``; the writer's connection is named
    after its lease holder (host:pid:random)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS ha_write_audit (app text, at timestamptz, tbl text)"
                )
            )
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION ha_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN INSERT INTO ha_write_audit VALUES "
                    "(current_setting('application_name'), clock_timestamp(), TG_TABLE_NAME); "
                    "RETURN NULL; END $$"
                )
            )
            for table in AUDIT_TABLES:
                await conn.execute(text(f"DROP TRIGGER IF EXISTS ha_audit ON {table}"))
                await conn.execute(
                    text(
                        f"CREATE TRIGGER ha_audit AFTER INSERT OR UPDATE ON {table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION ha_audit()"
                    )
                )
    finally:
        await engine.dispose()


async def remove_audit(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            from sqlalchemy import text

            for table in AUDIT_TABLES:
                await conn.execute(text(f"DROP TRIGGER IF EXISTS ha_audit ON {table}"))
            await conn.execute(text("DROP FUNCTION IF EXISTS ha_audit() CASCADE"))
            await conn.execute(text("DROP TABLE IF EXISTS ha_write_audit"))
    finally:
        await engine.dispose()


async def audit_rows(url: str) -> list[tuple[str, Any, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            from sqlalchemy import text

            rows = await conn.execute(text("SELECT app, at, tbl FROM ha_write_audit ORDER BY at"))
            return [(str(a), at, str(t)) for a, at, t in rows.all()]
    finally:
        await engine.dispose()


async def lease_row(url: str, pbx: str = "pbx1") -> dict[str, Any] | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            from sqlalchemy import text

            row = (
                await conn.execute(
                    text(
                        "SELECT holder, epoch, acquired_at, handovers, cause "
                        "FROM pbx_leases WHERE pbx = :p"
                    ),
                    {"p": pbx},
                )
            ).first()
            return None if row is None else dict(row._mapping)
    finally:
        await engine.dispose()
