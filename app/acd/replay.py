"""The event log read back: ``call_events`` rows into domain events, and a replay of them
through a fresh ``CallCentre`` into the same KPI code the live figures use.

Pure: rows come in as plain values (the store adapter reads them), nothing is awaited.
A replay applies the events in the order the service applied them (the log's insertion
order); it needs no ticks, because nothing a queue figure depends on is decided by the
passing of time alone (only agents' wrap-ups end and ended calls are forgotten).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app import jsoncodec
from app.acd import events as ev
from app.acd.ewt import HandleTimes
from app.acd.kpi import CallFacts, DayBook, call_facts
from app.acd.model import Call, Drained, Visit
from app.acd.queues import QueueCatalogue
from app.acd.records import Record
from app.acd.state import CallCentre
from app.privacy import Caller


def _concrete() -> Iterable[type[ev.DomainEvent]]:
    # From the module, not __subclasses__(): a slots dataclass replaces its class, and the
    # replaced one may linger among the subclasses.
    for value in vars(ev).values():
        if isinstance(value, type) and issubclass(value, ev.DomainEvent) and "KIND" in vars(value):
            yield value


KINDS: dict[str, type[ev.DomainEvent]] = {c.KIND: c for c in _concrete()}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, vars(ev))
    return hints


def _types_of(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _decode(hint: Any, value: Any) -> Any:
    kinds = _types_of(hint)
    if Caller in kinds and isinstance(value, dict):
        return Caller(hash=str(value.get("hash", "")), display=str(value.get("display", "")))
    if datetime in kinds and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


# Per event class, its fields that need decoding (a Caller, a datetime) and the hint each:
# a replay decodes millions of rows, most fields plain (str, int, bool) and passed as read.
_SPECIAL: dict[type, tuple[frozenset[str], dict[str, Any]]] = {}


def _plan(cls: type) -> tuple[frozenset[str], dict[str, Any]]:
    plan = _SPECIAL.get(cls)
    if plan is None:
        hints = _hints(cls)
        special = {
            name: hint
            for name, hint in hints.items()
            if Caller in _types_of(hint) or datetime in _types_of(hint)
        }
        plan = _SPECIAL[cls] = (frozenset(hints), special)
    return plan


class UnknownEvent(ValueError):
    pass


def event_from_log(
    kind: str,
    *,
    at: datetime,
    pbx: str,
    key: str,
    linkedid: str | None,
    uniqueid: str | None,
    data: dict[str, Any],
) -> ev.DomainEvent:
    """One ``call_events`` row as the domain event it was (``raw`` is not restored)."""
    cls = KINDS.get(kind)
    if cls is None:
        raise UnknownEvent(f"unknown event kind {kind!r}")
    known, special = _plan(cls)
    fields = {k: v for k, v in data.items() if k in known}
    for name, hint in special.items():
        if name in fields:
            fields[name] = _decode(hint, fields[name])
    try:
        return cls(
            at=at, pbx=pbx, key=key, linkedid=linkedid or "", uniqueid=uniqueid or "", **fields
        )
    except TypeError as exc:  # a field missing from an old row
        raise UnknownEvent(f"{kind}: {exc}") from exc


def event_of_row(row: Any) -> ev.DomainEvent:
    """A row with ``kind, at, pbx, event_key, linkedid, uniqueid, data`` attributes;
    ``data`` decoded already, or the JSON text as stored (decoded here, with orjson)."""
    data = row.data
    if isinstance(data, str | bytes):
        data = jsoncodec.loads(data)
    return event_from_log(
        row.kind,
        at=row.at,
        pbx=row.pbx,
        key=row.event_key,
        linkedid=row.linkedid,
        uniqueid=row.uniqueid,
        data=data,
    )


def call_of(call: Call) -> CallFacts | None:
    """The call as the centre counts it (None while its outcome is not known)."""
    return call_facts(call.visits, ended=call.ended_at is not None)


def take(book: DayBook, drained: Drained, handle: HandleTimes | None = None) -> list[Visit]:
    """Count what a ``drain()`` says became known; returns the visits' decisions counted
    (the calls', counted in the centre, are not returned)."""
    counted = []
    for visit in drained.decided:
        if book.decided(visit):
            counted.append(visit)
            if handle is not None and visit.outcome == "answered" and visit.ring_seconds:
                handle.add_ring(visit.queue, visit.ring_seconds)
    for visit in drained.talked:
        if book.talked(visit) and handle is not None and visit.talk_seconds is not None:
            handle.add_talk(visit.queue, visit.talk_seconds)
    for call in (*drained.calls_answered, *drained.calls_ended):
        whole = call_of(call)
        if whole is not None:
            book.decided(whole)
            book.talked(whole)
    return counted


@dataclass
class Replay:
    """A fresh state machine fed logged events, counting into its own ``DayBook`` (the
    figures of the log), or handing over the records it makes (a rebuild of the stored
    rows: ``records_of``)."""

    centre: CallCentre
    book: DayBook | None = None
    skipped: int = 0

    @classmethod
    def new(cls, pbx: str, book: DayBook, catalogue: QueueCatalogue | None = None) -> Replay:
        return cls(CallCentre(pbx, catalogue), book)

    def _drain(self) -> list[Record]:
        drained = self.centre.drain()
        if self.book is not None:
            take(self.book, drained)
        return drained.records

    def apply(self, event: ev.DomainEvent) -> None:
        self.centre.apply(event, event.at)
        self._drain()

    def apply_rows(self, rows: Iterable[Any]) -> None:
        """Rows with ``kind, at, pbx, event_key, linkedid, uniqueid, data`` attributes."""
        self.records_of(rows)

    def records_of(self, rows: Iterable[Any]) -> list[Record]:
        """Apply logged rows; the records the state machine made of them, in order
        (drained every 2000 events, so the state machine's buffers stay bounded)."""
        out: list[Record] = []
        for n, row in enumerate(rows, start=1):
            try:
                event = event_of_row(row)
            except UnknownEvent:
                self.skipped += 1
                continue
            self.centre.apply(event, event.at)
            if n % 2000 == 0:
                out.extend(self._drain())
        out.extend(self._drain())
        return out
