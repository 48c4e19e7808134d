"""A simulated day through the service process with outages around it: PostgreSQL or
Redis stopped (servers of the run's own), hostile AMI values from the simulated PBX; every
call row compared with the simulator's truth (app/sim/compare.py).

    own = OwnRedis()
    run = await run_day(db_url, TrafficConfig(...), workdir=tmp, redis_url=own.url,
                        outages=[Outage("redis", at, 5.0, own.stop, own.start)])
    print(run.summary())

The service process, its environment and the settling are the fault tools'
(tests/fault_support.py, which also cuts the AMI link and kills the service); this adds
what lives outside the service and the PBX link: an ``Outage`` begins at a moment of
virtual time and ends after ``seconds`` of *wall* time (what a database outage lasts for
the service's retries), while the simulated day goes on; and ``hostile(sim)`` makes the
simulated PBX send values no column can hold as they are.

Talks only to 127.0.0.1; stops what it started (by PID or data folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.acd.records import fit_id
from app.sim.channels import Event
from app.sim.compare import Comparison, compare, read_call_rows
from app.sim.harness import simulator, wait_logged_in
from app.sim.runner import DayResult, SimulatedPbx
from app.sim.traffic import TrafficConfig
from tests.fault_support import FLOWS, ServiceProcess, free_port, service_env, settle


class OwnRedis:
    """A throwaway Redis server on a free port (no persistence) that a run may stop and
    start again on the same port."""

    def __init__(self) -> None:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("needs redis-server (Debian: apt-get install redis-server)")
        self.binary = found
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="acd-own-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # the server this started, by its handle
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class Outage:
    """``begin`` at virtual ``at``; ``end`` after ``seconds`` of wall time."""

    name: str
    at: float
    seconds: float
    begin: Callable[[], None]
    end: Callable[[], None]


# --------------------------------------------------------------------------------------
# Hostile values from the simulated PBX
# --------------------------------------------------------------------------------------

LONG_ID_EVERY = 10  # every 10th channel id is 100 characters long (a long systemname)
CAUSE_EVERY = 5  # every 5th Hangup says Cause 99999 (a smallint cannot hold it)


@dataclass
class Hostility:
    long_ids: int = 0
    causes: int = 0
    names: int = 0
    positions: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "long_ids": self.long_ids,
            "causes": self.causes,
            "names": self.names,
            "positions": self.positions,
        }


def hostile(sim: SimulatedPbx) -> Hostility:
    """From now on the simulated PBX sends values no column holds as they are: every
    ``LONG_ID_EVERY``-th channel gets a 100-character Uniqueid (so a call's Linkedid is
    one, on AMI and FastAGI alike), every ``CAUSE_EVERY``-th Hangup says ``Cause: 99999``
    with a 300-character ``Cause-txt``, every caller's name is 200 characters of ``Æ``,
    and queue positions are 23 digits. What a caller does is unchanged, so the truth
    still says what each call was."""
    pbx = sim.pbx
    seen = Hostility()
    plain_next_id = pbx.next_id
    hangups = 0

    def next_id() -> int:
        n = plain_next_id()
        if n % LONG_ID_EVERY == LONG_ID_EVERY - 1:
            seen.long_ids += 1
            return n + 10**88  # "<epoch>.<89 digits>": 100 characters
        return n

    def mangle(ev: Event) -> None:
        nonlocal hangups
        fields = ev.fields
        for i, (name, _) in enumerate(fields):
            if name == "Cause" and ev.name == "Hangup":
                hangups += 1
                if hangups % CAUSE_EVERY == 0:
                    fields[i] = (name, "99999")
                    seen.causes += 1
            elif name == "Cause-txt" and ev.name == "Hangup" and hangups % CAUSE_EVERY == 0:
                fields[i] = (name, "x" * 300)
            elif name == "CallerIDName" and ev.name == "Newchannel":
                fields[i] = (name, "Æ" * 200)
                seen.names += 1
            elif name == "Position" and ev.name == "QueueCallerJoin":
                fields[i] = (name, "99999999999999999999999")
                seen.positions += 1

    pbx.next_id = next_id  # type: ignore[method-assign]
    pbx.listeners.insert(0, mangle)  # before the AMI server encodes the event
    return seen


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


@dataclass
class OutageRun:
    comparison: Comparison
    day: DayResult
    outages: list[tuple[str, float, float]] = field(default_factory=list)  # name, from, to
    virtual: list[tuple[float, float]] = field(default_factory=list)  # each outage's span
    wall_seconds: float = 0.0
    peak_mb: float = float("nan")
    figures: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    def during(self, n: int = 0) -> int:
        """Calls that arrived while outage ``n`` lasted."""
        lo, hi = self.virtual[n]
        return sum(1 for t in self.day.truth if lo <= t.arrived <= hi)

    def summary(self) -> str:
        spans = "; ".join(
            f"{name} for {to - since:.0f} s wall ({self.during(n)} calls arrived meanwhile)"
            for n, (name, since, to) in enumerate(self.outages)
        )
        return (
            f"{spans or 'no outage'}; {self.day.calls} calls in {self.wall_seconds:.1f} s wall, "
            f"service peak {self.peak_mb:.0f} MB\n{self.comparison.summary()}"
        )


def _peak_mb(pid: int | None) -> float:
    with contextlib.suppress(OSError, TypeError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def run_day(
    database_url: str,
    traffic: TrafficConfig,
    *,
    workdir: Path,
    outages: Sequence[Outage] = (),
    prepare: Callable[[SimulatedPbx], Any] | None = None,
    redis_url: str | None = None,
    service_extra: dict[str, str] | None = None,
    settle_within: float = 120.0,
    after: Callable[[ServiceProcess], Awaitable[dict[str, Any]]] | None = None,
) -> OutageRun:
    """The day of ``traffic`` through a service process on ``database_url`` (migrated,
    empty) with ``outages`` on the way; every call row compared with the truth
    (linkedids fitted as the service fits them)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    agi_port, http_port = free_port(), free_port()
    started = time.perf_counter()
    spans: list[tuple[str, float, float]] = []
    virtual: list[tuple[float, float]] = []
    figures: dict[str, Any] = {}
    async with simulator(FLOWS, agi_port, traffic) as simulation:
        sim = simulation.sim
        prepared = prepare(sim) if prepare is not None else None
        env = service_env(
            database_url,
            ami_port=sim.ami_port,
            agi_port=agi_port,
            http_port=http_port,
            spill_dir=workdir / "spill",
            redis_url=redis_url,
            extra=service_extra,
        )
        service = ServiceProcess(env, http_port, workdir / "service.log")
        await service.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await wait_logged_in(sim, within=60)
            await service.ready()

            async def play(outage: Outage) -> None:
                since, virtual_since = time.perf_counter(), sim.now()
                await asyncio.to_thread(outage.begin)
                await asyncio.sleep(outage.seconds)
                await asyncio.to_thread(outage.end)
                spans.append((outage.name, since, time.perf_counter()))
                virtual.append((virtual_since, sim.now()))

            for outage in outages:
                sim.kernel.call_at(
                    outage.at,
                    lambda o=outage: tasks.append(asyncio.get_running_loop().create_task(play(o))),
                )
            day = await sim.run_day(simulation.plan, simulation.keys)
            for task in tasks:
                await task
            await settle(database_url, len(day.truth), within=settle_within)
            if after is not None:
                figures = await after(service)
            peak = _peak_mb(service.proc.pid if service.proc else None)
        finally:
            for task in tasks:
                task.cancel()
            await service.stop()
    if prepared is not None and hasattr(prepared, "as_dict"):
        figures["hostile"] = prepared.as_dict()
    rows = await read_call_rows(database_url)
    truth = [_fitted(t) for t in day.truth]
    return OutageRun(
        comparison=compare(truth, rows),
        day=day,
        outages=spans,
        virtual=virtual,
        wall_seconds=time.perf_counter() - started,
        peak_mb=peak,
        figures=figures,
        log_path=service.log_path,
    )


def _fitted(t: Any) -> Any:
    """The truth under the linkedid the service stores (a 100-character one is fitted)."""
    fitted = fit_id(t.linkedid)
    if fitted == t.linkedid:
        return t
    import copy

    out = copy.copy(t)
    out.linkedid = fitted
    return out
