"""The FastAGI server under bad clients: garbage, silence, half environments, slow or dead
peers, too many sessions. Nothing freezes; no session blocks another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import pytest

from app.agi.channel import AgiLimits
from tests.agi_fake_asterisk import Caller, asterisk_env
from tests.agi_support import agi_service, cph

TUESDAY_1030 = cph(2025, 3, 4, 10, 30)
FAST = AgiLimits(env_timeout=0.3, reply_timeout=0.3, hangup_grace=0.2, session_seconds=30)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent until it closed the socket (fails if it does not).

    A server that closes while our unread bytes sit in its socket makes the kernel send a
    reset rather than a FIN: that is a close too, after what had arrived before it."""

    async def until_closed() -> bytes:
        got = b""
        try:
            while chunk := await reader.read(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got

    return await asyncio.wait_for(until_closed(), seconds)


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Poll ``condition`` (state of another task in this loop) until true or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: acd\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n",
        b"agi_network: yes\nhello there\n",
        b"\n",
    ],
    ids=["http", "tls", "junk-line", "empty-env"],
)
async def test_garbage_is_closed_at_once_and_the_server_goes_on(garbage: bytes) -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(garbage)
        t0 = time.monotonic()
        assert await _closed_within(reader, 2) == b""  # not a single command sent
        assert time.monotonic() - t0 < 0.25  # refused on sight, not by the timeout
        writer.close()
        r = await h.pbx.call(Caller(answers=["2"]))
        assert r.variables["ACD_QUEUE"] == "dagpenge"
    assert h.metric("acd_agi_sessions_total", result="protocol_error") == 1
    assert h.kinds()[0] == "ivr_started"  # only the good call left events


async def test_a_client_that_sends_nothing_is_closed_after_the_timeout() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        t0 = time.monotonic()
        assert await _closed_within(reader, 2) == b""
        assert 0.25 < time.monotonic() - t0 < 1.5
        writer.close()
    assert h.metric("acd_agi_sessions_total", result="timeout") == 1
    assert h.events == []


async def test_an_environment_that_never_ends_is_closed_after_the_timeout() -> None:
    env = asterisk_env().rstrip(b"\n") + b"\n"  # every line but the blank one
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(env)
        assert await _closed_within(reader, 2) == b""
        writer.close()
    assert h.metric("acd_agi_sessions_total", result="timeout") == 1


async def test_a_trickling_client_cannot_stretch_the_environment_timeout() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        t0 = time.monotonic()
        closed = asyncio.ensure_future(_closed_within(reader, 3))
        for i in range(20):  # one line every 0.1 s, forever
            if closed.done():
                break
            writer.write(b"agi_x%d: y\n" % i)
            await asyncio.sleep(0.1)
        assert await closed == b""
        assert time.monotonic() - t0 < 1.0
        writer.close()


async def test_a_client_that_leaves_mid_environment_is_dropped() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        _reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env()[:100])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await until(lambda: h.metric("acd_agi_sessions_total", result="incomplete") == 1, 2)
        assert h.server.active == 0
    assert h.metric("acd_agi_sessions_total", result="incomplete") == 1


async def test_an_overlong_line_is_refused() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(b"agi_network: " + b"y" * 5000)  # no newline ever
        assert await _closed_within(reader, 2) == b""
        writer.close()
    assert h.metric("acd_agi_sessions_total", result="protocol_error") == 1


async def test_a_peer_that_stops_answering_mid_call_is_closed_and_recorded() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        assert (await reader.readline()).startswith(b"GET FULL VARIABLE")
        writer.write(b"200 result=1 (1.1)\n")
        assert await reader.readline() == b"ANSWER\n"
        # ... and then silence: no reply to ANSWER.
        assert await _closed_within(reader, 2) == b""
        writer.close()
    assert h.one("ivr_ended").reason == "timeout"
    assert h.metric("acd_agi_sessions_total", result="timeout") == 1


async def test_a_peer_that_does_not_read_cannot_block_the_server() -> None:
    limits = AgiLimits(env_timeout=0.3, reply_timeout=0.3, write_timeout=0.3, session_seconds=2)
    async with agi_service(at=TUESDAY_1030, limits=limits) as h:
        _reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        await writer.drain()
        # Never read, never answer: the session ends on its own deadlines.
        await until(lambda: h.server.active == 0, 3)
        r = await h.pbx.call(Caller(answers=["1"]))
        assert r.variables["ACD_QUEUE"] == "kontanthjaelp"
        writer.close()


