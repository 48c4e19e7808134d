"""The database schema: SQLAlchemy 2 typed models that run on PostgreSQL and SQLite.

Conventions
- Every time is a timezone-aware UTC ``datetime`` (``UTCDateTime`` stores it as such on
  SQLite too, where the column type has no zone).
- JSON columns are JSONB on PostgreSQL and JSON (text) on SQLite; the event log's ``data``
  and ``raw`` are JSON (text) on both.
- Primary keys are BIGINT on PostgreSQL; on SQLite they must be INTEGER to be rowid aliases.
- No column ever holds a caller number in clear: ``*_hash`` is the keyed hash, ``*_display``
  the masked form (see ``app.privacy``). The one exception is ``callbacks.number_sealed``,
  encrypted, because an agent must be able to dial it.

Every change to this file goes through an Alembic revision in ``migrations/versions``;
a test compares the migrated database with these models.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so Alembic autogenerate and drift checks are stable.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite stores naive UTC text, which this type turns
    back into aware datetimes. Naive input is refused: it is always a bug upstream.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JsonDoc,
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------
# The call record
# --------------------------------------------------------------------------------------


class CallEvent(Base):
    """Append-only log of every call event, from AMI, the IVR (FastAGI) or the API.

    ``event_key`` is the source event's identity, unique per PBX: replaying the same AMI
    stream, a spill file or an IVR session writes each event once.
    """

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("pbx", "event_key"),
        Index("ix_call_events_pbx_linkedid", "pbx", "linkedid"),
        Index("ix_call_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    linkedid: Mapped[str | None] = mapped_column(String(64))
    uniqueid: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # ami | agi | api | sim
    kind: Mapped[str] = mapped_column(String(48))  # normalised event type
    # The normalised fields, and the AMI fields with callers hashed: both only ever read
    # back whole, so ``json`` (the text as written) rather than ``jsonb``, which
    # PostgreSQL would decompose on every insert (migrations 0004, 0005).
    data: Mapped[dict[str, Any]] = mapped_column(JSON())
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON())


class Call(Base):
    """One row per call: (pbx, linkedid). Upserted as the call progresses."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_queue_started_at", "queue", "started_at"),
        Index("ix_calls_agent_started_at", "agent", "started_at"),
        Index("ix_calls_outcome_started_at", "outcome", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    linkedid: Mapped[str] = mapped_column(String(64))
    caller_hash: Mapped[str] = mapped_column(String(64), default="")
    caller_display: Mapped[str] = mapped_column(String(32), default="")
    dialled: Mapped[str] = mapped_column(String(32), default="")
    keys: Mapped[str] = mapped_column(String(64), default="")
    # The queue the caller first reached (the area they chose); later queues of a
    # transferred call are in queue_visits and transferred_to.
    queue: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    queue_entered_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    agent: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(16))  # None while the call is up
    transferred_to: Mapped[str | None] = mapped_column(String(64))
    hangup_cause: Mapped[int | None] = mapped_column(SmallInteger)
    survey_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    data_gap: Mapped[bool] = mapped_column(Boolean, default=False)
    # caller | agent | system: who ended the call (docs/kpis.md, "Who hung up"); None
    # while the call is up or when a gap hid the end. hangup_cause alone cannot say it:
    # Asterisk gives cause 0 to a caller who hangs up in the menu or a queue.
    hangup_by: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QueueVisit(Base):
    """One stay of a call in one queue (a transferred call has several).

    Queue KPIs (offered, answered, abandoned, waits, service level) are computed from these
    rows, so a call answered in dagpenge and transferred to kontanthjaelp counts in both.
    """

    __tablename__ = "queue_visits"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid", "seq"),
        Index("ix_queue_visits_queue_entered_at", "queue", "entered_at"),
        Index("ix_queue_visits_agent_entered_at", "agent", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    linkedid: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(SmallInteger)  # 1, 2, ... within the call
    queue: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime]
    position: Mapped[int | None] = mapped_column(SmallInteger)
    estimated_wait_seconds: Mapped[float | None] = mapped_column(Float)
    left_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    agent: Mapped[str | None] = mapped_column(String(64))
    # answered | abandoned | transferred | timeout | full | empty | None while waiting
    outcome: Mapped[str | None] = mapped_column(String(16))
    complete_reason: Mapped[str | None] = mapped_column(String(16))  # caller|agent|transfer
    data_gap: Mapped[bool] = mapped_column(Boolean, default=False)


