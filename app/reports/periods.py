"""Report periods and time cuts: ``2014-W45``, ``2014-11``, ``2014-Q4``, ``2014``; the
period before and the same period a year before; the key and Danish title of a day's
week, month, quarter, weekday and half-hour. Pure."""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS = (
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
)
WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
MAX_DAYS = 400  # a year and then some: a report over more is refused

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_YEAR = re.compile(r"(\d{4})")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date
    label: str | None = None  # the shortcut it came from
    kind: str = "span"  # week | month | quarter | year | span

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def title(self) -> str:
        """Danish: "Uge 45 2014", "November 2014", "4. kvartal 2014", "2014", or the dates."""
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"Uge {week} {year}"
        if self.kind == "month":
            return f"{MONTHS[self.first.month - 1].capitalize()} {self.first.year}"
        if self.kind == "quarter":
            return f"{(self.first.month - 1) // 3 + 1}. kvartal {self.first.year}"
        if self.kind == "year":
            return str(self.first.year)
        if self.first == self.last:
            return danish_date(self.first)
        return f"{danish_date(self.first)} - {danish_date(self.last)}"

    def previous(self) -> Period:
        """The period before: the previous week, month, quarter or year; else the same
        number of days just before."""
        if self.kind in ("week", "month", "quarter", "year"):
            return _of_kind(self.kind, self.first - timedelta(days=1))
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def last_year(self) -> Period:
        """The same period a year before (ISO week 45 of the year before; 29 February of a
        span taken as the 28th)."""
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            weeks = date(year - 1, 12, 28).isocalendar()[1]
            return week_period(year - 1, min(week, weeks))
        if self.kind in ("month", "quarter", "year"):
            return _of_kind(self.kind, _year_before(self.first))
        return Period(_year_before(self.first), _year_before(self.last))


def _year_before(day: date) -> date:
    return day.replace(year=day.year - 1, day=min(day.day, monthrange(day.year - 1, day.month)[1]))


def danish_date(day: date) -> str:
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def week_period(year: int, week: int) -> Period:
    try:
        first = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"{year} has no ISO week {week}") from None
    return Period(first, first + timedelta(days=6), f"{year}-W{week:02d}", "week")


def _of_kind(kind: str, day: date) -> Period:
    if kind == "week":
        year, week, _ = day.isocalendar()
        return week_period(year, week)
    if kind == "month":
        return Period(
            day.replace(day=1),
            day.replace(day=monthrange(day.year, day.month)[1]),
            f"{day.year}-{day.month:02d}",
            "month",
        )
    if kind == "quarter":
        q = (day.month - 1) // 3
        first = date(day.year, 3 * q + 1, 1)
        last_month = 3 * q + 3
        last = date(day.year, last_month, monthrange(day.year, last_month)[1])
        return Period(first, last, f"{day.year}-Q{q + 1}", "quarter")
    return Period(date(day.year, 1, 1), date(day.year, 12, 31), str(day.year), "year")


def parse_period(text: str) -> Period:
    """``2014-W45`` (ISO week), ``2014-11``, ``2014-Q4`` or ``2014``."""
    text = text.strip()
    if m := _WEEK.fullmatch(text):
        return week_period(int(m[1]), int(m[2]))
    if m := _QUARTER.fullmatch(text):
        return _of_kind("quarter", date(int(m[1]), 3 * int(m[2]) - 2, 1))
    if m := _MONTH.fullmatch(text):
        if not 1 <= int(m[2]) <= 12:
            raise PeriodError(f"{text!r}: no month {int(m[2])}")
        return _of_kind("month", date(int(m[1]), int(m[2]), 1))
    if m := _YEAR.fullmatch(text):
        if int(m[1]) < 1:
            raise PeriodError(f"{text!r}: no such year")
        return _of_kind("year", date(int(m[1]), 1, 1))
    raise PeriodError(
        f"period {text!r}: give an ISO week (2014-W45), a month (2014-11), a quarter "
        "(2014-Q4) or a year (2014)"
    )


def span(first: date, last: date) -> Period:
    if last < first:
        raise PeriodError(f"to ({last}) is before from ({first})")
    period = Period(first, last)
    if period.days > MAX_DAYS:
        raise PeriodError(f"{period.days} days: a report covers at most {MAX_DAYS}")
    return period


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --------------------------------------------------------------------------------------
# Time cuts: the group a day (or a half-hour slot) belongs to
# --------------------------------------------------------------------------------------


def time_key(by: str, day: date) -> tuple[str, str]:
    """(key, Danish title) of the ``by`` group ``day`` is in (day, week, month, quarter,
    weekday); keys sort in time order."""
    if by == "day":
        return day.isoformat(), f"{WEEKDAYS[day.weekday()].capitalize()} {danish_date(day)}"
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}", f"Uge {week} {year}"
    if by == "month":
        return f"{day.year}-{day.month:02d}", f"{MONTHS[day.month - 1].capitalize()} {day.year}"
    if by == "quarter":
        q = (day.month - 1) // 3 + 1
        return f"{day.year}-Q{q}", f"{q}. kvartal {day.year}"
    if by == "weekday":
        return str(day.isoweekday()), WEEKDAYS[day.weekday()].capitalize()
    raise ValueError(by)


def slot_key(slot: int) -> tuple[str, str]:
    """Half-hour slot 0-47 of the local day: ("08:30", "08:30-09:00")."""
    start = f"{slot // 2:02d}:{30 * (slot % 2):02d}"
    end_minutes = (slot + 1) * 30
    end = f"{end_minutes // 60 % 24:02d}:{end_minutes % 60:02d}"
    return start, f"{start}-{end}"
