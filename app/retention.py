"""How long each kind of personal data is kept: ``<ACD_IVR_FLOWS>/retention.yaml``.

Pure: the model, its defaults and the reason for each. The configuration registry loads
the file as its ``RETENTION`` kind (app/config/kinds.py); without the file the defaults
below apply (``RetentionConfig()``). The purge (app/services/privacy.py) reads it; the data
map for a data-protection officer (docs/privacy.md) lists the same periods and reasons, and
a test holds the two together.

Every period is in days, and every kind of personal data has one: none is kept for
ever. The per-day report tallies (``report_days``, ``report_rollup``) are aggregates
without personal data and are not purged: a quarterly or yearly report still works after
the calls behind it are gone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RETENTION_FILE = "retention.yaml"

Days = int


def _days(default: int, reason: str, least: int = 1) -> Any:
    return Field(default, ge=least, le=3660, description=reason)


class RetentionConfig(BaseModel):
    """Days each kind of data is kept (the field's description is its reason)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_frames: Days = _days(
        30,
        "The AMI frames kept beside each event (callers hashed) are only for finding a "
        "fault in the event log; a fault is found within days, so a month is enough.",
    )
    events: Days = _days(
        100,
        "The event log rebuilds calls (acd recompute) until the day's report tallies are "
        "final (about 3 weeks); kept a quarter longer for the quarterly follow-up's "
        "questions.",
    )
    calls: Days = _days(
        400,
        "Call and queue-visit rows (caller as keyed hash and masked number) feed the "
        "forecast and staffing plans, which compare with the same weeks a year before: a "
        "year and a month. Reports read the per-day tallies, which are kept.",
    )
    surveys: Days = _days(
        100,
        "Survey answers are counted into the day's tallies once it is final; kept a quarter "
        "for the quarterly follow-up, then only the tallies remain.",
    )
    callbacks: Days = _days(
        100,
        "A handled call-back or message task (caller as keyed hash and masked number) shows "
        "that the 2-working-day promise was kept; the quarterly follow-up reads it.",
    )
    sealed_numbers: Days = _days(
        7,
        "A handled task's sealed (dialable) number has no use once the citizen was called "
        "back; a week allows a wrongly closed task to be reopened.",
    )
    voice_messages: Days = _days(
        30,
        "A voice message (the citizen's own voice) is forwarded to the unit's mailbox when "
        "handled; kept a month after for a complaint about how it was handled.",
    )
    agent_states: Days = _days(
        400,
        "Agents' log-ins, pauses and states (employee data) feed scorecards and the "
        "staffing plans' same-weeks-last-year; a year and a month.",
    )
    audit_log: Days = _days(
        730,
        "Who read or changed what, erasures and exports included: the proof that data was "
        "handled lawfully; two years (the Danish DPA expects at least six months).",
        least=180,
    )
    dead_letters: Days = _days(
        30,
        "Records the database refused are kept for an operator to correct and replay; a "
        "month is time enough to notice (the alert fires at once).",
    )
    spill_files: Days = _days(
        30,
        "Left-over spill and dead-letter files beside the event log (only while the "
        "database was away) are deleted when older than this.",
    )
    stored_reports: Days = _days(
        1830,
        "Kept report documents (weekly, monthly, quarterly) hold aggregates, by agent "
        "among them (employee data); five years, as the centre's follow-up is evaluated.",
    )


DEFAULTS = RetentionConfig()