class DataGap(Base):
    """A stretch of time the service could not see a PBX (AMI link down)."""

    __tablename__ = "data_gaps"
    __table_args__ = (UniqueConstraint("pbx", "gap_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    gap_from: Mapped[datetime]
    gap_to: Mapped[datetime | None]
    calls_closed: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(64), default="")


class DeadLetter(Base):
    """A record the database refused (a value it cannot hold, a constraint it breaks), set
    aside by the event writer so that the rest of the log goes on (app/store/writer.py).

    ``record`` is the record as the spill file encodes it (``app.store.tables.encode``;
    ``decode`` gives it back), ``digest`` its BLAKE2b, so a batch isolated twice (a crash
    before its acknowledgement) sets each record aside once. Texts are unbounded: a dead
    letter must not be refused for the reason its record was."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("digest"), Index("ix_dead_letters_at", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]  # when it was set aside
    digest: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))  # the table it was for
    pbx: Mapped[str | None] = mapped_column(Text)
    record_key: Mapped[str] = mapped_column(Text)  # its idempotency key, "/"-joined
    error: Mapped[str] = mapped_column(Text)  # the database's words, or the encoder's
    sqlstate: Mapped[str | None] = mapped_column(String(5))
    record: Mapped[dict[str, Any]] = mapped_column(JSON())


class PbxLease(Base):
    """Who owns a PBX (its AMI link, state, writer and dialer) and since which epoch
    (app/ha/lease.py). A takeover raises ``epoch``; the owner's writes call
    ``acd_fence(pbx, epoch)`` (migration 0011), which refuses a stale one. Times are the
    database's (``now()``), so the replicas' clocks do not matter."""

    __tablename__ = "pbx_leases"

    pbx: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))  # "" = released
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]
    handovers: Mapped[int] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(String(16))  # first | expired | released


# --------------------------------------------------------------------------------------
# Queues, agents and their states
# --------------------------------------------------------------------------------------


class Queue(Base):
    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(128), default="")  # Danish area name
    strategy: Mapped[str] = mapped_column(String(32), default="rrmemory")
    wrapup_seconds: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    interface: Mapped[str] = mapped_column(String(128), unique=True)  # e.g. PJSIP/agent1
    team: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentSkill(Base):
    """Queue membership of an agent, with its penalty (lower = preferred)."""

    __tablename__ = "agent_skills"

    agent_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    queue: Mapped[str] = mapped_column(
        String(64), ForeignKey("queues.name", ondelete="CASCADE"), primary_key=True
    )
    penalty: Mapped[int] = mapped_column(SmallInteger, default=0)


class AgentStateChange(Base):
    """Every agent/member state change: login, logout, pause (reason), wrap-up, ..."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (
        Index("ix_agent_state_changes_agent_at", "agent_id", "at"),
        Index("ix_agent_state_changes_interface_at", "interface", "at"),
        Index("ix_agent_state_changes_at", "at"),  # the purge (migration 0012)
        UniqueConstraint("pbx", "event_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    agent_id: Mapped[str | None] = mapped_column(String(64))
    interface: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str | None] = mapped_column(String(64))  # None = all queues of the agent
    # logged_in | logged_out | available | ringing | on_call | wrapup | paused | unavailable
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8), default="ami")


# --------------------------------------------------------------------------------------
# After the call: registration, survey, call-backs
# --------------------------------------------------------------------------------------


