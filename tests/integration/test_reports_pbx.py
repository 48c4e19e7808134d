"""Several PBXs in one report (issue 18), on PostgreSQL: the known week of
test_reports_week.py comes through ``pbx1``; a second box, ``pbx2``, takes a few calls of
its own, two of them with the very linkedids ``pbx1`` gave its calls (Asterisk boxes number
their channels alike). ``by=pbx`` gives one group per PBX with the centre's figures of its
calls, adding up to the centre; ``pbx1``'s group is figure for figure the report the week
made alone; the documents show both PBXs; days counted before the PBXs had rows of their
own are counted again; ``GET /v1/calls?pbx=`` lists one PBX's calls."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import delete, func, select, text, update

from app.reports import render, rollup
from app.reports.assemble import pbx_scope_key
from app.reports.model import BY_VALUES, Figures, Report
from app.reports.rollup import Context
from app.store.db import create_engine, session_factory
from app.store.models import Callback, ReportDay, ReportRollup
from app.store.writer import PostgresBackend
from tests.integration.test_reports_week import AS_OF, MON, THU, TUE, Week, load_week, report_of
from tests.report_support import Centre, Leg, Script, local, merged
from tests.work_support import office

# Summed over the PBXs' groups, these are the centre's (each call is one PBX's).
ADDITIVE = (
    "calls",
    "closed",
    "forwarded",
    "ivr_hangup",
    "failed",
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "answered_within_sl",
    "abandoned_after_sl",
    "talked",
    "registered",
    "repeat_base",
    "survey_invited",
    "survey_responses",
    "callbacks_requested",
    "messages_requested",
    "tasks_returned",
    "tasks_overdue",
    "data_gap_calls",
)


def pbx2_calls() -> list[Script]:
    return [
        # The same linkedids as pbx1's m1 (answered, surveyed) and m2 (a short abandon):
        # other calls, other callers.
        Script(
            "m1",
            local(MON, 11),
            "hR",
            legs=[Leg("dagpenge", 20, talk=60, agent="agent6")],
            flagged=True,
            survey=(9, 9, 9),
        ),
        Script("m2", local(MON, 11, 5), "hS", legs=[Leg("kontanthjaelp", 90, "abandoned")]),
        Script(
            "x1", local(TUE, 10), "hT", legs=[Leg("erhvervshuset", 10, talk=30, agent="agent4")]
        ),
        Script("x2", local(TUE, 19), "hU", route="closed"),
        Script("x3", local(THU, 14), "hV", route="message", legs=[Leg("dagpenge", 0)]),
    ]


async def load_pbx2(w: Week) -> None:
    backend = PostgresBackend(w.url)
    second = Centre(backend, w.ctx.catalogue, pbx="pbx2")
    for event in merged(pbx2_calls(), "pbx2"):
        second.tick(event.at)
        second.apply(event)
    second.tick(AS_OF)
    await second.flush(AS_OF)
    await backend.close()


async def forget_tallies(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM report_rollup"))
            await conn.execute(text("DELETE FROM report_days"))
    finally:
        await engine.dispose()


def figures_of(f: Figures) -> dict[str, Any]:
    return f.model_dump(include=set(Figures.model_fields))


@pytest.fixture
async def two(pg_url: str) -> Week:
    week = await load_week(pg_url)
    await load_pbx2(week)
    return week


async def test_each_pbx_is_a_group_and_they_add_up_to_the_centre(pg_url: str) -> None:
    week = await load_week(pg_url)
    alone = await report_of(week, "centre")  # the week as pbx1 alone made it
    await forget_tallies(pg_url)
    await load_pbx2(week)

    centre = await report_of(week, "centre")
    r = await report_of(week, "pbx")
    assert r.by == "pbx" and figures_of(r.centre) == figures_of(centre.centre)
    assert [(g.key, g.title) for g in r.groups] == [("pbx1", "pbx1"), ("pbx2", "pbx2")]
    pbx1, pbx2 = r.groups
    # Keyed (pbx, linkedid): pbx2's m1 and m2 are calls of their own, and pbx1's group is
    # the week as pbx1 alone gave it, figure for figure and goal for goal (its survey
    # without pbx2's m1's answers, its m2 without pbx2's m2's wait).
    assert figures_of(pbx1) == figures_of(alone.centre)
    assert pbx1.goals == alone.centre.goals
    assert (centre.centre.calls, centre.centre.offered) == (17 + 5, 13 + 3)
    assert (pbx2.calls, pbx2.closed, pbx2.offered, pbx2.answered, pbx2.abandoned) == (5, 1, 3, 2, 1)
    assert (pbx2.messages_requested, pbx2.survey_responses, pbx2.satisfaction) == (1, 1, 9.0)
    assert pbx2.answer_rate == round(2 / 3, 4) and pbx2.max_wait_seconds == 90.0
    assert pbx2.avg_wait_seconds == round((20 + 90 + 10) / 3, 1)
    for name in ADDITIVE:
        assert sum(getattr(g, name) for g in r.groups) == getattr(r.centre, name), name
    assert r.centre.tasks_overdue >= 1  # t2's message (pbx1) at least
    # Each agreement on the PBX's calls in its scope (the centre's way): the job-centre
    # line m1 answered, m2 abandoned; Erhvervshuset x1 answered; nothing the week before.
    own = pbx2.goals["aftale_2013"].goals["answer_rate"]
    assert (own.value, own.status, own.previous.value) == (0.5, "missed", None)
    assert pbx2.goals["erhvervshuset"].goals["answer_rate"].value == 1.0
    assert list(pbx2.goals) == list(r.centre.goals)

    # The day cut still counts both boxes: the centre's days.
    days = await report_of(week, "day")
    assert {g.key: g.calls for g in days.groups}["2014-11-03"] == 7 + 2


async def test_the_documents_show_both_pbxs(two: Week) -> None:
    r = await report_of(two, "pbx")
    body, media_type = render.render(r, "csv")
    assert media_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [(row["by"], row["key"]) for row in rows] == [
        ("pbx", "pbx1"),
        ("pbx", "pbx2"),
        ("pbx", "centre"),
    ]
    assert [row["offered"] for row in rows] == ["13", "3", "16"]
    assert [row["answered"] for row in rows] == ["8", "2", "10"]

    assert "xlsx" in render.available()
    body, _ = render.render(r, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    sheet = book["Pr. telefonanlæg"]
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = table[0]
    assert header[:2] == ["Telefonanlæg", "Nøgle"]
    assert [row[:2] for row in table[1:]] == [["pbx1", "pbx1"], ["pbx2", "pbx2"]]
    offered = next(i for i, h in enumerate(header) if h and "tilbudt" in str(h).lower())
    assert [row[offered] for row in table[1:]] == [13, 3]

    if "html" in render.available():
        page = render.render(r, "html")[0].decode("utf-8")
        assert "Pr. telefonanlæg" in page and "pbx2" in page
    if "pdf" in render.available():
        assert render.render(r, "pdf")[0].startswith(b"%PDF")


async def test_days_counted_before_the_pbx_rows_are_counted_again(
    two: Week, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days stored by the previous version (its digest, no "pbx" rows) are not usable:
    the next report counts them again from the detail rows. Where the detail is gone, the
    days are kept as stored and the report says their calls are in no PBX's group."""
    engine = create_engine(two.url)
    try:
        # The tallies as version 1 stored them: its digest, and no rows per PBX.
        await report_of(two, "centre")
        monkeypatch.setattr(rollup, "ROLLUP_VERSION", 1)
        c = two.ctx
        old = Context(
            tz=c.tz, config=c.config, goals=c.goals, catalogue=c.catalogue, repeat_days=3
        ).digest
        monkeypatch.undo()
        assert old != two.ctx.digest
        async with engine.begin() as conn:
            await conn.execute(update(ReportDay).values(digest=old))
            await conn.execute(
                delete(ReportRollup).where(ReportRollup.kind.in_(("pbx", "pbx_scope")))
            )
        r = await report_of(two, "pbx")
        assert r.data_quality.days_recomputed == 7 and r.data_quality.days_from_rollup == 0
        assert [g.key for g in r.groups] == ["pbx1", "pbx2"]
        assert sum(g.calls for g in r.groups) == r.centre.calls == 22
        async with session_factory(engine)() as session:
            digests = set((await session.execute(select(ReportDay.digest))).scalars())
            kinds = set((await session.execute(select(ReportRollup.kind))).scalars())
            key = pbx_scope_key("pbx2", "erhvervshuset")
            stored = await session.scalar(
                select(func.count()).where(
                    ReportRollup.kind == "pbx_scope", ReportRollup.key == key
                )
            )
        assert {"pbx", "pbx_scope"} <= kinds and stored == 1  # x1, Tuesday
        # Counted again: the week's days and the comparisons' (the week and year before).
        assert digests == {two.ctx.digest}

        # The detail purged after version 1 counted the week: kept as stored, said so.
        async with engine.begin() as conn:
            await conn.execute(update(ReportDay).values(digest=old))
            await conn.execute(
                delete(ReportRollup).where(ReportRollup.kind.in_(("pbx", "pbx_scope")))
            )
            for table in ("survey_responses", "dispositions", "queue_visits", "calls"):
                await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(delete(Callback))
        purged = await report_of(two, "pbx")
        assert purged.groups == [] and purged.centre.calls == 22
        notes = purged.data_quality.notes
        assert any("før opdelingen pr. telefonanlæg" in n for n in notes), notes
        assert any("tidligere definitioner" in n for n in notes), notes
        # The centre's cut does not speak of PBXs.
        centre = await report_of(two, "centre")
        assert not any("telefonanlæg" in n for n in centre.data_quality.notes)
    finally:
        await engine.dispose()


