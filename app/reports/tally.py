"""A report's counts: ``ReportTally`` extends the live ``Tally`` (app/acd/kpi.py) with
what only a report shows, and ``report_figures`` turns one into the published figures,
the live part through the very ``kpi.figures`` the live figures use.

Everything here is an integer count or an integer-millisecond sum, so tallies add up
exactly (days into weeks, queues into departments) whatever the order, and are stored as
they are (``report_rollup``). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field, fields
from operator import add
from statistics import NormalDist
from typing import Any

from app.acd.kpi import CountedVisit, KpiConfig, Tally, _ms, figures
from app.reports.model import Figures, QuestionStats, ServiceLevel, Survey, SurveyGroup

# Bucket edges of the wait distribution (seconds): a bucket holds waits in (previous edge,
# edge]. Every service-level threshold of the report's table is one of them.
WAIT_EDGES: tuple[int, ...] = (
    5,
    10,
    15,
    20,
    30,
    45,
    60,
    90,
    120,
    150,
    180,
    240,
    300,
    600,
    900,
    1800,
)
SL_THRESHOLDS: tuple[int, ...] = (20, 60, 120, 180)
REPEAT_MAX_DAYS = 10  # repeat calls are counted up to this many working days later
QUESTIONS = ("friendliness", "wait", "overall")
SPLITS = ("all", "settled", "transferred")
_EDGES_MS = tuple(e * 1000 for e in WAIT_EDGES)
_SURVEY_CELLS = len(SPLITS) * len(QUESTIONS) * 9


def _zeros(n: int) -> list[int]:
    return [0] * n


def wait_bucket(wait_ms: int) -> int:
    """The bucket of a wait: the first edge at or above it (the last bucket above all)."""
    return bisect_left(_EDGES_MS, wait_ms)


def survey_cell(split: str, question: str, value: int) -> int:
    return (SPLITS.index(split) * len(QUESTIONS) + QUESTIONS.index(question)) * 9 + value - 1


@dataclass
class ReportTally(Tally):
    """The live tally plus the report's own counts; see ``Figures`` for their meaning."""

    calls: int = 0
    closed: int = 0
    forwarded: int = 0
    ivr_hangup: int = 0
    failed: int = 0
    handle_ms: int = 0
    answered_hist: list[int] = field(default_factory=lambda: _zeros(len(WAIT_EDGES) + 1))
    abandoned_hist: list[int] = field(default_factory=lambda: _zeros(len(WAIT_EDGES) + 1))
    transferred_to_queue: int = 0
    transferred_external: int = 0
    transfers_received: int = 0
    registered: int = 0
    registered_resolved: int = 0
    registered_transferred: int = 0
    repeat_base: int = 0
    # repeat_hist[k]: answered calls whose caller called again k working days later (0 =
    # the same day); later than REPEAT_MAX_DAYS or never is the rest of repeat_base.
    repeat_hist: list[int] = field(default_factory=lambda: _zeros(REPEAT_MAX_DAYS + 1))
    survey_invited: int = 0
    survey_responses: int = 0
    survey_completed: int = 0
    survey_hist: list[int] = field(default_factory=lambda: _zeros(_SURVEY_CELLS))
    callbacks_requested: int = 0
    messages_requested: int = 0
    tasks_returned: int = 0
    tasks_returned_in_time: int = 0
    tasks_failed: int = 0
    tasks_cancelled: int = 0
    data_gap_calls: int = 0
    gaps: int = 0  # data gaps that started this day (the centre's row only)
    gap_ms: int = 0  # time without AMI within the day (the centre's row only)

    # ---- feeding -----------------------------------------------------------------------

    def decided(self, v: CountedVisit, config: KpiConfig) -> None:
        Tally.decided(self, v, config)
        if v.wait_seconds is None:
            return
        if v.outcome == "answered":
            self.answered_hist[wait_bucket(_ms(v.wait_seconds))] += 1
        elif v.outcome == "abandoned":
            self.abandoned_hist[wait_bucket(_ms(v.wait_seconds))] += 1

    def talk_and_wrapup(self, v: CountedVisit, wrapup_ms: int) -> None:
        if v.talk_seconds is None:
            return
        self.talk(v)
        self.handle_ms += _ms(v.talk_seconds) + wrapup_ms

    def survey(self, split: str, answers: dict[str, int | None]) -> None:
        for q in QUESTIONS:
            value = answers.get(q)
            if value is not None and 1 <= value <= 9:
                self.survey_hist[survey_cell(split, q, value)] += 1

    # ---- arithmetic --------------------------------------------------------------------

    def add(self, other: Tally) -> None:
        # Reports add thousands of these (days into years, queues into groups): the field
        # names are looked up once (_SCALARS, _LISTS), not per call.
        if type(other) is not ReportTally:
            Tally.add(self, other)
            return
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _LISTS:
            setattr(self, name, list(map(add, getattr(self, name), getattr(other, name))))
        self.max_wait_ms = max(self.max_wait_ms, other.max_wait_ms)

    def minus(self, part: ReportTally) -> ReportTally:
        """These counts without ``part`` (a subset of them). The longest wait cannot be
        taken out: it stays, and ``max_wait_ms`` equal in both says it may be part's."""
        out = ReportTally()
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(part, f.name)
            if f.name == "max_wait_ms":
                out.max_wait_ms = mine
            elif isinstance(mine, list):
                setattr(out, f.name, [a - b for a, b in zip(mine, theirs, strict=True)])
            else:
                setattr(out, f.name, mine - theirs)
        return out

    # ---- storage -----------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """Only what is not zero (most of an agent's or a half-hour's counts are)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                if any(value):
                    out[f.name] = value
            elif value:
                out[f.name] = value
        return out

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReportTally:
        known = {k: v for k, v in data.items() if k in _FIELDS}  # older versions' counts go
        for name in _LISTS:
            value = known.get(name)
            if value is not None and len(value) != _LENGTHS[name]:
                known[name] = (list(value) + [0] * _LENGTHS[name])[: _LENGTHS[name]]
        return cls(**known)


