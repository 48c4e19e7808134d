"""Service configuration: every knob is an ``ACD_*`` environment variable.

Settings are built once at start-up (``load_settings``) and passed down; no other module
reads the environment. A bad value stops the start with a message naming the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ACD_"

Port = Annotated[int, Field(ge=1, le=65535)]
# A PBX's name in the records (ACD_PBX_ID): what the API's ``pbx`` filters accept too.
PBX_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class SettingsError(Exception):
    """Raised with a readable message naming each bad ``ACD_*`` variable."""


def normalise_database_url(url: str) -> str:
    """Map plain driver URLs onto the async drivers the service uses.

    ``postgresql://`` and ``postgres://`` become ``postgresql+asyncpg://``;
    ``sqlite://`` becomes ``sqlite+aiosqlite://``. Explicit async drivers pass through.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        "must start with postgresql://, postgresql+asyncpg://, sqlite:// or sqlite+aiosqlite://"
    )


class Settings(BaseSettings):
    """All configuration of one service process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- storage -------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite+aiosqlite:///./acd.db",
        description="SQLAlchemy URL; postgresql://... or sqlite:///file.db",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for the live-state mirror; unset = in-process"
    )

    # --- Asterisk manager interface -------------------------------------------------
    ami_host: str | None = Field(default=None, description="AMI host; unset = no PBX")
    ami_port: Port = Field(default=5038, description="AMI TCP port")
    ami_username: str = Field(default="acd", description="AMI user (manager.conf section)")
    ami_secret: SecretStr | None = Field(default=None, description="AMI secret")

    # --- FastAGI server -------------------------------------------------------------
    agi_host: str = Field(default="127.0.0.1", description="FastAGI listen address")
    agi_port: Port = Field(default=4573, description="FastAGI listen port")
    agi_max_sessions: int = Field(
        default=500,
        ge=1,
        le=20000,
        description="Concurrent FastAGI sessions; beyond it a call gets the dialplan fallback",
    )
    agi_env_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds for a FastAGI client to send its environment, and again to "
        "answer the first command",
    )
    agi_reply_timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds Asterisk may take to answer a command, beyond its own prompt/timeout",
    )
    agi_session_timeout: float = Field(
        default=900.0, gt=0, le=7200, description="Seconds a whole FastAGI session may last"
    )

    # --- HTTP -----------------------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", description="REST/metrics listen address")
    http_port: Port = Field(default=8000, description="REST/metrics listen port")

    # --- the contact centre ---------------------------------------------------------
    timezone: str = Field(default="Europe/Copenhagen", description="Local time of the centre")
    ivr_flows: Path = Field(
        default=Path("ivr_flows"),
        description="Folder of the configuration files: queues, work data, IVR flows",
    )
    caller_hash_key: SecretStr | None = Field(
        default=None,
        description="Key for the keyed hash of caller numbers; `acd serve` refuses to start "
        "without it (only the demo runs on a random key per process)",
    )
    caller_hash_key_previous: SecretStr | None = Field(
        default=None,
        description="The key being rotated out: accepted for look-ups while the service "
        "re-keys stored hashes and sealed numbers to ACD_CALLER_HASH_KEY (docs/privacy.md)",
    )
    pbx_id: str = Field(default="pbx1", description="Name of this Asterisk box in the records")
    pbxs: str = Field(
        default="",
        description="Every PBX of the centre, comma-separated (empty: ACD_PBX_ID alone); "
        "with more than one, the live picture, wallboard and gauges add them up (needs "
        "ACD_REDIS_URL) and ?pbx= shows one (docs/high-availability.md)",
    )
    lease: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "One owner per PBX, elected by a lease row in PostgreSQL (docs/"
            "high-availability.md): auto = on with PostgreSQL and a PBX configured"
        ),
    )
    lease_ttl: float = Field(
        default=3.0, gt=0.5, le=60, description="Seconds a lease lasts without renewal"
    )
    lease_renew_interval: float = Field(
        default=0.75, gt=0, le=30, description="Seconds between the owner's renewals"
    )
    lease_poll_interval: float = Field(
        default=0.5, gt=0, le=30, description="Seconds between a standby's takeover tries"
    )
    stale_call_seconds: float = Field(
        default=43200.0,
        ge=60.0,
        description="A call with no event for this long is closed as a data gap (its end was "
        "lost): longer than any call can last",
    )
    spill_dir: Path = Field(
        default=Path("var"),
        description="Folder for the event log's spill file while the database is away",
    )
    message_dir: Path | None = Field(
        default=None,
        description="The voice messages' folder as this service sees it (the menu's "
        "callback.message_dir, shared with Asterisk); unset = the menu's own path",
    )
    purge_interval_minutes: int = Field(
        default=60,
        ge=0,
        le=10080,
        description="Minutes between two runs of the purge of data past its retention "
        "(retention.yaml); 0 = only `acd privacy purge`",
    )

    # --- live figures ---------------------------------------------------------------
    short_abandon_seconds: float = Field(
        default=5.0,
        ge=0,
        le=120,
        description="Abandons within this many seconds do not count against the answer rate",
    )
    service_level_seconds: float = Field(
        default=180.0,
        gt=0,
        le=3600,
        description="Service level: share answered within this many seconds",
    )
    repeat_call_working_days: int = Field(
        default=3,
        ge=0,
        le=10,
        description="First-contact resolution from repeat calls: the same caller calling "
        "again within this many working days counts as not settled",
    )
    live_interval: float = Field(
        default=1.0,
        ge=0.1,
        le=10,
        description="Seconds between live snapshots (REST, stream, Redis mirror)",
    )
    stream_max_clients: int = Field(
        default=500, ge=1, le=20000, description="Concurrent /v1/stream clients"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level"
    )

    # --- who may do what (app/api/auth.py) -------------------------------------------
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics asks for; unset = /metrics is open",
    )
    token_ttl_minutes: int = Field(
        default=480,
        ge=5,
        le=10080,
        description="Lifetime of a bearer token from POST /v1/auth/token, in minutes",
    )
    auth_outage_seconds: int = Field(
        default=900,
        ge=0,
        le=86400,
        description="While the database is unreachable, reads with a credential it confirmed "
        "within this many seconds are let through from memory; 0 = never",
    )
    max_body_bytes: int = Field(
        default=16384,
        ge=1024,
        le=1048576,
        description="Largest request body the API reads; beyond it 413",
    )

    # --- agents at work (app/api/agents.py, calls.py, callbacks.py) --------------------
    ami_confirm_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds an agent action waits for the PBX's events before a 504",
    )
    disposition_window_minutes: int = Field(
        default=60,
        ge=1,
        le=10080,
        description="Minutes after a call ends during which its agent may register it",
    )
    # --- the reports kept when their period ends (app/reports/archive.py) ----------------
    report_archive: bool = Field(
        default=True,
        description="Make and keep the weekly, monthly and quarterly reports when each ends",
    )
    report_archive_delay_minutes: int = Field(
        default=120,
        ge=0,
        le=10080,
        description="Minutes after a period's end (local midnight) before its reports are made",
    )
    report_archive_catchup_days: int = Field(
        default=100,
        ge=0,
        le=800,
        description="How far back missed periods are made after downtime (days)",
    )
    dialer_enabled: bool = Field(
        default=False,
        description="Place call-backs through AMI Originate when agents of the queue are free",
    )
    dialer_interval: float = Field(
        default=2.0, gt=0, le=300, description="Seconds between two looks of the call-back dialer"
    )
    dialer_ring_seconds: int = Field(
        default=30, ge=5, le=120, description="Seconds a call-back rings the citizen"
    )
    dialer_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Call-back attempts before a task is given up"
    )
    dialer_retry_minutes: int = Field(
        default=30, ge=1, le=1440, description="Minutes between two attempts of one call-back"
    )
    dialer_channel: str = Field(
        default="PJSIP/{number}@trunk",
        description="Originate channel for a call-back; {number} is the citizen's number",
    )
    dialer_caller_id: str = Field(
        default="82565682", description="Caller id a citizen sees on a call-back"
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value.strip())

    @field_validator("redis_url", "ami_host", "caller_hash_key_previous", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("ivr_flows")
    @classmethod
    def _ivr_flows(cls, value: Path) -> Path:
        # A relative folder that is not in the working directory is looked up beside the
        # package (a checkout run from elsewhere), as the migrations are.
        if not value.is_absolute() and not value.exists():
            beside = Path(__file__).resolve().parents[1] / value
            if beside.is_dir():
                return beside
        return value

    @field_validator("pbx_id")
    @classmethod
    def _pbx_id(cls, value: str) -> str:
        if not PBX_ID.fullmatch(value):
            raise ValueError("must be 1-32 of a-z, 0-9, '_' or '-', starting with a letter/digit")
        return value

    @field_validator("pbxs")
    @classmethod
    def _pbxs(cls, value: str) -> str:
        names = [p.strip() for p in value.split(",") if p.strip()]
        for name in names:
            cls._pbx_id(name)
        if len(set(names)) != len(names):
            raise ValueError("names a PBX twice")
        return ",".join(names)

    @model_validator(mode="after")
    def _centre(self) -> Settings:
        if self.pbxs and self.pbx_id not in self.pbxs.split(","):
            raise ValueError(f"ACD_PBXS must name this process's ACD_PBX_ID ({self.pbx_id})")
        if len(self.centre_pbxs) > 1 and self.redis_url is None:
            raise ValueError(
                "ACD_PBXS names several PBXs: their live pictures meet in Redis (set ACD_REDIS_URL)"
            )
        return self

    @field_validator("caller_hash_key", "caller_hash_key_previous")
    @classmethod
    def _hash_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("dialer_channel")
    @classmethod
    def _dialer_channel(cls, value: str) -> str:
        if value.count("{number}") != 1 or "/" not in value or "{" in value.replace("{number}", ""):
            raise ValueError("must hold {number} once and look like TECH/...{number}...")
        return value

    @field_validator("dialer_caller_id")
    @classmethod
    def _dialer_caller_id(cls, value: str) -> str:
        if not re.fullmatch(r"\+?[0-9]{3,15}", value):
            raise ValueError("must be a phone number (digits, optional leading +)")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def lease_enabled(self) -> bool:
        """Is this process one of possibly several for its PBX, owning it only while it
        holds the lease (app/ha)? Needs PostgreSQL (the lease and its fence live there)."""
        if self.is_sqlite or self.ami_host is None:
            return False
        return self.lease != "off"

    @property
    def centre_pbxs(self) -> tuple[str, ...]:
        """The centre's PBXs, this process's first (ACD_PBXS, or ACD_PBX_ID alone)."""
        names = [p for p in self.pbxs.split(",") if p]
        return (self.pbx_id, *(p for p in names if p != self.pbx_id))

    @property
    def primary_pbx(self) -> str:
        """The centre's first PBX (ACD_PBXS): its owner also runs the jobs of the whole
        centre (report tallies and archive, purge, re-key), once for the centre."""
        return self.pbxs.split(",")[0] if self.pbxs else self.pbx_id

    @property
    def ami_enabled(self) -> bool:
        return self.ami_host is not None


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), or raise ``SettingsError``.

    ``overrides`` take precedence over the environment (used by the CLI and tests).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            if not field:  # a rule across several variables: its message names them
                lines.append(err["msg"].removeprefix("Value error, "))
                continue
            var = ENV_PREFIX + field.upper()
            lines.append(f"{var}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting; used to check the README table."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else str(default)
        rows.append((ENV_PREFIX + name.upper(), shown, field.description or ""))
    return rows
