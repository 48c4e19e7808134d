"""The report's pure parts: periods and their comparisons, time cuts, the confidence
interval of a survey mean, and tallies that add up and survive storage exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.acd.kpi import KpiConfig
from app.reports.compute import VisitRow
from app.reports.periods import PeriodError, parse_period, slot_key, span, time_key
from app.reports.tally import (
    WAIT_EDGES,
    ReportTally,
    question_stats,
    t_quantile_975,
    wait_bucket,
)


def test_periods_and_what_they_are_compared_with() -> None:
    w = parse_period("2014-W45")
    assert (w.first, w.last, w.title) == (date(2014, 11, 3), date(2014, 11, 9), "Uge 45 2014")
    assert (w.previous().label, w.last_year().label) == ("2014-W44", "2013-W45")
    assert parse_period("2015-W01").previous().label == "2014-W52"
    assert parse_period("2015-W53").last_year().label == "2014-W52"  # 2014 has 52 weeks
    m = parse_period("2014-11")
    assert (m.first, m.last, m.title, m.previous().label) == (
        date(2014, 11, 1), date(2014, 11, 30), "November 2014", "2014-10",
    )  # fmt: skip
    assert parse_period("2014-03").previous().days == 28
    q = parse_period("2014-Q4")
    assert (q.first, q.last, q.title) == (date(2014, 10, 1), date(2014, 12, 31), "4. kvartal 2014")
    assert (q.previous().label, q.last_year().label) == ("2014-Q3", "2013-Q4")
    y = parse_period("2014")
    assert (y.days, y.previous().label, y.title) == (365, "2013", "2014")
    s = span(date(2016, 2, 28), date(2016, 3, 1))
    assert (s.previous().first, s.previous().last) == (date(2016, 2, 25), date(2016, 2, 27))
    assert (s.last_year().first, s.last_year().last) == (date(2015, 2, 28), date(2015, 3, 1))
    assert span(date(2016, 2, 29), date(2016, 2, 29)).last_year().first == date(2015, 2, 28)
    assert span(date(2014, 11, 4), date(2014, 11, 4)).title == "4. november 2014"
    for bad in ("2014-W54", "2014-13", "2014-Q5", "14", "2014-11-04", "last week"):
        with pytest.raises(PeriodError):
            parse_period(bad)
    with pytest.raises(PeriodError):
        span(date(2014, 11, 5), date(2014, 11, 4))
    with pytest.raises(PeriodError):
        span(date(2013, 1, 1), date(2014, 12, 31))


def test_time_cuts() -> None:
    day = date(2014, 12, 29)  # ISO week 1 of 2015
    assert time_key("day", day) == ("2014-12-29", "Mandag 29. december 2014")
    assert time_key("week", day) == ("2015-W01", "Uge 1 2015")
    assert time_key("month", day) == ("2014-12", "December 2014")
    assert time_key("quarter", day) == ("2014-Q4", "4. kvartal 2014")
    assert time_key("weekday", day + timedelta(days=5)) == ("6", "Lørdag")
    assert slot_key(0) == ("00:00", "00:00-00:30")
    assert slot_key(19) == ("09:30", "09:30-10:00")
    assert slot_key(47) == ("23:30", "23:30-00:00")


def test_student_t_and_the_interval_of_a_mean() -> None:
    # Tabled 97.5 % quantiles.
    for df, value in ((1, 12.7062), (4, 2.7764), (5, 2.5706), (10, 2.2281), (30, 2.0423),
                      (100, 1.9840), (1000, 1.9623)):  # fmt: skip
        assert abs(t_quantile_975(df) - value) < 2e-4, df
    stats = question_stats([0, 0, 0, 1, 1, 0, 0, 1, 1])  # 4, 5, 8, 9
    assert (stats.n, stats.mean, stats.ci95_low, stats.ci95_high) == (4, 6.5, 2.71, 10.29)
    one = question_stats([0, 0, 0, 0, 0, 0, 1, 0, 0])
    assert (one.n, one.mean, one.ci95_low) == (1, 7.0, None)
    none = question_stats([0] * 9)
    assert (none.n, none.mean) == (0, None)


def visit(n: int, outcome: str, wait_ms: int) -> VisitRow:
    at = datetime(2014, 11, 4, 8, tzinfo=UTC)
    return VisitRow(
        f"c{n}", 1, "dagpenge", at, outcome, wait_ms / 1000, 60.0, None, None, None, False
    )


def test_wait_buckets_hold_waits_up_to_their_edge() -> None:
    assert wait_bucket(0) == 0 and wait_bucket(5000) == 0 and wait_bucket(5001) == 1
    assert wait_bucket(1_800_000) == len(WAIT_EDGES) - 1
    assert wait_bucket(1_800_001) == len(WAIT_EDGES)


tallies = st.lists(
    st.tuples(st.sampled_from(["answered", "abandoned", "timeout"]), st.integers(0, 3_000_000)),
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(tallies, tallies)
def test_tallies_add_up_survive_storage_and_take_a_part_out(
    a: list[tuple[str, int]], b: list[tuple[str, int]]
) -> None:
    config = KpiConfig()
    one, two, both = ReportTally(), ReportTally(), ReportTally()
    for i, (outcome, wait) in enumerate(a):
        one.decided(visit(i, outcome, wait), config)
        both.decided(visit(i, outcome, wait), config)
    for i, (outcome, wait) in enumerate(b):
        two.decided(visit(1000 + i, outcome, wait), config)
        both.decided(visit(1000 + i, outcome, wait), config)
        two.repeat_hist[i % 11] += 1
        both.repeat_hist[i % 11] += 1
    total = ReportTally()
    total.add(ReportTally.from_data(one.to_data()))
    total.add(ReportTally.from_data(two.to_data()))
    assert total == both
    back = both.minus(two)
    back.max_wait_ms = one.max_wait_ms  # the one thing a sum cannot give back
    assert back == one
    assert ReportTally.from_data({"offered": 1, "gone_in_v0": 5}).offered == 1