class Disposition(Base):
    """Call registration (henvendelsesregistrering) by the agent who took the call."""

    __tablename__ = "dispositions"
    __table_args__ = (UniqueConstraint("call_id", "agent_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    resolved: Mapped[bool] = mapped_column(Boolean)  # settled at first contact
    transferred_to: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyResponse(Base):
    """The 1-9 keypad survey after the call; unanswered questions stay NULL."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid"),
        Index("ix_survey_responses_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(32))
    linkedid: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("calls.id", ondelete="SET NULL"))
    agent: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    friendliness: Mapped[int | None] = mapped_column(SmallInteger)  # imødekommenhed
    wait: Mapped[int | None] = mapped_column(SmallInteger)  # ventetid
    overall: Mapped[int | None] = mapped_column(SmallInteger)  # tilfredshed
    completed: Mapped[bool] = mapped_column(Boolean, default=False)


class Callback(Base):
    """A call-back or message task: due within 2 working days."""

    __tablename__ = "callbacks"
    __table_args__ = (
        # One task per call from the menu (NULL linkedid = created through the API).
        UniqueConstraint("pbx", "linkedid"),
        Index("ix_callbacks_status_due_at", "status", "due_at"),
        Index("ix_callbacks_caller_hash", "caller_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # callback | message
    pbx: Mapped[str | None] = mapped_column(String(32))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    caller_hash: Mapped[str] = mapped_column(String(64))
    caller_display: Mapped[str] = mapped_column(String(32))
    number_sealed: Mapped[str | None] = mapped_column(Text)  # AES-GCM, see app.privacy
    requested_at: Mapped[datetime]  # the caller's original place in line
    due_at: Mapped[datetime]
    # open | assigned | dialling | done | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="open")
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32))
    completed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]  # the dialer's last Originate
    call_linkedid: Mapped[str | None] = mapped_column(String(64))  # the call-back call
    created_by: Mapped[str | None] = mapped_column(String(64))  # API user; NULL = the menu
    # A message task's voice message: its path as the menu recorded it (without the
    # format's extension); served only through GET /v1/callbacks/{id}/message.
    recording: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Every write and every report read through the API."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


# --------------------------------------------------------------------------------------
# Reports: the per-day tallies they are summed from (app/reports/rollup.py)
# --------------------------------------------------------------------------------------


class ReportDay(Base):
    """One local day of the report rollup: when its tallies were counted, from how many
    calls, with which definitions (``digest``), and whether they are final (counted after
    the day's repeat-call window closed: not counted again, the detail may be purged)."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime]
    calls: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    digest: Mapped[str] = mapped_column(String(64))


class ReportRollup(Base):
    """The report tallies of one day and group (``app.reports.tally.ReportTally``, only its
    non-zero counts): ``kind`` centre | scope | department | queue | agent | pbx |
    pbx_scope | gap, ``key`` the group's name, ``slot`` the half-hour of the day (0-47) or
    -1 for the whole day. Reports read these, never the detail rows, for every day that
    has them."""

    __tablename__ = "report_rollup"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON())


class StoredReport(Base):
    """A report document made and kept when its period ended (app/reports/archive.py):
    the weekly, monthly and quarterly reports, one row per period, cut and format, so
    last quarter's report is there without anyone asking. ``sha256`` lets a re-run say
    whether the same period still gives the same bytes."""

    __tablename__ = "stored_reports"
    __table_args__ = (
        UniqueConstraint("period", "by", "format"),
        Index("ix_stored_reports_kind_first", "kind", "first"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(16))  # 2014-W45, 2014-11, 2014-Q4
    kind: Mapped[str] = mapped_column(String(8))  # week | month | quarter
    by: Mapped[str] = mapped_column(String(16))  # the cut (department, centre, ...)
    format: Mapped[str] = mapped_column(String(8))  # pdf | xlsx | html | csv
    first: Mapped[date] = mapped_column(Date)
    last: Mapped[date] = mapped_column(Date)
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    made_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------------------
# API users and their credentials (app/api/auth.py)
# --------------------------------------------------------------------------------------


class ApiUser(Base):
    """Someone (or some system) that may call the API, with one role.

    ``agent_id``: the agent an ``agent`` user is; ``teams``: the teams a ``supervisor``
    leads; ``grants``: the write scopes an ``integration`` user has beyond reading.
    """

    __tablename__ = "api_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor | admin | integration
    agent_id: Mapped[str | None] = mapped_column(String(64))
    teams: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    grants: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API key or bearer token: only its SHA-256 is kept, never the secret.

    The secret is ``acd<k|t>_<id>_<random>``; ``id`` finds the row, the hash proves it.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user_name", "user_name"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("api_users.name", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(8))  # key | bearer
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
