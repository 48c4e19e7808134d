"""How each record type lands in its table: columns, idempotency key, insert-once or upsert.

One table of specs drives both backends (PostgreSQL with asyncpg ``unnest`` statements,
SQLite with SQLAlchemy ``INSERT ... ON CONFLICT``) and the spill file's encoding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.acd.records import (
    AgentStateRecord,
    CallbackRecord,
    CallRecord,
    EventRecord,
    GapRecord,
    Record,
    SurveyRecord,
    VisitRecord,
)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one spec per table
class TableSpec:
    record: type[Any]
    table: str
    tag: str  # short name in the spill file
    conflict: tuple[str, ...]
    # None: insert once (ON CONFLICT DO NOTHING); else the columns an upsert refreshes
    update: tuple[str, ...] | None
    pg_types: dict[str, str]  # column -> PostgreSQL array element type
    # Columns not in the record, with their value; NOW = the flush time.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        fields: tuple[str, ...] | None = getattr(self.record, "_fields", None)  # named tuple
        if fields is not None:
            return fields
        return tuple(f.name for f in dataclasses.fields(self.record))

    @property
    def datetime_columns(self) -> frozenset[str]:
        return frozenset(c for c, t in self.pg_types.items() if t == TSTZ)

    def key(self, record: Any) -> tuple[Any, ...]:
        return tuple(getattr(record, c) for c in self.conflict)


TEXT, TSTZ, FLOAT, INT, BOOL, JSONB, JSON = (
    "text",
    "timestamptz",
    "float8",
    "int4",
    "bool",
    "jsonb",
    "json",
)
NOW = object()  # placeholder in ``extra``: the time of the flush
EXTRA_TYPES = {"updated_at": TSTZ, "status": TEXT, "attempts": INT, "source": TEXT}

SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        EventRecord,
        "call_events",
        "ev",
        ("pbx", "event_key"),
        None,
        {
            "pbx": TEXT,
            "event_key": TEXT,
            "at": TSTZ,
            "received_at": TSTZ,
            "linkedid": TEXT,
            "uniqueid": TEXT,
            "source": TEXT,
            "kind": TEXT,
            "data": JSON,
            "raw": JSON,
        },
    ),
    TableSpec(
        CallRecord,
        "calls",
        "call",
        ("pbx", "linkedid"),
        (
            "caller_hash",
            "caller_display",
            "dialled",
            "keys",
            "queue",
            "started_at",
            "queue_entered_at",
            "answered_at",
            "ended_at",
            "wait_seconds",
            "ring_seconds",
            "talk_seconds",
            "agent",
            "outcome",
            "transferred_to",
            "hangup_cause",
            "survey_flagged",
            "data_gap",
        ),
        {
            "pbx": TEXT,
            "linkedid": TEXT,
            "caller_hash": TEXT,
            "caller_display": TEXT,
            "dialled": TEXT,
            "keys": TEXT,
            "queue": TEXT,
            "started_at": TSTZ,
            "queue_entered_at": TSTZ,
            "answered_at": TSTZ,
            "ended_at": TSTZ,
            "wait_seconds": FLOAT,
            "ring_seconds": FLOAT,
            "talk_seconds": FLOAT,
            "agent": TEXT,
            "outcome": TEXT,
            "transferred_to": TEXT,
            "hangup_cause": INT,
            "survey_flagged": BOOL,
            "data_gap": BOOL,
        },
        extra={"updated_at": NOW},
    ),
    TableSpec(
        VisitRecord,
        "queue_visits",
        "visit",
        ("pbx", "linkedid", "seq"),
        (
            "queue",
            "entered_at",
            "position",
            "estimated_wait_seconds",
            "left_at",
            "answered_at",
            "ended_at",
            "wait_seconds",
            "ring_seconds",
            "talk_seconds",
            "agent",
            "outcome",
            "complete_reason",
            "data_gap",
        ),
        {
            "pbx": TEXT,
            "linkedid": TEXT,
            "seq": INT,
            "queue": TEXT,
            "entered_at": TSTZ,
            "position": INT,
            "estimated_wait_seconds": FLOAT,
            "left_at": TSTZ,
            "answered_at": TSTZ,
            "ended_at": TSTZ,
            "wait_seconds": FLOAT,
            "ring_seconds": FLOAT,
            "talk_seconds": FLOAT,
            "agent": TEXT,
            "outcome": TEXT,
            "complete_reason": TEXT,
            "data_gap": BOOL,
        },
    ),
    TableSpec(
        AgentStateRecord,
        "agent_state_changes",
        "agent",
        ("pbx", "event_key"),
        None,
        {
            "pbx": TEXT,
            "event_key": TEXT,
            "at": TSTZ,
            "agent_id": TEXT,
            "interface": TEXT,
            "queue": TEXT,
            "state": TEXT,
            "reason": TEXT,
        },
        extra={"source": "ami"},
    ),
    TableSpec(
        SurveyRecord,
        "survey_responses",
        "survey",
        ("pbx", "linkedid"),
        ("agent", "queue", "friendliness", "wait", "overall", "completed"),
        {
            "pbx": TEXT,
            "linkedid": TEXT,
            "agent": TEXT,
            "queue": TEXT,
            "started_at": TSTZ,
            "friendliness": INT,
            "wait": INT,
            "overall": INT,
            "completed": BOOL,
        },
    ),
    TableSpec(
        CallbackRecord,
        "callbacks",
        "callback",
        ("pbx", "linkedid"),
        None,
        {
            "kind": TEXT,
            "pbx": TEXT,
            "linkedid": TEXT,
            "queue": TEXT,
            "caller_hash": TEXT,
            "caller_display": TEXT,
            "number_sealed": TEXT,
            "requested_at": TSTZ,
            "due_at": TSTZ,
            "note": TEXT,
        },
        extra={"status": "open", "attempts": 0},
    ),
    TableSpec(
        GapRecord,
        "data_gaps",
        "gap",
        ("pbx", "gap_from"),
        ("gap_to", "calls_closed", "reason"),
        {"pbx": TEXT, "gap_from": TSTZ, "gap_to": TSTZ, "calls_closed": INT, "reason": TEXT},
    ),
)

BY_RECORD: dict[type[Any], TableSpec] = {s.record: s for s in SPECS}
BY_TAG: dict[str, TableSpec] = {s.tag: s for s in SPECS}


def spec_of(record: Record) -> TableSpec:
    return BY_RECORD[type(record)]


def encode(record: Record) -> dict[str, Any]:
    """A JSON-safe dict for the spill file (``t``: type tag)."""
    spec = spec_of(record)
    out: dict[str, Any] = {"t": spec.tag}
    for col in spec.columns:
        value = getattr(record, col)
        out[col] = value.isoformat() if isinstance(value, datetime) else value
    return out


def decode(doc: dict[str, Any]) -> Record:
    spec = BY_TAG[doc["t"]]
    times = spec.datetime_columns
    kwargs = {
        col: (datetime.fromisoformat(doc[col]) if col in times and doc[col] else doc[col])
        for col in spec.columns
    }
    record: Record = spec.record(**kwargs)
    return record
