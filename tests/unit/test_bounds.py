"""Every value that reaches a typed column fits it by construction: the records' bounds
against the ORM's column types, ``fit`` itself, and hostile AMI values through the
normaliser, the state machine and the resync into records that PostgreSQL takes."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from panoramisk.message import Message
from sqlalchemy import Integer, SmallInteger, String, Text

from app.acd import events as ev
from app.acd.records import (
    BOUNDED,
    BOUNDS,
    DATACLASS_INIT,
    AgentStateRecord,
    CallbackRecord,
    CallRecord,
    EventRecord,
    GapRecord,
    SurveyRecord,
    VisitRecord,
    fit,
    fit_id,
)
from app.acd.resync import resync
from app.acd.state import CallCentre
from app.agi.session import Recorder, SessionDeps
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser, from_message
from app.pipeline import build_snapshot
from app.privacy import CallerPrivacy
from app.store.models import Base
from app.store.tables import SPECS, spec_of
from tests.ami_replay import SCENARIOS, T0, load_capture
from tests.unit.test_ami_normalise import _all_event_classes

NOW = datetime(2026, 11, 22, 15, 45, tzinfo=UTC)
SMALLINT = (-32768, 32767)
INT4 = (-(2**31), 2**31 - 1)


def column_of(table: str, name: str) -> Any:
    return Base.metadata.tables[table].c[name]


def bound_of(column: Any) -> int | str | None:
    """What the ORM says a value must fit: a VARCHAR's length, text, smallint, or None."""
    kind = column.type
    if isinstance(kind, String) and not isinstance(kind, Text) and kind.length is not None:
        return int(kind.length)
    if isinstance(kind, Text | String):
        return "text"
    if isinstance(kind, SmallInteger):
        return "smallint"
    return None


def assert_fits(record: Any) -> None:
    """``record`` as PostgreSQL would take it: lengths, NULs, ranges, NOT NULL, JSON."""
    spec = spec_of(record)
    for name in spec.columns:
        value = getattr(record, name)
        column = column_of(spec.table, name)
        where = f"{spec.table}.{name}={value!r:.80}"
        if value is None:
            assert column.nullable, where
            continue
        bound = bound_of(column)
        if isinstance(value, str):
            assert "\x00" not in value, where
            if isinstance(bound, int):
                assert len(value) <= bound, where
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            low, high = SMALLINT if bound == "smallint" else INT4
            assert low <= value <= high, where
        elif isinstance(value, dict):
            orjson.dumps(value)  # the log's JSON encoder takes it (64-bit integers)


# --------------------------------------------------------------------------------------
# The declared bounds are the schema's
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=[s.table for s in SPECS])
def test_every_text_and_smallint_column_a_record_reaches_is_bounded_as_the_orm_says(
    spec: Any,
) -> None:
    table, bounds = BOUNDS[spec.record]
    assert table == spec.table
    expected = {
        name: bound_of(column_of(spec.table, name))
        for name in spec.columns
        if bound_of(column_of(spec.table, name)) is not None
    }
    assert bounds == expected
    # The columns the writer fills itself (status, source, attempts) fit too.
    for name, value in spec.extra.items():
        bound = bound_of(column_of(spec.table, name))
        if isinstance(value, str) and isinstance(bound, int):
            assert len(value) <= bound, (spec.table, name)
    # Integer columns are the service's own counts, never a PBX value.
    ints = {
        name
        for name in spec.columns
        if isinstance(column_of(spec.table, name).type, Integer)
        and not isinstance(column_of(spec.table, name).type, SmallInteger)
        and bound_of(column_of(spec.table, name)) is None
    }
    assert ints <= {"calls_closed"}, ints


def test_event_kinds_and_sources_fit_their_columns() -> None:
    """The event log's ``kind`` and ``source`` are the event classes' own words."""
    classes = _all_event_classes()
    bounds = BOUNDS[EventRecord][1]
    assert max(len(c.KIND) for c in classes) <= int(bounds["kind"])
    assert max(len(c.SOURCE) for c in classes) <= int(bounds["source"])


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.text(max_size=400), st.integers(min_value=1, max_value=200))
def test_fit_fits_keeps_what_fits_and_is_its_own_fixed_point(value: str, limit: int) -> None:
    out = fit(value, limit)
    assert len(out) <= limit and "\x00" not in out
    assert fit(out, limit) == out
    if len(value) <= limit and "\x00" not in value:
        assert out == value


def test_fit_keeps_the_head_and_tells_long_values_apart() -> None:
    a, b = "x" * 80 + "a", "x" * 80 + "b"
    assert fit(a, 64) != fit(b, 64)
    assert fit(a, 64).startswith("x" * 47) and re.fullmatch(r"x{47}~[0-9a-f]{16}", fit(a, 64))
    assert len(fit("abc" * 10, 8)) == 8  # narrower than the marker: the hash alone
    assert fit("a\x00b", None) == "a\ufffdb"


