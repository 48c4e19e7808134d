"""The lease of a PBX (app/ha/lease.py) and its fence, against PostgreSQL; the relay's
event codec and the survey count shared through Redis (app/ha/relay.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from app.acd import events as ev
from app.acd.records import Record
from app.agi.session import SessionDeps
from app.clock import PbxClock
from app.ha.lease import Lease
from app.ha.relay import (
    ClockShare,
    Handoff,
    RelayReceiver,
    RelaySender,
    SharedCounter,
    decode,
    encode,
)
from app.metrics import Metrics
from app.privacy import Caller
from app.runtime import build_runtime
from app.settings import load_settings
from app.store.db import create_engine, session_factory
from app.store.models import Call, CallEvent, PbxLease
from app.store.writer import EventWriter, Fenced, PostgresBackend
from tests.integration.test_writer import all_records
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

TTL = 1.0


async def test_one_holder_and_a_takeover_after_expiry_raises_the_epoch(pg_url: str) -> None:
    a, b = Lease(pg_url, "pbx1", ttl=TTL), Lease(pg_url, "pbx1", ttl=TTL)
    try:
        first = await a.try_acquire()
        assert first is not None and (first.epoch, first.cause, first.previous) == (1, "first", "")
        assert a.held and a.token() == ("pbx1", 1)
        assert await b.try_acquire() is None  # held: the other waits
        assert await a.renew()
        await asyncio.sleep(TTL * 1.3)  # a stops renewing (paused, dead)
        assert not a.held  # its own clock says so before anyone else acts
        taken = await b.try_acquire()
        assert taken is not None and (taken.epoch, taken.cause) == (2, "expired")
        assert taken.previous == a.holder
        assert not await a.renew()  # it learns it lost the lease
        assert a.token() == ("pbx1", -1)
        await b.release()
        c = Lease(pg_url, "pbx1", ttl=TTL)
        again = await c.try_acquire()  # at once: released, not expired
        assert again is not None and (again.epoch, again.cause) == (3, "released")
        await c.close()
    finally:
        await a.close()
        await b.close()
    engine = create_engine(pg_url)
    async with session_factory(engine)() as s:
        row = (await s.execute(select(PbxLease))).scalar_one()
    await engine.dispose()
    assert (row.epoch, row.handovers, row.cause) == (3, 2, "released")


async def test_leases_of_two_pbxs_are_apart(pg_url: str) -> None:
    a, b = Lease(pg_url, "pbx1", ttl=TTL), Lease(pg_url, "pbx2", ttl=TTL)
    try:
        assert await a.try_acquire() is not None
        assert await b.try_acquire() is not None
    finally:
        await a.close()
        await b.close()


async def count_calls(url: str) -> int:
    """Rows of the log: events and calls."""
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        n = 0
        for model in (Call, CallEvent):
            n += int((await s.execute(select(func.count()).select_from(model))).scalar_one())
    await engine.dispose()
    return n


async def test_the_database_refuses_a_deposed_owners_writes(pg_url: str, tmp_path: Path) -> None:
    old, new = Lease(pg_url, "pbx1", ttl=TTL), Lease(pg_url, "pbx1", ttl=TTL)
    records: list[Record] = all_records()
    fenced_calls: list[int] = []
    try:
        assert await old.try_acquire() is not None
        stale = old.token()  # what a paused owner still carries
        writer = EventWriter(
            PostgresBackend(pg_url, fence=lambda: stale),
            Metrics(),
            tmp_path / "spill.jsonl",
            on_fenced=lambda: fenced_calls.append(1),
        )
        await writer.start()
        writer.submit(records[:20])
        await writer.drained()
        written = await count_calls(pg_url)
        assert written > 0 and writer.fenced == 0  # its lease: written
        await asyncio.sleep(TTL * 1.3)
        assert await new.try_acquire() is not None  # taken over
        writer.submit(records[20:])
        await writer.drained()
        await writer.stop()
        assert await count_calls(pg_url) == written  # nothing after the handover
        assert writer.fenced == len(records) - 20 and fenced_calls
        assert writer.spill.pending == 0  # not kept for a later run either
        backend = PostgresBackend(pg_url, fence=lambda: stale)
        with pytest.raises(Fenced):
            await backend.set_aside([])
        await backend.close()
    finally:
        await old.close()
        await new.close()


async def test_a_takeover_waits_for_a_write_under_way_then_fences_the_next(pg_url: str) -> None:
    """The fence's share lock: the takeover cannot slip between the check and the commit
    of a write under way."""
    import asyncpg  # type: ignore[import-untyped]

    old, new = Lease(pg_url, "pbx1", ttl=0.6), Lease(pg_url, "pbx1", ttl=0.6)
    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await old.try_acquire() is not None
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT acd_fence($1, $2)", *old.token())
        await asyncio.sleep(0.8)  # expired meanwhile, the write still under way
        started = time.monotonic()
        taking = asyncio.create_task(new.try_acquire())
        await asyncio.sleep(0.3)
        assert not taking.done()  # waits for the write's commit
        await tx.commit()
        assert await taking is not None and time.monotonic() - started >= 0.3
        with pytest.raises(asyncpg.PostgresError) as refused:
            async with conn.transaction():
                await conn.execute("SELECT acd_fence($1, $2)", "pbx1", 1)
        assert refused.value.sqlstate == "AC001"
    finally:
        await conn.close()
        await old.close()
        await new.close()


def test_every_menu_event_crosses_the_relay_unchanged() -> None:
    at = datetime(2014, 11, 4, 8, 0, 30, tzinfo=UTC)
    base: dict[str, Any] = {"at": at, "pbx": "pbx1", "key": "agi:1.1:ivr:1", "linkedid": "1.1"}
    caller = Caller("ab" * 32, "+45 12 XX XX 78")
    samples: list[ev.DomainEvent] = [
        ev.IvrStarted(
            **base, flow="main", script="ivr", caller=caller, dialled="82565682", channel="c"
        ),
        ev.IvrKey(**base, menu="m", digit="3", valid=True),
        ev.IvrRouted(**base, queue="q", menu="m", estimated_wait_seconds=12.5),
        ev.IvrClosed(**base, reason="hours", next_open=at),
        ev.IvrCallbackAccepted(
            **base, queue="q", task="callback", caller=caller, number_sealed="sealed"
        ),
        ev.IvrEnded(**base, reason="callback", menu="m"),
        ev.SurveyAnswered(**base, question="overall", value=4),
    ]
    for event in samples:
        back = decode(encode(event))
        assert type(back) is type(event)
        assert dataclasses.asdict(back) == dataclasses.asdict(event)  # type: ignore[call-overload]


def menu_key(digit: str) -> ev.IvrKey:
    """A key pressed by the caller of call 1.1, as its FastAGI session makes the event."""
    at = datetime(2014, 11, 4, 8, 0, 30, tzinfo=UTC)
    base = {"pbx": "pbx1", "linkedid": "1.1", "uniqueid": "1.1"}
    return ev.IvrKey(at=at, key=f"agi:1.1:key:{digit}", menu="m", digit=digit, valid=True, **base)


async def test_a_new_owners_own_events_wait_behind_what_was_relayed_before_them(
    redis_url: str,
) -> None:
    """A caller presses 3 and 2 on a standby's FastAGI while no process owns the PBX (the
    first still in that process's sender, the second in the stream), then 1 just after
    that process has taken the PBX over, before its relay receiver has read the backlog:
    the owner's pipeline gets 3, 2, 1 (it got 1, 3, 2 when the owner's own events went
    straight in)."""
    client = Redis.from_url(redis_url)
    sender = RelaySender(client, "pbx1", Metrics())
    got: list[str] = []

    def pipeline(event: ev.DomainEvent) -> None:
        assert isinstance(event, ev.IvrKey)
        got.append(event.digit)

    handoff = Handoff(pipeline)
    receiver = RelayReceiver(
        client, "pbx1", "new-owner", pipeline, Metrics(), handoff=handoff, settle=sender.drained
    )
    try:
        await sender.start()
        sender.publish(menu_key("3"))
        await sender.drained(3)
        sender.publish(menu_key("2"))  # still queued in the sender at the takeover
        handoff.emit(menu_key("1"))  # the new owner's own, before its receiver has started
        assert got == [] and handoff.holding == 1
        await receiver.start()
        assert got == ["3", "2", "1"] and handoff.holding is None
        handoff.emit(menu_key("9"))  # from here on, straight in
        assert got[-1] == "9"
        await receiver.stop()
        handoff.emit(menu_key("8"))  # deposed: held again (a standby's go to the stream)
        assert got[-1] == "9" and handoff.holding == 1
    finally:
        await receiver.stop()
        await sender.stop()
        await client.aclose()


async def test_an_owner_unsure_of_its_lease_leaves_relayed_events_to_its_successor(
    redis_url: str,
) -> None:
    """An owner resumed after a pause (its lease expired by its own clock) reads entries
    its blocked read got meanwhile: it neither feeds them to its (fenced) pipeline nor
    acknowledges them. Its successor takes them: at its start, and later ones once they
    have been left pending ``abandoned_after``. An owner sure of its lease again (the
    database back) takes what it left pending itself."""
    client = Redis.from_url(redis_url)
    sender = RelaySender(client, "pbx1", Metrics())
    paused: list[str] = []
    successor: list[str] = []
    sure = False

    def to(got: list[str]) -> Any:
        return lambda event: got.append(event.digit)

    old = RelayReceiver(client, "pbx1", "old", to(paused), Metrics(), may_take=lambda: sure)
    new = RelayReceiver(client, "pbx1", "new", to(successor), Metrics(), abandoned_after=0.3)
    try:
        await sender.start()
        sender.publish(menu_key("1"))
        await sender.drained(3)
        await old.start()  # reads "1", unsure: leaves it pending
        assert paused == [] and old._refused
        await new.start()
        assert successor == ["1"]
        await new.stop()
        sender.publish(menu_key("2"))
        await sender.drained(3)
        await old._backlog()  # the paused owner's read got "2"
        assert paused == []
        await asyncio.sleep(0.35)
        await new.reclaim_abandoned()
        assert successor == ["1", "2"] and paused == []
        # The database back: the same owner, sure again, takes what it left pending.
        sender.publish(menu_key("3"))
        await sender.drained(3)
        await old._backlog()
        assert paused == []
        sure = True
        await wait_for(lambda: paused == ["3"], 3)
        assert successor == ["1", "2"]
    finally:
        await old.stop()
        await new.stop()
        await sender.stop()
        await client.aclose()


async def test_the_survey_count_is_shared_by_the_replicas(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        counter = SharedCounter(client, "pbx1")
        flow: Any = type("F", (), {"name": "main", "survey": type("S", (), {"every": 5})()})()
        replicas = [
            SessionDeps(
                pbx="pbx1",
                tz=PbxClock().tz,
                config=None,  # type: ignore[arg-type]
                emit=lambda e: None,
                estimates=lambda q: None,
                privacy=None,  # type: ignore[arg-type]
                metrics=Metrics(),
                clock=PbxClock(),
                counter=counter,
            )
            for _ in range(3)
        ]
        flags = [await replicas[i % 3].sample(flow) for i in range(15)]
        assert flags.count(True) == 3 and [i for i, f in enumerate(flags) if f] == [4, 9, 14]
        # Redis away: each counts on its own, the menu goes on.
        await client.aclose()
        alone = SessionDeps(
            pbx="pbx1",
            tz=PbxClock().tz,
            config=None,  # type: ignore[arg-type]
            emit=lambda e: None,
            estimates=lambda q: None,
            privacy=None,  # type: ignore[arg-type]
            metrics=Metrics(),
            clock=PbxClock(),
            counter=SharedCounter(Redis.from_url("redis://127.0.0.1:1/0"), "pbx1"),
        )
        assert [await alone.sample(flow) for _ in range(5)] == [False] * 4 + [True]
    finally:
        await client.aclose()


async def test_a_standby_follows_the_owners_pbx_clock(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        owner, standby = PbxClock(), PbxClock()
        owner.observe(datetime(2014, 11, 4, 9, tzinfo=UTC), datetime.now(UTC))
        await ClockShare(client, "pbx1", owner).publish()
        await ClockShare(client, "pbx1", standby).follow()
        assert abs((standby.now() - owner.now()).total_seconds()) < 0.1
        assert standby.today().year == 2014
    finally:
        await client.aclose()


async def test_a_deposed_owners_dialer_can_neither_claim_nor_act(pg_url: str) -> None:
    from sqlalchemy.exc import DBAPIError

    from app.dialer import CallbackDialer
    from app.privacy import CallerPrivacy
    from app.settings import load_settings

    old, new = Lease(pg_url, "pbx1", ttl=TTL), Lease(pg_url, "pbx1", ttl=TTL)
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    try:
        assert await old.try_acquire() is not None
        stale = old.token()
        dialer = CallbackDialer(
            load_settings(database_url=pg_url),
            sessions=sessions,
            centre=None,  # type: ignore[arg-type]
            metrics=Metrics(),
            privacy=CallerPrivacy.ephemeral(),
            link=None,
            queue_names=lambda: (),
            clock=PbxClock(),
        )
        dialer.fence = lambda: stale
        dialer.may_act = lambda: old.held
        async with sessions.begin() as session:
            await dialer._fence(session)  # its lease: fine
        assert dialer.may_act()
        await asyncio.sleep(TTL * 1.3)
        assert not dialer.may_act()  # by its own clock, before anyone took over
        assert await new.try_acquire() is not None
        with pytest.raises(DBAPIError) as refused:
            async with sessions.begin() as session:
                await dialer._fence(session)
        assert getattr(refused.value.orig, "sqlstate", None) == "AC001"
    finally:
        await engine.dispose()
        await old.close()
        await new.close()


async def test_an_owner_keeps_its_parts_through_a_database_outage(own_postgres: Any) -> None:
    # The lease lives in the database: while it does not answer nobody can take it, and a
    # write after a takeover is fenced anyway. So an outage is no reason to step down (one
    # process would otherwise exit and record nothing until the database came back); the
    # owner only stops acting on the PBX until a renewal answers.
    from app.ha.ownership import Ownership

    lease = Lease(own_postgres.url, "pbx1", ttl=TTL)
    lost: list[str] = []
    owner = Ownership(
        lease,
        owner_parts=[],
        standby_parts=[],
        metrics=Metrics(),
        renew=TTL / 4,
        poll=TTL / 4,
        wall=lambda: datetime.now(UTC),
        on_lost=lost.append,
    )
    await owner.start()
    try:
        assert owner.role == "owner" and owner.may_act()
        epoch = lease.epoch
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(TTL * 3)
        assert owner.role == "owner" and not lost
        assert not owner.may_act()  # the dialer waits
        health = await owner.check()
        assert health.ok and "unconfirmed" in health.detail["lease"]
        await asyncio.to_thread(own_postgres.start)
        await wait_for(owner.may_act, within=20, what="the lease confirmed again")
        assert owner.may_act() and lease.epoch == epoch and not lost
        assert "lease" not in (await owner.check()).detail
    finally:
        await owner.stop()


@pytest.mark.parametrize("redis", [False, True])
def test_an_owner_unsure_of_its_lease_keeps_its_own_events(pg_url: str, redis: bool) -> None:
    """Through a database outage longer than the lease, an owner's own menu events go
    through Redis when there is one (a successor may be at work), else into its own
    pipeline: never dropped. A standby without Redis has nowhere to send them."""
    settings = load_settings(
        database_url=pg_url,
        redis_url="redis://127.0.0.1:1/0" if redis else None,
        ami_host="127.0.0.1",
        lease="on",
        ivr_flows=str(ROOT / "ivr_flows"),
        caller_hash_key="unsure-owner-test-key-0123456789",
    )
    rt = build_runtime(settings, Metrics())
    ownership = rt.ownership
    assert ownership is not None and (rt.relay is not None) is redis
    got: list[ev.DomainEvent] = []
    rt.listeners = [got.append]
    sent: list[ev.DomainEvent] = []
    if rt.relay is not None:
        rt.relay.publish = sent.append  # type: ignore[method-assign]
    ownership.role, ownership.lease.epoch = "owner", 1
    ownership.lease.valid_until = time.monotonic() - 1  # unconfirmed by its own clock
    assert not ownership.may_act()
    rt.emit(menu_key("4"))
    assert (len(got), len(sent)) == ((0, 1) if redis else (1, 0))
    ownership.role = "standby"
    rt.emit(menu_key("5"))
    assert (len(got), len(sent)) == ((0, 2) if redis else (1, 0))
