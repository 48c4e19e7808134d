"""A simulated day through the real service on PostgreSQL, with a fault on the way, and
every call row compared with the simulator's truth (app/sim/compare.py).

    run = await run_fault_day(database_url, TrafficConfig(...), Fault("ami_cut", at, 30),
                              workdir=tmp_path)
    print(run.comparison.summary())

The service runs as its own process (``python -m app serve``), as in production, so it
can be killed with SIGKILL; its AMI link goes through a ``LinkProxy`` (app/sim/proxy.py),
so the link can be cut. The simulated PBX runs here in fast mode with back-pressure
(virtual time waits for the service to read its events), and the fault is placed in
virtual time:

``ami_cut``  at ``at`` the proxy drops the AMI connection and refuses reconnects for
             ``seconds`` (virtual); FastAGI keeps working, as when only the manager link
             is lost;
``kill9``    at ``at`` (once the event log is within ``KILL_LAG`` of the PBX, as at real
             speed) the service gets SIGKILL and is started again at once (same
             database, same spill folder); its AMI link cannot reach the PBX for
             ``seconds`` (virtual), the time the restart took; calls arriving meanwhile
             find no FastAGI and go to the fallback queue (the dialplan contract).

After ``seconds``, virtual time stands still until the service has logged in again, so
the gap has the length asked for whatever the service's reconnect backoff. Calls that
began and ended inside a window where the service had neither AMI nor FastAGI (a kill)
cannot be known by it: they are left out of the comparison and counted as ``unknowable``.

Used by the fault tests (tests/e2e/test_faults.py) and the fault benchmark. Talks only to
127.0.0.1; stops the services it started (by PID).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx

from app.sim.compare import Comparison, compare, read_call_rows
from app.sim.harness import simulator, wait_logged_in
from app.sim.proxy import LinkProxy
from app.sim.runner import DayResult, SimulatedPbx
from app.sim.traffic import TrafficConfig

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "ivr_flows"
HASH_KEY = "fault-test-caller-hash-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, *, keep: bool = False) -> AsyncIterator[str]:
    """A new PostgreSQL database on ``server_url``'s server, migrated; dropped after
    (unless ``keep``: to look at it after a run)."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    from app.settings import normalise_database_url
    from app.store import migrate

    server_url = normalise_database_url(server_url)
    name = f"acd_fault_{uuid.uuid4().hex[:8]}"
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        if not keep:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServiceProcess:
    """``python -m app serve`` with the given environment; restartable, killable."""

    def __init__(self, env: dict[str, str], http_port: int, log_path: Path) -> None:
        self.env = env
        self.http_port = http_port
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.killed = 0

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                "serve",
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    def kill9(self) -> None:
        """SIGKILL, as a crash: no shutdown, no flush, nothing written after."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.killed += 1

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"the service exited ({self.log_tail()})")
                with contextlib.suppress(httpx.TransportError):
                    answer = await client.get(f"http://127.0.0.1:{self.http_port}/ready")
                    if answer.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the service did not become ready ({self.log_tail()})")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            if proc is not None:
                await proc.wait()
            return
        proc.send_signal(signal.SIGINT)  # the service we started, by its handle
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


FaultKind = Literal["ami_cut", "kill9"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: float  # virtual epoch seconds
    seconds: float  # virtual seconds the service cannot see the PBX


@dataclass
class FaultRun:
    comparison: Comparison
    day: DayResult
    fault: Fault | None
    gap: tuple[float, float] | None = None  # virtual (from, to): login again at ``to``
    unknowable: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)  # after the run (see below)
    log_path: Path | None = None

    def summary(self) -> str:
        head = (
            "no fault"
            if self.fault is None
            else (
                f"{self.fault.kind} at +{self.fault.at - self.day_start:.0f} s for "
                f"{self.fault.seconds:g} s (virtual)"
            )
        )
        if self.gap is not None:
            head += f"; service saw the PBX again {self.gap[1] - self.gap[0]:.0f} s after"
        lines = [
            f"{head}; {self.day.calls} calls in {self.wall_seconds:.1f} s wall"
            + (f", {len(self.unknowable)} unknowable" if self.unknowable else ""),
            self.comparison.summary(),
        ]
        return "\n".join(lines)

    day_start: float = 0.0


def service_env(
    database_url: str,
    *,
    ami_port: int,
    agi_port: int,
    http_port: int,
    spill_dir: Path,
    redis_url: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    env.update(
        {
            "ACD_DATABASE_URL": database_url,
            "ACD_AMI_HOST": "127.0.0.1",
            "ACD_AMI_PORT": str(ami_port),
            "ACD_AMI_USERNAME": "acd",
            "ACD_AMI_SECRET": "acdsecret",
            "ACD_AGI_HOST": "127.0.0.1",
            "ACD_AGI_PORT": str(agi_port),
            "ACD_HTTP_HOST": "127.0.0.1",
            "ACD_HTTP_PORT": str(http_port),
            "ACD_IVR_FLOWS": str(FLOWS),
            "ACD_CALLER_HASH_KEY": HASH_KEY,
            "ACD_SPILL_DIR": str(spill_dir),
            "ACD_LOG_LEVEL": "INFO",
        }
    )
    if redis_url:
        env["ACD_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


async def _relogin(sim: SimulatedPbx, proxy: LinkProxy, since: int, within: float) -> None:
    """Until the service logged in through a connection made after ``since``."""
    deadline = time.monotonic() + within
    while proxy.connections <= since:
        if time.monotonic() > deadline:
            raise TimeoutError("the service did not reconnect to the simulated PBX")
        await asyncio.sleep(0.02)
    await wait_logged_in(sim, within=max(1.0, deadline - time.monotonic()))


# A kill comes when the event log is within this many (virtual) seconds of the PBX, as it
# is at real speed; in fast mode the writer trails by far more virtual time than that,
# and a kill then would lose calls a real crash does not.
KILL_LAG = 1.0


async def logged_up_to(database_url: str, at: float, *, within: float) -> None:
    """Until the event log holds an event at ``at`` (epoch seconds) or later."""
    from sqlalchemy import func, select

    from app.store.db import create_engine, session_factory
    from app.store.models import CallEvent

    engine = create_engine(database_url)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            async with session_factory(engine)() as s:
                last = (await s.execute(select(func.max(CallEvent.at)))).scalar_one_or_none()
            if last is not None and last.timestamp() >= at:
                return
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def settle(
    database_url: str, expected: int, *, within: float = 60.0, quiet: float = 3.0
) -> None:
    """Until every call has a closed row, or the rows stop changing for ``quiet`` s."""
    deadline = time.monotonic() + within
    last: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        rows = await read_call_rows(database_url)
        closed = sum(1 for r in rows if r.outcome is not None)
        now = (len(rows), closed)
        if closed >= expected and len(rows) >= expected:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.25)


TODAY_COUNTS = ("offered", "answered", "abandoned", "timeout", "empty", "transferred")


async def today_live_and_stored(
    service: ServiceProcess, database_url: str, day: dt.date, tz: str = "Europe/Copenhagen"
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Today's counts per queue (and the centre) as the running service shows them (its
    ``acd_today_*`` gauges) and as its database's own visits give them (what a restart
    rebuilds "today" from: app/live/history.py). Keys: (figure, queue)."""
    from prometheus_client.parser import text_string_to_metric_families

    from app.acd.kpi import CENTRE, DayBook, KpiConfig
    from app.live.history import calls_of_day, visits_of_day
    from app.store.db import create_engine, session_factory

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{service.http_port}/metrics")).text
    live: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        name = family.name.removeprefix("acd_today_")
        if family.name.startswith("acd_today_") and name in TODAY_COUNTS:
            for sample in family.samples:
                live[(name, sample.labels["queue"])] = sample.value
    zone = ZoneInfo(tz)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        visits = await visits_of_day(sessions, "pbx1", day, zone)
        calls = await calls_of_day(sessions, "pbx1", day, zone)
    finally:
        await engine.dispose()
    book = DayBook(zone, KpiConfig(), keep_days=10_000)
    book.feed(visits)
    book.feed(calls)
    stored: dict[tuple[str, str], float] = {}
    for queue in {*book.queues(day), CENTRE}:
        figures = book.figures(day, queue)
        for name in TODAY_COUNTS:
            stored[(name, queue)] = float(getattr(figures, name))
    return live, stored


