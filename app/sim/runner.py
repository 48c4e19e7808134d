"""The simulated PBX in-process: the public API for ``acd simulate``, ``acd demo``, the
end-to-end tests and the benchmarks.

    async with SimulatedPbx(PbxConfig(queues=load_queues("ivr_flows/queues.yaml")),
                            mode="fast", ami_port=0) as sim:
        # the service connects to 127.0.0.1:sim.ami_port (user acd / acdsecret)
        result = await sim.run_day(plan_day(sim.pbx.config.queues, TrafficConfig(seed=7)))
        result.truth.write_jsonl("truth.jsonl")

Or one scripted call: ``await sim.call(ScriptedCaller(...))`` returns its ``CallTruth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sim.ami_server import AmiServer
from app.sim.behaviour import CallerBehaviour
from app.sim.clock import Kernel, Mode, Signal
from app.sim.conf import QueuesConfig, from_catalogue, merge_catalogue, parse_queues_conf
from app.sim.dialplan import ContractDialplan, LabDialplan, run_inbound
from app.sim.manager import ManagerUser
from app.sim.pbx import Pbx, PbxConfig
from app.sim.queue import QueueError
from app.sim.traffic import AgentPlan, DayPlan, KeyPlanner, SimAgent, SimCaller
from app.sim.truth import CallTruth, TruthLog

DEFAULT_USERS = {"acd": ManagerUser("acd", "acdsecret")}


def load_queues(source: str | Path | QueuesConfig | Any) -> QueuesConfig:
    """queues.conf (Asterisk format), a catalogue YAML, a ``QueueCatalogue`` or as is."""
    from app.acd.queues import QueueCatalogue

    if isinstance(source, QueuesConfig):
        return source
    if isinstance(source, QueueCatalogue):
        return from_catalogue(source)
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return from_catalogue(QueueCatalogue.model_validate(data))
    return parse_queues_conf(path.read_text(encoding="utf-8"))


def default_queues(root: Path = Path()) -> QueuesConfig:
    """``asterisk_config/queues.conf`` (with the catalogue's volumes) if it exists, else
    the catalogue ``ivr_flows/queues.yaml``."""
    conf = root / "asterisk_config" / "queues.conf"
    catalogue = root / "ivr_flows" / "queues.yaml"
    if conf.exists():
        queues = load_queues(conf)
        if catalogue.exists():
            import yaml

            from app.acd.queues import QueueCatalogue

            data = yaml.safe_load(catalogue.read_text(encoding="utf-8"))
            queues = merge_catalogue(queues, QueueCatalogue.model_validate(data))
        return queues
    return load_queues(catalogue)


async def wait_signal(signal: Signal[Any]) -> Any:
    """Await a kernel ``Signal`` from outside the kernel (no active accounting)."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def done(value: Any) -> None:
        if not fut.done():
            fut.set_result(value)

    signal.on_set(done)
    return await fut


@dataclass
class DayResult:
    truth: TruthLog
    calls: int
    events: int
    virtual_seconds: float
    real_seconds: float
    timers: int

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.real_seconds if self.real_seconds else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.real_seconds if self.real_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        outcomes = self.truth.outcomes()
        answered = [r for r in self.truth if r.outcome == "answered" and r.wait is not None]
        offered = sum(outcomes[k] for k in ("answered", "abandoned"))
        return {
            "calls": self.calls,
            "outcomes": outcomes,
            "availability": round(outcomes["answered"] / offered, 4) if offered else None,
            "average_wait": round(sum(r.wait or 0 for r in answered) / len(answered), 1)
            if answered
            else None,
            "events": self.events,
            "virtual_seconds": round(self.virtual_seconds, 1),
            "real_seconds": round(self.real_seconds, 3),
            "calls_per_second": round(self.calls_per_second, 1),
            "events_per_second": round(self.events_per_second, 1),
        }


class SimulatedPbx:
    """One simulated Asterisk: the PBX model, its clock and (optionally) its AMI server."""

    def __init__(
        self,
        config: PbxConfig,
        *,
        mode: Mode = "fast",
        speed: float = 1.0,
        ami_host: str = "127.0.0.1",
        ami_port: int | None = 0,
        users: dict[str, ManagerUser] | None = None,
        ami_options: dict[str, Any] | None = None,
        ami_backpressure: bool = False,
        fast_until: float | None = None,
    ) -> None:
        self.kernel = Kernel(config.start, mode, speed, fast_until=fast_until)
        self.pbx = Pbx(self.kernel, config)
        self.pbx.dialplan = (
            LabDialplan(self.pbx) if config.dialplan == "lab" else ContractDialplan(self.pbx)
        )
        self.ami: AmiServer | None = None
        if ami_port is not None:
            self.ami = AmiServer(
                self.pbx, users or DEFAULT_USERS, ami_host, ami_port, **(ami_options or {})
            )
            if ami_backpressure:
                # Benchmarks (and a demo's fast start): as fast as the AMI clients (the
                # service) read, not faster. Real time never waits for it.
                self.kernel.gate = self.ami.backpressure
        self._calls: list[asyncio.Task[CallTruth]] = []

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.kernel.start()
        if self.ami is not None:
            await self.ami.start()

    async def stop(self) -> None:
        await self.kernel.stop()
        if self.ami is not None:
            await self.ami.stop()

    async def __aenter__(self) -> SimulatedPbx:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def restart(self, down: float = 10.0, *, clean: bool = False) -> int:
        """The PBX restarts now (``core restart now``, or a crash and its supervisor): every
        channel is hung up, the manager sessions end, for ``down`` virtual seconds nobody
        can log in, then the PBX is up again on the same port (``FullyBooted`` with a small
        ``Uptime`` at the next login). ``clean``: the sessions see the hang-ups and a
        ``Shutdown`` event before they are closed; else (a crash) they are closed first and
        see nothing of it. Queue members and their pauses stay (``persistentmembers``, the
        default). Calls arriving while it is down are the caller's business (the test
        leaves them out of its plan). Returns how many channels were hung up."""
        from app.sim.channels import P_SYSTEM

        pbx = self.pbx
        # Everything up to the first await happens at this virtual moment: the PBX is up
        # again ``down`` seconds from now, and (a crash) the sessions are cut before the
        # hang-ups. Awaiting the server's close first let a test's clock run on meanwhile,
        # so the boot timer fell beyond its horizon and the restart never ended.
        up = self.kernel.signal()

        def boot() -> None:
            pbx.booted = self.kernel.now()
            pbx.config.uptime = 0
            up.set(True)

        self.kernel.call_later(down, boot)
        if self.ami is not None and not clean:
            self.ami.cut()
        callers = [c for c in pbx.channels.values() if c.uniqueid == c.linkedid]
        hung = 0
        for chan in callers:
            if not (chan.dead or chan.hangup_requested):
                pbx.ami_hangup(chan, 16)
                hung += 1
        await asyncio.sleep(0)  # the calls' coroutines take their hang-ups
        for chan in list(pbx.channels.values()):  # agents' legs, call-backs ringing
            if not (chan.dead or chan.hangup_requested):
                pbx.ami_hangup(chan, 16)
                hung += 1
        if self.ami is not None and clean:
            pbx.emit("Shutdown", P_SYSTEM, [("Shutdown", "Cleanly"), ("Restart", "True")])
            await asyncio.sleep(0.05)  # the sessions' sockets take the last events
        if self.ami is not None:
            await self.ami.stop()
        await wait_signal(up)
        if self.ami is not None:
            await self.ami.start()
        return hung

    @property
    def ami_port(self) -> int:
        assert self.ami is not None
        return self.ami.port

    @property
    def truth(self) -> TruthLog:
        return self.pbx.truth

    def now(self) -> float:
        return self.kernel.now()

    # --------------------------------------------------------------- calls
    def start_call(
        self, caller: CallerBehaviour, number: str | None = None
    ) -> asyncio.Task[CallTruth]:
        """A call arrives now; the task ends with the call and returns its truth."""
        dialled = number or self.pbx.config.numbers[0]
        task = self.kernel.spawn(
            run_inbound(self.pbx, caller, dialled, self.pbx.dialplan), name="call"
        )
        self._calls.append(task)
        return task

    def call_at(self, when: float, caller: CallerBehaviour, number: str | None = None) -> None:
        def arrive() -> None:
            self.start_call(caller, number)

        self.kernel.call_at(when, arrive)

    async def call(self, caller: CallerBehaviour, number: str | None = None) -> CallTruth:
        return await self.start_call(caller, number)

    async def calls_done(self) -> None:
        while self._calls:
            calls, self._calls = self._calls, []
            await asyncio.gather(*calls)
        self.kernel.raise_task_error()

    async def advance_to(self, when: float) -> None:
        await self.kernel.advance_to(when)

    async def settle(self) -> None:
        await self.kernel.settle()

    # ---------------------------------------------------------------- a day
    async def run_day(
        self,
        plan: DayPlan,
        keys: KeyPlanner,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        shifts: bool = True,
    ) -> DayResult:
        """Run ``plan``: agents log in, take calls, pause, log out; callers call.

        Returns when the last call has ended and every agent has logged out (``shifts``
        False: once the last call has ended, the agents still at work).
        """
        pbx, kernel = self.pbx, self.kernel
        cfg = plan.config
        real0 = time.perf_counter()
        virt0 = kernel.now()
        events0 = pbx.event_count
        timers0 = kernel.timers_fired
        started = 0
        shifts_over = kernel.signal()
        remaining = {"agents": len(plan.agents)}

        def start(arrival: Any) -> None:
            nonlocal started
            caller = SimCaller(
                arrival,
                cfg,
                keys.keys_for(arrival.target),
                kernel.now,
                pbx.config.prompt_seconds,
            )
            dialled = arrival.dialled
            self.start_call(caller, dialled if dialled in pbx.config.numbers else None)
            started += 1
            if on_progress is not None:
                on_progress(started, len(plan.arrivals))

        for arrival in plan.arrivals:
            kernel.call_at(arrival.at, start, arrival)
        for agent in plan.agents:
            self._schedule_agent(agent, cfg, shifts_over, remaining)
        if not plan.agents:
            shifts_over.set(True)
        last = kernel.signal()
        kernel.call_at(plan.end, last.set, True)
        await wait_signal(last)
        await self.calls_done()
        if shifts:
            await wait_signal(shifts_over)
        self.kernel.raise_task_error()
        return DayResult(
            truth=pbx.truth,
            calls=started,
            events=pbx.event_count - events0,
            virtual_seconds=kernel.now() - virt0,
            real_seconds=time.perf_counter() - real0,
            timers=kernel.timers_fired - timers0,
        )

    def _schedule_agent(
        self, agent: AgentPlan, cfg: Any, shifts_over: Signal[bool], remaining: dict[str, int]
    ) -> None:
        pbx, kernel = self.pbx, self.kernel
        key = agent.interface.lower()
        pbx.agents[key] = SimAgent(agent.seed, cfg)

        def login() -> None:
            for queue, penalty in agent.skills:
                with contextlib.suppress(QueueError):
                    pbx.add_member(
                        queue,
                        agent.interface,
                        penalty=penalty,
                        membername=agent.name,
                        state_interface=agent.interface,
                    )

        def set_paused(paused: bool, reason: str) -> None:
            with contextlib.suppress(QueueError):
                pbx.pause_member(agent.interface, None, paused, reason if paused else "")

        def logout() -> None:
            busy = any(c for c in pbx._dev_chans.get(key, ()) if not c.dead)
            if busy:
                kernel.call_later(30.0, logout)
                return
            for queue, _ in agent.skills:
                with contextlib.suppress(QueueError):
                    pbx.remove_member(queue, agent.interface)
            remaining["agents"] -= 1
            if remaining["agents"] == 0:
                shifts_over.set(True)

        kernel.call_at(agent.login, login)
        for brk in agent.breaks:
            if agent.login < brk.start < agent.logout:
                kernel.call_at(brk.start, set_paused, True, brk.reason)
                kernel.call_at(
                    min(brk.start + brk.seconds, agent.logout - 1), set_paused, False, ""
                )
        kernel.call_at(agent.logout, logout)


async def run_calls(
    sim: SimulatedPbx, callers: Sequence[tuple[float, CallerBehaviour]]
) -> list[CallTruth]:
    """Place scripted calls at virtual times (relative to now); the truths, in order."""
    t0 = sim.now()
    tasks: list[asyncio.Future[CallTruth]] = []
    for offset, caller in callers:
        fut: asyncio.Future[CallTruth] = asyncio.get_running_loop().create_future()

        def go(c: CallerBehaviour = caller, f: asyncio.Future[CallTruth] = fut) -> None:
            task = sim.start_call(c)
            task.add_done_callback(
                lambda t: (
                    f.set_exception(t.exception())  # type: ignore[arg-type]
                    if t.exception()
                    else f.set_result(t.result())
                )
            )

        sim.kernel.call_at(t0 + offset, go)
        tasks.append(fut)
    return list(await asyncio.gather(*tasks))


__all__ = [
    "DEFAULT_USERS",
    "DayResult",
    "SimulatedPbx",
    "default_queues",
    "load_queues",
    "run_calls",
    "wait_signal",
]