async def test_no_session_blocks_another() -> None:
    slow = AgiLimits(env_timeout=5, reply_timeout=5, session_seconds=30)
    async with agi_service(at=TUESDAY_1030, limits=slow, max_sessions=100) as h:
        # 20 peers that connect and say nothing, 20 stuck mid-environment, 10 that stop
        # answering after the environment: all hold their own sessions open.
        stuck = []
        for i in range(50):
            _reader, writer = await _connect(h.server.port)
            if 20 <= i < 40:
                writer.write(asterisk_env()[:200])
            elif i >= 40:
                writer.write(asterisk_env(uniqueid=f"9.{i}"))
            stuck.append(writer)
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        results = await asyncio.gather(
            *(h.pbx.call(Caller(answers=["5", "2"]), uniqueid=f"1.{i}") for i in range(5))
        )
        elapsed = time.monotonic() - t0
        assert [r.variables["ACD_QUEUE"] for r in results] == ["virksomhed"] * 5
        assert elapsed < 1.0, elapsed  # the stuck peers did not slow the real callers
        for writer in stuck:
            writer.close()


async def test_beyond_the_session_limit_calls_go_to_the_dialplan_fallback() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST, max_sessions=2) as h:
        held = [
            asyncio.ensure_future(h.pbx.call(Caller(answers=["1"], think=0.25), uniqueid=f"1.{i}"))
            for i in range(2)
        ]
        # Both have answered a command: an unproven one would give its slot up instead.
        await until(lambda: h.server.active == 2 and h.server.unproven == 0, 2)
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(uniqueid="3.3"))
        t0 = time.monotonic()
        assert await _closed_within(reader, 2) == b""  # no commands: no ACD_ROUTE
        assert time.monotonic() - t0 < 0.5
        writer.close()
        done = await asyncio.gather(*held)
        assert [r.variables["ACD_QUEUE"] for r in done] == ["kontanthjaelp"] * 2
        again = await h.pbx.call(Caller(answers=["2"]), uniqueid="4.4")
        assert again.variables["ACD_QUEUE"] == "dagpenge"
    assert h.metric("acd_agi_sessions_total", result="rejected") == 1
    assert not [e for e in h.events if e.uniqueid == "3.3"]


async def test_unknown_script_and_unknown_flow_leave_the_route_to_the_dialplan() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        r = await h.pbx.call(Caller(answers=["1"]), script="nonsense", uniqueid="5.1")
        assert r.commands == [] and r.closed_by_service
        r = await h.pbx.call(Caller(answers=["1"]), flow="nosuchflow", uniqueid="5.2")
        assert r.commands == ['GET FULL VARIABLE "${CHANNEL(linkedid)}"']
        assert r.closed_by_service and not r.variables
    assert h.metric("acd_agi_sessions_total", result="unknown_script") == 1
    assert [e.kind for e in h.events] == ["ivr_started", "ivr_ended"]
    assert h.events[0].flow == "nosuchflow" and h.events[1].reason == "error"


async def test_a_refused_command_ends_the_session_without_a_route() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        await reader.readline()
        writer.write(b"200 result=1 (1.1)\n")
        await reader.readline()  # ANSWER
        writer.write(b"510 Invalid or unknown command\n")
        assert await _closed_within(reader, 2) == b""
        writer.close()
    assert h.one("ivr_ended").reason == "error"


async def test_a_hangup_between_commands_sends_nothing_more() -> None:
    async with agi_service(at=TUESDAY_1030, limits=FAST) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        await reader.readline()
        writer.write(b"200 result=1 (1.1)\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\nHANGUP\n")  # hung up right after the answer
        assert await _closed_within(reader, 2) == b""  # not even the welcome prompt
        writer.close()
    assert h.one("ivr_ended").reason == "hangup"


async def test_the_whole_session_is_bounded() -> None:
    limits = AgiLimits(env_timeout=1, reply_timeout=5, session_seconds=0.5)
    async with agi_service(at=TUESDAY_1030, limits=limits) as h:
        # A caller who keeps pressing '*' slowly would replay the menu for ever.
        t0 = time.monotonic()
        r = await h.pbx.call(Caller(answers=["*"] * 100, think=0.05))
        assert time.monotonic() - t0 < 2
        assert r.closed_by_service and not r.variables
    assert h.one("ivr_ended").reason == "timeout"


async def test_stopping_the_server_ends_sessions_in_progress() -> None:
    limits = AgiLimits(env_timeout=5, reply_timeout=30, session_seconds=60)
    async with agi_service(at=TUESDAY_1030, limits=limits) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        await reader.readline()
        writer.write(b"200 result=1 (1.1)\n")
        await reader.readline()  # ANSWER
        writer.write(b"200 result=0\n")
        await reader.readline()  # the welcome prompt: the caller is in the menu
        t0 = time.monotonic()
        await h.server.stop()
        assert time.monotonic() - t0 < 2.5
        assert await _closed_within(reader, 2) == b""
        assert h.server.active == 0
        writer.close()
        assert not (await h.server.check()).ok
    assert h.kinds()[0] == "ivr_started"
    assert h.one("ivr_ended").reason == "stopped"  # every session's end is in the log


