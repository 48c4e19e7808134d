"""The simulated AMI server over real TCP: login, errors, garbage, dropped and slow
clients, event switches, UTF-8, timestamps, the actions' replies, panoramisk."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from app.sim.amiproto import Message
from app.sim.behaviour import Reply, ScriptedCaller
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from tests.e2e.sim.support import FIXTURES, RawAmi

T0 = 1795362300.0
QUEUES = load_queues(FIXTURES / "lab-config" / "queues.conf")


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedPbx]:
    s = SimulatedPbx(
        PbxConfig(queues=QUEUES, start=T0, dialplan="lab"),
        mode="manual",
        ami_options={
            "auth_fail_delay": 0.05,
            "max_buffer": 32 << 10,
            "write_timeout": 0.2,
            "sndbuf": 16 << 10,
        },
    )
    async with s:
        yield s


def act(**headers: str) -> Message:
    return Message(tuple(headers.items()))


async def login(sim: SimulatedPbx, events: str = "on") -> RawAmi:
    c = RawAmi()
    await c.connect(sim.ami_port)
    await c.send(
        act(Action="Login", ActionID="L", Username="acd", Secret="acdsecret", Events=events)
    )
    r = await c.response("L")
    assert r.get("Message") == "Authentication accepted"
    return c


async def ask(c: RawAmi, **headers: str) -> Message:
    aid = headers.setdefault("ActionID", f"a{len(c.messages)}")
    await c.send(act(**headers))
    return await c.response(aid)


async def test_banner_then_login_then_fullybooted(sim: SimulatedPbx) -> None:
    c = await login(sim)
    await c.wait_for(lambda m: m.get("Event") == "SuccessfulAuth")
    assert bytes(c.raw).startswith(
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Success\r\nActionID: L\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 48\r\nLastReload: 48\r\n"
        b"Status: Fully Booted\r\n\r\nEvent: SuccessfulAuth\r\nPrivilege: security,all\r\n"
    )
    sa = c.messages[2]
    assert (sa.get("AccountID"), sa.get("Service"), sa.get("Severity")) == (
        "acd",
        "AMI",
        "Informational",
    )
    await c.close()


async def test_bad_login_is_refused_after_a_pause_and_the_connection_ends(
    sim: SimulatedPbx,
) -> None:
    c = RawAmi()
    await c.connect(sim.ami_port)
    await c.send(act(Action="Login", ActionID="L", Username="acd", Secret="wrong"))
    r = await c.response("L")
    assert (r.get("Response"), r.get("Message")) == ("Error", "Authentication failed")
    await asyncio.wait_for(c.closed.wait(), 2)
    assert not any(m.has("Event") for m in c.messages)
    await c.close()


async def test_errors_before_and_after_login(sim: SimulatedPbx) -> None:
    c = RawAmi()
    await c.connect(sim.ami_port)
    r = await ask(c, Action="QueueStatus")
    assert (r.get("Response"), r.get("Message")) == ("Error", "Permission denied")
    await c.send(b"ActionID: x1\r\nQueue: dagpenge\r\n\r\n")
    r = await c.response("x1")
    assert r.get("Message") == "Missing action in request"
    await c.close()
    c = await login(sim)
    r = await ask(c, Action="Frobnicate")
    assert r.get("Message") == (
        "Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands."
    )
    r = await ask(c, Action="Login", Username="acd", Secret="acdsecret")
    assert r.get("Message") == "Already authenticated"
    await c.close()


async def test_garbage_does_not_break_the_session(sim: SimulatedPbx) -> None:
    c = await login(sim)
    await c.send(b"\xff\xfe\x00 garbage without colon\r\n\r\n")
    await c.send(b"Y" * 3000 + b"\r\n")  # a line longer than manager.c reads: dumped
    await c.send(b"\r\n\r\nAction: Ping\nActionID: p1\n\n")  # bare newlines are fine too
    r = await c.response("p1")
    assert (r.get("Ping"), r.get("Timestamp")) == ("Pong", f"{T0:.6f}")
    await c.close()


async def test_client_gone_mid_action_and_other_clients_unaffected(sim: SimulatedPbx) -> None:
    a = await login(sim)
    b = await login(sim)
    await a.send(b"Action: QueuePause\r\nActionID: half\r\nInterface: PJSIP/agent1\r\nPau")
    await a.close()
    await asyncio.sleep(0.05)
    r = await ask(b, Action="Ping")
    assert r.get("Ping") == "Pong"
    assert not any(m.get("Event") == "QueueMemberPause" for m in b.messages)
    assert len(sim.ami.clients) == 1  # type: ignore[union-attr]
    await b.close()


async def test_events_off_and_on_and_fan_out_to_every_client(sim: SimulatedPbx) -> None:
    quiet = await login(sim, events="off")
    loud = await login(sim)
    assert not any(m.get("Event") == "FullyBooted" for m in quiet.messages)
    await ask(loud, Action="QueuePause", Interface="PJSIP/agent1", Paused="true", Reason="Pause")
    await loud.wait_for(lambda m: m.get("Event") == "QueueMemberPause")
    r = await ask(quiet, Action="Events", EventMask="on")
    assert r.get("Events") == "On"
    await ask(loud, Action="QueuePause", Interface="PJSIP/agent1", Paused="false")
    await ask(quiet, Action="Ping")  # written after the events already queued for it
    pauses = [m for m in quiet.messages if m.get("Event") == "QueueMemberPause"]
    assert [(m.get("Queue"), m.get("Paused")) for m in pauses] == [("dagpenge", "0")]
    r = await ask(quiet, Action="Events", EventMask="off")
    assert r.get("Events") == "Off"
    await quiet.close()
    await loud.close()


async def test_utf8_reason_sent_byte_by_byte(sim: SimulatedPbx) -> None:
    c = await login(sim)
    data = act(
        Action="QueuePause",
        ActionID="u1",
        Queue="dagpenge",
        Interface="PJSIP/agent1",
        Paused="true",
        Reason="Møde",
    ).encode()
    for i in range(len(data)):
        await c.send(data[i : i + 1])
    r = await c.response("u1")
    assert r.get("Message") == "Interface paused successfully"
    ev = await c.wait_for(lambda m: m.get("Event") == "QueueMemberPause")
    assert ev.get("PausedReason") == "Møde"
    assert b"PausedReason: M\xc3\xb8de\r\n" in c.raw
    # the response comes before the event it caused
    idx = {id(m): i for i, m in enumerate(c.messages)}
    assert idx[id(r)] < idx[id(ev)]
    await c.close()


async def test_a_client_that_does_not_read_is_dropped_and_the_pbx_goes_on(
    sim: SimulatedPbx,
) -> None:
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stuck, ("127.0.0.1", sim.ami_port))
    await loop.sock_sendall(stuck, b"Action: Login\r\nUsername: acd\r\nSecret: acdsecret\r\n\r\n")
    reader = await login(sim)
    ami = sim.ami
    assert ami is not None
    try:
        for batch in range(60):
            for i in range(100):
                await reader.send(
                    act(
                        Action="QueuePause",
                        ActionID=f"p{batch}-{i}",
                        Interface="PJSIP/agent1",
                        Paused=str(i % 2),
                        Reason="x" * 200,
                    )
                )
            await reader.response(f"p{batch}-99")
            if ami.dropped:
                break
            await asyncio.sleep(0.05)
        assert ami.dropped == 1
        r = await ask(reader, Action="Ping")  # the reading client is still served
        assert r.get("Ping") == "Pong"
    finally:
        stuck.close()
        await reader.close()


async def test_timestampevents_uses_the_virtual_clock() -> None:
    s = SimulatedPbx(
        PbxConfig(queues=QUEUES, start=T0, dialplan="lab", timestampevents=True), mode="manual"
    )
    async with s:
        c = await login(s)
        await s.advance_to(T0 + 3600.25)
        await ask(c, Action="QueuePause", Interface="PJSIP/agent3", Paused="1")
        ev = await c.wait_for(lambda m: m.get("Event") == "QueueMemberPause")
        assert ev.keys()[:3] == ["Event", "Privilege", "Timestamp"]
        assert ev.get("Timestamp") == f"{T0 + 3600.25:.6f}"
        fb = c.messages[1]
        assert fb.keys()[:3] == ["Event", "Privilege", "Timestamp"]
        await c.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Action": "QueueAdd", "Interface": "PJSIP/agent1"}, "'Queue' not specified."),
        ({"Action": "QueueAdd", "Queue": "dagpenge"}, "'Interface' not specified."),
        (
            {"Action": "QueueAdd", "Queue": "dagpenge", "Interface": "PJSIP/agent1"},
            "Unable to add interface: Already there",
        ),
        (
            {"Action": "QueueRemove", "Queue": "dagpenge"},
            "Need 'Queue' and 'Interface' parameters.",
        ),
        (
            {"Action": "QueueRemove", "Queue": "virksomhed", "Interface": "PJSIP/agent1"},
            "Unable to remove interface: Not there",
        ),
        (
            {"Action": "QueueRemove", "Queue": "nosuch", "Interface": "PJSIP/agent1"},
            "Unable to remove interface from queue: No such queue",
        ),
        (
            {"Action": "QueuePause", "Interface": "PJSIP/agent1"},
            "Need 'Interface' and 'Paused' parameters.",
        ),
        (
            {"Action": "QueuePause", "Interface": "PJSIP/nobody", "Paused": "1"},
            "Interface not found",
        ),
        (
            {"Action": "QueuePenalty", "Interface": "PJSIP/agent1"},
            "Need 'Interface' and 'Penalty' parameters.",
        ),
        (
            {"Action": "QueuePenalty", "Interface": "PJSIP/agent1", "Penalty": "x"},
            "Invalid interface, queuename or penalty",
        ),
        (
            {
                "Action": "Redirect",
                "Channel": "PJSIP/nope-1",
                "Context": "acd-queue",
                "Exten": "dagpenge",
                "Priority": "1",
            },
            "Channel does not exist: PJSIP/nope-1",
        ),
        ({"Action": "Redirect", "Channel": "PJSIP/nope-1"}, "Context not specified"),
        (
            {"Action": "BlindTransfer", "Channel": "PJSIP/nope-1", "Exten": "x"},
            "Channel specified does not exist",
        ),
        ({"Action": "BlindTransfer", "Exten": "x"}, "No channel specified"),
        ({"Action": "Hangup"}, "No channel specified"),
        ({"Action": "Hangup", "Channel": "PJSIP/nope-1"}, "No such channel"),
        ({"Action": "Originate", "Exten": "1"}, "Channel not specified"),
        (
            {"Action": "Originate", "Channel": "PJSIP/x@trunk", "Exten": "1"},
            "Originate with 'Exten' requires 'Context' and 'Priority'",
        ),
        ({"Action": "Originate", "Channel": "nonsense", "Application": "Wait"}, "Invalid channel"),
        ({"Action": "Getvar"}, "No variable specified"),
        ({"Action": "Getvar", "Variable": "X", "Channel": "PJSIP/nope-1"}, "No such channel"),
        ({"Action": "Status", "Channel": "PJSIP/nope-1"}, "No such channel"),
    ],
)
async def test_action_error_replies(
    sim: SimulatedPbx, headers: dict[str, str], message: str
) -> None:
    c = await login(sim)
    r = await ask(c, **headers)
    assert (r.get("Response"), r.get("Message")) == ("Error", message)
    await c.close()


async def test_penalty_command_and_lists(sim: SimulatedPbx) -> None:
    c = await login(sim)
    r = await ask(
        c, Action="QueuePenalty", Interface="PJSIP/agent2", Penalty="3", Queue="kontanthjaelp"
    )
    assert r.get("Message") == "Interface penalty set successfully"
    ev = await c.wait_for(lambda m: m.get("Event") == "QueueMemberPenalty")
    assert (ev.get("Queue"), ev.get("Penalty")) == ("kontanthjaelp", "3")
    r = await ask(c, Action="QueueSummary", Queue="nosuch")
    done = await c.wait_for(lambda m: m.get("Event") == "QueueSummaryComplete")
    assert (r.get("EventList"), done.get("ListItems")) == ("start", "0")
    r = await ask(c, Action="Command", Command="core show nonsense")
    assert r.get("Response") == "Error"
    assert r.get("Output").startswith("No such command 'core show nonsense'")
    r = await ask(c, Action="Command", Command="queue show kontanthjaelp")
    assert r.get_all("Output")[0].startswith(
        "kontanthjaelp has 0 calls (max unlimited) in 'leastrecent' strategy"
    )
    await c.close()


async def test_originate_hangup_and_redirect_on_live_calls(sim: SimulatedPbx) -> None:
    c = await login(sim)
    # 1. a caller waiting in an all-paused queue, hung up over AMI: abandoned
    for agent in ("PJSIP/agent1", "PJSIP/agent2"):
        await ask(c, Action="QueuePause", Interface=agent, Queue="dagpenge", Paused="1")
    caller = ScriptedCaller(replies=[Reply("digits", "1", 1.0)])
    task = sim.start_call(caller)
    await sim.advance_to(T0 + 30)
    join = await c.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    r = await ask(c, Action="Hangup", Channel=join.get("Channel"), Cause="16")
    assert r.get("Message") == "Channel Hungup"
    await c.wait_for(lambda m: m.get("Event") == "Hangup")
    truth = await task
    assert (truth.outcome, truth.queue) == ("abandoned", "dagpenge")
    names = [m.get("Event") for m in c.messages if m.get("Uniqueid") == join.get("Uniqueid")]
    assert names[-4:] == ["QueueCallerAbandon", "QueueCallerLeave", "SoftHangupRequest", "Hangup"]
    # 2. an Originate (a call-back) into the queue, answered by the callee after 5 s
    r = await ask(
        c,
        Action="Originate",
        Channel="PJSIP/40123456@trunk",
        Context="acd-queue",
        Exten="kontanthjaelp",
        Priority="1",
        Async="true",
        CallerID='"Jobcenter" <82565682>',
    )
    assert r.get("Message") == "Originate successfully queued"
    await sim.advance_to(T0 + 40)
    resp = await c.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    assert (resp.get("ActionID"), resp.get("Response"), resp.get("Reason")) == (
        r.get("ActionID"),
        "Success",
        "4",
    )
    join2 = await c.wait_for(
        lambda m: m.get("Event") == "QueueCallerJoin" and m.get("Queue") == "kontanthjaelp"
    )
    assert join2.get("Channel").startswith("PJSIP/trunk-")
    # 3. Redirect that caller, now bridged with an agent, to another queue
    await sim.advance_to(T0 + 50)
    conn = await c.wait_for(lambda m: m.get("Event") == "AgentConnect")
    r = await ask(
        c,
        Action="Redirect",
        Channel=conn.get("Channel"),
        Context="acd-queue",
        Exten="sygedagpenge",
        Priority="1",
    )
    assert r.get("Message") == "Redirect successful"
    await sim.advance_to(T0 + 60)
    join3 = await c.wait_for(
        lambda m: m.get("Event") == "QueueCallerJoin" and m.get("Queue") == "sygedagpenge"
    )
    assert join3.get("Uniqueid") == conn.get("Uniqueid")
    origin = [t for t in sim.truth if t.origin == "originate"]
    assert len(origin) == 1 and origin[0].queues == ["kontanthjaelp", "sygedagpenge"]
    await c.close()
    with contextlib.suppress(Exception):
        await sim.advance_to(T0 + 4000)


async def test_panoramisk_the_services_ami_library_can_talk_to_it(sim: SimulatedPbx) -> None:
    from panoramisk import Manager

    manager = Manager(
        host="127.0.0.1",
        port=sim.ami_port,
        username="acd",
        secret="acdsecret",
        ping_delay=0,
        reconnect_timeout=0.1,
    )
    got: list[str] = []
    manager.register_event("QueueMemberPause", lambda m, msg: got.append(msg.PausedReason))
    await manager.connect()
    try:
        reply = await manager.send_action({"Action": "QueueStatus", "Queue": "dagpenge"})
        items = reply if isinstance(reply, list) else [reply]
        assert any(getattr(m, "Event", "") == "QueueMember" for m in items)
        await manager.send_action(
            {
                "Action": "QueuePause",
                "Interface": "PJSIP/agent4",
                "Paused": "true",
                "Reason": "Frokost",
            }
        )
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got[:1] == ["Frokost"]
    finally:
        manager.close()


async def test_a_restart_cuts_the_sessions_and_the_calls_then_boots_again(
    sim: SimulatedPbx,
) -> None:
    c = await login(sim)
    task = sim.start_call(ScriptedCaller(replies=[Reply("digits", "1", 1.0)]))
    await sim.advance_to(T0 + 30)
    await c.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    restart = asyncio.create_task(sim.restart(20.0))
    await asyncio.wait_for(c.closed.wait(), 2)
    # A crash: the session is cut before the hang-ups, it hears none of them.
    assert not any(m.get("Event") in ("Hangup", "Shutdown") for m in c.messages)
    await sim.advance_to(T0 + 60)
    assert await restart == 1
    truth = await task
    assert truth.outcome is not None and truth.ended is not None and truth.ended < T0 + 31
    assert not sim.pbx.channels
    again = await login(sim)
    booted = await again.wait_for(lambda m: m.get("Event") == "FullyBooted")
    assert int(booted.get("Uptime") or "-1") == 10  # up again at T0 + 50, now T0 + 60
    assert sim.ami is not None and sim.ami.most_at_once == 1 and len(sim.ami.logins) == 2
    await again.close()
    await c.close()


async def test_a_restart_happens_at_its_moment_however_slow_the_sockets_close(
    sim: SimulatedPbx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock may run on while the server's sockets close (a busy CI machine): the
    hang-ups and the boot still fall at the restart's virtual moment plus ``down``."""
    c = await login(sim)
    task = sim.start_call(ScriptedCaller(replies=[Reply("digits", "1", 1.0)]))
    await sim.advance_to(T0 + 30)
    await c.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    assert sim.ami is not None and sim.ami._server is not None
    server = sim.ami._server

    async def slow_close() -> None:
        await asyncio.sleep(0.3)

    monkeypatch.setattr(server, "wait_closed", slow_close)
    restart = asyncio.create_task(sim.restart(20.0))
    await asyncio.sleep(0)  # the restart has begun, its sockets still closing
    await sim.advance_to(T0 + 60)  # beyond the boot at T0 + 50
    assert await asyncio.wait_for(restart, 5) == 1
    assert (await task).ended == T0 + 30
    again = await login(sim)
    booted = await again.wait_for(lambda m: m.get("Event") == "FullyBooted")
    assert int(booted.get("Uptime") or "-1") == 10
    await again.close()
    await c.close()


async def test_a_clean_restart_shows_the_hang_ups_and_shutdown_first(sim: SimulatedPbx) -> None:
    c = await login(sim)
    task = sim.start_call(ScriptedCaller(replies=[Reply("digits", "1", 1.0)]))
    await sim.advance_to(T0 + 30)
    join = await c.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    restart = asyncio.create_task(sim.restart(5.0, clean=True))
    await asyncio.wait_for(c.closed.wait(), 2)
    kinds = [m.get("Event") for m in c.messages]
    hangup = next(m for m in c.messages if m.get("Event") == "Hangup")
    assert hangup.get("Channel") == join.get("Channel")
    assert kinds[-1] == "Shutdown" and kinds.index("Hangup") < kinds.index("Shutdown")
    assert c.messages[-1].get("Restart") == "True"
    await sim.advance_to(T0 + 40)
    assert await restart == 1
    assert (await task).outcome is not None
    await c.close()