async def run_fault_day(
    database_url: str,
    traffic: TrafficConfig,
    fault: Fault | None,
    *,
    workdir: Path,
    redis_url: str | None = None,
    service_extra: dict[str, str] | None = None,
    relogin_within: float = 60.0,
    after: Callable[[ServiceProcess, SimulatedPbx], Awaitable[dict[str, Any]]] | None = None,
) -> FaultRun:
    """The day of ``traffic`` through a service process on ``database_url`` (migrated,
    empty), ``fault`` on the way; every call row compared with the truth. ``after`` runs
    with the service still up once the rows have settled (its answer: ``run.figures``)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    agi_port, http_port = free_port(), free_port()
    started = time.perf_counter()
    async with simulator(FLOWS, agi_port, traffic) as simulation:
        sim = simulation.sim
        assert sim.ami is not None
        async with LinkProxy(sim.ami_port) as proxy:
            env = service_env(
                database_url,
                ami_port=proxy.port,
                agi_port=agi_port,
                http_port=http_port,
                spill_dir=workdir / "spill",
                redis_url=redis_url,
                extra=service_extra,
            )
            service = ServiceProcess(env, http_port, workdir / "service.log")
            await service.start()
            try:
                await wait_logged_in(sim, within=60)
                await service.ready()
                gap: list[float] = []
                hold = asyncio.Event()
                hold.set()  # set: virtual time may move
                errors: list[BaseException] = []
                restarted: list[asyncio.Task[None]] = []
                backpressure = sim.kernel.gate

                async def gate() -> None:
                    if backpressure is not None:
                        await backpressure()
                    await hold.wait()

                sim.kernel.gate = gate

                def begin() -> None:
                    assert fault is not None
                    if fault.kind == "ami_cut":
                        gap.append(sim.now())
                        proxy.cut()
                        return
                    hold.clear()

                    async def crash() -> None:
                        try:
                            await logged_up_to(database_url, sim.now() - KILL_LAG, within=30)
                            gap.append(sim.now())
                            proxy.cut()
                            service.kill9()
                            await service.start()
                        except BaseException as exc:
                            errors.append(exc)
                        finally:
                            hold.set()

                    restarted.append(asyncio.get_running_loop().create_task(crash()))

                def end() -> None:
                    since = proxy.connections
                    proxy.restore()
                    hold.clear()

                    async def back() -> None:
                        try:
                            await _relogin(sim, proxy, since, relogin_within)
                            gap.append(sim.now())
                        except BaseException as exc:
                            errors.append(exc)
                        finally:
                            hold.set()

                    asyncio.get_running_loop().create_task(back())

                if fault is not None:
                    sim.kernel.call_at(fault.at, begin)
                    sim.kernel.call_at(fault.at + fault.seconds, end)
                day = await sim.run_day(simulation.plan, simulation.keys)
                if errors:
                    raise errors[0]
                for task in restarted:
                    await task
                truth = {t.linkedid: t for t in day.truth}
                unknowable: list[str] = []
                if fault is not None and fault.kind == "kill9":
                    lo, hi = fault.at, fault.at + fault.seconds
                    unknowable = [
                        lid
                        for lid, t in truth.items()
                        if t.arrived >= lo and t.ended is not None and t.ended <= hi
                    ]
                await settle(database_url, len(truth) - len(unknowable))
                figures = await after(service, sim) if after is not None else {}
            finally:
                await service.stop()
    rows = await read_call_rows(database_url)
    known = [t for t in day.truth if t.linkedid not in set(unknowable)]
    comparison = compare(known, [r for r in rows if r.linkedid not in set(unknowable)])
    return FaultRun(
        comparison=comparison,
        day=day,
        fault=fault,
        gap=(gap[0], gap[1]) if len(gap) == 2 else None,
        unknowable=unknowable,
        wall_seconds=time.perf_counter() - started,
        figures=figures,
        log_path=service.log_path,
        day_start=simulation.plan.start,
    )


__all__ = [
    "Fault",
    "FaultRun",
    "ServiceProcess",
    "free_port",
    "run_fault_day",
    "scratch_database",
    "service_env",
    "settle",
]