def test_records_fit_hostile_values_on_the_way_in_and_count_them() -> None:
    before = BOUNDED.copy()
    long = "k" * 100
    record = AgentStateRecord(
        "pbx1",
        "resync:1796610121.732175:andre_forvaltninger:PJSIP/agent1001:login:andre_forvaltninger",
        NOW,
        long,
        "PJSIP/" + "a" * 200,
        "q\x00",
        "logged_in",
        None,
    )
    assert_fits(record)
    assert record.event_key.startswith("resync:1796610121.732175:andre_forvaltninger:")
    call = CallRecord(
        "pbx1", long, "h", "••••56", "82565682", "1", long, NOW, None, None, None,
        None, None, None, None, None, None, 99999, False, False,
    )  # fmt: skip
    assert_fits(call)
    assert call.hangup_cause is None and call.linkedid == fit_id(long)
    assert call.queue == fit(long, 64)
    visit = VisitRecord(
        "pbx1", "l", 1, "q", NOW, 70000, None, None, None, None, None, None, None,
        None, None, "x" * 40, False,
    )  # fmt: skip
    assert visit.position is None and len(visit.complete_reason or "") == 16
    assert_fits(SurveyRecord("pbx1", long, long, long, NOW, -40000, 5, 9, True))
    task = CallbackRecord("callback", "pbx1", long, long, "h", "d" * 40, "s\x00", NOW, NOW, "\x00")
    assert_fits(task)
    assert_fits(GapRecord("pbx1", NOW, None, 0, "r" * 100))
    counted = BOUNDED - before
    assert counted["agent_state_changes.event_key"] == 1
    assert counted["agent_state_changes.interface"] == 1
    assert counted["calls.hangup_cause"] == 1
    assert counted["queue_visits.position"] == 1


def test_a_record_that_fits_is_what_the_dataclass_would_have_made() -> None:
    args = ("pbx1", "k1", NOW, "agent1", "PJSIP/agent1", "dagpenge", "paused", "Frokost")
    bounded = AgentStateRecord(*args)
    plain = object.__new__(AgentStateRecord)
    DATACLASS_INIT[AgentStateRecord](plain, *args)
    assert dataclasses.astuple(bounded) == dataclasses.astuple(plain)


# --------------------------------------------------------------------------------------
# Hostile AMI values end to end through the pure core
# --------------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "x" * 100,
        "æøå" * 70,
        "PJSIP/" + "a" * 250,
        "a\x00b",
        "\x00",
        "",
        "1796610121.7321750000000000000000000000000000000000000000000000000000000000000",
    ]
)
HOSTILE_NUMBER = st.sampled_from(
    ["99999", "-99999", "32768", "2147483648", "99999999999999999999999", "1e5", "-1"]
)
TEXT_HEADERS = (
    "Linkedid",
    "Uniqueid",
    "DestUniqueid",
    "Queue",
    "Interface",
    "MemberName",
    "StateInterface",
    "Channel",
    "DestChannel",
    "CallerIDNum",
    "CallerIDName",
    "Reason",
    "PausedReason",
    "Digit",
    "Exten",
    "Extension",
    "Value",
    "Cause-txt",
)
NUMBER_HEADERS = (
    "Cause",
    "Position",
    "Count",
    "HoldTime",
    "TalkTime",
    "RingTime",
    "Penalty",
    "Status",
    "CallsTaken",
    "LastCall",
    "OriginalPosition",
    "ChannelState",
    "DurationMs",
)


def substitute(frame: bytes, subs: dict[str, str]) -> bytes:
    lines = frame.split(b"\r\n")
    out = []
    for line in lines:
        key, sep, _value = line.partition(b": ")
        name = key.decode("ascii", "replace")
        if sep and name in subs:
            line = key + b": " + subs[name].encode("utf-8")
        out.append(line)
    return b"\r\n".join(out)


def play(name: str, subs: dict[str, str]) -> list[Any]:
    cap = load_capture(name)
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    centre = CallCentre("pbx1", None)
    parser = AmiParser()
    records: list[Any] = []
    for raw, t in cap.events():
        at = T0 + timedelta(seconds=t)
        for item in parser.feed(substitute(raw, subs) + b"\r\n\r\n"):
            if isinstance(item, AmiFrame):
                event = normaliser.normalise(item, at)
                if event is not None:
                    centre.apply(event, at)
        records += centre.drain().records
    centre.tick(T0 + timedelta(days=1))
    records += centre.drain().records
    return records


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(SCENARIOS),
    st.dictionaries(st.sampled_from(TEXT_HEADERS), HOSTILE_TEXT, max_size=6),
    st.dictionaries(st.sampled_from(NUMBER_HEADERS), HOSTILE_NUMBER, max_size=4),
)
def test_hostile_ami_values_make_records_that_fit_every_column(
    name: str, texts: dict[str, str], numbers: dict[str, str]
) -> None:
    records = play(name, {**texts, **numbers})
    assert records
    for record in records:
        assert_fits(record)


