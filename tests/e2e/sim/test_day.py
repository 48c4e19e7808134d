"""An hour of Copenhagen's traffic, as fast as possible, through the contract dialplan
and a small FastAGI service over real sockets, watched by an AMI client: the ground truth
must be consistent with itself and with the AMI stream, and the day reproducible."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

from app.sim.amiproto import Message
from app.sim.pbx import PbxConfig
from app.sim.runner import DayResult, SimulatedPbx, load_queues
from app.sim.stub_ivr import StubIvr
from app.sim.traffic import TrafficConfig, catalogue_key_planner, plan_day
from app.sim.truth import OUTCOMES, read_jsonl
from tests.e2e.sim.support import RawAmi

ROOT = Path(__file__).resolve().parents[3]
QUEUES = load_queues(ROOT / "ivr_flows" / "queues.yaml")
PLANNER = catalogue_key_planner(QUEUES.names)


async def one_hour(seed: int) -> tuple[DayResult, list[Message], StubIvr]:
    ivr = StubIvr(PLANNER.mapping)
    await ivr.start()
    plan = plan_day(QUEUES, TrafficConfig(seed=seed, hours=(9, 10)))
    config = PbxConfig(
        queues=QUEUES,
        start=plan.start,
        agi_address=ivr.address,
        timestampevents=True,
        seed=seed,
        late_complete_share=0.1,
    )
    sim = SimulatedPbx(config, mode="fast")
    client = RawAmi()
    async with sim:
        await client.connect(sim.ami_port)
        await client.send(
            b"Action: Login\r\nActionID: 1\r\nUsername: acd\r\nSecret: acdsecret\r\n\r\n"
        )
        await client.response("1")
        result = await sim.run_day(plan, PLANNER)
        await client.send(b"Action: Ping\r\nActionID: end\r\n\r\n")
        await client.response("end", limit=30)
        await client.close()
    await ivr.stop()
    return result, client.messages, ivr


async def test_an_hour_of_traffic_is_consistent(tmp_path: Path) -> None:
    result, msgs, ivr = await one_hour(seed=7)
    truth = list(result.truth)
    assert 250 < len(truth) == result.calls < 450
    assert ivr.errors == 0 and ivr.sessions >= len(truth)
    # every call exactly one outcome, times sane
    for t in truth:
        assert t.outcome in OUTCOMES, t
        assert t.ended is not None and t.ended >= t.arrived
        assert t.wait is None or t.wait >= 0
        assert t.talk is None or t.talk >= 0
        if t.outcome == "answered":
            assert t.agent and t.queue and t.wait is not None and t.talk is not None
            # the stub routes by the planner's keys: a caller ends up elsewhere only
            # after a wrong key that happened to be a valid choice
            planned = list(PLANNER.keys_for(t.target_queue or ""))
            assert t.queue == t.target_queue or t.keys[: len(planned)] != planned
    outcomes = result.truth.outcomes()
    assert outcomes["answered"] > 0.8 * len(truth)
    assert outcomes["abandoned"] > 0 and outcomes["ivr_hangup"] > 0

    events = [m for m in msgs if m.has("Event") and m.has("Privilege")]
    at = {id(m): float(m.get("Timestamp")) for m in events}
    # the AMI stream tells the same story as the truth
    connects = [m for m in events if m.get("Event") == "AgentConnect"]
    answered = {t.linkedid for t in truth if t.outcome == "answered"}
    assert {m.get("Linkedid") for m in connects} == answered
    abandons = {m.get("Linkedid") for m in events if m.get("Event") == "QueueCallerAbandon"}
    assert abandons == {t.linkedid for t in truth if t.outcome == "abandoned"}
    assert {
        m.get("Uniqueid")
        for m in events
        if m.get("Event") == "Newchannel" and m.get("Channel").startswith("PJSIP/trunk")
    } >= {t.linkedid for t in truth}
    for m in connects:  # the agent leg belongs to the caller's call
        assert m.get("DestLinkedid") == m.get("Uniqueid") == m.get("Linkedid")
    # agents never on two calls; no call offered during wrap-up
    wrap = {q.name: q.wrapuptime for q in QUEUES.queues}
    busy: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    start: dict[tuple[str, str], float] = {}
    for m in events:
        key = (m.get("Interface"), m.get("Uniqueid"))
        if m.get("Event") == "AgentConnect":
            start[key] = at[id(m)]
        elif m.get("Event") == "AgentComplete" and key in start:
            busy[key[0]].append((start.pop(key), at[id(m)], m.get("Queue")))
    assert not start  # every connected call completed
    rings: dict[str, list[float]] = defaultdict(list)
    for m in events:
        if m.get("Event") == "AgentCalled":
            rings[m.get("Interface")].append(at[id(m)])
    assert sum(len(v) for v in busy.values()) == len(connects)
    for agent, calls in busy.items():
        calls.sort()
        for (_, e1, q1), (s2, _, _) in itertools.pairwise(calls):
            assert s2 >= e1, f"{agent} on two calls"
            # time_t arithmetic: a ring may come up to 1 s before end + wrap-up
            offered = [r for r in rings[agent] if e1 <= r < s2]
            assert all(r >= e1 + wrap[q1] - 1 for r in offered), (agent, e1, offered)

    path = tmp_path / "truth.jsonl"
    assert result.truth.write_jsonl(path) == len(truth)
    rows = read_jsonl(path)
    assert [r["linkedid"] for r in rows] == [t.linkedid for t in truth]
    assert all(r["outcome"] in OUTCOMES for r in rows)


async def test_the_same_seed_gives_the_same_day() -> None:
    a, _, _ = await one_hour(seed=11)
    b, _, _ = await one_hour(seed=11)

    def story(r: DayResult) -> list[tuple[object, ...]]:
        return [
            (
                t.linkedid,
                t.outcome,
                t.detail,
                tuple(t.keys),
                t.queue,
                t.agent,
                None if t.wait is None else round(t.wait, 3),
            )
            for t in r.truth
        ]

    assert story(a) == story(b)
    assert a.events == b.events


async def test_real_time_with_a_speed_factor() -> None:
    """speed 200: a 30-second call (IVR, queue, talk) takes ~0.15 s of wall clock."""
    import time

    from app.sim.behaviour import Reply, ScriptedAgent, ScriptedCaller, Talk

    ivr = StubIvr(PLANNER.mapping)
    await ivr.start()
    sim = SimulatedPbx(
        PbxConfig(queues=QUEUES, start=1415088000.0, agi_address=ivr.address),
        mode="real",
        speed=200.0,
        ami_port=None,
    )
    async with sim:
        sim.pbx.add_member("kontanthjaelp", "PJSIP/agent1", membername="En")
        sim.pbx.agents["pjsip/agent1"] = ScriptedAgent([2.0])
        caller = ScriptedCaller(replies=[Reply("digits", "1", 2.0)], talks=[Talk(20.0)])
        real0, virt0 = time.perf_counter(), sim.now()
        truth = await sim.call(caller)
        real, virt = time.perf_counter() - real0, sim.now() - virt0
    await ivr.stop()
    # real time jitters: timers fire when the wall clock reaches them (ms at x200)
    assert truth.outcome == "answered" and abs((truth.talk or 0) - 20.0) < 2.0
    assert 27.0 < virt < 40.0  # welcome (3 s) + menu key (2 s) + ring (2 s) + talk (20 s)
    assert virt / 200.0 * 0.8 < real < virt / 200.0 + 1.0


async def slow_client_day(backpressure: bool) -> tuple[int, int, int]:
    """A short day with one AMI client that reads slowly: (events, received, peak)."""
    import asyncio

    ivr = StubIvr(PLANNER.mapping)
    await ivr.start()
    plan = plan_day(QUEUES, TrafficConfig(seed=5, hours=(9, 10), calls_scale=0.15))
    config = PbxConfig(queues=QUEUES, start=plan.start, agi_address=ivr.address)
    sim = SimulatedPbx(
        config,
        mode="fast",
        ami_backpressure=backpressure,
        ami_options={"max_buffer": 16 << 10, "sndbuf": 8 << 10, "write_timeout": 30.0},
    )
    got = bytearray()
    logged_in = asyncio.Event()

    async def slow_reader() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        writer.write(b"Action: Login\r\nUsername: acd\r\nSecret: acdsecret\r\n\r\n")
        got.extend(await reader.readuntil(b"Authentication accepted\r\n\r\n"))
        logged_in.set()
        while data := await reader.read(2048):
            got.extend(data)
            await asyncio.sleep(0.001)

    async with sim:
        ami = sim.ami
        assert ami is not None
        task = asyncio.create_task(slow_reader())
        await asyncio.wait_for(logged_in.wait(), 5)
        (client,) = ami.clients
        result = await sim.run_day(plan, PLANNER)
        for _ in range(500):
            if got.count(b"\r\n\r\nEvent: ") + 1 >= result.events:
                break
            await asyncio.sleep(0.01)
        assert ami.dropped == 0
        task.cancel()
    await ivr.stop()
    return result.events, got.count(b"\r\n\r\nEvent: ") + 1, client.peak_pending


async def test_backpressure_lets_a_slow_ami_reader_keep_up() -> None:
    """Benchmarks: with ami_backpressure the fast clock waits for a slow client, whose
    unsent bytes then stay bounded; without, they pile up (Asterisk: drop it)."""
    events, received, peak = await slow_client_day(backpressure=True)
    assert received >= events > 1000
    assert peak < 64 << 10
    _, _, peak_without = await slow_client_day(backpressure=False)
    assert peak_without > 4 * peak
