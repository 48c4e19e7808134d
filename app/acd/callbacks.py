"""Call-back and message deadlines: returned within 2 working days (DOMAIN.md).

A working day is Monday to Friday and not a Danish public holiday. A task requested on
any day is due by the end of the second working day after that day (requested Monday ->
due Wednesday 23:59:59 local; requested Friday -> due Tuesday; before Easter -> after it).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.acd.calendar import is_working_day

WORKING_DAYS_TO_RETURN = 2


def callback_due(requested: datetime, tz: ZoneInfo, days: int = WORKING_DAYS_TO_RETURN) -> datetime:
    """The deadline (aware, UTC-comparable) for a task requested at ``requested``."""
    day = requested.astimezone(tz).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)
