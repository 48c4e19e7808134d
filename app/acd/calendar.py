"""Danish public holidays, opening hours and the Danish words to say when we open.

Pure: dates and local times in, answers out; nobody reads the clock here. It lives in
app/acd, the core, so the menu (app/ivr), the queues' work data, call-backs, forecasts and
reports read one calendar, and app/acd imports nothing from app/ivr.

Public holidays (helligdage) on which public offices close:
- fixed: Nytårsdag (1 Jan), Grundlovsdag (5 Jun; not a helligdag by law, but public
  offices close), Juleaftensdag (24 Dec), Juledag (25 Dec), 2. juledag (26 Dec),
  Nytårsaftensdag (31 Dec);
- Easter-based: Skærtorsdag (-3), Langfredag (-2), Påskedag (0), 2. påskedag (+1),
  Store bededag (+26, the 4th Friday after Easter; ABOLISHED as a public holiday from 2024
  by the Folketing's law of February 2023, so only up to and including 2023),
  Kristi himmelfartsdag (+39), Pinsedag (+49), 2. pinsedag (+50).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

STORE_BEDEDAG_LAST_YEAR = 2023


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def danish_holidays(year: int) -> dict[date, str]:
    """Days the job centre's phones are closed in ``year``, with their Danish names."""
    easter = easter_sunday(year)
    days: dict[date, str] = {
        date(year, 1, 1): "Nytårsdag",
        easter - timedelta(days=3): "Skærtorsdag",
        easter - timedelta(days=2): "Langfredag",
        easter: "Påskedag",
        easter + timedelta(days=1): "2. påskedag",
        easter + timedelta(days=39): "Kristi himmelfartsdag",
        easter + timedelta(days=49): "Pinsedag",
        easter + timedelta(days=50): "2. pinsedag",
        date(year, 6, 5): "Grundlovsdag",
        date(year, 12, 24): "Juleaftensdag",
        date(year, 12, 25): "Juledag",
        date(year, 12, 26): "2. juledag",
        date(year, 12, 31): "Nytårsaftensdag",
    }
    if year <= STORE_BEDEDAG_LAST_YEAR:
        days[easter + timedelta(days=26)] = "Store bededag"
    return dict(sorted(days.items()))


def is_working_day(day: date) -> bool:
    """Monday to Friday and not one of :func:`danish_holidays`."""
    return day.weekday() < 5 and day not in danish_holidays(day.year)


@dataclass(frozen=True, slots=True)
class Interval:
    start: time
    end: time  # exclusive

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Schedule:
    """Opening hours: intervals per weekday, public holidays, extra closed dates."""

    weekly: dict[Weekday, tuple[Interval, ...]]
    public_holidays: bool = True
    closed_dates: tuple[tuple[date, str], ...] = ()  # extra closures (operations)

    def closed_reason(self, day: date) -> tuple[Literal["holiday", "override"], str] | None:
        """Why the whole ``day`` is closed (holiday or an extra closure), else None."""
        for closed, why in self.closed_dates:
            if closed == day:
                return "override", why
        if self.public_holidays:
            name = danish_holidays(day.year).get(day)
            if name is not None:
                return "holiday", name
        return None

    def intervals(self, day: date) -> tuple[Interval, ...]:
        if self.closed_reason(day) is not None:
            return ()
        return self.weekly.get(WEEKDAYS[day.weekday()], ())

    def is_open(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        return any(i.contains(t) for i in self.intervals(local.date()))

    def status(self, local: datetime) -> tuple[bool, Literal["hours", "holiday", "override"]]:
        """(open?, why closed): ``holiday``/``override`` if today is a closed day."""
        if self.is_open(local):
            return True, "hours"
        reason = self.closed_reason(local.date())
        return False, reason[0] if reason else "hours"

    def next_opening(self, local: datetime, horizon_days: int = 400) -> datetime | None:
        """The next moment the line opens after ``local`` (aware, same zone), or None."""
        tz = local.tzinfo
        t = local.time().replace(tzinfo=None)
        for offset in range(horizon_days):
            day = local.date() + timedelta(days=offset)
            for interval in sorted(self.intervals(day), key=lambda i: i.start):
                if offset == 0 and interval.start <= t:
                    continue
                return datetime.combine(day, interval.start, tzinfo=tz)
        return None


def parse_hhmm(text: str) -> time:
    """'08:00' -> time(8, 0)."""
    hh, sep, mm = text.strip().partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit()) or len(mm) != 2 or len(hh) > 2:
        raise ValueError(f"{text!r} is not a time of day (HH:MM)")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"{text!r} is not a time of day (HH:MM)")
    return time(h, m)


