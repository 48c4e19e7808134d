"""The scheduled reports on PostgreSQL (app/reports/archive.py, GET /v1/reports/archive):
the known week of tests/integration/test_reports_week.py is made and kept once its period
has ended, in every document format; a run again stores nothing; a service down for weeks
catches up the periods it missed; a re-run of the same period gives the same bytes; the
API lists and serves what is kept, and audits each read."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pypdf
from sqlalchemy import select

from app.main import create_app
from app.reports.archive import ReportArchive, make
from app.reports.periods import parse_period
from app.settings import load_settings
from app.store.db import create_engine, session_factory
from app.store.models import AuditLog, StoredReport
from tests.auth_support import key, make_user
from tests.integration.test_reports_week import load_week
from tests.report_support import TZ

ROOT = Path(__file__).resolve().parents[2]


def local_time(y: int, m: int, d: int, hh: int) -> datetime:
    return datetime(y, m, d, hh, tzinfo=TZ).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _kept(sessions: Any) -> dict[tuple[str, str, str], StoredReport]:
    async with sessions() as session:
        rows = (await session.execute(select(StoredReport))).scalars().all()
    return {(r.period, r.by, r.format): r for r in rows}


async def test_the_weeks_report_is_made_when_it_ends_and_kept_once(pg_url: str) -> None:
    week = await load_week(pg_url)
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    clock = Clock(local_time(2014, 11, 10, 1))  # Monday 01:00: week 45 is over, delay not
    ctx: Callable[[], Any] = lambda: week.ctx  # noqa: E731
    # The week's data reach back a year (the goals' "same week last year"): look back a
    # week only, then as far as the downtime below.
    archive = ReportArchive(sessions, ctx, clock, delay=timedelta(hours=2), catchup_days=7)
    try:
        assert await archive.run_once() == []
        clock.now = local_time(2014, 11, 10, 3)
        made = await archive.run_once()
        assert {(m.period, m.by, m.format) for m in made} == {
            ("2014-W45", "department", f) for f in ("pdf", "xlsx", "html", "csv")
        }
        assert all(m.stored for m in made)
        kept = await _kept(sessions)
        pdf = kept[("2014-W45", "department", "pdf")]
        assert (pdf.kind, pdf.first, pdf.last) == ("week", date(2014, 11, 3), date(2014, 11, 9))
        assert pdf.media_type == "application/pdf"
        assert pdf.sha256 == hashlib.sha256(pdf.content).hexdigest()
        one = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        assert "Uge 45 2014" in one and "Servicemål: Serviceaftale 2013" in one
        book = openpyxl.load_workbook(io.BytesIO(kept[("2014-W45", "department", "xlsx")].content))
        assert "Pr. afdeling" in book.sheetnames
        assert (await archive.check()).ok

        # Again, and again later the same day: nothing new (idempotent)
        assert await archive.run_once() == []
        clock.now = local_time(2014, 11, 10, 23)
        assert await archive.run_once() == []
        assert len(await _kept(sessions)) == 4

        # Down until Wednesday 3 December: the weeks and the month it missed, oldest first
        clock.now = local_time(2014, 12, 3, 9)
        archive.catchup_days = 30
        made = await archive.run_once()
        periods = list(dict.fromkeys(m.period for m in made))
        assert periods == ["2014-W46", "2014-W47", "2014-W48", "2014-11"]
        kept = await _kept(sessions)
        assert len(kept) == 4 * 5
        month = kept[("2014-11", "department", "pdf")]
        assert (month.kind, month.first, month.last) == (
            "month", date(2014, 11, 1), date(2014, 11, 30),
        )  # fmt: skip
        text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(month.content)).pages)
        assert "November 2014" in text

        # The same period again over the same data: the same bytes, each format
        again = await make(
            sessions, week.ctx, parse_period("2014-W45"), "department", clock.now,
            ("pdf", "xlsx", "html", "csv"),
        )  # fmt: skip
        for fmt, body, _ in again:
            assert body == kept[("2014-W45", "department", fmt)].content, fmt
    finally:
        await engine.dispose()


async def test_a_period_that_fails_does_not_stop_the_others(pg_url: str) -> None:
    week = await load_week(pg_url)
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    clock = Clock(local_time(2014, 11, 18, 3))
    archive = ReportArchive(
        sessions, lambda: week.ctx, clock, catchup_days=15, formats=("pdf", "nonesuch", "csv")
    )
    try:
        made = await archive.run_once()
        # The unknown format fails each period's rendering before anything is stored
        assert made == []
        health = await archive.check()
        assert not health.ok and "2014-W45" in health.detail["last_error"]
        archive.formats = ("csv",)
        made = await archive.run_once()
        assert [m.period for m in made] == ["2014-W45", "2014-W46"]
        assert (await archive.check()).ok
    finally:
        await engine.dispose()


async def test_the_api_lists_and_serves_what_is_kept_and_audits_it(pg_url: str) -> None:
    week = await load_week(pg_url)
    app = create_app(
        load_settings(
            database_url=pg_url, ivr_flows=str(ROOT / "ivr_flows"), report_archive=False,
            caller_hash_key="archive-test-key-0123456789",
        )
    )  # fmt: skip
    rt: Any = app.state.rt
    assert not any(c.name == "report-archive" for c in rt.components)  # switched off
    archive = ReportArchive(
        rt.sessions,
        lambda: week.ctx,
        Clock(local_time(2014, 11, 10, 3)),
        catchup_days=7,
        formats=("pdf", "csv"),
    )
    await archive.run_once()
    secret = await make_user(pg_url, "leder", "supervisor", teams=["team1"])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://acd", headers=key(secret)) as c,
    ):
        listed = await c.get("/v1/reports/archive", params={"kind": "week"})
        assert listed.status_code == 200, listed.text
        items = listed.json()
        assert [(i["period"], i["by"], i["format"]) for i in items] == [
            ("2014-W45", "department", "csv"), ("2014-W45", "department", "pdf"),
        ]  # fmt: skip
        pdf_item = items[1]
        got = await c.get(pdf_item["href"])
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/pdf"
        assert 'filename="rapport-2014-W45-department.pdf"' in got.headers["content-disposition"]
        assert hashlib.sha256(got.content).hexdigest() == pdf_item["sha256"]
        assert got.headers["etag"] == f'"{pdf_item["sha256"]}"'
        assert (await c.get("/v1/reports/archive", params={"kind": "month"})).json() == []
        missing = await c.get("/v1/reports/archive/2014-W46/pdf")
        assert missing.status_code == 404 and "2014-W46" in missing.json()["detail"]
        assert (await c.get("/v1/reports/archive/2014-W45/exe%20x")).status_code == 422
        assert (await c.get("/v1/reports/archive/W45/pdf")).status_code == 422
        odd = await c.get("/v1/reports/archive/2014-W45/pdf", params={"by": "x\x00"})
        assert odd.status_code == 422  # found by the OpenAPI fuzz test: a NUL reached SQL
        assert (await c.get("/v1/reports/archive", headers={"X-API-Key": "x"})).status_code == 401
    async with rt.sessions() as session:
        audit = (
            await session.execute(
                select(AuditLog.actor, AuditLog.action, AuditLog.status_code, AuditLog.target)
                .where(AuditLog.action.like("reports.archive.%"))
                .order_by(AuditLog.id)
            )
        ).all()
    assert ("leder", "reports.archive.read", 200, "report:2014-W45") in audit
    assert ("leder", "reports.archive.read", 404, "report:2014-W46") in audit
    assert sum(a[1] == "reports.archive.list" for a in audit) >= 2
