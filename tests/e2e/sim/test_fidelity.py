"""Fidelity contract (issue 5, point 3): every recorded scenario of tests/fixtures/ami,
replayed in the simulator over a real TCP socket, against the real capture.

Per scenario the simulated PBX runs the lab's dialplan and queues.conf, the scripted
caller and agents of ``app/sim/scenarios.py``, and a raw AMI client sends the actions of
``*.sent.txt`` at their recorded times (virtual). Then, ids and timestamps aside:

1. the events the service consumes (``support.CONSUMED``) come in the same order with
   the same key fields, except QueueMemberStatus/BridgeLeave/Hangup, whose interleaving
   between two legs is thread timing in a real Asterisk (01, 04 and 08 are the same
   scenario and differ there);
2. per channel, its consumed events (those two included) in the same order;
3. per queue member, the QueueMember* sequence (Status, Paused, PausedReason, ...);
4. every non-noise event appears as many times (DialBegin, MusicOnHold*, ...);
5. Uniqueid/Linkedid relations hold (the agent leg's Linkedid is the caller's Uniqueid,
   Dest* name the agent leg, ...), learnt from the capture and checked on every event;
6. every action's response, list items (EventList shape, ListItems, header order
   including where ActionID sits) and error replies are Asterisk's.
VarSet, Newexten and RTCP* (noise, off here) and DeviceStateChange (not consumed, its
order is device-state thread timing) are not compared.

For the FastAGI scenarios a replay server plays the service side of ``*.agi.txt`` and
the bytes the simulator sent must be ``*.agi.rx.raw`` (port and thread id aside).
"""

from __future__ import annotations

import re

import pytest

from app.sim.amiproto import Message
from app.sim.runner import SimulatedPbx, load_queues
from app.sim.scenarios import SCENARIOS
from tests.e2e.sim.support import (
    FIXTURES,
    AgiReplay,
    RawAmi,
    capture,
    compare_events,
    compare_responses,
    sent_actions,
)

LAB_QUEUES = FIXTURES / "lab-config" / "queues.conf"


async def replay(name: str) -> tuple[RawAmi, AgiReplay | None]:
    sc = SCENARIOS[name]
    agi: AgiReplay | None = None
    agi_address = "127.0.0.1:4573"
    transcript = FIXTURES / f"{name}.agi.txt"
    if transcript.exists():
        agi = AgiReplay(transcript)
        await agi.start()
        agi_address = f"127.0.0.1:{agi.port}"
    sim = SimulatedPbx(sc.config(load_queues(LAB_QUEUES), agi_address), mode="manual")
    client = RawAmi()
    async with sim:
        sc.prepare(sim.pbx)
        if sc.call_at is not None:
            sim.call_at(sc.epoch + sc.call_at, sc.caller(), sc.number)
        await client.connect(sim.ami_port)
        for at, action in sent_actions(name):
            await sim.advance_to(sc.epoch + at)
            await client.send(action)
            if action.get("Action").lower() == "logoff":
                await client.wait_for(lambda m: m.get("Response") == "Goodbye")
                break
            await client.response(action.get("ActionID"))
        await sim.calls_done()
        await client.close()
        if agi is not None:
            await agi.stop()
    return client, agi


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_capture_replayed_by_the_simulator(name: str) -> None:
    client, agi = await replay(name)
    cap = capture(name)
    events = compare_events(cap, client.messages)
    assert events, "\n".join(events.problems)
    resp = compare_responses(cap, client.messages)
    assert resp, "\n".join(resp.problems)
    assert client.raw.startswith(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n")
    if agi is not None:
        expected = (FIXTURES / f"{name}.agi.rx.raw").read_bytes()

        def norm(data: bytes) -> bytes:
            data = re.sub(rb"agi://127\.0\.0\.1:\d+/", b"agi://127.0.0.1:PORT/", data)
            return re.sub(rb"agi_threadid: \d+", b"agi_threadid: N", data)

        assert norm(bytes(agi.received)) == norm(expected)


async def test_the_comparison_catches_a_wrong_simulation() -> None:
    """The contract must fail when the order or a key field differs (no vacuous pass)."""
    cap = capture("01_answered")
    swapped = list(cap)
    i = next(i for i, m in enumerate(swapped) if m.get("Event") == "QueueCallerLeave")
    j = next(j for j, m in enumerate(swapped) if m.get("Event") == "AgentConnect")
    swapped[i], swapped[j] = swapped[j], swapped[i]  # AgentConnect before the Leave
    assert not compare_events(cap, swapped)
    dropped = [m for m in cap if m.get("Event") != "AgentCalled"]
    assert not compare_events(cap, dropped)
    wrong = [
        Message(tuple((k, "3" if k == "HoldTime" else v) for k, v in m.headers))
        if m.get("Event") == "AgentConnect"
        else m
        for m in cap
    ]
    assert not compare_events(cap, wrong)
    relinked = [
        Message(
            tuple(
                (k, "1.1" if k == "Linkedid" and m.get("Channel").startswith("PJSIP/agent") else v)
                for k, v in m.headers
            )
        )
        for m in cap
    ]
    assert not compare_events(cap, relinked)
    assert compare_events(cap, cap)


@pytest.mark.parametrize("name", ["01_answered", "04_ringnoanswer", "06_invalid_then_valid"])
async def test_noise_is_in_the_captures_proportions(name: str) -> None:
    """With noise on, VarSet/Newexten/RTCPSent come in the captures' numbers (+-10 %)."""
    import dataclasses
    from collections import Counter

    sc = SCENARIOS[name]
    config = dataclasses.replace(sc.config(load_queues(LAB_QUEUES)), noise=True)
    sim = SimulatedPbx(config, mode="manual", ami_port=None)
    counts: Counter[str] = Counter()
    sim.pbx.listeners.append(lambda e: counts.update([e.name]))
    async with sim:
        sc.prepare(sim.pbx)
        sim.call_at(sc.epoch + (sc.call_at or 0), sc.caller(), sc.number)
        await sim.advance_to(sc.epoch + sc.end)
        await sim.calls_done()
    cap = Counter(m.get("Event") for m in capture(name) if m.has("Event"))
    for event in ("VarSet", "Newexten"):
        assert abs(counts[event] - cap[event]) <= 0.1 * cap[event], (event, counts, cap)
    assert abs(counts["RTCPSent"] - cap["RTCPSent"]) <= 2
    share, cap_share = (
        counts["VarSet"] / sum(counts.values()),
        cap["VarSet"] / sum(cap[k] for k in cap if k not in ("FullyBooted", "SuccessfulAuth")),
    )
    assert abs(share - cap_share) < 0.05