def parse_interval(text: str) -> Interval:
    """'08:00-15:00' -> Interval; '24:00' may end one (the whole rest of the day)."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not an interval (HH:MM-HH:MM)")
    begins = parse_hhmm(start)
    interval = Interval(begins, time.max if end.strip() == "24:00" else parse_hhmm(end))
    if interval.end <= interval.start:
        raise ValueError(f"{text!r} ends before it starts")
    return interval


# --------------------------------------------------------------------------------------
# Saying it in Danish: prompt names and texts for "we open again <day> at <time>"
# --------------------------------------------------------------------------------------

_ONES = [
    "nul", "et", "to", "tre", "fire", "fem", "seks", "syv", "otte", "ni",
    "ti", "elleve", "tolv", "tretten", "fjorten", "femten", "seksten", "sytten", "atten",
    "nitten",
]  # fmt: skip
_TENS = {20: "tyve", 30: "tredive", 40: "fyrre", 50: "halvtreds"}
_UNIT_PREFIX = ["", "en", "to", "tre", "fire", "fem", "seks", "syv", "otte", "ni"]
_ORDINALS = [
    "første", "anden", "tredje", "fjerde", "femte", "sjette", "syvende", "ottende",
    "niende", "tiende", "ellevte", "tolvte", "trettende", "fjortende", "femtende",
    "sekstende", "syttende", "attende", "nittende", "tyvende", "enogtyvende",
    "toogtyvende", "treogtyvende", "fireogtyvende", "femogtyvende", "seksogtyvende",
    "syvogtyvende", "otteogtyvende", "niogtyvende", "tredivte", "enogtredivte",
]  # fmt: skip
DAY_NAMES = {
    "mon": "mandag", "tue": "tirsdag", "wed": "onsdag", "thu": "torsdag",
    "fri": "fredag", "sat": "lørdag", "sun": "søndag",
}  # fmt: skip
_DAY_FILES = {
    "mon": "mandag", "tue": "tirsdag", "wed": "onsdag", "thu": "torsdag",
    "fri": "fredag", "sat": "loerdag", "sun": "soendag",
}  # fmt: skip
MONTH_NAMES = [
    "januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
    "september", "oktober", "november", "december",
]  # fmt: skip

PROMPT_TODAY = "acd/cal-i-dag"
PROMPT_TOMORROW = "acd/cal-i-morgen"


def number_words(n: int) -> str:
    """Danish cardinal for 0-59 ('et' for 1, as in 'klokken et')."""
    if not 0 <= n <= 59:
        raise ValueError("0-59 only")
    if n < 20:
        return _ONES[n]
    tens, unit = divmod(n, 10)
    word = _TENS[tens * 10]
    return f"{_UNIT_PREFIX[unit]}og{word}" if unit else word


def time_words(t: time) -> str:
    """'klokken otte', 'klokken otte tredive', 'klokken ni nul fem'."""
    words = f"klokken {number_words(t.hour)}"
    if t.minute == 0:
        return words
    if t.minute < 10:
        return f"{words} nul {number_words(t.minute)}"
    return f"{words} {number_words(t.minute)}"


def time_prompt(t: time) -> str:
    return f"acd/cal-kl-{t.hour:02d}{t.minute:02d}"


def day_prompt(day: date) -> str:
    return f"acd/cal-{_DAY_FILES[WEEKDAYS[day.weekday()]]}"


def date_prompt(day: date) -> str:
    return f"acd/cal-den-{day.day}"


def month_prompt(day: date) -> str:
    return f"acd/cal-{MONTH_NAMES[day.month - 1]}"


def opening_prompts(now_local: datetime, opens: datetime) -> tuple[str, ...]:
    """The prompts that say when we open: 'i dag'/'i morgen'/'<weekday> den <n.> <month>',
    then the time."""
    day = opens.date()
    if day == now_local.date():
        when: tuple[str, ...] = (PROMPT_TODAY,)
    elif day == now_local.date() + timedelta(days=1):
        when = (PROMPT_TOMORROW,)
    else:
        when = (day_prompt(day), date_prompt(day), month_prompt(day))
    return (*when, time_prompt(opens.time()))


def calendar_prompt_texts(times: set[time]) -> dict[str, str]:
    """Texts of every calendar prompt the engine may play, for ``acd prompts``."""
    texts = {PROMPT_TODAY: "i dag", PROMPT_TOMORROW: "i morgen"}
    for key, name in _DAY_FILES.items():
        texts[f"acd/cal-{name}"] = DAY_NAMES[key]
    for n in range(1, 32):
        texts[f"acd/cal-den-{n}"] = f"den {_ORDINALS[n - 1]}"
    for month in MONTH_NAMES:
        texts[f"acd/cal-{month}"] = month
    for t in sorted(times):
        texts[time_prompt(t)] = time_words(t)
    return texts
