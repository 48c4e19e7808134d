"""The normaliser: the table, times, identities and privacy."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from app.acd import events as ev
from app.ami.normalise import HANDLERS, WANTED_EVENTS, Normaliser, parse_timestamp
from app.ami.parser import AmiFrame, AmiParser, parse_frame
from app.privacy import CallerPrivacy
from tests.ami_replay import SCENARIOS, load_capture, with_timestamp

KEY = b"k" * 32
NOW = datetime(2026, 11, 22, 15, 45, tzinfo=UTC)

REQUIRED = {
    "Newchannel",
    "Newstate",
    "NewCallerid",
    "DTMFBegin",
    "DTMFEnd",
    "VarSet",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "AgentDump",
    "BlindTransfer",
    "AttendedTransfer",
    "BridgeEnter",
    "BridgeLeave",
    "Hangup",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "QueueMemberStatus",
    "QueueMemberPenalty",
    "QueueMemberRinginuse",
    "DeviceStateChange",
    "AGIExecStart",
    "AGIExecEnd",
    "FullyBooted",
    "Shutdown",
    "Reload",
}


def frame(text: str) -> AmiFrame:
    parsed = parse_frame(text.replace("\n", "\r\n").encode())
    assert parsed is not None
    return parsed


def normalise_capture(name: str) -> list[ev.DomainEvent]:
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    out = []
    for item in AmiParser().feed(load_capture(name).raw):
        if isinstance(item, AmiFrame):
            e = n.normalise(item, NOW)
            if e is not None:
                out.append(e)
    return out


def test_table_covers_every_required_event() -> None:
    assert set(HANDLERS) >= REQUIRED
    assert set(WANTED_EVENTS) == set(HANDLERS)


def test_manager_conf_filters_exactly_the_table() -> None:
    import re
    from pathlib import Path

    from app.ami.link import FILTERED_ANSWERS
    from app.ami.normalise import CONSUMED_EVENTS, KEPT_VARIABLES

    conf = (Path(__file__).resolve().parents[2] / "asterisk_config" / "manager.conf").read_text(
        encoding="utf-8"
    )
    assert re.search(r"^timestampevents = yes", conf, re.M)
    names = set(re.findall(r"^eventfilter\(action\(include\),name\((\w+)\)\) =", conf, re.M))
    # The events the state machine consumes, and events that answer our own actions
    # (an async Originate's OriginateResponse is an ordinary event, filtered like them).
    assert names | {"VarSet"} == set(CONSUMED_EVENTS) | set(FILTERED_ANSWERS)
    assert set(HANDLERS) >= CONSUMED_EVENTS
    varset = re.search(r"name\(VarSet\),header\(Variable\),method\(regex\)\) = \^\((.*)\)\$", conf)
    assert varset is not None and set(varset.group(1).split("|")) == KEPT_VARIABLES
    assert not re.search(r"^secret\s*=", conf, re.M), "the secret must not be in the repo"


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_caller_number_or_name_reaches_the_log(name: str) -> None:
    for e in normalise_capture(name):
        text = json.dumps(e.data(), ensure_ascii=False) + json.dumps(dict(e.raw or {}))
        assert "4520001" not in text, (e.kind, text)
        assert "Borger 1" not in text, (e.kind, text)


def test_timestamp_header_is_the_event_time() -> None:
    cap = load_capture("01_answered")
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    join = next(f for f, _ in cap.events() if f.startswith(b"Event: QueueCallerJoin"))
    at = NOW + timedelta(seconds=3.25)
    stamped = parse_frame(with_timestamp(join, at))
    assert stamped is not None
    e = n.normalise(stamped, received_at=NOW + timedelta(hours=1))  # a late backlog
    assert e is not None and e.at == at
    plain = parse_frame(join)
    assert plain is not None
    e2 = Normaliser("pbx1", CallerPrivacy(KEY)).normalise(plain, received_at=NOW)
    assert e2 is not None and e2.at == NOW


def test_parse_timestamp_is_exact_to_the_microsecond() -> None:
    assert parse_timestamp("1795362316.000042") == datetime(
        2026, 11, 22, 15, 45, 16, 42, tzinfo=UTC
    )
    assert parse_timestamp("1795362316") is not None
    assert parse_timestamp("garbage") is None
    assert parse_timestamp("12.x") is None


def test_ring_time_units_differ_between_events() -> None:
    events = normalise_capture("04_ringnoanswer")
    rna = next(e for e in events if isinstance(e, ev.AgentRingNoAnswer))
    connect = next(e for e in events if isinstance(e, ev.AgentConnected))
    assert rna.ring_time_ms == 10_000 and rna.interface == "PJSIP/agent1"
    assert connect.ring_time == 2 and connect.hold_time == 14
    assert connect.agent_uniqueid == "1795362288.2"
    assert connect.linkedid == "1795362272.0"


def test_blind_transfer_names_the_transferee_and_target_queue() -> None:
    bt = next(
        e for e in normalise_capture("09_blindtransfer") if isinstance(e, ev.BlindTransferred)
    )
    assert bt.linkedid == "1795362472.15" and bt.uniqueid == "1795362472.15"
    assert bt.extension == "kontanthjaelp" and bt.context == "acd-queue"
    assert bt.result == "Success"


def test_member_events_keep_the_danish_pause_reason() -> None:
    pauses = [e for e in normalise_capture("05_ami_actions") if isinstance(e, ev.MemberPaused)]
    assert [(p.queue, p.interface, p.paused, p.paused_reason) for p in pauses] == [
        ("virksomhed", "PJSIP/agent1", True, "Frokost"),
        ("dagpenge", "PJSIP/agent1", False, ""),
        ("virksomhed", "PJSIP/agent1", False, ""),
        ("dagpenge", "PJSIP/agent1", True, "Møde"),
        ("dagpenge", "PJSIP/agent2", True, "Møde"),
        ("dagpenge", "PJSIP/agent1", False, ""),
        ("dagpenge", "PJSIP/agent2", False, ""),
    ]


def test_only_kept_variables_pass() -> None:
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    kept = n.normalise(
        frame("Event: VarSet\nVariable: QUEUESTATUS\nValue: TIMEOUT\nLinkedid: 1.1"), NOW
    )
    dropped = n.normalise(frame("Event: VarSet\nVariable: SIPDOMAIN\nValue: x"), NOW)
    assert isinstance(kept, ev.VariableSet) and kept.value == "TIMEOUT" and kept.linkedid == "1.1"
    assert dropped is None


def test_agi_exec_keeps_only_the_verb() -> None:
    events = normalise_capture("08_fastagi")
    agi = [e for e in events if isinstance(e, ev.AgiExec)]
    assert {e.command for e in agi} >= {
        "ANSWER",
        "STREAM FILE",
        "GET DATA",
        "SET VARIABLE",
        "VERBOSE",
        "GET FULL VARIABLE",
    }
    for e in agi:
        assert "4520001" not in json.dumps(e.data()) + json.dumps(dict(e.raw or {}))


def test_identical_frames_get_distinct_but_reproducible_keys() -> None:
    text = frame("Event: DeviceStateChange\nDevice: PJSIP/agent1\nState: INUSE")
    n1 = Normaliser("pbx1", CallerPrivacy(KEY))
    keys1 = [n1.normalise(text, NOW).key for _ in range(3)]  # type: ignore[union-attr]
    n2 = Normaliser("pbx1", CallerPrivacy(KEY))
    keys2 = [n2.normalise(text, NOW).key for _ in range(3)]  # type: ignore[union-attr]
    assert len(set(keys1)) == 3
    assert keys1 == keys2


def test_every_capture_event_key_is_unique() -> None:
    for name in SCENARIOS:
        keys = [e.key for e in normalise_capture(name)]
        assert len(keys) == len(set(keys)), name


def test_list_items_use_name_and_location() -> None:
    from app.ami.normalise import _member

    item = frame(
        "Event: QueueMember\nQueue: dagpenge\nName: Agent One\nLocation: PJSIP/agent1\n"
        "Status: 1\nPaused: 1\nPausedReason: Møde"
    )
    handler = _member(ev.MemberStatus)
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    from app.ami.normalise import _Ctx

    e = handler(item, _Ctx("pbx1", NOW, "k", {}, n))
    assert isinstance(e, ev.MemberStatus)
    assert (e.member_name, e.interface, e.paused_reason) == ("Agent One", "PJSIP/agent1", "Møde")


@pytest.mark.parametrize(
    "value",
    [
        "1795362316.123456",
        "1795362316.1",
        "1795362316",
        "1795362316.",
        "0.000001",
        "1795362316.1234567",
        "1795362316.12a",
        "x.5",
        ".5",
        "",
        "-1.5",
    ],
)
def test_memoised_timestamp_equals_the_plain_parse(value: str) -> None:
    n = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    # Twice: the second read comes from the memo of whole seconds.
    assert n.timestamp(value) == parse_timestamp(value)
    assert n.timestamp(value) == parse_timestamp(value)


def test_scrub_hashes_caller_headers_first_seen_in_any_event() -> None:
    n = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    first = parse_frame(b"Event: Newchannel\r\nCallerIDNum: 4520001\r\nData: 4520001234")
    later = parse_frame(
        b"Event: BlindTransfer\r\nTransfereeCallerIDNum: 4520001\r\n"
        b"TransfererConnectedLineName: Anne\r\nExtension: dagpenge"
    )
    assert first is not None and later is not None
    raw = n.scrub(first)
    assert raw["CallerIDNum"] == n.hash("4520001")
    assert raw["Data"] == "•"
    raw = n.scrub(later)
    assert raw["TransfereeCallerIDNum"] == n.hash("4520001")
    assert raw["TransfererConnectedLineName"] == n.hash("Anne")
    assert raw["Extension"] == "dagpenge"
    assert list(raw) == [
        "Event",
        "TransfereeCallerIDNum",
        "TransfererConnectedLineName",
        "Extension",
    ]


def test_callers_are_hashed_whatever_header_names_came_before() -> None:
    n = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    for i in range(5000):  # a PBX sending ever new header names
        other = parse_frame(f"Event: X\r\nHeader{i}: v\r\nX{i}CallerIDNum: 4520001".encode())
        assert other is not None
        assert n.scrub(other)[f"X{i}CallerIDNum"] == n.hash("4520001")
    frame = parse_frame(b"Event: Newchannel\r\nCallerIDNum: 4520001\r\nHeaderNew: v")
    assert frame is not None
    raw = n.scrub(frame)
    assert raw["CallerIDNum"] == n.hash("4520001")
    assert "4520001" not in json.dumps(raw)


def _all_event_classes() -> list[type[ev.DomainEvent]]:
    out: list[type[ev.DomainEvent]] = []
    todo: list[type[ev.DomainEvent]] = [ev.DomainEvent]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def test_only_fields_declared_plain_skip_the_json_safe_check() -> None:
    # data() converts only the fields whose declared type is not plain; a field declared
    # as a Caller, a datetime, a tuple or a model must always be among them.
    plain = {"str", "int", "float", "bool", "str | None", "int | None", "float | None"}
    for cls in _all_event_classes():
        names, _, loose = ev._log_shape(cls)
        for field in dataclasses.fields(cls):
            if field.name not in names:
                continue
            declared = str(field.type)
            if declared in plain or declared.startswith("Literal['"):
                assert field.name not in loose, (cls.__name__, field.name)
            else:
                assert field.name in loose, (cls.__name__, field.name, declared)
    assert "caller" in ev._log_shape(ev.ChannelCreated)[2]


@pytest.mark.parametrize("name", SCENARIOS)
def test_logged_data_is_every_field_made_json_safe(name: str) -> None:
    # The reference: every logged field through _json_safe, whatever its declared type.
    normaliser = Normaliser("pbx1", CallerPrivacy(KEY))
    events = [
        e
        for f in AmiParser().feed(load_capture(name).raw)
        if isinstance(f, AmiFrame) and (e := normaliser.normalise(f, NOW)) is not None
    ]
    assert events
    for event in events:
        names = ev._log_shape(type(event))[0]
        expected = {n: ev._json_safe(getattr(event, n)) for n in names}
        assert event.data() == expected
        json.dumps(event.data())  # and it is JSON


@pytest.mark.parametrize(
    "value",
    ["99999999999999.0", "²", "1415088000.٣", "-5", "1e9", "", ".5", "1415088000.5x"],
)
def test_a_garbled_timestamp_gives_the_receive_time(value: str) -> None:
    assert parse_timestamp(value) is None
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    frame = parse_frame(
        f"Event: Hangup\r\nTimestamp: {value}\r\nChannel: x\r\nUniqueid: 1\r\n"
        "Linkedid: 1\r\nCause: 16".encode()
    )
    assert frame is not None
    event = n.normalise(frame, NOW)
    assert event is not None and event.at == NOW


def test_a_good_timestamp_is_exact() -> None:
    assert parse_timestamp("1415088000.611") == datetime(2014, 11, 4, 8, 0, 0, 611000, UTC)
    n = Normaliser("pbx1", CallerPrivacy(KEY))
    assert n.timestamp("1415088000.000001") == datetime(2014, 11, 4, 8, 0, 0, 1, UTC)
