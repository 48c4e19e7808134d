"""The report: a pure model of what ``GET /v1/reports`` answers (JSON), what ``acd
report`` writes and what the documents (HTML, PDF, XLSX, CSV) are rendered from.

Shape (docs/kpis.md defines every figure)::

    {"from", "to", "by", "period", "title", "timezone", "as_of", "config",
     "agreements": [...],
     "centre": {<figures>, "goals": {...}},
     "groups": [{"key", "title", <figures>, "goals"}, ...],
     "daily": [{"date", <figures>}, ...],             # the centre per local day (charts)
     "wait_distribution": {"edges_seconds", "answered", "abandoned"},
     "comparison": {"previous": {"from", "to"}, "last_year": {"from", "to"}},
     "data_quality": {...}}

The figures carry the names ``/v1/queues`` uses for ``today`` (``offered``, ``answered``,
``answer_rate``, ``avg_wait_seconds``, ...) plus the report's own. Counts are ints; rates
are shares 0-1 (4 decimals); times are seconds (0.1 s); a figure with nothing to measure is
``null``, never 0.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

By = Literal[
    "centre",
    "department",
    "queue",
    "agent",
    "day",
    "week",
    "month",
    "quarter",
    "weekday",
    "halfhour",
]
BY_VALUES: tuple[By, ...] = get_args(By)
GoalStatus = Literal["met", "at_risk", "missed", "no_data"]
SurveySplit = Literal["all", "settled", "transferred"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceLevel(_Out):
    """One row of the service-level table: every variant from the same counts."""

    threshold_seconds: float
    answered_within: int  # answered with wait <= T
    abandoned_within: int  # abandoned with wait <= T (short abandons included)
    abandoned_after: int  # abandoned with wait > T
    of_answered: float | None  # answered within T / answered
    of_offered: float | None  # answered within T / offered
    sl2: float | None  # (answered + abandoned within T) / (answered + abandoned): app_queue SL2
    of_answered_and_late_abandons: float | None  # within T / (answered + abandoned after T)


class QuestionStats(_Out):
    """A survey question's answers (1-9): mean with its 95 % confidence interval."""

    n: int
    mean: float | None
    ci95_low: float | None  # Student's t interval of the mean; None below 2 answers
    ci95_high: float | None
    counts: list[int]  # answers 1..9


class SurveyGroup(_Out):
    friendliness: QuestionStats  # imødekommenhed
    wait: QuestionStats  # ventetid
    overall: QuestionStats  # tilfredshed


class Survey(_Out):
    """``all`` answers, and split by the call's registration: ``settled`` at first contact
    vs ``transferred`` (calls without a registration are in ``all`` only)."""

    all: SurveyGroup
    settled: SurveyGroup
    transferred: SurveyGroup


class Figures(_Out):
    """The figures of one group (or the centre, or one day) of a report."""

    # --- calls to the line (the centre, a scope, a department; 0 for a queue's own) ----
    calls: int  # every call to the line (whatever became of it)
    closed: int  # outside opening hours or on a holiday
    forwarded: int  # sent straight to an external unit (Sygedagpenge 09-10 to JKA)
    ivr_hangup: int  # hung up in the menu
    failed: int  # could not be put through (no queue to join, network causes)
    # --- queue figures (per visit for a queue, per call otherwise: docs/kpis.md) -------
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    timeout: int
    empty: int
    transferred: int  # moved on to another queue while waiting
    answered_within_sl: int
    abandoned_within_sl: int
    abandoned_after_sl: int
    answer_rate: float | None  # availability (tilgængelighed)
    answer_rate_raw: float | None
    abandon_rate: float | None
    avg_wait_seconds: float | None  # average wait (ventetid)
    asa_seconds: float | None
    max_wait_seconds: float | None
    service_level: float | None  # answered within T / answered
    service_level_offered: float | None  # answered within T / offered
    service_level_sl2: float | None  # app_queue's SL2
    service_level_abandons: float | None  # within T / (answered + abandoned after T)
    service_levels: list[ServiceLevel]  # the table, one row per threshold
    talked: int
    avg_talk_seconds: float | None
    avg_handle_seconds: float | None  # talk + the queue's wrap-up
    ewt_samples: int
    ewt_mean_error_seconds: float | None
    ewt_mean_abs_error_seconds: float | None
    # --- transfers --------------------------------------------------------------------
    transferred_to_queue: int  # answered, then put through to another queue by the agent
    transferred_external: int  # answered, then put through to an external unit
    transfers_received: int  # a department: calls transferred or forwarded to its units
    # --- first-contact resolution (straksafklaring) -----------------------------------
    registered: int  # answered calls (visits for a queue) the agent registered
    registration_share: float | None  # registered / answered
    registered_resolved: int  # registered as settled at first contact
    registered_transferred: int
    first_contact_resolution: float | None  # registered_resolved / registered
    repeat_base: int  # answered calls of a known caller
    repeat_callers: int  # ... who called again within N working days
    first_contact_resolution_repeat: float | None  # 1 - repeat_callers / repeat_base
    # --- satisfaction -----------------------------------------------------------------
    survey_invited: int  # answered calls flagged for the survey (every 5th)
    survey_responses: int  # surveys with at least one answer
    survey_completed: int
    survey_response_rate: float | None
    satisfaction: float | None  # mean "overall" (tilfredshed), 1-9
    survey: Survey
    # --- call-backs and messages --------------------------------------------------------
    callbacks_requested: int
    messages_requested: int
    tasks_requested: int
    tasks_returned: int  # done (called back / forwarded)
    tasks_returned_in_time: int  # done within 2 working days (by the due time)
    tasks_in_time_share: float | None  # tasks_returned_in_time / tasks_requested
    tasks_failed: int  # given up (unreachable)
    tasks_cancelled: int
    tasks_overdue: int  # still open past their due time at ``as_of``
    # --- how much of it the service could not see ------------------------------------
    data_gap_calls: int  # calls (visits for a queue) touched by an AMI data gap


