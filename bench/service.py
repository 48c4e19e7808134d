"""The service as a process of its own, for the long and the fault benchmarks
(bench/soak.py, bench/faults.py): a scratch database, ``python -m app serve`` with the
simulator's ports, its memory, a hard kill and a restart, and the call rows compared with
the simulator's truth.

Talks only to 127.0.0.1; stops the processes it started (by their handle) and drops the
databases it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.store import migrate
from app.store.db import create_engine, session_factory
from app.store.models import Call

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "ivr_flows"
SERVER_DEFAULT = os.environ.get(
    "ACD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_DEFAULT = os.environ.get("ACD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


async def _admin(server: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(server.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(server: str, prefix: str = "acd_bench") -> Any:
    """A migrated database of its own on ``server`` (dropped at the end); its async URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    db = make_url(server).set(database=name).render_as_string(hide_password=False)
    db = db.replace("postgresql://", "postgresql+asyncpg://")
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        with contextlib.suppress(Exception):
            await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int, field_name: str) -> float:
    """VmRSS / VmHWM of a process, in MB (nan once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class ServiceProcess:
    """``python -m app serve`` against ``db`` and a simulated PBX at ``ami_port``."""

    db: str
    ami_port: int
    agi_port: int
    redis_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    log_level: str = "WARNING"
    http_port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="acd-bench-")))
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "service.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
        env.update(
            {
                "ACD_DATABASE_URL": self.db,
                "ACD_AMI_HOST": "127.0.0.1",
                "ACD_AMI_PORT": str(self.ami_port),
                "ACD_AMI_USERNAME": "acd",
                "ACD_AMI_SECRET": "acdsecret",
                "ACD_AGI_PORT": str(self.agi_port),
                "ACD_HTTP_PORT": str(self.http_port),
                "ACD_IVR_FLOWS": str(FLOWS),
                "ACD_CALLER_HASH_KEY": "bench-service-key-0123456789",
                "ACD_SPILL_DIR": str(self.workdir),
                "ACD_LOG_LEVEL": self.log_level,
                "ACD_REPORT_ARCHIVE": "false",
            }
        )
        if self.redis_url:
            env["ACD_REDIS_URL"] = self.redis_url
        env.update(self.extra)
        return env

    async def start(self, *, wait_ready: bool = True) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                "serve",
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        if wait_ready:
            await self.ready()

    async def ready(self, within: float = 90) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(
                        f"the service exited ({self.proc.returncode}): {self.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.base + "/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the service did not become ready: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def rss_mb(self) -> float:
        return proc_status(self.proc.pid, "VmRSS") if self.proc else float("nan")

    def peak_mb(self) -> float:
        return proc_status(self.proc.pid, "VmHWM") if self.proc else float("nan")

    async def kill9(self) -> None:
        """``kill -9`` of the process this started (its own PID, nothing else)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def call_rows(db: str) -> list[Call]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as s:
            return list((await s.execute(select(Call))).scalars())
    finally:
        await engine.dispose()


async def count_open(db: str) -> tuple[int, int]:
    """(call rows, of them without an outcome)."""
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as s:
            total = (await s.execute(select(func.count()).select_from(Call))).scalar_one()
            open_ = (
                await s.execute(
                    select(func.count()).select_from(Call).where(Call.outcome.is_(None))
                )
            ).scalar_one()
        return int(total), int(open_)
    finally:
        await engine.dispose()


async def settled(db: str, expected: int, within: float) -> bool:
    """Until ``expected`` calls have a row with an outcome (or the time is up)."""
    engine = create_engine(db)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with session_factory(engine)() as s:
                n = (
                    await s.execute(
                        select(func.count()).select_from(Call).where(Call.outcome.is_not(None))
                    )
                ).scalar_one()
            if n >= expected:
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await engine.dispose()
