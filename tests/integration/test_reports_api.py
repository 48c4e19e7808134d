"""GET /v1/reports and GET /v1/queues?date= on the known week (test_reports_week.py), on
PostgreSQL: the report as JSON and CSV, each read audited, bad periods refused clearly,
agents' figures as the roles allow, a past day's figures in the live figures' shape."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.api.live import QueuesDayOut
from app.reports import render
from app.reports.model import Report
from tests.integration.test_reports_week import MON, load_week, report_of
from tests.work_support import office


async def test_reports_over_http(pg_url: str, tmp_path: Path) -> None:
    week = await load_week(pg_url)
    want = await report_of(week, "department")
    async with office(pg_url, tmp_path) as o:
        r = await o.http.get(
            "/v1/reports", params={"period": "2014-W45", "by": "department"}, headers=o.who["admin"]
        )
        assert r.status_code == 200, r.text
        got = Report.model_validate_json(r.content)
        assert got.groups == want.groups
        assert got.centre.model_dump(exclude={"tasks_overdue"}) == want.centre.model_dump(
            exclude={"tasks_overdue"}
        )
        assert r.json()["from"] == "2014-11-03"
        audit = [a for a in await o.audit() if a.action == "reports.read"]
        assert len(audit) == 1 and audit[0].status_code == 200
        assert audit[0].target == "report:2014-W45"
        assert audit[0].detail == {"by": "department", "format": "json"}

        r = await o.http.get(
            "/v1/reports?from=2014-11-03&to=2014-11-09&by=queue&format=csv", headers=o.who["integ"]
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"] == (
            'attachment; filename="rapport-2014-11-03_2014-11-09-queue.csv"'
        )
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert {row["key"]: row["offered"] for row in rows}["dagpenge"] == "6"

        pdf = await o.http.get("/v1/reports?period=2014-W45&format=pdf", headers=o.who["admin"])
        assert pdf.status_code == (200 if "pdf" in render.available() else 501)

        for query, message in (
            ("period=2014-W45&from=2014-11-03&to=2014-11-09", "not both"),
            ("from=2014-11-03", "give from and to"),
            ("from=2014-11-09&to=2014-11-03", "is before from"),
            ("period=2014-13", "no month 13"),
            ("period=last-week", "give an ISO week"),
            ("from=2013-01-01&to=2014-12-31", "at most 400"),
        ):
            bad = await o.http.get(f"/v1/reports?{query}", headers=o.who["admin"])
            assert bad.status_code == 422 and message in bad.text, (query, bad.text)
        for query in ("period=2014-W45&by=team", "period=2014-W45&format=doc"):
            bad = await o.http.get(f"/v1/reports?{query}", headers=o.who["admin"])
            assert bad.status_code == 422, query

        # Agents' own figures as the roles allow: an agent itself, a team leader its team.
        seen = {}
        for who in ("agent1", "sup_nord", "sup_syd", "admin"):
            r = await o.http.get("/v1/reports?period=2014-W45&by=agent", headers=o.who[who])
            assert r.status_code == 200, (who, r.text)
            seen[who] = [g["key"] for g in r.json()["groups"]]
            assert r.json()["centre"]["offered"] == 13  # the centre's figures: everyone's
        assert seen == {
            "agent1": ["agent1"],
            "sup_nord": ["agent1"],
            "sup_syd": ["agent2"],
            "admin": ["agent1", "agent2", "agent3", "agent4", "agent5"],
        }
        assert (await o.http.get("/v1/reports?period=2014-W45")).status_code == 401


async def test_a_past_day_from_queues(pg_url: str, tmp_path: Path) -> None:
    week = await load_week(pg_url)
    want = await report_of(week, "queue", first=MON, last=MON)
    async with office(pg_url, tmp_path) as o:
        o.rt.hub.refresh()
        r = await o.http.get("/v1/queues?date=2014-11-03", headers=o.who["sup_nord"])
        assert r.status_code == 200, r.text
        day = QueuesDayOut.model_validate_json(r.content)
        assert day.day == MON and day.goals is not None and day.goals.answer_rate == 0.92
        centre = day.centre.figures.model_dump()
        assert {k: getattr(want.centre, k) for k in centre} == centre
        queues = {q.name: q.figures.model_dump() for q in day.queues}
        assert [q.name for q in day.queues][:2] == ["kontanthjaelp", "dagpenge"]
        for g in want.groups:
            assert {k: getattr(g, k) for k in queues[g.key]} == queues[g.key], g.key
        assert queues["dagpenge"]["offered"] == 3
        # A past day is a report read: audited (a look at the live picture is not).
        audit = [a for a in await o.audit() if a.action == "queues.list"]
        assert [(a.target, a.status_code) for a in audit] == [("day:2014-11-03", 200)]

        today = datetime.now(UTC).astimezone(week.ctx.tz).date()
        live = await o.http.get(f"/v1/queues?date={today}", headers=o.who["admin"])
        assert live.status_code == 200 and "version" in live.json()  # today: the live picture
        ahead = today + timedelta(days=1)
        future = await o.http.get(f"/v1/queues?date={ahead}", headers=o.who["admin"])
        assert future.status_code == 422 and "in the future" in future.text
        garbled = await o.http.get("/v1/queues?date=yesterday", headers=o.who["admin"])
        assert garbled.status_code == 422
        assert [a for a in await o.audit() if a.action == "queues.list"][1:] == []