class GoalValue(_Out):
    value: float | None
    change: float | None  # this period's value minus that one


class GoalResult(_Out):
    """One goal of one agreement, measured on a group."""

    metric: str
    title: str
    unit: Literal["share", "seconds", "score"]
    direction: Literal["at_least", "above", "at_most"]
    target: float
    warning: float | None
    ambition: float | None
    value: float | None
    status: GoalStatus
    previous: GoalValue  # the period before, of the same length
    last_year: GoalValue  # the same period a year before


class AgreementGoals(_Out):
    title: str
    scope: str
    comparison: bool
    goals: dict[str, GoalResult]  # by metric


class Centre(Figures):
    goals: dict[str, AgreementGoals]  # by agreement


class Group(Figures):
    key: str
    title: str
    goals: dict[str, AgreementGoals]


class Day(Figures):
    """The centre's figures of one day (for charts): the scalars; the service-level table
    and the survey's detail are the period's (``centre``), not repeated per day."""

    date: date
    service_levels: list[ServiceLevel] = Field(default_factory=list)
    survey: Survey | None = None  # type: ignore[assignment]


class WaitDistribution(_Out):
    """The centre's decided calls by wait: bucket i holds waits in (edges[i-1], edges[i]]
    (the first from 0, the last above the last edge)."""

    edges_seconds: list[float]
    answered: list[int]
    abandoned: list[int]


class Span(_Out):
    from_: date = Field(alias="from")
    to: date

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Comparison(_Out):
    previous: Span
    last_year: Span


class AgreementInfo(_Out):
    name: str
    title: str
    scope: str
    scope_title: str
    queues: list[str]
    valid_from: date
    valid_to: date | None
    comparison: bool


class ReportConfig(_Out):
    short_abandon_seconds: float
    service_level_seconds: float
    service_level_thresholds: list[float]
    repeat_call_working_days: int
    callback_working_days: int


class DataQuality(_Out):
    """What the AMI data gaps may have hidden, and where the figures came from."""

    gaps: int  # stretches without AMI overlapping the period
    gap_seconds: float
    calls: int  # calls of the period
    calls_touched: int  # of which touched by a gap (closed or picked up by a resync)
    visits_touched: int
    share_touched: float | None
    figures_affected: list[str]  # centre figures that differ without the touched calls
    figures_affected_count: int
    days: int
    days_from_rollup: int  # read from the stored per-day figures
    days_recomputed: int  # figured from the detail rows for this report
    days_without_data: int
    notes: list[str]


class Report(_Out):
    from_: date = Field(alias="from")
    to: date
    by: By
    period: str | None  # the shortcut asked for: 2014-W45, 2014-11, 2014-Q4, 2014
    title: str  # Danish: "Uge 45 2014", "November 2014", "4. kvartal 2014", ...
    timezone: str
    as_of: datetime  # the time "now" figures (overdue tasks) are measured at
    config: ReportConfig
    agreements: list[AgreementInfo]
    centre: Centre
    groups: list[Group]
    daily: list[Day]
    wait_distribution: WaitDistribution
    comparison: Comparison
    data_quality: DataQuality

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> bytes:
        """The report as the API serves it (``from``, not ``from_``)."""
        return self.model_dump_json(by_alias=True).encode("utf-8")