async def test_health_reports_port_sessions_and_flows() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        health = await h.server.check()
        port = h.server.port
    assert health.ok and health.state == "up"
    assert health.detail["flows"] == ["jobcenter"]
    assert health.detail["port"] == port != 0
    assert len(str(health.detail["version"])) == 12


REALISTIC = AgiLimits(env_timeout=5, reply_timeout=30, session_seconds=900)


async def test_silent_clients_cannot_take_the_sessions_of_real_callers() -> None:
    """Issue 14 §3: 600 clients that send an environment and never answer held all 500
    sessions for 30 s each. Now they push each other out and real calls are served."""
    async with agi_service(at=TUESDAY_1030, limits=REALISTIC, max_sessions=100) as h:
        # Two real callers in the middle of their menu (proven) when the flood comes.
        talking = [
            asyncio.ensure_future(
                h.pbx.call(Caller(answers=["5", "2"], think=0.4), uniqueid=f"7.{i}")
            )
            for i in range(2)
        ]
        await until(lambda: h.server.active == 2 and h.server.unproven == 0, 2)
        silent = []
        for i in range(150):
            _reader, writer = await _connect(h.server.port)
            writer.write(asterisk_env(uniqueid=f"9.{i}"))
            silent.append(writer)
        await until(lambda: h.server.active == 100, 5)
        await asyncio.sleep(0.2)  # every silent one has sent its environment, waits
        assert h.server.unproven == 98  # all slots taken: 98 silent + 2 real callers
        t0 = time.monotonic()
        served = await asyncio.gather(
            *(h.pbx.call(Caller(answers=["5", "2"]), uniqueid=f"1.{i}") for i in range(5))
        )
        elapsed = time.monotonic() - t0
        done = await asyncio.gather(*talking)
        for writer in silent:
            writer.close()
    assert [r.variables["ACD_QUEUE"] for r in served] == ["virksomhed"] * 5
    assert [r.variables["ACD_QUEUE"] for r in done] == ["virksomhed"] * 2
    assert elapsed < 2.0, elapsed
    assert h.metric("acd_agi_sessions_total", result="rejected") == 0
    assert h.metric("acd_agi_sessions_total", result="evicted") >= 55  # 50 + 5 made room
    assert {e.uniqueid for e in h.events if e.kind == "ivr_started"} == {
        *(f"7.{i}" for i in range(2)),
        *(f"1.{i}" for i in range(5)),
    }


async def test_an_unproven_session_waits_at_most_the_environment_timeout() -> None:
    limits = AgiLimits(env_timeout=0.5, reply_timeout=30, session_seconds=900)
    async with agi_service(at=TUESDAY_1030, limits=limits) as h:
        reader, writer = await _connect(h.server.port)
        writer.write(asterisk_env(uniqueid="9.1"))
        t0 = time.monotonic()
        sent = await _closed_within(reader, 3)
        elapsed = time.monotonic() - t0
        writer.close()
    assert sent == b'GET FULL VARIABLE "${CHANNEL(linkedid)}"\n'
    assert 0.4 < elapsed < 1.5, elapsed  # not the 30 s a proven session's reply may take
    assert h.metric("acd_agi_sessions_total", result="timeout") == 1


async def test_a_flood_of_bad_connections_writes_a_bounded_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """10,000 hostile connections wrote 9,105 warning lines; now 20 a window, then one
    line counting the rest."""
    from app.logbudget import LogBudget

    async with agi_service(at=TUESDAY_1030, limits=FAST, max_sessions=20) as h:
        budget = LogBudget(logging.getLogger("app.agi.session"), "FastAGI", interval=2.0)
        h.server.deps.warnings = budget
        caplog.set_level(logging.WARNING)
        caplog.clear()

        async def hostile(i: int) -> None:
            reader, writer = await _connect(h.server.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n" if i % 2 else b"\x16\x03\x01junk\n")
            with contextlib.suppress(ConnectionError, TimeoutError):
                await _closed_within(reader, 5)
            writer.close()

        t0 = time.monotonic()
        for start in range(0, 1000, 100):
            await asyncio.gather(*(hostile(i) for i in range(start, start + 100)))
        windows = int((time.monotonic() - t0) / budget.interval) + 2
        await asyncio.sleep(budget.interval + 0.2)  # the window ends: its summary comes
        served = await h.pbx.call(Caller(answers=["5", "2"]), uniqueid="1.1")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("app.agi")]
    summaries = [line for line in lines if "left out" in line]
    assert served.variables["ACD_QUEUE"] == "virksomhed"
    assert len(lines) - len(summaries) <= 20 * windows, (len(lines), windows)
    assert 1 <= len(summaries) <= windows
    left_out = sum(int(s.split(": ")[1].split(" more")[0].replace(",", "")) for s in summaries)
    assert budget.left_out_total == left_out
    # Every hostile connection was said something about: in a line, or in a count.
    assert left_out + len(lines) - len(summaries) >= 1000
