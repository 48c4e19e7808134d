from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.acd.callbacks import callback_due, is_working_day

CPH = ZoneInfo("Europe/Copenhagen")


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        (datetime(2014, 11, 3, 10, 0, tzinfo=CPH), "2014-11-05"),  # Mon -> Wed
        (datetime(2014, 11, 7, 14, 0, tzinfo=CPH), "2014-11-11"),  # Fri -> Tue
        (datetime(2014, 11, 8, 9, 0, tzinfo=CPH), "2014-11-11"),  # Sat -> Tue
        (datetime(2015, 4, 1, 10, 0, tzinfo=CPH), "2015-04-08"),  # Wed before Easter -> Wed
        (datetime(2014, 12, 23, 10, 0, tzinfo=CPH), "2014-12-30"),  # 24-26 closed: Mon 29, Tue 30
        (
            datetime(2023, 5, 4, 10, 0, tzinfo=CPH),
            "2023-05-09",
        ),  # Store bededag Fri 5 May: Mon 8, Tue 9
        (datetime(2024, 4, 25, 10, 0, tzinfo=CPH), "2024-04-29"),  # no Store bededag in 2024
    ],
)
def test_two_working_days_without_holidays(requested: datetime, due: str) -> None:
    deadline = callback_due(requested.astimezone(UTC), CPH)
    assert deadline.date().isoformat() == due
    assert (deadline.hour, deadline.minute) == (23, 59)
    assert is_working_day(deadline.date())


def test_late_evening_utc_counts_from_the_local_day() -> None:
    # 23:30 UTC on Sunday is already Monday in Copenhagen.
    deadline = callback_due(datetime(2014, 11, 2, 23, 30, tzinfo=UTC), CPH)
    assert deadline.date().isoformat() == "2014-11-05"