_FIELDS = frozenset(f.name for f in fields(ReportTally))
_LISTS = tuple(f.name for f in fields(ReportTally) if f.name.endswith("_hist"))
_LENGTHS = {name: len(getattr(ReportTally(), name)) for name in _LISTS}
_SCALARS = tuple(f.name for f in fields(ReportTally) if f.name not in (*_LISTS, "max_wait_ms"))


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den > 0 else None


def t_quantile_975(df: int) -> float:
    """Student's t 97.5 % quantile (a two-sided 95 % interval) for ``df`` degrees of
    freedom: tabled values to df 5, then the Cornish-Fisher expansion around the normal
    quantile (error below 1e-4 from df 6 on; the tables give 4 decimals)."""
    exact = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706}
    if df in exact:
        return exact[df]
    z = NormalDist().inv_cdf(0.975)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def question_stats(counts: list[int]) -> QuestionStats:
    """Mean of 1-9 answers with the 95 % confidence interval of the mean (Student's t)."""
    n = sum(counts)
    # model_construct: counted here, nothing to validate (a report builds thousands).
    if n == 0:
        return QuestionStats.model_construct(
            n=0, mean=None, ci95_low=None, ci95_high=None, counts=counts
        )
    total = sum((i + 1) * c for i, c in enumerate(counts))
    mean = total / n
    if n < 2:
        return QuestionStats.model_construct(
            n=n, mean=round(mean, 2), ci95_low=None, ci95_high=None, counts=counts
        )
    squares = sum(((i + 1) - mean) ** 2 * c for i, c in enumerate(counts))
    sd = math.sqrt(squares / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return QuestionStats.model_construct(
        n=n,
        mean=round(mean, 2),
        ci95_low=round(mean - half, 2),
        ci95_high=round(mean + half, 2),
        counts=counts,
    )


def _survey(t: ReportTally) -> Survey:
    def group(split: str) -> SurveyGroup:
        stats = {}
        for q in QUESTIONS:
            start = survey_cell(split, q, 1)
            stats[q] = question_stats(t.survey_hist[start : start + 9])
        return SurveyGroup.model_construct(
            friendliness=stats["friendliness"], wait=stats["wait"], overall=stats["overall"]
        )

    return Survey.model_construct(
        all=group("all"), settled=group("settled"), transferred=group("transferred")
    )


def service_levels(t: ReportTally, config: KpiConfig) -> list[ServiceLevel]:
    """The table: the configured threshold T (from the exact counts), and the report's
    standard thresholds (from the wait distribution, whose edges they are)."""
    rows: dict[float, ServiceLevel] = {}
    answered, abandoned = t.answered_waits, t.abandoned

    def row(threshold: float, within: int, ab_within: int) -> ServiceLevel:
        after = abandoned - ab_within
        return ServiceLevel.model_construct(
            threshold_seconds=threshold,
            answered_within=within,
            abandoned_within=ab_within,
            abandoned_after=after,
            of_answered=_rate(within, answered),
            of_offered=_rate(within, t.offered),
            sl2=_rate(within + ab_within, answered + abandoned),
            of_answered_and_late_abandons=_rate(within, answered + after),
        )

    for threshold in SL_THRESHOLDS:
        k = WAIT_EDGES.index(threshold) + 1
        rows[float(threshold)] = row(
            float(threshold), sum(t.answered_hist[:k]), sum(t.abandoned_hist[:k])
        )
    rows[float(config.service_level_seconds)] = row(
        float(config.service_level_seconds), t.answered_within_sl, t.abandoned_within_sl
    )
    return [rows[k] for k in sorted(rows)]


def report_figures(
    t: ReportTally,
    config: KpiConfig,
    *,
    repeat_days: int,
    overdue: int = 0,
    agent: bool = False,
    nested: bool = True,
) -> dict[str, Any]:
    """The published figures of a tally: a dict of ``Figures``' fields (to which the
    caller adds its key, title and goals). ``agent``: a person's answered calls, not a
    queue's offered ones, so the figures of what was offered are not shown. ``nested``:
    with the service-level table and the survey's detail (not for the days of a chart)."""
    base = figures(t).as_dict()
    repeated = sum(t.repeat_hist[: repeat_days + 1])
    out: dict[str, Any] = {
        "calls": t.calls,
        "closed": t.closed,
        "forwarded": t.forwarded,
        "ivr_hangup": t.ivr_hangup,
        "failed": t.failed,
        **{k: v for k, v in base.items() if k in Figures.model_fields},
        "service_levels": service_levels(t, config) if nested else [],
        "avg_handle_seconds": round(t.handle_ms / t.talked / 1000, 1) if t.talked else None,
        "transferred_to_queue": t.transferred_to_queue,
        "transferred_external": t.transferred_external,
        "transfers_received": t.transfers_received,
        "registered": t.registered,
        "registration_share": _rate(t.registered, t.answered),
        "registered_resolved": t.registered_resolved,
        "registered_transferred": t.registered_transferred,
        "first_contact_resolution": _rate(t.registered_resolved, t.registered),
        "repeat_base": t.repeat_base,
        "repeat_callers": repeated,
        "first_contact_resolution_repeat": (
            round(1 - repeated / t.repeat_base, 4) if t.repeat_base else None
        ),
        "survey_invited": t.survey_invited,
        "survey_responses": t.survey_responses,
        "survey_completed": t.survey_completed,
        "survey_response_rate": (
            round(min(1.0, t.survey_responses / t.survey_invited), 4) if t.survey_invited else None
        ),
        "survey": _survey(t) if nested else None,
        "callbacks_requested": t.callbacks_requested,
        "messages_requested": t.messages_requested,
        "tasks_requested": t.callbacks_requested + t.messages_requested,
        "tasks_returned": t.tasks_returned,
        "tasks_returned_in_time": t.tasks_returned_in_time,
        "tasks_in_time_share": _rate(
            t.tasks_returned_in_time, t.callbacks_requested + t.messages_requested
        ),
        "tasks_failed": t.tasks_failed,
        "tasks_cancelled": t.tasks_cancelled,
        "tasks_overdue": overdue,
        "data_gap_calls": t.data_gap_calls,
    }
    overall = t.survey_hist[survey_cell("all", "overall", 1) : survey_cell("all", "overall", 9) + 1]
    answers = sum(overall)
    out["satisfaction"] = (
        round(sum((i + 1) * c for i, c in enumerate(overall)) / answers, 2) if answers else None
    )
    if agent:
        for name in (
            "offered",
            "abandoned",
            "short_abandoned",
            "timeout",
            "empty",
            "transferred",
            "abandoned_within_sl",
            "abandoned_after_sl",
        ):
            out[name] = 0
        for name in (
            "answer_rate",
            "answer_rate_raw",
            "abandon_rate",
            "avg_wait_seconds",
            "service_level_offered",
            "service_level_sl2",
            "service_level_abandons",
        ):
            out[name] = None
        out["service_levels"] = []
    return out
