"""The whole ingest path over real sockets: a fake Asterisk replaying the captures over
TCP -> the service's AMI link -> parser -> normaliser -> state -> writer -> PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.acd.records import CallRecord
from app.main import create_app
from app.settings import load_settings
from app.store.db import create_engine, session_factory
from app.store.models import Call, DataGap, QueueVisit
from tests.ami_replay import (
    SCENARIOS,
    T0,
    ReplayServer,
    load_capture,
    random_sizes,
    replay_pure,
    stream,
)
from tests.auth_support import admin_headers
from tests.conftest import OwnPostgres
from tests.expectations import EXPECTED, check_row
from tests.waiting import wait_for


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def rt(self) -> Any:
        return self.app.state.rt


@asynccontextmanager
async def service(
    db_url: str, ami_port: int, secret: str = "acdsecret", tmp: Any = None, user: str = "admin"
) -> AsyncIterator[Running]:
    settings = load_settings(
        database_url=db_url,
        ami_host="127.0.0.1",
        ami_port=ami_port,
        ami_secret=secret,
        caller_hash_key="test-caller-hash-key-0123456789",
        spill_dir=str(tmp or "var"),
    )
    app = create_app(settings)
    headers = await admin_headers(db_url, user)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://acd", headers=headers
        ) as client:
            yield Running(app, client)


async def ended_calls(url: str) -> list[Call]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        rows = (
            (
                await s.execute(
                    select(Call).where(Call.outcome.is_not(None)).order_by(Call.started_at)
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    return list(rows)


def many(names: tuple[str, ...], timestamps: bool = True) -> bytes:
    """Several captures back to back, each a minute after the previous."""
    return b"".join(
        stream(load_capture(n), timestamps=timestamps, base=T0 + timedelta(minutes=i))
        for i, n in enumerate(names)
    )


def comparable(rows: list[Any]) -> set[tuple[Any, ...]]:
    return {
        (
            r.linkedid,
            r.outcome,
            r.queue,
            r.keys,
            r.agent,
            r.transferred_to,
            None if r.wait_seconds is None else round(r.wait_seconds, 2),
            None if r.talk_seconds is None else round(r.talk_seconds, 2),
            r.data_gap,
        )
        for r in rows
    }


def pure_rows() -> set[tuple[Any, ...]]:
    calls: list[CallRecord] = []
    for name in SCENARIOS:
        calls += list(replay_pure(name).calls.values())  # type: ignore[misc]
    return comparable(calls)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_each_capture_over_tcp_gives_its_exact_row(
    name: str, pg_url: str, tmp_path: Any
) -> None:
    cap = load_capture(name)
    async with (
        ReplayServer(payloads=[stream(cap, timestamps=True)]) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _has_rows(pg_url, 1))
        rows = await ended_calls(pg_url)
        assert len(rows) == 1
        check_row(rows[0], EXPECTED[name])
        r = await svc.client.get("/v1/calls")
        assert r.status_code == 200
        item = r.json()["items"][0]
        assert item["linkedid"] == rows[0].linkedid and item["caller"] == "•••••01"
        assert "4520001" not in r.text


async def _has_rows(url: str, n: int) -> bool:
    return len(await ended_calls(url)) >= n


async def _rows_are(url: str, want: set[tuple[Any, ...]]) -> bool:
    return comparable(await ended_calls(url)) == want


async def test_all_captures_cut_at_random_tcp_boundaries_give_the_pure_rows(
    pg_url: str, tmp_path: Any
) -> None:
    seed = random.randrange(2**32)
    payload = many(SCENARIOS)
    async with (
        ReplayServer(payloads=[payload], chunk_sizes=lambda: random_sizes(seed, 1, 900)) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path),
    ):
        want = pure_rows()
        # Rows are written as calls end and refined by late events (an AgentComplete
        # after the last Hangup): wait for the final rows, not for a fixed time.
        await wait_for(lambda: _rows_are(pg_url, want), what=f"the pure rows (seed {seed})")


async def test_without_timestamps_the_receive_time_is_used(pg_url: str, tmp_path: Any) -> None:
    # Real pace: the capture's own gaps between events, no Timestamp headers.
    cap = load_capture("03_abandon")
    events = cap.events()
    server = ReplayServer(payloads=[b""])

    async with server as pbx, service(pg_url, pbx.port, tmp=tmp_path):
        await wait_for(lambda: _logged_in(pbx))
        writer = pbx._writers[-1]
        start = asyncio.get_running_loop().time()
        for frame, t in events:
            delay = t - events[0][1] - (asyncio.get_running_loop().time() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(frame + b"\r\n\r\n")
        await wait_for(lambda: _has_rows(pg_url, 1))
        rows = await ended_calls(pg_url)
    check_row(rows[0], EXPECTED["03_abandon"])


async def _logged_in(pbx: ReplayServer) -> bool:
    return pbx.logins >= 1 and bool(pbx._writers)


async def test_a_refused_login_is_reported_and_retried_slowly(
    sqlite_url: str, tmp_path: Any
) -> None:
    async with (
        ReplayServer(secret="the-right-one") as pbx,
        service(sqlite_url, pbx.port, secret="wrong", tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _refused(pbx))
        await asyncio.sleep(1.5)  # a window in which a tight loop would have retried
        r = await svc.client.get("/ready")
        assert r.status_code == 503
        ami = r.json()["parts"]["ami"]
        assert ami["state"] == "login_refused"
        assert "Authentication failed" in ami["detail"]["last_error"]
        assert pbx.refused == 1, "a refused login must not be retried in a tight loop"
        metrics = (await svc.client.get("/metrics")).text
        assert "acd_ami_connected 0.0" in metrics
        assert 'acd_ami_reconnects_total{result="refused"} 1.0' in metrics


async def _refused(pbx: ReplayServer) -> bool:
    return pbx.refused >= 1


async def test_ready_and_metrics_when_connected(pg_url: str, tmp_path: Any) -> None:
    cap = load_capture("01_answered")
    async with (
        ReplayServer(payloads=[stream(cap, timestamps=True)]) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _has_rows(pg_url, 1))
        r = await svc.client.get("/ready")
        assert r.status_code == 200, r.text
        assert r.json()["parts"]["ami"]["state"] == "logged_in"
        assert r.json()["parts"]["ami"]["detail"]["last_event_at"] is not None
        metrics = (await svc.client.get("/metrics")).text
        assert "acd_ami_connected 1.0" in metrics
        assert 'acd_ami_events_total{event="QueueCallerJoin"} 1.0' in metrics
        assert 'acd_ami_events_total{event="VarSet"}' in metrics  # counted though skipped
        assert 'acd_calls_total{outcome="answered",queue="dagpenge"} 1.0' in metrics
        assert 'acd_wait_seconds_count{queue="dagpenge"} 1.0' in metrics
        assert 'acd_talk_seconds_count{queue="dagpenge"} 1.0' in metrics
        assert pbx.actions[:3] == ["Login", "QueueStatus", "CoreShowChannels"]


def _cut_at(cap_name: str, marker: bytes) -> tuple[bytes, bytes, str]:
    cap = load_capture(cap_name)
    data = stream(cap, timestamps=True)
    i = data.index(marker)
    newchannel = next(f for f, _ in cap.events() if f.startswith(b"Event: Newchannel"))
    linkedid = newchannel.split(b"Linkedid: ")[1].split(b"\r\n")[0].decode()
    return data[:i], data[i:], linkedid


def core_show_channel(channel: str, uniqueid: str, linkedid: str, duration: str) -> bytes:
    """One CoreShowChannel list item, as the PBX answers a resync."""
    return (
        f"Event: CoreShowChannel\r\nChannel: {channel}\r\nUniqueid: {uniqueid}\r\n"
        f"Linkedid: {linkedid}\r\nDuration: {duration}"
    ).encode()


async def test_link_cut_mid_call_then_restored_still_records_the_call(
    pg_url: str, tmp_path: Any
) -> None:
    first, rest, linkedid = _cut_at("01_answered", b"Event: AgentComplete")
    server = ReplayServer(payloads=[first, rest])
    # On reconnect the PBX still has the call up: resync must keep it going.
    server.list_items["CoreShowChannels"] = [
        core_show_channel("PJSIP/trunk-00000003", linkedid, linkedid, "00:00:08"),
        core_show_channel("PJSIP/agent1-00000004", "1795362320.4", linkedid, "00:00:04"),
    ]
    async with server as pbx, service(pg_url, pbx.port, tmp=tmp_path) as svc:
        await wait_for(lambda: _logins(pbx, 1))
        await wait_for(lambda: _talking(svc, linkedid), what="the call answered")
        pbx.drop_clients()  # the link dies mid-call
        await wait_for(lambda: _logins(pbx, 2), within=15)
        await wait_for(lambda: _has_rows(pg_url, 1))
        rows = await ended_calls(pg_url)
    check_row(rows[0], EXPECTED["01_answered"])


async def _logins(pbx: ReplayServer, n: int) -> bool:
    return pbx.logins >= n


def _talking(svc: Running, linkedid: str) -> bool:
    """The first payload is read: the call is up and an agent talks with the caller."""
    call = svc.rt.centre.calls.get(linkedid)
    return call is not None and any(v.talking for v in call.visits)


async def test_call_ended_during_the_gap_is_closed_as_data_gap(pg_url: str, tmp_path: Any) -> None:
    first, _rest, linkedid = _cut_at("01_answered", b"Event: AgentComplete")
    server = ReplayServer(payloads=[first, b""])  # after reconnect: nothing is up
    async with server as pbx, service(pg_url, pbx.port, tmp=tmp_path) as svc:
        await wait_for(lambda: _logins(pbx, 1))
        await wait_for(lambda: _talking(svc, linkedid), what="the call answered")
        pbx.drop_clients()
        await wait_for(lambda: _logins(pbx, 2), within=15)
        await wait_for(lambda: _has_rows(pg_url, 1))
        rows = await ended_calls(pg_url)
        engine = create_engine(pg_url)
        async with session_factory(engine)() as s:
            gaps = (await s.execute(select(DataGap))).scalars().all()
            visits = (await s.execute(select(QueueVisit))).scalars().all()
        await engine.dispose()
    assert rows[0].data_gap and rows[0].outcome == "answered" and rows[0].agent == "agent1"
    assert len(gaps) == 1 and gaps[0].gap_to is not None and gaps[0].calls_closed == 1
    assert gaps[0].gap_from <= gaps[0].gap_to
    assert visits[0].data_gap


async def test_postgres_stopped_mid_stream_gives_the_same_rows(
    own_postgres: OwnPostgres, tmp_path: Any
) -> None:
    payload = many(SCENARIOS)
    cut = len(payload) // 3
    first, second = payload[:cut], payload[cut:]
    server = ReplayServer(
        payloads=[first + second], chunk_sizes=lambda: iter(lambda: 4096, 0), pace=0.002
    )
    async with server as pbx, service(own_postgres.url, pbx.port, tmp=tmp_path) as svc:
        await wait_for(lambda: _logins(pbx, 1))
        own_postgres.stop()  # the database goes away while events stream in

        async def writer_held_back() -> bool:
            return (await svc.rt.writer.check()).state in ("retrying", "spilling")

        await wait_for(writer_held_back, what="the writer retrying or spilling")
        r = await svc.client.get("/ready")
        assert r.status_code == 503 and r.json()["parts"]["database"]["ok"] is False
        own_postgres.start()
        await wait_for(lambda: _has_rows(own_postgres.url, len(SCENARIOS)), within=30)
        await svc.rt.writer.drained()
        rows = await ended_calls(own_postgres.url)
    assert comparable(rows) == pure_rows()


async def test_garbage_and_oversized_frames_are_counted_and_skipped(
    pg_url: str, tmp_path: Any
) -> None:
    cap = load_capture("01_answered")
    junk = (
        b"this is not AMI\r\n\r\n\x00\xff\xfe\r\n\r\n"
        b"Event: Huge\r\nData: " + b"x" * 400_000 + b"\r\n\r\n"
    )
    data = stream(cap, timestamps=True)
    i = data.index(b"Event: QueueCallerJoin")
    async with (
        ReplayServer(payloads=[data[:i] + junk + data[i:]]) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _has_rows(pg_url, 1))
        metrics = (await svc.client.get("/metrics")).text
        assert (await svc.client.get("/ready")).status_code == 200
    check_row((await ended_calls(pg_url))[0], EXPECTED["01_answered"])
    malformed = next(
        line for line in metrics.splitlines() if line.startswith("acd_ami_malformed_frames_total")
    )
    assert float(malformed.split()[-1]) == 3.0


async def test_a_garbled_timestamp_neither_drops_the_link_nor_the_call(
    pg_url: str, tmp_path: Any
) -> None:
    # A Timestamp beyond datetime's range in the middle of a call, in the same read as
    # the rest of it: the event takes the receive time, and nothing after it is lost.
    cap = load_capture("01_answered")
    data = stream(cap, timestamps=True)
    i = data.index(b"Event: QueueCallerJoin")
    garbled = b"Event: DeviceStateChange\r\nTimestamp: 99999999999999.5\r\n"
    garbled += b"Device: PJSIP/agent9\r\nState: INUSE\r\n\r\n"
    async with (
        ReplayServer(payloads=[data[:i] + garbled + data[i:]]) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _has_rows(pg_url, 1))
        await asyncio.sleep(0.3)  # a window in which a dropped link would have reconnected
        assert pbx.logins == 1  # the link stayed up
        assert (await svc.client.get("/ready")).status_code == 200
    check_row((await ended_calls(pg_url))[0], EXPECTED["01_answered"])


async def test_danish_pause_reason_survives_tcp_and_lands_in_the_database(
    pg_url: str, tmp_path: Any
) -> None:
    from app.store.models import AgentStateChange

    cap = load_capture("05_ami_actions")
    async with (
        ReplayServer(
            payloads=[stream(cap, timestamps=True)], chunk_sizes=lambda: iter(lambda: 7, 0)
        ) as pbx,
        service(pg_url, pbx.port, tmp=tmp_path) as svc,
    ):
        await wait_for(lambda: _has_rows(pg_url, 1))
        await svc.rt.writer.drained()
    engine = create_engine(pg_url)
    async with session_factory(engine)() as s:
        reasons = set((await s.execute(select(AgentStateChange.reason))).scalars())
    await engine.dispose()
    assert {"Møde", "Frokost"} <= reasons


async def test_a_hung_asterisk_is_detected_by_ping_and_reconnected(
    sqlite_url: str, tmp_path: Any
) -> None:
    async with (
        ReplayServer(answer_pings=False) as pbx,
        service(sqlite_url, pbx.port, tmp=tmp_path) as svc,
    ):
        link = svc.rt.ami
        link.ping_interval, link.ping_timeout = 0.3, 0.3
        await wait_for(lambda: _logins(pbx, 2), within=15)
    assert pbx.actions.count("Ping") >= 1


# ---- a restart of the service itself (not only of the link) --------------------------

TRANSFER_ID = "1795362472.15"  # 09_blindtransfer's Linkedid


def _cut_at_nth(cap_name: str, marker: bytes, n: int) -> tuple[bytes, bytes]:
    data = stream(load_capture(cap_name), timestamps=True)
    i = -1
    for _ in range(n):
        i = data.index(marker, i + 1)
    return data[:i], data[i:]


async def _stored(url: str) -> tuple[list[Call], list[QueueVisit], list[DataGap]]:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        calls = (await s.execute(select(Call))).scalars().all()
        visits = (await s.execute(select(QueueVisit).order_by(QueueVisit.seq))).scalars().all()
        gaps = (await s.execute(select(DataGap))).scalars().all()
    await engine.dispose()
    return list(calls), list(visits), list(gaps)


async def _first_service_until_second_visit(pg_url: str, pbx: ReplayServer, tmp: Any) -> None:
    """The first process follows the call into its second queue, then stops."""
    async with service(pg_url, pbx.port, tmp=tmp) as svc:

        async def in_second_queue() -> bool:
            call = svc.rt.pipeline.centre.calls.get(TRANSFER_ID)
            return call is not None and len(call.visits) == 2

        await wait_for(in_second_queue)
        await svc.rt.writer.drained()


async def test_a_service_restart_mid_call_continues_the_call_and_keeps_its_visits(
    pg_url: str, tmp_path: Any
) -> None:
    """Stopped while the transferred caller rings agent3 in the second queue; the new
    process reads the call back from the log and continues it: the stored first visit is
    not overwritten, the keys are kept, and the rows are those of an uninterrupted run."""
    first, rest = _cut_at_nth("09_blindtransfer", b"Event: AgentConnect", 2)
    server = ReplayServer(payloads=[first, rest])
    server.list_items["CoreShowChannels"] = [
        core_show_channel("PJSIP/trunk-0000000f", TRANSFER_ID, TRANSFER_ID, "00:00:12"),
        core_show_channel("PJSIP/agent3-00000011", "1795362481.17", TRANSFER_ID, "00:00:02"),
    ]
    async with server as pbx:
        await _first_service_until_second_visit(pg_url, pbx, tmp_path)
        async with service(pg_url, pbx.port, tmp=tmp_path, user="admin2"):
            await wait_for(lambda: _has_rows(pg_url, 1))
    calls, visits, gaps = await _stored(pg_url)
    assert len(calls) == 1
    check_row(calls[0], EXPECTED["09_blindtransfer"])
    assert not calls[0].data_gap
    assert [(v.seq, v.queue, v.outcome, v.agent, v.complete_reason) for v in visits] == [
        (1, "dagpenge", "answered", "agent2", "transfer"),
        (2, "kontanthjaelp", "answered", "agent3", "caller"),
    ]
    pure = replay_pure("09_blindtransfer")
    for v in visits:
        want = pure.visits[(TRANSFER_ID, v.seq)]
        assert v.wait_seconds == pytest.approx(want.wait_seconds, abs=0.01)  # type: ignore[attr-defined]
        assert v.talk_seconds == pytest.approx(want.talk_seconds, abs=0.01)  # type: ignore[attr-defined]
    # The first process's stop opened a gap; the second closed it at its first resync.
    # (The second one's own stop leaves the next open one.)
    closed = [(g.reason, g.calls_closed) for g in gaps if g.gap_to is not None]
    assert closed == [("service restart", 0)]
    assert len(gaps) == 2


async def test_a_call_that_ended_while_the_service_was_down_is_closed_from_its_log(
    pg_url: str, tmp_path: Any
) -> None:
    first, _rest = _cut_at_nth("09_blindtransfer", b"Event: AgentConnect", 2)
    server = ReplayServer(payloads=[first, b""])  # when the new process looks: all gone
    async with server as pbx:
        await _first_service_until_second_visit(pg_url, pbx, tmp_path)
        async with service(pg_url, pbx.port, tmp=tmp_path, user="admin2"):
            await wait_for(lambda: _has_rows(pg_url, 1))
    calls, visits, gaps = await _stored(pg_url)
    assert len(calls) == 1
    call = calls[0]
    assert call.data_gap and call.outcome == "answered" and call.agent == "agent2"
    assert call.keys == "1" and call.transferred_to == "kontanthjaelp"
    assert [(v.seq, v.queue, v.outcome) for v in visits] == [
        (1, "dagpenge", "answered"),
        (2, "kontanthjaelp", "abandoned"),
    ]
    assert visits[1].data_gap and not visits[0].data_gap
    gap = next(g for g in gaps if g.gap_to is not None)
    assert gap.reason == "service restart" and gap.calls_closed == 1
    assert call.ended_at == gap.gap_from  # the best we know: up until we stopped watching
