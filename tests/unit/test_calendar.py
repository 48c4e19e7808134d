"""Danish public holidays, opening hours and the words for the next opening time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.acd.calendar import (
    Schedule,
    calendar_prompt_texts,
    danish_holidays,
    easter_sunday,
    number_words,
    opening_prompts,
    parse_interval,
    time_words,
)

CPH = ZoneInfo("Europe/Copenhagen")
WEEKDAY_HOURS = {
    "mon": (parse_interval("08:00-15:00"),),
    "tue": (parse_interval("08:00-15:00"),),
    "wed": (parse_interval("08:00-15:00"),),
    "thu": (parse_interval("08:00-17:00"),),
    "fri": (parse_interval("08:00-13:00"),),
    "sat": (),
    "sun": (),
}
SCHEDULE = Schedule(weekly=WEEKDAY_HOURS)  # type: ignore[arg-type]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CPH)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1818, date(1818, 3, 22)),  # the earliest possible
        (1943, date(1943, 4, 25)),  # the latest possible
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2023, date(2023, 4, 9)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_holidays_2025_by_name() -> None:
    days = {name: day for day, name in danish_holidays(2025).items()}
    assert days == {
        "Nytårsdag": date(2025, 1, 1),
        "Skærtorsdag": date(2025, 4, 17),
        "Langfredag": date(2025, 4, 18),
        "Påskedag": date(2025, 4, 20),
        "2. påskedag": date(2025, 4, 21),
        "Kristi himmelfartsdag": date(2025, 5, 29),
        "Pinsedag": date(2025, 6, 8),
        "2. pinsedag": date(2025, 6, 9),
        "Grundlovsdag": date(2025, 6, 5),
        "Juleaftensdag": date(2025, 12, 24),
        "Juledag": date(2025, 12, 25),
        "2. juledag": date(2025, 12, 26),
        "Nytårsaftensdag": date(2025, 12, 31),
    }


def test_store_bededag_only_until_2023() -> None:
    assert danish_holidays(2023)[date(2023, 5, 5)] == "Store bededag"
    assert "Store bededag" not in danish_holidays(2024).values()
    assert date(2024, 4, 26) not in danish_holidays(2024)  # would have been Store bededag
    # A Friday that used to be closed is an ordinary phone day from 2024.
    assert SCHEDULE.is_open(local(2024, 4, 26, 10, 0))
    assert not SCHEDULE.is_open(local(2023, 5, 5, 10, 0))
    assert SCHEDULE.status(local(2023, 5, 5, 10, 0)) == (False, "holiday")


@pytest.mark.parametrize(
    ("when", "is_open", "reason"),
    [
        (local(2025, 3, 4, 7, 59), False, "hours"),  # Tuesday before opening
        (local(2025, 3, 4, 8, 0), True, "hours"),
        (local(2025, 3, 4, 14, 59), True, "hours"),
        (local(2025, 3, 4, 15, 0), False, "hours"),  # closing time is exclusive
        (local(2025, 3, 6, 16, 30), True, "hours"),  # Thursday: long day
        (local(2025, 3, 7, 13, 30), False, "hours"),  # Friday: short day
        (local(2025, 3, 8, 10, 0), False, "hours"),  # Saturday
        (local(2025, 4, 21, 10, 0), False, "holiday"),  # 2. påskedag
        (local(2025, 12, 25, 10, 0), False, "holiday"),  # Juledag
        (local(2025, 6, 5, 10, 0), False, "holiday"),  # Grundlovsdag (a Thursday)
    ],
)
def test_open_or_closed(when: datetime, is_open: bool, reason: str) -> None:
    assert SCHEDULE.status(when) == (is_open, reason)


def test_extra_closed_dates_are_an_override() -> None:
    schedule = Schedule(weekly=WEEKDAY_HOURS, closed_dates=((date(2025, 3, 4), "Møde"),))  # type: ignore[arg-type]
    assert schedule.status(local(2025, 3, 4, 10, 0)) == (False, "override")
    assert schedule.next_opening(local(2025, 3, 4, 10, 0)) == local(2025, 3, 5, 8, 0)


def test_public_holidays_can_be_ignored() -> None:
    schedule = Schedule(weekly=WEEKDAY_HOURS, public_holidays=False)  # type: ignore[arg-type]
    assert schedule.is_open(local(2025, 4, 21, 10, 0))


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        (local(2025, 3, 4, 7, 0), local(2025, 3, 4, 8, 0)),  # later today
        (local(2025, 3, 4, 16, 0), local(2025, 3, 5, 8, 0)),  # tomorrow
        (local(2025, 3, 7, 13, 30), local(2025, 3, 10, 8, 0)),  # Friday -> Monday
        (local(2025, 4, 16, 16, 0), local(2025, 4, 22, 8, 0)),  # across all of Easter
        (local(2025, 12, 23, 16, 0), local(2025, 12, 29, 8, 0)),  # across Christmas
        (local(2025, 12, 30, 16, 0), local(2026, 1, 2, 8, 0)),  # across New Year
        (local(2025, 3, 4, 10, 0), local(2025, 3, 5, 8, 0)),  # while open: the next opening
    ],
)
def test_next_opening(now: datetime, opens: datetime) -> None:
    assert SCHEDULE.next_opening(now) == opens


def test_next_opening_across_summer_time_is_local_wall_time() -> None:
    # Summer time starts Sunday 30 March 2025: Monday 08:00 is 06:00 UTC, not 07:00.
    opens = SCHEDULE.next_opening(local(2025, 3, 28, 14, 0))
    assert opens is not None
    assert opens.astimezone(UTC) == datetime(2025, 3, 31, 6, 0, tzinfo=UTC)
    assert SCHEDULE.next_opening(local(2025, 3, 27, 20, 0)) == local(2025, 3, 28, 8, 0)


def test_no_hours_at_all_means_no_next_opening() -> None:
    closed = Schedule(weekly=dict.fromkeys(WEEKDAY_HOURS, ()))  # type: ignore[misc]
    assert closed.next_opening(local(2025, 3, 4, 10, 0), horizon_days=30) is None


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "nul"), (1, "et"), (13, "tretten"), (20, "tyve"), (21, "enogtyve"), (30, "tredive"),
     (45, "femogfyrre"), (50, "halvtreds"), (59, "nioghalvtreds")],
)  # fmt: skip
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


@pytest.mark.parametrize(
    ("t", "words"),
    [
        (time(8, 0), "klokken otte"),
        (time(8, 30), "klokken otte tredive"),
        (time(9, 5), "klokken ni nul fem"),
        (time(13, 0), "klokken tretten"),
        (time(17, 45), "klokken sytten femogfyrre"),
    ],
)
def test_time_words(t: time, words: str) -> None:
    assert time_words(t) == words


def test_opening_prompts_say_today_tomorrow_or_the_date() -> None:
    now = local(2025, 4, 16, 16, 0)
    assert opening_prompts(local(2025, 3, 4, 7, 0), local(2025, 3, 4, 8, 0)) == (
        "acd/cal-i-dag",
        "acd/cal-kl-0800",
    )
    assert opening_prompts(local(2025, 3, 4, 16, 0), local(2025, 3, 5, 8, 0)) == (
        "acd/cal-i-morgen",
        "acd/cal-kl-0800",
    )
    assert opening_prompts(now, local(2025, 4, 22, 8, 0)) == (
        "acd/cal-tirsdag",
        "acd/cal-den-22",
        "acd/cal-april",
        "acd/cal-kl-0800",
    )


def test_calendar_prompt_texts_cover_every_prompt_they_can_produce() -> None:
    texts = calendar_prompt_texts({time(8, 0), time(9, 30)})
    assert texts["acd/cal-den-1"] == "den første"
    assert texts["acd/cal-den-31"] == "den enogtredivte"
    assert texts["acd/cal-loerdag"] == "lørdag"
    assert texts["acd/cal-kl-0930"] == "klokken ni tredive"
    # Every day of a year in both directions of "next opening" has a prompt with a text.
    start = local(2025, 1, 1, 16, 0)
    for offset in range(0, 365, 3):
        day = datetime.fromordinal(start.toordinal() + offset).replace(tzinfo=CPH)
        for prompt in opening_prompts(start, day.replace(hour=8)):
            assert prompt in texts, prompt


def test_24_00_ends_a_day() -> None:
    always = Schedule(weekly=dict.fromkeys(WEEKDAY_HOURS, (parse_interval("00:00-24:00"),)))  # type: ignore[arg-type]
    assert always.is_open(local(2025, 3, 4, 23, 59, 59))
    assert always.is_open(local(2025, 3, 5, 0, 0))
    with pytest.raises(ValueError):
        parse_interval("08:00-24:01")
