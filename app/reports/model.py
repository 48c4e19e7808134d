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

from app.acd.glossary import describe_figures

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
    "pbx",
]
BY_VALUES: tuple[By, ...] = get_args(By)
LocalDay = date  # for fields named ``date``: pydantic cannot have a field share its type's name
GoalStatus = Literal["met", "at_risk", "missed", "no_data"]
SurveySplit = Literal["all", "settled", "transferred"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceLevel(_Out):
    """One row of the service-level table: every variant from the same counts."""

    threshold_seconds: float = Field(description="T, the threshold of this row (seconds).")
    answered_within: int = Field(description="Answered with a wait of at most T.")
    abandoned_within: int = Field(
        description="Abandoned with a wait of at most T (short abandons included).",
    )
    abandoned_after: int = Field(description="Abandoned with a wait over T.")
    of_answered: float | None = Field(description="answered_within / answered (the service level).")
    of_offered: float | None = Field(description="answered_within / offered.")
    sl2: float | None = Field(
        description="(answered_within + abandoned_within) / (answered + abandoned): "
        "app_queue's SL2.",
    )
    of_answered_and_late_abandons: float | None = Field(
        description="answered_within / (answered + abandoned_after).",
    )


class QuestionStats(_Out):
    """A survey question's answers (1-9): mean with its 95 % confidence interval."""

    n: int = Field(description="Answers given.")
    mean: float | None = Field(description="Their mean (1-9), or null without answers.")
    ci95_low: float | None = Field(
        description="Lower end of the mean's 95 % interval (Student's t); null below 2 answers.",
    )
    ci95_high: float | None = Field(
        description="Upper end of the mean's 95 % interval; null below 2 answers.",
    )
    counts: list[int] = Field(description="How many answered 1, 2, ... 9 (nine counts).")


class SurveyGroup(_Out):
    friendliness: QuestionStats = Field(description="Imødekommenhed (friendliness).")
    wait: QuestionStats = Field(description="Ventetid (the wait).")
    overall: QuestionStats = Field(description="Tilfredshed (overall satisfaction).")


class Survey(_Out):
    """``all`` answers, and split by the call's registration: ``settled`` at first contact
    vs ``transferred`` (calls without a registration are in ``all`` only)."""

    all: SurveyGroup = Field(description="Every answered survey.")
    settled: SurveyGroup = Field(description="The calls registered as settled at first contact.")
    transferred: SurveyGroup = Field(description="The calls registered as transferred.")


class Figures(_Out):
    """The figures of one group (or the centre, or one day) of a report."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_figures)

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
    value: float | None = Field(description="The goal's figure in that period, or null.")
    change: float | None = Field(description="This period's value minus that one.")


class GoalResult(_Out):
    """One goal of one agreement, measured on a group."""

    metric: str = Field(description="The figure measured (e.g. `answer_rate`).")
    title: str = Field(description="The goal's title (Danish).")
    unit: Literal["share", "seconds", "score"] = Field(
        description="share (0-1), seconds or score (1-9).",
    )
    direction: Literal["at_least", "above", "at_most"] = Field(
        description="at_least, above or at_most the target.",
    )
    target: float = Field(description="The goal.")
    warning: float | None = Field(description="The level at which the goal is at risk, or null.")
    ambition: float | None = Field(description="The level aimed for beyond the goal, or null.")
    value: float | None = Field(description="The figure in the period, or null without data.")
    status: GoalStatus = Field(description="met, at_risk, missed or no_data.")
    previous: GoalValue = Field(description="The period before, of the same length.")
    last_year: GoalValue = Field(description="The same period a year before.")


class AgreementGoals(_Out):
    title: str = Field(description="The agreement's title.")
    scope: str = Field(description="The scope it applies to (the centre, a department or queue).")
    comparison: bool = Field(
        description="The agreement is a comparison (e.g. 2009's figures), not a goal in force.",
    )
    goals: dict[str, GoalResult] = Field(description="Each goal by its metric.")


class Centre(Figures):
    goals: dict[str, AgreementGoals] = Field(
        description="The goals of each agreement in force, by agreement.",
    )


class Group(Figures):
    key: str = Field(
        description="The group: a department, queue or agent name, a date, week, month, "
        "quarter, weekday or half-hour, or a PBX's id (ACD_PBX_ID).",
    )
    title: str = Field(description="The group's title (Danish).")
    goals: dict[str, AgreementGoals] = Field(
        description="The goals of each agreement that covers the group, by agreement.",
    )


class Day(Figures):
    """The centre's figures of one day (for charts): the scalars; the service-level table
    and the survey's detail are the period's (``centre``), not repeated per day."""

    date: LocalDay = Field(description="The local day.")
    service_levels: list[ServiceLevel] = Field(default_factory=list)
    survey: Survey | None = None  # type: ignore[assignment]


class WaitDistribution(_Out):
    """The centre's decided calls by wait: bucket i holds waits in (edges[i-1], edges[i]]
    (the first from 0, the last above the last edge)."""

    edges_seconds: list[float] = Field(description="The buckets' upper edges (seconds).")
    answered: list[int] = Field(
        description="Answered calls per bucket (one more than the edges: the last is above "
        "the last edge).",
    )
    abandoned: list[int] = Field(description="Abandoned calls per bucket.")


class Span(_Out):
    from_: date = Field(alias="from", description="The first day (local).")
    to: date = Field(description="The last day (local, inclusive).")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Comparison(_Out):
    previous: Span = Field(description="The period before, of the same length.")
    last_year: Span = Field(description="The same period a year before.")


class AgreementInfo(_Out):
    name: str = Field(description="The agreement's name in goals.yaml.")
    title: str = Field(description="The agreement's title.")
    scope: str = Field(description="The scope it applies to.")
    scope_title: str = Field(description="The scope's title.")
    queues: list[str] = Field(description="The queues the scope covers.")
    valid_from: date = Field(description="The first day it is in force.")
    valid_to: date | None = Field(
        description="The last day it is in force, or null: until further notice.",
    )
    comparison: bool = Field(description="A comparison (e.g. 2009's figures), not a goal in force.")


class ReportConfig(_Out):
    short_abandon_seconds: float = Field(
        description="S: abandons with a shorter wait are short abandons.",
    )
    service_level_seconds: float = Field(description="T: the service-level threshold.")
    service_level_thresholds: list[float] = Field(
        description="The thresholds of the service-level table.",
    )
    repeat_call_working_days: int = Field(
        description="N: a call again within N working days is a repeat call.",
    )
    callback_working_days: int = Field(
        description="Working days a call-back task has before it is due.",
    )


class DataQuality(_Out):
    """What the AMI data gaps may have hidden, and where the figures came from."""

    gaps: int = Field(
        description="Stretches without the PBX's event stream overlapping the period.",
    )
    gap_seconds: float = Field(description="Their length in seconds.")
    calls: int = Field(description="Calls of the period.")
    calls_touched: int = Field(
        description="Of which touched by a gap (closed or picked up by a resync).",
    )
    visits_touched: int = Field(description="Queue visits touched by a gap.")
    share_touched: float | None = Field(description="calls_touched / calls.")
    figures_affected: list[str] = Field(
        description="The centre's figures that differ without the touched calls.",
    )
    figures_affected_count: int = Field(description="How many they are.")
    days: int = Field(description="Days in the period.")
    days_from_rollup: int = Field(description="Days read from the stored per-day figures.")
    days_recomputed: int = Field(description="Days figured from the detail rows for this report.")
    days_without_data: int = Field(description="Days without any data.")
    notes: list[str] = Field(description="What the reader should know about the data (Danish).")


class Report(_Out):
    from_: date = Field(alias="from", description="The first day of the period (local).")
    to: date = Field(description="The last day of the period (local, inclusive).")
    by: By = Field(description="How the groups are cut.")
    period: str | None = Field(
        description="The shortcut asked for (2014-W45, 2014-11, 2014-Q4, 2014), or null.",
    )
    title: str = Field(
        description="The report's title (Danish: 'Uge 45 2014', '4. kvartal 2014', ...).",
    )
    timezone: str = Field(description="The time zone local days are counted in.")
    as_of: datetime = Field(description="The time 'now' figures (overdue tasks) are measured at.")
    config: ReportConfig = Field(description="The settings the figures are counted with.")
    agreements: list[AgreementInfo] = Field(
        description="The service agreements in force in the period.",
    )
    centre: Centre = Field(description="The whole centre's figures.")
    groups: list[Group] = Field(description="Each group's figures.")
    daily: list[Day] = Field(description="The centre's figures per local day (for charts).")
    wait_distribution: WaitDistribution = Field(
        description="The centre's answered and abandoned calls by wait.",
    )
    comparison: Comparison = Field(description="The periods the goals are compared with.")
    data_quality: DataQuality = Field(
        description="What gaps in the data may have hidden, and where the figures came from.",
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> bytes:
        """The report as the API serves it (``from``, not ``from_``)."""
        return self.model_dump_json(by_alias=True).encode("utf-8")
