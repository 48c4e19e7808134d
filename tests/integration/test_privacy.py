"""Personal data over time, against PostgreSQL: a simulated day purged with a short
retention keeps its report; one caller among many erased leaves no trace in any table,
column, file or spill file, and everyone else as they were; audited with who and why."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app import jsoncodec
from app.acd.records import CallRecord, EventRecord, SurveyRecord
from app.cli import main
from app.messages import MessageFiles
from app.privacy import CallerPrivacy, mask_number
from app.reports.build import build_report
from app.reports.model import Report
from app.reports.periods import span
from app.retention import RetentionConfig
from app.services import privacy as use
from app.store import callbacks as tasks
from app.store.db import create_engine, session_factory
from app.store.models import (
    AgentStateChange,
    AuditLog,
    Call,
    Callback,
    CallEvent,
    DeadLetter,
    Disposition,
    QueueVisit,
    ReportDay,
    SurveyResponse,
)
from app.store.registrations import put_disposition
from app.store.tables import encode
from app.store.writer import SpillFile
from tests.privacy_support import load_day, number_of
from tests.report_support import TZ, local

KEY = "privacy-test-caller-hash-key-0123"
DAY = date(2014, 11, 3)  # a Monday
SHORT = RetentionConfig(
    raw_frames=1,
    events=1,
    calls=1,
    surveys=1,
    callbacks=1,
    sealed_numbers=1,
    voice_messages=1,
    agent_states=1,
    audit_log=180,
    dead_letters=1,
    spill_files=1,
    stored_reports=1,
)


def privacy() -> CallerPrivacy:
    return CallerPrivacy(KEY.encode())


async def report_of(url: str, ctx: Any, now: datetime, first: date, last: date) -> Report:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            return await build_report(
                session, period=span(first, last), by="queue", ctx=ctx, now=now
            )
    finally:
        await engine.dispose()


def figures(report: Report) -> Any:
    return (
        report.centre.model_dump(exclude={"tasks_overdue"}),
        [g.model_dump(exclude={"tasks_overdue"}) for g in report.groups],
    )


async def counts_of(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            out = {}
            for model in (
                Call,
                QueueVisit,
                CallEvent,
                SurveyResponse,
                Callback,
                Disposition,
                AgentStateChange,
                DeadLetter,
            ):
                out[model.__tablename__] = int(
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
            return out
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------------------
# Purge
# --------------------------------------------------------------------------------------


async def _handle_all_tasks(url: str, at: datetime) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            rows = (await session.execute(select(Callback))).scalars().all()
            for row in rows:
                tasks.complete(row, "reached", "ringede tilbage", at)
            return len(rows)
    finally:
        await engine.dispose()


async def test_a_day_purged_with_a_short_retention_keeps_its_report(
    pg_url: str, tmp_path: Path
) -> None:
    msgs = tmp_path / "messages"
    msgs.mkdir()
    day = await load_day(pg_url, DAY, privacy(), msgs, callers=300)
    assert day.ctx is not None
    handled = await _handle_all_tasks(pg_url, local(DAY, 16))
    assert handled > 10 and len(day.recordings) > 5
    engine = create_engine(pg_url)
    now = local(DAY + timedelta(days=200), 12)
    recent = now - timedelta(hours=2)
    try:
        async with session_factory(engine).begin() as session:
            for i in range(50):
                session.add(
                    AgentStateChange(
                        pbx="pbx1", event_key=f"s{i}", at=local(DAY, 9, i), agent_id="agent1",
                        interface="PJSIP/agent1", state="paused", reason="lunch", source="ami",
                    )
                )  # fmt: skip
            session.add(
                AgentStateChange(
                    pbx="pbx1", event_key="recent", at=recent, agent_id="agent1",
                    interface="PJSIP/agent1", state="available", source="ami",
                )
            )  # fmt: skip
            session.add(AuditLog(at=local(DAY, 10), actor="a", role="admin", action="x",
                                 method="GET", path="/v1/calls", status_code=200))  # fmt: skip
            session.add(AuditLog(at=recent, actor="b", role="admin", action="y",
                                 method="GET", path="/v1/calls", status_code=200))  # fmt: skip
    finally:
        await engine.dispose()
    before = await counts_of(pg_url)
    assert before["calls"] == 300 and before["call_events"] > 3000
    # The report of the day, counted long after it: its tallies are final.
    first = await report_of(pg_url, day.ctx, now, DAY, DAY)
    assert first.centre.calls == 300 and first.data_quality.days_recomputed == 1

    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    files = MessageFiles(None, lambda: [str(msgs)])
    try:
        async with sessions() as session:
            final = (await session.execute(select(ReportDay))).scalars().all()
            assert DAY in {d.day for d in final} and all(d.final for d in final)
        kw: dict[str, Any] = {
            "retention": SHORT, "now": now, "tz": TZ, "files": files,
            "spill_dir": tmp_path / "spill", "ctx": day.ctx,
        }  # fmt: skip
        dry = await use.purge(sessions, dry_run=True, **kw)
        assert await counts_of(pg_url) == before  # a dry run deletes nothing
        assert all(p.exists() for p in day.recordings.values())
        done = await use.purge(sessions, batching=use.store.Batching(batch=500, pause=0), **kw)
    finally:
        await engine.dispose()
    for kind in ("calls", "events", "surveys", "callbacks", "agent_states", "audit_log"):
        assert done.counts[kind] == dry.counts[kind], kind
    assert done.report_detail_before is not None and done.report_detail_before > DAY
    after = await counts_of(pg_url)
    assert after["calls"] == 0 and after["queue_visits"] == 0 and after["call_events"] == 0
    assert after["survey_responses"] == 0 and after["callbacks"] == 0
    assert after["agent_state_changes"] == 1  # the recent one
    assert done.counts["calls"] == 300 and done.counts["queue_visits"] == before["queue_visits"]
    assert done.counts["audit_log"] == 1
    assert not any(p.exists() for p in day.recordings.values())
    # The day's report, read from its tallies, is what it was.
    again = await report_of(pg_url, day.ctx, now, DAY, DAY)
    assert again.data_quality.days_from_rollup == 1 and again.data_quality.days_recomputed == 0
    assert figures(again) == figures(first)


async def test_detail_of_a_day_whose_tallies_are_not_final_is_kept(
    pg_url: str, tmp_path: Path
) -> None:
    msgs = tmp_path / "m"
    msgs.mkdir()
    day = await load_day(pg_url, DAY, privacy(), msgs, callers=40)
    now = local(DAY + timedelta(days=200), 12)
    assert day.ctx is not None
    await report_of(pg_url, day.ctx, local(DAY + timedelta(days=1), 12), DAY, DAY)  # not final
    engine = create_engine(pg_url)
    try:
        sessions = session_factory(engine)
        done = await use.purge(
            sessions, retention=SHORT, now=now, tz=TZ, files=MessageFiles(None, list),
            spill_dir=tmp_path, ctx=None,
        )  # fmt: skip
    finally:
        await engine.dispose()
    assert done.report_detail_before is not None and done.report_detail_before <= DAY
    assert done.counts["calls"] == 0 and done.counts["events"] == 0
    assert done.counts["raw_frames"] > 0  # the raw frames have no report to wait for
    assert (await counts_of(pg_url))["calls"] == 40


# --------------------------------------------------------------------------------------
# A citizen's erasure
# --------------------------------------------------------------------------------------

THEIRS = "+4520123477"
THEIR_CALLS = [("1415099001.901", THEIRS), ("1415099002.902", THEIRS), ("1415099003.903", THEIRS)]


async def _text_columns(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN "
                    "('text', 'character varying', 'json', 'jsonb', 'character') "
                    "AND table_name <> 'alembic_version' ORDER BY 1, 2"
                )
            )
            return [(t, c) for t, c in rows]
    finally:
        await engine.dispose()


async def _traces(url: str, needles: list[str]) -> list[tuple[str, str, str]]:
    columns = await _text_columns(url)
    assert ("calls", "caller_hash") in columns and ("call_events", "raw") in columns
    engine = create_engine(url)
    found = []
    try:
        async with engine.connect() as conn:
            for table, column in columns:
                for needle in needles:
                    n = await conn.scalar(
                        text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE :n'),
                        {"n": f"%{needle}%"},
                    )
                    if n:
                        found.append((table, column, needle))
    finally:
        await engine.dispose()
    return found


def _spill(path: Path, p: CallerPrivacy, others: list[str]) -> dict[str, bytes]:
    """A spill file with records of the erased caller (a call not in the database yet)
    and of others, as the writer appends them."""
    at = local(DAY, 15)
    theirs_hash = p.hash(THEIRS)
    lines: dict[str, bytes] = {}
    records: list[tuple[str, Any]] = [
        (
            "their_call",
            CallRecord(  # type: ignore[call-arg]
                **_call_fields("1415099009.909", theirs_hash, mask_number(THEIRS), at)
            ),
        ),
        (
            "their_event",
            EventRecord(
                "pbx1",
                "k909",
                at,
                at,
                "1415099009.909",
                "1415099009.909",
                "ami",
                "channel_created",
                {"caller": {"hash": theirs_hash, "display": mask_number(THEIRS)}},
                {"CallerIDNum": theirs_hash},
            ),
        ),
        (
            "their_survey",
            SurveyRecord("pbx1", "1415099009.909", "agent1", "dagpenge", at, 1, 2, 3, True),
        ),
    ]
    for i, number in enumerate(others):
        h = p.hash(number)
        records.append(
            (
                f"other{i}",
                CallRecord(  # type: ignore[call-arg]
                    **_call_fields(f"1415088{i:03d}.5{i}", h, mask_number(number), at)
                ),
            )
        )
    with path.open("wb") as fh:
        for name, record in records:
            line = jsoncodec.dumps_bytes(encode(record)) + b"\n"
            lines[name] = line
            fh.write(line)
    return lines


def _call_fields(lid: str, h: str, display: str, at: datetime) -> dict[str, Any]:
    import dataclasses

    fields = {f.name for f in dataclasses.fields(CallRecord)}
    base: dict[str, Any] = {
        "pbx": "pbx1", "linkedid": lid, "caller_hash": h, "caller_display": display,
        "dialled": "82565682", "keys": "2", "queue": "dagpenge", "started_at": at,
        "queue_entered_at": at, "answered_at": None, "ended_at": at + timedelta(minutes=2),
        "wait_seconds": 120.0, "ring_seconds": None, "talk_seconds": None, "agent": None,
        "outcome": "abandoned", "transferred_to": None, "hangup_cause": 16,
        "survey_flagged": False, "data_gap": False,
    }  # fmt: skip
    return {k: v for k, v in base.items() if k in fields}


async def test_erasing_one_caller_among_many_leaves_no_trace(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    msgs, spill = tmp_path / "messages", tmp_path / "spill"
    msgs.mkdir()
    spill.mkdir()
    p = privacy()
    day = await load_day(pg_url, DAY, p, msgs, callers=200, special=THEIR_CALLS)
    assert day.ctx is not None
    their_hash = p.hash(THEIRS)
    their_display = mask_number(THEIRS)
    assert their_display == "+45 ••••••77"
    engine = create_engine(pg_url)
    try:
        async with session_factory(engine).begin() as session:
            calls = {c.linkedid: c for c in (await session.execute(select(Call))).scalars()}
            assert calls["1415099001.901"].caller_hash == their_hash
            await put_disposition(
                session, call_id=calls["1415099001.901"].id, agent_id="agent1", queue="dagpenge",
                reason="payment", resolved=True, transferred_to=None,
                note="Borgeren Jens Hansen spurgte om sin udbetaling", now=local(DAY, 10),
            )  # fmt: skip
            session.add(
                DeadLetter(
                    at=local(DAY, 11), digest="d" * 32, target="calls", pbx="pbx1",
                    record_key="pbx1/1415099002.902", error="value too long", sqlstate="22001",
                    record=_call_fields("1415099002.902", their_hash, their_display,
                                        local(DAY, 11)) | {"started_at": "x", "ended_at": "y",
                                                           "queue_entered_at": "z", "t": "call"},
                )
            )  # fmt: skip
        async with session_factory(engine)() as session:
            others_before = sorted(
                (c.linkedid, c.caller_hash, c.caller_display, c.outcome)
                for c in (await session.execute(select(Call))).scalars()
                if c.caller_hash != their_hash
            )
            surveys_before = int(
                await session.scalar(select(func.count()).select_from(SurveyResponse)) or 0
            )
    finally:
        await engine.dispose()
    their_sealed = [day.sealed[lid] for lid, _ in THEIR_CALLS if lid in day.sealed]
    their_files = [day.recordings[lid] for lid, _ in THEIR_CALLS if lid in day.recordings]
    other_files = [f for lid, f in day.recordings.items() if lid not in dict(THEIR_CALLS)]
    assert len(their_sealed) == 1 and len(their_files) == 1 and other_files
    others = [number_of(i) for i in range(5)]
    spill_lines = _spill(spill / "spill-pbx1.jsonl", p, others)
    now = local(DAY, 17)
    first = await report_of(pg_url, day.ctx, now, DAY, DAY)
    needles = [their_hash, their_display, json.dumps(their_display)[1:-1], *their_sealed,
               *(lid for lid, _ in THEIR_CALLS), "1415099009.909", "Jens Hansen"]  # fmt: skip
    assert {n for _, _, n in await _traces(pg_url, needles)} >= {their_hash, their_display}

    for name, value in {
        "ACD_DATABASE_URL": pg_url, "ACD_CALLER_HASH_KEY": KEY, "ACD_SPILL_DIR": str(spill),
        "ACD_MESSAGE_DIR": str(msgs), "ACD_IVR_FLOWS": str(Path(__file__).parents[2] / "ivr_flows"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    argv = ["privacy", "erase", "--caller", "20 12 34 77", "--reason", "sag 2026-0193"]
    assert await asyncio.to_thread(main, [*argv, "--as", "dpo"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["calls"] == 3 and counts["survey_responses"] == 1
    assert counts["callbacks"] == 2 and counts["message_files"] == 1
    assert counts["dispositions"] == 1 and counts["dead_letters"] == 1
    assert counts["call_events"] > 20 and counts["spill_records"] == 3

    # No trace of them in any text column of any table ...
    traces = await _traces(pg_url, needles)
    assert traces == [], traces
    # ... nor in the files: their message is gone, the others' are there.
    assert not any(f.exists() for f in their_files)
    assert all(f.exists() for f in other_files)
    data = (spill / "spill-pbx1.jsonl").read_bytes()
    for needle in needles:
        assert needle.encode() not in data, needle
    for name, line in spill_lines.items():
        if name.startswith("other"):
            assert line in data  # untouched, in place
    records, _ = SpillFile(spill / "spill-pbx1.jsonl").read(100)
    assert len(records) == 3 + len(others)  # every line still a record the writer reads
    survey = next(r for r in records if isinstance(r, SurveyRecord))
    assert (survey.friendliness, survey.wait, survey.overall) == (None, None, None)

    # Everyone else is as they were; the report still adds up to the same calls.
    engine = create_engine(pg_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(Call))).scalars().all()
            others_after = sorted(
                (c.linkedid, c.caller_hash, c.caller_display, c.outcome)
                for c in rows
                if c.caller_display != "slettet"
            )
            erased = [c for c in rows if c.caller_display == "slettet"]
            surveys_after = int(
                await session.scalar(select(func.count()).select_from(SurveyResponse)) or 0
            )
            audit = (
                (await session.execute(select(AuditLog).where(AuditLog.action == "privacy.erase")))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert others_after == others_before
    assert len(erased) == 3 and len({c.caller_hash for c in erased}) == 1
    assert surveys_after == surveys_before - 1
    assert len(audit) == 1 and audit[0].actor == "dpo"
    assert audit[0].detail is not None and audit[0].detail["reason"] == "sag 2026-0193"
    assert audit[0].detail["counts"]["calls"] == 3
    after = await report_of(pg_url, day.ctx, now, DAY, DAY)
    for figure in ("calls", "offered", "answered", "abandoned", "talked"):
        assert getattr(after.centre, figure) == getattr(first.centre, figure), figure
    assert sum(g.offered for g in after.groups) == sum(g.offered for g in first.groups)

    # Export finds nothing of them any more.
    assert (
        await asyncio.to_thread(
            main, ["privacy", "export", "--caller", THEIRS, "--reason", "sag 2026-0193"]
        )
        == 0
    )
    exported = json.loads(capsys.readouterr().out)
    assert use.is_empty(exported), exported


async def test_export_prints_every_call_visit_answer_message_and_task(
    pg_url: str, tmp_path: Path
) -> None:
    msgs = tmp_path / "messages"
    msgs.mkdir()
    p = privacy()
    await load_day(pg_url, DAY, p, msgs, callers=30, special=THEIR_CALLS)
    engine = create_engine(pg_url)
    try:
        sessions = session_factory(engine)
        out = await use.export(sessions, p, THEIRS, MessageFiles(None, lambda: [str(msgs)]))
    finally:
        await engine.dispose()
    assert [c["caller"] for c in out["calls"]] == ["+45 ••••••77"] * 3
    assert len(out["queue_visits"]) >= 1 and len(out["callbacks"]) == 2
    assert [(a["friendliness"], a["wait"], a["overall"]) for a in out["survey_answers"]] == [
        (2, 3, 1)
    ]
    assert len(out["messages"]) == 1 and out["messages"][0]["bytes"] > 0
    assert out["events"] > 20
    assert all(THEIRS not in json.dumps(out) for _ in [0])  # never the number itself
    assert datetime.fromisoformat(out["calls"][0]["started_at"]).tzinfo == UTC


# --------------------------------------------------------------------------------------
# Key rotation
# --------------------------------------------------------------------------------------

NEW_KEY = "privacy-test-NEW-caller-hash-key-4567"


async def test_rotation_under_load_loses_nothing_and_rekeys_every_hash(
    pg_url: str, tmp_path: Path
) -> None:
    from app.services import rekey
    from tests.privacy_support import load_day as load

    msgs = tmp_path / "m"
    msgs.mkdir()
    old = CallerPrivacy(KEY.encode())
    first = await load(pg_url, DAY, old, msgs, callers=300)
    rotated = CallerPrivacy(NEW_KEY.encode(), previous=KEY.encode())
    sample = first.numbers[first.scripts[0].id]
    sample_calls = sum(1 for n in first.numbers.values() if n == sample)
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    files = MessageFiles(None, list)
    looked: list[int] = []
    state = rekey.Rekey()

    async def look_ups() -> None:
        while True:
            found = await use.export(sessions, rotated, sample, files)
            looked.append(len(found["calls"]))
            await asyncio.sleep(0.01)

    try:
        watcher = asyncio.create_task(look_ups())
        # Under load: the next day's calls written with the new key meanwhile.
        load_task = asyncio.create_task(
            load(pg_url, DAY + timedelta(days=1), rotated, msgs, callers=300)
        )
        result = await rekey.run_rekey(
            sessions, rotated, state, prefixes=("+45200",), digits=5, batch=200, pause=0
        )
        second = await load_task
        again = await rekey.run_rekey(sessions, rotated, state, prefixes=("+45200",), digits=5)
        watcher.cancel()
        async with sessions() as session:
            calls = (await session.execute(select(Call))).scalars().all()
            cbs = (await session.execute(select(Callback))).scalars().all()
            events = (
                (await session.execute(select(CallEvent).where(CallEvent.kind == "ivr_started")))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    numbers = first.numbers | second.numbers
    assert len(calls) == 600  # no call record lost
    assert all(c.caller_hash == rotated.hash(numbers[c.linkedid]) for c in calls)
    assert result.found >= 250 and result.unresolved == 0 and result.calls == 300
    assert result.sealed == len(first.sealed) > 0
    new_only = CallerPrivacy(NEW_KEY.encode())
    assert all(new_only.unseal(t.number_sealed) for t in cbs if t.number_sealed)
    assert all(t.caller_hash == rotated.hash(numbers[t.linkedid]) for t in cbs)
    assert len(events) == 600
    for e in events:
        assert e.data["caller"]["hash"] == rotated.hash(numbers[e.linkedid or ""])
        assert e.raw is not None and e.raw["CallerIDNum"] == e.data["caller"]["hash"]
    assert again.changed == 0  # done: the previous key may go
    # Look-ups found the sample caller's calls all along (the next day's call with
    # them once written): never one less, re-keyed or not.
    assert len(looked) > 5 and looked[0] == sample_calls
    assert looked == sorted(looked) and looked[-1] <= 2 * sample_calls
    engine = create_engine(pg_url)
    try:
        final = await use.export(session_factory(engine), rotated, sample, files)
    finally:
        await engine.dispose()
    assert len(final["calls"]) == 2 * sample_calls
