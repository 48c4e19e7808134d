"""Bug 4: "now" has one owner, the PBX's clock (app/clock.py). In the demo the simulated
PBX plays another day than the host's; a call-back requested through the API was stamped
with the host's day, so "today" was the wrong day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from app.acd.callbacks import callback_due
from app.store.models import Callback
from tests.work_support import office

CPH = ZoneInfo("Europe/Copenhagen")
PBX_NOW = datetime(2014, 11, 4, 9, 30, tzinfo=CPH)  # a Tuesday, years before the host's


async def test_a_call_back_and_the_scorecard_take_the_pbx_day(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        # The PBX's Timestamps say 2014-11-04 09:30 (as the pipeline learns from events).
        o.rt.pipeline.skew = PBX_NOW - datetime.now(UTC)
        made = await o.http.post(
            "/v1/callbacks",
            headers=o.who["agent1"],
            json={"queue": "dagpenge", "number": "20304050"},
        )
        assert made.status_code == 201, made.text
        task = made.json()
        requested = datetime.fromisoformat(task["requested_at"])
        assert requested.astimezone(CPH).date().isoformat() == "2014-11-04"
        assert abs(requested - PBX_NOW) < timedelta(minutes=1)
        due = datetime.fromisoformat(task["due_at"]).astimezone(CPH)
        assert due.date().isoformat() == "2014-11-06"  # 2 working days on the PBX's calendar
        assert not task["overdue"]
        (row,) = await o.rows(Callback, Callback.id == task["id"])
        assert row.due_at == callback_due(row.requested_at, CPH)
        # Listed as not overdue (on the host's clock it would be years overdue).
        listed = await o.http.get("/v1/callbacks?overdue=false", headers=o.who["admin"])
        assert task["id"] in [t["id"] for t in listed.json()["items"]]
        # An agent's "today" is the PBX's day too.
        card = await o.http.get("/v1/agents/agent1/today", headers=o.who["agent1"])
        assert card.status_code == 200, card.text
        assert card.json()["date"] == "2014-11-04"
