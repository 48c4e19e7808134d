"""The event log read back: every kind of event survives ``data()`` -> JSON -> the log ->
``event_from_log``, and a replay counts the same visits as the live state machine did."""

from __future__ import annotations

import json
import math
from datetime import UTC, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.acd import events as ev
from app.acd.kpi import CENTRE, DayBook
from app.acd.replay import KINDS, Replay, UnknownEvent, event_from_log, event_of_row, take
from app.acd.state import CallCentre
from app.ami.normalise import Normaliser
from app.ami.parser import AmiFrame, AmiParser
from app.privacy import Caller, CallerPrivacy
from tests.ami_replay import SCENARIOS, T0, load_capture

TZ = ZoneInfo("Europe/Copenhagen")


def logged(event: ev.DomainEvent, n: int = 0) -> SimpleNamespace:
    """The ``call_events`` row of an event, as the store keeps it (JSON data)."""
    return SimpleNamespace(
        id=n,
        kind=event.kind,
        at=event.at,
        pbx=event.pbx,
        event_key=event.key,
        linkedid=event.linkedid or None,
        uniqueid=event.uniqueid or None,
        data=json.loads(json.dumps(event.data())),
    )


def capture_events(name: str) -> list[ev.DomainEvent]:
    cap = load_capture(name)
    normaliser = Normaliser("pbx1", CallerPrivacy(b"k" * 32))
    out = []
    times = iter(cap.times)
    parser = AmiParser()
    for piece in [cap.banner, *(f + b"\r\n\r\n" for f in cap.frames)]:
        for item in parser.feed(piece):
            if isinstance(item, AmiFrame):
                at = T0 + timedelta(seconds=next(times))
                event = normaliser.normalise(item, at)
                if event is not None:
                    out.append(event)
    return out


def test_every_concrete_event_class_has_a_kind_of_its_own() -> None:
    classes = {
        c
        for c in vars(ev).values()
        if isinstance(c, type) and issubclass(c, ev.DomainEvent) and "KIND" in vars(c)
    }
    assert set(KINDS.values()) == classes
    assert len(KINDS) == len(classes) > 30  # no two classes share a kind
    assert all(cls is getattr(ev, cls.__name__) for cls in KINDS.values())


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_captured_event_comes_back_from_the_log_as_it_was(name: str) -> None:
    events = capture_events(name)
    assert events
    for event in events:
        assert event_of_row(logged(event)) == event


@settings(max_examples=3)
@given(st.data())
def test_every_kind_comes_back_from_the_log(data: st.DataObject) -> None:
    texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
    st.register_type_strategy(Caller, st.builds(Caller, hash=texts, display=texts))
    for cls in KINDS.values():
        event = data.draw(
            st.builds(
                cls,
                at=st.datetimes(timezones=st.just(UTC)),
                pbx=texts,
                key=texts,
                linkedid=texts,
                uniqueid=texts,
                raw=st.none(),
            ),
            label=cls.__name__,
        )
        if isinstance(event, ev.IvrCallbackAccepted):
            # The sealed number never reaches the log, so it cannot come back from it.
            event = ev.IvrCallbackAccepted(
                **{**_fields(event), "number_sealed": None}  # type: ignore[arg-type]
            )
        # NaN is never equal to itself, so such an event cannot compare equal after any
        # round trip; no event carries one (estimates are finite or None).
        assume(not any(isinstance(v, float) and math.isnan(v) for v in _fields(event).values()))
        assert event_of_row(logged(event)) == event, cls.__name__


def _fields(event: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def test_an_unknown_kind_is_skipped_and_counted() -> None:
    with pytest.raises(UnknownEvent):
        event_from_log("no_such", at=T0, pbx="p", key="k", linkedid=None, uniqueid=None, data={})
    with pytest.raises(UnknownEvent):  # a field missing
        event_from_log("queue_join", at=T0, pbx="p", key="k", linkedid="l", uniqueid="u", data={})
    replay = Replay.new("pbx1", DayBook(TZ))
    replay.apply_rows(
        [
            SimpleNamespace(
                kind="no_such",
                at=T0,
                pbx="pbx1",
                event_key="x",
                linkedid=None,
                uniqueid=None,
                data={},
            )
        ]
    )
    assert replay.skipped == 1


@pytest.mark.parametrize("name", ["01_answered", "03_abandon", "09_blindtransfer", "09b_redirect"])
def test_a_replay_from_the_log_counts_what_the_live_path_counted(name: str) -> None:
    events = capture_events(name)
    live_centre = CallCentre("pbx1")
    live = DayBook(TZ)
    for event in events:
        live_centre.apply(event, event.at)
        take(live, live_centre.drain())
    live_centre.tick(events[-1].at + timedelta(minutes=10))
    take(live, live_centre.drain())

    replay = Replay.new("pbx1", DayBook(TZ))
    replay.apply_rows(logged(e, i) for i, e in enumerate(events))
    day = events[0].at.astimezone(TZ).date()
    assert live.tally(day, CENTRE).offered > 0
    assert replay.book.tallies == live.tallies
