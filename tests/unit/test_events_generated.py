"""The generated ``__init__`` (app/acd/records.py ``fast_init``) of every event and record
class, and the generated ``data()`` of every event class (app/acd/events.py
``_specialise``), against what the dataclass and the reference give."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.acd import events as ev
from app.acd import records
from app.privacy import Caller

_RECORDS = [
    records.CallRecord,
    records.VisitRecord,
    records.AgentStateRecord,
    records.SurveyRecord,
    records.CallbackRecord,
    records.GapRecord,
]


def _classes() -> list[type[Any]]:
    return [*ev.EVENT_CLASSES, *_RECORDS]


def _both(cls: type[Any], *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    generated = cls(*args, **kwargs)
    original = object.__new__(cls)
    records.DATACLASS_INIT[cls](original, *args, **kwargs)
    return generated, original


def test_every_event_class_is_generated() -> None:
    assert len(ev.EVENT_CLASSES) >= 40
    assert ev.ChannelCreated in ev.EVENT_CLASSES and ev.SurveyAnswered in ev.EVENT_CLASSES
    for cls in ev.EVENT_CLASSES:
        assert cls.__init__ is not records.DATACLASS_INIT[cls]
        assert cls.__dict__.get("data") is not None, cls
    for cls in _RECORDS:
        assert cls.__init__ is not records.DATACLASS_INIT[cls]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_generated_init_and_data_match_the_dataclass_and_the_reference(
    cls: type[Any],
) -> None:
    fields = dataclasses.fields(cls)
    # A distinct object for every field: each must land in its own slot.
    every = {f.name: object() for f in fields}
    generated, original = _both(cls, **every)
    for f in fields:
        assert getattr(generated, f.name) is every[f.name], f.name
        assert getattr(original, f.name) is every[f.name], f.name
    if issubclass(cls, ev.DomainEvent):
        assert generated.data() == ev.reference_data(generated) == ev.reference_data(original)
    else:  # records take their fields by position too
        by_position, original = _both(cls, *every.values())
        assert all(getattr(by_position, f.name) is every[f.name] for f in fields)
    # Only the required ones: the defaults are the dataclass's.
    required = {
        f.name: every[f.name]
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    generated, original = _both(cls, **required)
    for f in fields:
        assert getattr(generated, f.name) == getattr(original, f.name), f.name
    assert generated == original
    with pytest.raises(dataclasses.FrozenInstanceError):
        generated.pbx = "other"


def test_generated_init_refuses_what_the_dataclass_refuses() -> None:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    ok = {"at": at, "pbx": "p", "key": "k", "channel": "c", "cause": 16, "cause_txt": "x"}
    assert ev.ChannelHungUp(**ok).data() == {"channel": "c", "cause": 16, "cause_txt": "x"}
    with pytest.raises(TypeError, match="cause_txt"):
        ev.ChannelHungUp(**{k: v for k, v in ok.items() if k != "cause_txt"})
    with pytest.raises(TypeError, match="colour"):
        ev.ChannelHungUp(**ok, colour="red")
    with pytest.raises(TypeError):
        ev.ChannelHungUp(at, "p", "k", "c", 16, "x")  # type: ignore[misc]


def test_data_converts_callers_and_times_as_the_reference() -> None:
    at = datetime(2026, 12, 6, 8, 30, 1, 250000, tzinfo=UTC)
    event = ev.ChannelCreated(
        at=at,
        pbx="p",
        key="k",
        channel="PJSIP/trunk-1",
        caller=Caller(hash="h", display="•••••01"),
        context="from-trunk",
        exten="82565682",
        state=4,
    )
    assert event.data() == ev.reference_data(event)
    assert event.data()["caller"] == {"hash": "h", "display": "•••••01"}


def test_the_event_record_is_the_events_fields_in_column_order() -> None:
    from app.acd.state import CallCentre

    at = datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    received = at + timedelta(seconds=2)
    event = ev.ChannelHungUp(
        at=at,
        pbx="pbx1",
        key="k1",
        linkedid="1795362316.3",
        uniqueid="",
        raw={"Event": "Hangup"},
        channel="PJSIP/trunk-1",
        cause=16,
        cause_txt="Normal Clearing",
    )
    centre = CallCentre("pbx1")
    centre.apply(event, received)
    record = centre.drain().records[0]
    assert type(record) is records.EventRecord
    assert record == records.EventRecord(
        pbx="pbx1",
        event_key="k1",
        at=at,
        received_at=received,
        linkedid="1795362316.3",
        uniqueid=None,
        source="ami",
        kind="hangup",
        data={"channel": "PJSIP/trunk-1", "cause": 16, "cause_txt": "Normal Clearing"},
        raw={"Event": "Hangup"},
    )
    assert record.received_at == received and record.kind == event.kind