def test_a_100_character_linkedid_and_cause_99999_are_one_call_that_fits() -> None:
    linkedid = "L" * 100
    records = play("01_answered", {"Linkedid": linkedid, "Cause": "99999"})
    calls = [r for r in records if isinstance(r, CallRecord)]
    assert {c.linkedid for c in calls} == {fit_id(linkedid)}
    assert calls[-1].outcome == "answered" and calls[-1].hangup_cause is None
    events = [r for r in records if isinstance(r, EventRecord)]
    assert {e.linkedid for e in events if e.linkedid} == {fit_id(linkedid)}
    # The logged frame keeps what the PBX really sent.
    assert any(e.raw and e.raw.get("Linkedid") == linkedid for e in events)


@pytest.mark.parametrize("name", ["08b_fastagi_hangup", "07_closed", "03_abandon"])
def test_a_cause_no_pbx_can_send_does_not_change_how_the_call_ended(name: str) -> None:
    """Cause 99999 is no Q.850 cause: the call ended as it did with its real one (a caller
    hanging up in the menu is no "failed" call); a real abnormal cause (41) still is."""

    def ended(subs: dict[str, str]) -> tuple[str | None, int | None]:
        calls = [r for r in play(name, subs) if isinstance(r, CallRecord)]
        return calls[-1].outcome, calls[-1].hangup_cause

    plain, _ = ended({})
    assert ended({"Cause": "99999"}) == (plain, None)
    assert ended({"Cause": "-5"})[0] == plain
    if plain == "ivr_hangup":
        assert ended({"Cause": "41"}) == ("failed", 41)


def test_a_resync_of_hostile_members_and_channels_fits_and_names_the_same_call() -> None:
    """The resync's ids are fitted as the normaliser's, so a long Linkedid seen in an
    event and in CoreShowChannels is one call, not two."""
    long_id = "1796610121.732175" + "9" * 80
    status = [
        Message({
            "Event": "QueueMember", "Queue": queue, "Location": f"PJSIP/agent{n}" + "x" * k,
            "Name": "Agent " * 30, "Membership": "dynamic", "Penalty": "99999",
            "Status": "1", "Paused": "1", "PausedReason": "frokost " * 20,
        })
        for n in range(4)
        for queue, k in (("andre_forvaltninger", 0), ("q" * 100, 150))
    ] + [Message({"Event": "QueueEntry", "Queue": "dagpenge", "Uniqueid": long_id,
                  "Position": "99999", "Wait": "12"})]  # fmt: skip
    channels = [
        Message({"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-1", "Uniqueid": long_id,
                 "Linkedid": long_id, "Duration": "00:00:30"})
    ]  # fmt: skip
    centre = CallCentre("pbx1", None)
    at = datetime.fromtimestamp(1796610121.732175, UTC)
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    frames = [from_message(m) for m in [*status, *channels]]
    snapshot = build_snapshot(normaliser, [f for f in frames if f is not None], at)
    resync(centre, snapshot, at)
    records = centre.drain().records
    logins = [r for r in records if isinstance(r, AgentStateRecord) and r.state == "logged_in"]
    assert len(logins) == 8
    for record in records:
        assert_fits(record)
    assert set(centre.calls) == {fit_id(long_id)}
    visits = [r for r in records if isinstance(r, VisitRecord)]
    assert visits and all(v.position is None for v in visits)


def test_the_menu_fits_long_asterisk_ids_into_its_event_keys() -> None:
    """Asterisk's uniqueids may be 150 characters long: the FastAGI session's events get
    ids and keys that fit, distinct per step."""
    got: list[ev.DomainEvent] = []
    deps = SessionDeps(
        pbx="pbx1",
        tz=ZoneInfo("Europe/Copenhagen"),
        config=None,  # type: ignore[arg-type]
        emit=got.append,
        estimates=None,  # type: ignore[arg-type]
        privacy=CallerPrivacy(b"k" * 32),
        metrics=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    rec = Recorder(deps, "ivr", "u" * 150, "l" * 150)
    for _ in range(3):
        rec.emit(ev.IvrTimeout, menu="main", attempt=1)
    assert len({e.key for e in got}) == 3
    for e in got:
        assert len(e.key) <= 64 and len(e.linkedid) <= 64 and len(e.uniqueid) <= 64
        assert e.linkedid == fit_id("l" * 150)
