"""When the scheduled reports are due (app/reports/archive.py ``ended``): a period is due
``delay`` after its local end, missed ones are caught up back to ``since``, oldest first."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.reports.archive import ended, period_of

TZ = ZoneInfo("Europe/Copenhagen")
TWO_HOURS = timedelta(hours=2)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def labels(kind: str, now: datetime, since: date, delay: timedelta = TWO_HOURS) -> list[str]:
    return [str(p.label) for p in ended(kind, now, delay, since)]


def test_a_week_is_due_its_delay_after_sunday_midnight() -> None:
    since = date(2014, 11, 3)
    assert labels("week", at(2014, 11, 10, 1, 59), since) == []
    assert labels("week", at(2014, 11, 10, 2, 0), since) == ["2014-W45"]
    assert labels("week", at(2014, 11, 10, 0, 30), since, timedelta(0)) == ["2014-W45"]


def test_missed_periods_are_caught_up_oldest_first_back_to_since() -> None:
    # Down from Friday 24 October to Wednesday 3 December 2014:
    now = at(2014, 12, 3, 9)
    assert labels("week", now, date(2014, 10, 24)) == [
        "2014-W43", "2014-W44", "2014-W45", "2014-W46", "2014-W47", "2014-W48",
    ]  # fmt: skip
    assert labels("month", now, date(2014, 10, 24)) == ["2014-10", "2014-11"]
    assert labels("quarter", now, date(2014, 10, 24)) == []  # Q4 is still running
    assert labels("quarter", now, date(2014, 9, 30)) == ["2014-Q3"]
    assert labels("quarter", now, date(2014, 10, 1)) == []  # Q3 ended before since


def test_the_quarter_is_there_on_the_first_working_day() -> None:
    # 1 January is a holiday; Friday 2 January 2015 the quarter must be kept already.
    assert labels("quarter", at(2015, 1, 1, 1, 59), date(2014, 10, 1)) == []
    assert labels("quarter", at(2015, 1, 1, 2, 0), date(2014, 10, 1)) == ["2014-Q4"]
    assert labels("month", at(2015, 1, 1, 2, 0), date(2014, 12, 1)) == ["2014-12"]
    # ISO week 1 of 2015 began on Monday 29 December 2014: not over yet
    assert labels("week", at(2015, 1, 1, 2, 0), date(2014, 12, 22)) == ["2014-W52"]


def test_iso_week_53_and_the_local_midnight_across_dst() -> None:
    assert period_of("week", date(2016, 1, 3)).label == "2015-W53"
    assert labels("week", at(2016, 1, 4, 2), date(2016, 1, 1)) == ["2015-W53"]
    # Summer time ends in the night to Sunday 26 October 2014: the week still ends at
    # local midnight to Monday (23:00 UTC), and is due two hours after.
    due = at(2014, 10, 27, 2)
    assert labels("week", due, date(2014, 10, 20)) == ["2014-W43"]
    assert labels("week", at(2014, 10, 27, 1, 59), date(2014, 10, 20)) == []


def test_only_weeks_months_and_quarters_are_scheduled() -> None:
    with pytest.raises(ValueError, match="no scheduled report"):
        period_of("year", date(2014, 1, 1))