async def test_by_pbx_over_http_and_calls_of_one_pbx(two: Week, tmp_path: Path) -> None:
    assert "pbx" in BY_VALUES
    week_from, week_to = local(MON, 0).isoformat(), local(MON + timedelta(days=7), 0).isoformat()
    async with office(two.url, tmp_path) as o:
        r = await o.http.get(
            "/v1/reports", params={"period": "2014-W45", "by": "pbx"}, headers=o.who["admin"]
        )
        assert r.status_code == 200, r.text
        got = Report.model_validate_json(r.content)
        assert [(g.key, g.calls) for g in got.groups] == [("pbx1", 17), ("pbx2", 5)]
        x = await o.http.get(
            "/v1/reports?period=2014-W45&by=pbx&format=xlsx", headers=o.who["admin"]
        )
        assert x.status_code == 200
        assert x.headers["content-disposition"].endswith('rapport-2014-W45-pbx.xlsx"')
        audit = [a for a in await o.audit() if a.action == "reports.read"]
        assert [a.detail for a in audit] == [
            {"by": "pbx", "format": "json"},
            {"by": "pbx", "format": "xlsx"},
        ]
        # The archive knows the cut (nothing of it is kept: 404, not a 422).
        kept = await o.http.get("/v1/reports/archive/2014-W45/pdf?by=pbx", headers=o.who["admin"])
        assert kept.status_code == 404, kept.text

        async def linkedids(**params: str) -> list[tuple[str, str]]:
            page = await o.http.get(
                "/v1/calls",
                params={"since": week_from, "until": week_to, "limit": "500", **params},
                headers=o.who["admin"],
            )
            assert page.status_code == 200, page.text
            return sorted((c["pbx"], c["linkedid"]) for c in page.json()["items"])

        both = await linkedids()
        assert ("pbx1", "m1") in both and ("pbx2", "m1") in both and len(both) == 17 + 5
        assert await linkedids(pbx="pbx2") == [
            ("pbx2", lid) for lid in ("m1", "m2", "x1", "x2", "x3")
        ]
        one = await linkedids(pbx="pbx1")
        assert len(one) == 17 and {p for p, _ in one} == {"pbx1"}
        assert await linkedids(pbx="pbx9") == []
        for bad in ("PBX1", "-pbx", "p" * 33, "pbx 1"):
            refused = await o.http.get("/v1/calls", params={"pbx": bad}, headers=o.who["admin"])
            assert refused.status_code == 422, (bad, refused.text)
