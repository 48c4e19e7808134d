"""Reports for the document tests, from the report code's own known week
(tests/fixtures/reports/week45_by_department.json, held equal to what ``app.reports``
makes of it): the week as it is, and a quarter made of it (its days repeated over 92
days with a little noise), each checked against the report model, so the documents are
tested on the shape the API really serves."""

from __future__ import annotations

import copy
import json
import random
from datetime import date, timedelta
from functools import cache
from typing import Any

from app.reports.model import Report
from tests.conftest import FIXTURES

WEEK_FILE = FIXTURES / "reports" / "week45_by_department.json"


@cache
def _week() -> dict[str, Any]:
    return json.loads(WEEK_FILE.read_text(encoding="utf-8"))


def checked(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the API would serve it (validated by the model, dumped by alias)."""
    return Report.model_validate(report).model_dump(mode="json", by_alias=True)


def week_report() -> dict[str, Any]:
    return checked(copy.deepcopy(_week()))


def quarter_report(
    start: date = date(2014, 10, 1), end: date = date(2014, 12, 31)
) -> dict[str, Any]:
    report = copy.deepcopy(_week())
    rng = random.Random(42)
    days = []
    for i in range((end - start).days + 1):
        day = start + timedelta(days=i)
        row = copy.deepcopy(report["daily"][day.weekday()])  # the week's Monday for a Monday
        row["date"] = day.isoformat()
        for name in ("answer_rate", "first_contact_resolution", "service_level"):
            if row.get(name) is not None:
                row[name] = round(min(1.0, max(0.0, row[name] + rng.uniform(-0.04, 0.04))), 4)
        for name in ("avg_wait_seconds", "satisfaction"):
            if row.get(name) is not None:
                row[name] = round(row[name] * rng.uniform(0.8, 1.2), 1)
        days.append(row)
    report.update(
        {"from": start.isoformat(), "to": end.isoformat(), "period": "2014-Q4",
         "title": "4. kvartal 2014", "daily": days}
    )  # fmt: skip
    return checked(report)
