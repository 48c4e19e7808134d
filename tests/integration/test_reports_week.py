"""A known week, built from events (not rows): every call goes through the real state
machine and the service's writer into PostgreSQL, registrations and call-back returns
through their store functions; then the report of week 45 2014 is checked figure by
figure against sums done by hand (docs/kpis.md), cut by centre, queue, department, agent,
day and half-hour, and each day against the live figures counted alongside.

The week: a transfer between two queues after an answer (once in the centre, twice in
the queues), a caller moved while waiting, a short abandon, a call across midnight, a
call lost in an AMI data gap, a repeat caller, surveys of settled and transferred calls,
a call-back returned in time and a message not returned, calls closed, forwarded, hung up
in the menu; one call the week before and one the year before for the goals' changes.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.acd.kpi import CENTRE, KpiConfig
from app.config.kinds import GOALS
from app.config.loader import load_config
from app.reports.build import build_report
from app.reports.model import Report
from app.reports.periods import parse_period, span
from app.reports.render import render
from app.reports.rollup import Context, RollupJob
from app.store import callbacks as tasks
from app.store.db import create_engine, session_factory
from app.store.models import Callback, ReportDay
from app.store.registrations import put_disposition
from app.store.writer import PostgresBackend, SqliteBackend
from tests.report_support import TZ, Centre, Leg, Script, call_ids, local, merged

ROOT = Path(__file__).resolve().parents[2]
MON = date(2014, 11, 3)
TUE, WED, THU, FRI = (MON + timedelta(days=i) for i in range(1, 5))
AS_OF = local(date(2014, 11, 10), 12)


def week() -> list[Script]:
    return [
        # Monday
        Script(
            "m1",
            local(MON, 9),
            "hA",
            legs=[Leg("dagpenge", 30, talk=200)],
            flagged=True,
            survey=(8, 7, 8),
        ),
        Script("m2", local(MON, 9, 10), "hB", legs=[Leg("dagpenge", 3, "abandoned")]),
        Script(
            "m3",
            local(MON, 9, 20),
            "hC",
            legs=[
                Leg("kontanthjaelp", 100, talk=300, agent="agent2", then="transfer"),
                Leg("dagpenge", 50, talk=120),
            ],
            flagged=True,
            survey=(6, 4, 5),
        ),
        Script("m4", local(MON, 9, 30), "hD", legs=[Leg("sygedagpenge", 200, "abandoned")]),
        Script("m5", local(MON, 9, 40), "hE", route="ivr_hangup", menu=15),
        Script("m6", local(MON, 9, 35), "hF", route="forwarded"),
        Script("m7", local(MON, 10), "hG", route="callback", legs=[Leg("dagpenge", 0)]),
        # Tuesday: hA again (a repeat of m1), a timeout that leaves a message, and a call
        # that joins at 23:59 and is answered after midnight.
        Script("t1", local(TUE, 9), "hA", legs=[Leg("dagpenge", 60, talk=100, agent="agent3")]),
        Script(
            "t2",
            local(TUE, 10),
            "hH",
            legs=[Leg("genregistrering", 1800, "timeout")],
            after_timeout="message",
        ),
        Script(
            "t3",
            local(TUE, 23, 58),
            "hI",
            menu=59.1,
            legs=[Leg("kontanthjaelp", 120, talk=180, agent="agent5")],
        ),
        # Wednesday: w1 is cut by an AMI gap 10:01-10:05 (its later events are lost).
        Script("w1", local(WED, 10), "hJ", legs=[Leg("virksomhed", 600, "abandoned")]),
        Script(
            "w2", local(WED, 11), "hK", legs=[Leg("erhvervshuset", 10, talk=90, agent="agent4")]
        ),
        Script(
            "w3",
            local(WED, 11, 10),
            "hL",
            legs=[Leg("a_kasse", 40, "moved"), Leg("dagpenge", 20, talk=60)],
        ),
        Script(
            "w4",
            local(WED, 11, 20),
            "hM",
            legs=[Leg("dagpenge", 15, talk=240)],
            external="jc_amager",
            flagged=True,
            survey=(5, 5, 4),
        ),
        # Thursday
        Script(
            "th1",
            local(THU, 9),
            "hN",
            legs=[Leg("kontanthjaelp", 5, talk=100, agent="agent2")],
            flagged=True,
            survey=(9, 8, 9),
        ),
        Script("th2", local(THU, 9, 5), "hB", legs=[Leg("kontanthjaelp", 4, "abandoned")]),
        # Friday evening: closed.
        Script("f1", local(FRI, 18), "hO", route="closed"),
        # The week before and the same week a year before.
        Script("p1", local(date(2014, 10, 27), 9), "hP", legs=[Leg("dagpenge", 200, talk=100)]),
        Script("y1", local(date(2013, 11, 4), 9), "hQ", legs=[Leg("dagpenge", 10, "abandoned")]),
    ]


GAP_FROM, GAP_TO = local(WED, 10, 1), local(WED, 10, 5)


@dataclass
class Week:
    url: str
    ctx: Context
    centre: Centre


async def load_week(url: str) -> Week:
    snapshot = load_config(ROOT / "ivr_flows")
    catalogue, goals = snapshot.queues, snapshot[GOALS]
    assert catalogue is not None and goals is not None
    ctx = Context(tz=TZ, config=KpiConfig(), goals=goals, catalogue=catalogue, repeat_days=3)
    sqlite = create_engine(url) if url.startswith("sqlite") else None
    backend: Any = SqliteBackend(sqlite) if sqlite is not None else PostgresBackend(url)
    centre = Centre(backend, catalogue)
    gap_done = False
    for event in merged(week()):
        if not gap_done and event.at >= GAP_FROM:
            centre.link_lost(GAP_FROM)
            centre.resync(GAP_TO)
            gap_done = True
        if event.linkedid == "w1" and event.at >= GAP_FROM:
            continue  # lost while AMI was down
        centre.tick(event.at)
        centre.apply(event)
    centre.tick(AS_OF)
    await centre.flush(AS_OF)
    await backend.close()
    if sqlite is not None:
        await sqlite.dispose()

    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            ids = await call_ids(session, ["m1", "m3", "t1", "w4", "th1"])
            regs = [
                ("m1", "agent1", "dagpenge", True, None),
                ("m3", "agent2", "kontanthjaelp", False, "dagpenge"),
                ("m3", "agent1", "dagpenge", True, None),
                ("t1", "agent3", "dagpenge", True, None),
                ("w4", "agent1", "dagpenge", False, "jc_amager"),
                ("th1", "agent2", "kontanthjaelp", True, None),
            ]
            for lid, agent, queue, resolved, to in regs:
                await put_disposition(
                    session,
                    call_id=ids[lid],
                    agent_id=agent,
                    queue=queue,
                    reason="payment",
                    resolved=resolved,
                    transferred_to=to,
                    note=None,
                    now=AS_OF,
                )
            m7 = (
                await session.execute(select(Callback).where(Callback.linkedid == "m7"))
            ).scalar_one()
            tasks.complete(m7, "reached", None, local(TUE, 12))
    finally:
        await engine.dispose()
    return Week(url, ctx, centre)


@pytest.fixture
async def loaded(pg_url: str) -> AsyncIterator[Week]:
    yield await load_week(pg_url)


async def report_of(w: Week, by: str, period: str = "2014-W45", **kw: Any) -> Report:
    engine = create_engine(w.url)
    try:
        async with session_factory(engine).begin() as session:
            p = parse_period(period) if "first" not in kw else span(kw["first"], kw["last"])
            return await build_report(session, period=p, by=by, ctx=w.ctx, now=AS_OF)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def group(report: Report, key: str) -> Any:
    return next(g for g in report.groups if g.key == key)


async def test_the_centre_counts_each_call_once(loaded: Week) -> None:
    await check_the_centre(loaded)


async def test_the_same_on_sqlite(sqlite_url: str) -> None:
    """A single box on SQLite: the same week, the same figures."""
    await check_the_centre(await load_week(sqlite_url))


async def check_the_centre(loaded: Week) -> None:
    r = await report_of(loaded, "centre")
    c = r.centre
    assert (r.from_, r.to, r.period, r.title) == (
        MON,
        MON + timedelta(days=6),
        "2014-W45",
        "Uge 45 2014",
    )
    # 17 calls: 13 reached a queue; one closed, one forwarded to JKA, one hung up in the
    # menu, one asked for a call-back before queueing.
    assert (c.calls, c.closed, c.forwarded, c.ivr_hangup, c.failed) == (17, 1, 1, 1, 0)
    assert (c.offered, c.answered, c.abandoned, c.short_abandoned, c.timeout, c.empty) == (
        13,
        8,
        4,
        2,
        1,
        0,
    )
    assert c.transferred == 0  # moved on while waiting is a visit's outcome, not a call's
    assert c.answer_rate == round(8 / 11, 4) and c.answer_rate_raw == round(8 / 13, 4)
    assert c.abandon_rate == round(2 / 11, 4)
    # Waits per call: m3 counts its first (answered) visit only, w3 both of its visits
    # (moved while waiting: 40 + 20), w1 up to the gap (39.1 s).
    assert c.avg_wait_seconds == round(2446.1 / 13, 1) == 188.2
    assert c.asa_seconds == 50.0  # (30 + 100 + 60 + 120 + 10 + 60 + 15 + 5) / 8
    assert c.max_wait_seconds == 1800.0
    assert (c.answered_within_sl, c.abandoned_within_sl, c.abandoned_after_sl) == (8, 3, 1)
    assert c.service_level == 1.0
    assert c.service_level_offered == round(8 / 13, 4)
    assert c.service_level_sl2 == round(11 / 12, 4)
    assert c.service_level_abandons == round(8 / 9, 4)
    sl = {row.threshold_seconds: row for row in c.service_levels}
    assert sorted(sl) == [20.0, 60.0, 120.0, 180.0]
    # Answered within 20 s: w2 (10), w4 (15), th1 (5); abandoned within 20: m2, th2.
    assert (sl[20.0].answered_within, sl[20.0].abandoned_within) == (3, 2)
    assert sl[20.0].of_answered == round(3 / 8, 4) and sl[20.0].of_offered == round(3 / 13, 4)
    assert sl[20.0].sl2 == round(5 / 12, 4)
    assert (sl[60.0].answered_within, sl[60.0].abandoned_within) == (6, 3)
    # Talk per call: m3's two talks are one call's (300 + 120); handle adds each talked
    # visit's wrap-up (30 s, m3 twice).
    assert c.talked == 8 and c.avg_talk_seconds == round(1390 / 8, 1)
    assert c.avg_handle_seconds == round((1390 + 270) / 8, 1)
    assert (c.transferred_to_queue, c.transferred_external, c.transfers_received) == (1, 1, 0)
    # Registrations: m1, t1, th1 settled; m3 and w4 transferred.
    assert (c.registered, c.registered_resolved, c.registered_transferred) == (5, 3, 2)
    assert c.registration_share == round(5 / 8, 4) and c.first_contact_resolution == 0.6
    # Repeat calls: hA called again the next working day (m1 -> t1); 8 answered callers.
    assert (c.repeat_base, c.repeat_callers) == (8, 1)
    assert c.first_contact_resolution_repeat == 0.875
    # Surveys: 4 invited, 4 answered; overall 8, 5, 4, 9.
    assert (c.survey_invited, c.survey_responses, c.survey_completed) == (4, 4, 4)
    assert c.survey_response_rate == 1.0 and c.satisfaction == 6.5
    overall = c.survey.all.overall
    assert (overall.n, overall.mean, overall.ci95_low, overall.ci95_high) == (4, 6.5, 2.71, 10.29)
    assert overall.counts == [0, 0, 0, 1, 1, 0, 0, 1, 1]
    assert c.survey.all.friendliness.mean == 7.0 and c.survey.all.wait.mean == 6.0
    assert (c.survey.settled.overall.n, c.survey.settled.overall.mean) == (2, 8.5)  # m1, th1
    assert (c.survey.transferred.overall.n, c.survey.transferred.overall.mean) == (2, 4.5)
    # Tasks: m7's call-back returned the next day; t2's message never (overdue now).
    assert (c.callbacks_requested, c.messages_requested, c.tasks_requested) == (1, 1, 2)
    assert (c.tasks_returned, c.tasks_returned_in_time, c.tasks_overdue) == (1, 1, 1)
    assert c.tasks_in_time_share == 0.5
    assert c.data_gap_calls == 1
    # The whole distribution of waits (answered, abandoned) by bucket.
    edges = r.wait_distribution.edges_seconds
    assert sum(r.wait_distribution.answered) == 8 and sum(r.wait_distribution.abandoned) == 4
    assert r.wait_distribution.abandoned[edges.index(5.0)] == 2  # 3 s and 4 s
    assert r.wait_distribution.abandoned[edges.index(45.0)] == 1  # 39.1 s
    assert r.wait_distribution.abandoned[edges.index(240.0)] == 1  # 200 s


async def test_goals_with_the_week_before_and_the_year_before(loaded: Week) -> None:
    r = await report_of(loaded, "centre")
    assert (r.comparison.previous.from_, r.comparison.last_year.from_) == (
        date(2014, 10, 27),
        date(2013, 11, 4),
    )
    own = r.centre.goals["aftale_2013"]
    assert not own.comparison and own.scope == "Jobcentrenes linje 82 56 56 82"
    g = own.goals
    # The agreement is measured on its scope: the job-centre line, without Erhvervshuset's
    # w2 (12 calls offered, 7 answered, 2 short abandons).
    assert (g["answer_rate"].value, g["answer_rate"].status) == (0.7, "missed")
    assert g["answer_rate"].previous.value == 1.0 and g["answer_rate"].previous.change == -0.3
    assert g["answer_rate"].last_year.value == 0.0 and g["answer_rate"].last_year.change == 0.7
    assert (g["avg_wait_seconds"].value, g["avg_wait_seconds"].status) == (203.0, "missed")
    assert g["avg_wait_seconds"].previous.change == 3.0
    assert g["avg_wait_seconds"].last_year.change == 193.0
    assert (g["first_contact_resolution"].value, g["first_contact_resolution"].status) == (
        0.6,
        "at_risk",  # at the target, under the 62 % early-warning level
    )
    assert (g["satisfaction"].value, g["satisfaction"].status) == (6.5, "missed")  # not above
    assert (g["service_level"].value, g["service_level"].status) == (1.0, "met")
    old = r.centre.goals["kommune_2009"]
    assert old.comparison and old.goals["answer_rate"].target == 0.9
    assert old.goals["answer_rate"].status == "missed"
    erhverv = r.centre.goals["erhvervshuset"].goals
    assert (erhverv["answer_rate"].value, erhverv["answer_rate"].status) == (1.0, "met")
    assert (erhverv["avg_wait_seconds"].value, erhverv["satisfaction"].status) == (10.0, "no_data")
    assert [a.name for a in r.agreements] == ["aftale_2013", "erhvervshuset", "kommune_2009"]


async def test_queues_count_visits_and_departments_calls(loaded: Week) -> None:
    q = await report_of(loaded, "queue")
    dagpenge, kontant = group(q, "dagpenge"), group(q, "kontanthjaelp")
    # m3 counts in both queues it visited (and once in the centre).
    assert (dagpenge.offered, dagpenge.answered, dagpenge.short_abandoned) == (6, 5, 1)
    assert dagpenge.answer_rate == 1.0 and dagpenge.avg_wait_seconds == round(178 / 6, 1)
    assert dagpenge.asa_seconds == 35.0
    assert (kontant.offered, kontant.answered, kontant.transferred_to_queue) == (4, 3, 1)
    akasse = group(q, "a_kasse")
    assert (akasse.offered, akasse.transferred, akasse.answer_rate) == (1, 1, 0.0)
    assert group(q, "virksomhed").data_gap_calls == 1
    assert group(q, "genregistrering").timeout == 1
    assert group(q, "erhvervshuset").answered == 1
    # The survey counts where the call was last answered: m1, m3, w4 in dagpenge.
    assert dagpenge.survey_responses == 3 and kontant.survey_responses == 1
    assert [g.key for g in q.groups][:3] == ["kontanthjaelp", "dagpenge", "sygeopfoelgning"]
    assert sum(g.offered for g in q.groups) == 15  # visits: 13 calls, m3 and w3 twice
    assert "aftale_2013" in dagpenge.goals and "erhvervshuset" not in dagpenge.goals
    assert list(group(q, "erhvervshuset").goals) == ["erhvervshuset"]

    d = await report_of(loaded, "department")
    ydelse = group(d, "ydelse")
    # m3 (kontanthjaelp -> dagpenge) and w3 (a_kasse -> dagpenge) stay within ydelse: once.
    assert (ydelse.calls, ydelse.offered, ydelse.answered, ydelse.short_abandoned) == (9, 9, 7, 2)
    assert ydelse.answer_rate == 1.0 and ydelse.transferred_to_queue == 1
    sygdom = group(d, "sygdom")
    assert (sygdom.calls, sygdom.offered, sygdom.forwarded, sygdom.transfers_received) == (
        1,
        1,
        1,
        1,
    )
    assert group(d, "jc_amager").transfers_received == 1
    assert group(d, "jc_nord").transfers_received == 0
    assert group(d, "virksomhedsservice").data_gap_calls == 1
    assert [g.key for g in d.groups] == [dep.name for dep in loaded.ctx.goals.departments]


async def test_agents_days_weeks_and_half_hours(loaded: Week) -> None:
    a = await report_of(loaded, "agent")
    agent1 = group(a, "agent1")
    assert (agent1.answered, agent1.offered, agent1.answer_rate) == (4, 0, None)
    assert agent1.avg_talk_seconds == 155.0 and agent1.asa_seconds == round(115 / 4, 1)
    assert (agent1.registered, agent1.registered_resolved) == (3, 2)
    assert agent1.survey_responses == 3 and agent1.satisfaction == round(17 / 3, 2)
    assert group(a, "agent2").transferred_to_queue == 1
    assert {g.key for g in a.groups} == {"agent1", "agent2", "agent3", "agent4", "agent5"}

    days = await report_of(loaded, "day")
    per_day = {g.key: (g.calls, g.offered, g.answered) for g in days.groups}
    assert per_day == {
        "2014-11-03": (7, 4, 2),
        "2014-11-04": (3, 3, 2),  # t3 joined at 23:59 and was answered after midnight
        "2014-11-05": (4, 4, 3),
        "2014-11-06": (2, 2, 1),
        "2014-11-07": (1, 0, 0),
        "2014-11-08": (0, 0, 0),
        "2014-11-09": (0, 0, 0),
    }
    assert group(days, "2014-11-03").title == "Mandag 3. november 2014"
    weeks = await report_of(loaded, "week")
    assert [(g.key, g.offered) for g in weeks.groups] == [("2014-W45", 13)]
    weekdays = await report_of(loaded, "weekday")
    assert [g.key for g in weekdays.groups] == [str(i) for i in range(1, 8)]
    months = await report_of(loaded, "month", first=date(2014, 10, 27), last=date(2014, 11, 9))
    assert [(g.key, g.offered) for g in months.groups] == [("2014-10", 1), ("2014-11", 13)]

    halves = await report_of(loaded, "halfhour")
    slot = group(halves, "09:00")
    # 09:00-09:30 on any day: m1, m2, m3, t1, th1, th2.
    assert (slot.title, slot.calls, slot.offered, slot.answered) == ("09:00-09:30", 6, 6, 4)
    assert group(halves, "23:30").answered == 1  # t3
    assert sum(g.calls for g in halves.groups) == 17


async def test_each_day_equals_the_live_figures_and_the_csv_reads_back(loaded: Week) -> None:
    """The report's days (centre per call, queues per visit) are what the live path
    counted as the events came, figure for figure."""
    live = loaded.centre.book
    for day in (MON, TUE, WED, THU):
        r = await report_of(loaded, "queue", first=day, last=day)
        want = live.figures(day, CENTRE).as_dict()
        assert {k: getattr(r.centre, k) for k in want} == want, day
        assert {k: getattr(r.daily[0], k) for k in want} == want, day
        for g in r.groups:
            want_q = live.figures(day, g.key).as_dict()
            assert {k: getattr(g, k) for k in want_q} == want_q, (day, g.key)

    r = await report_of(loaded, "department")
    body, media_type = render(r, "csv")
    assert media_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row["key"] for row in rows] == [g.key for g in r.groups] + ["centre"]
    ydelse = rows[0]
    assert (ydelse["title"], ydelse["offered"], ydelse["answer_rate"]) == (
        "Ydelsesservice (kontanthjælp, dagpenge, a-kasser)",
        "9",
        "1.0",
    )
    assert rows[-1]["avg_wait_seconds"] == "188.2" and rows[-1]["satisfaction"] == "6.5"
    assert rows[-1]["survey_all_overall_ci95_low"] == "2.71"
    assert rows[-1]["sl_20s_of_answered"] == str(round(3 / 8, 4))
    assert rows[1]["asa_seconds"] == ""  # sygdom: nothing answered, no figure (not 0)
    # The JSON is the model's, with "from" (not "from_").
    doc = json.loads(render(r, "json")[0])
    assert doc["from"] == "2014-11-03" and "from_" not in doc
    assert Report.model_validate(doc) == r


async def test_data_quality_says_what_the_gap_could_change(loaded: Week) -> None:
    dq = (await report_of(loaded, "centre")).data_quality
    assert (dq.gaps, dq.gap_seconds, dq.calls, dq.calls_touched, dq.visits_touched) == (
        1,
        240.0,
        17,
        1,
        1,
    )
    assert dq.share_touched == round(1 / 17, 4)
    # w1 (abandoned in the gap) moves the offered calls, the abandons and every rate and
    # wait over them; nothing about the answered calls.
    for name in ("offered", "abandoned", "answer_rate", "avg_wait_seconds", "calls"):
        assert name in dq.figures_affected
    for name in ("answered", "asa_seconds", "avg_talk_seconds", "satisfaction", "max_wait_seconds"):
        assert name not in dq.figures_affected
    assert dq.figures_affected_count == len(dq.figures_affected)
    assert dq.days == 7


async def test_the_job_counts_the_last_weeks_once(loaded: Week) -> None:
    """The service's hourly job counts the recent past days ahead of the reports, and
    leaves them alone while they are fresh."""
    engine = create_engine(loaded.url)
    try:
        job = RollupJob(session_factory(engine), lambda: loaded.ctx, lambda: AS_OF, window=14)
        assert await job.run_once() == 14  # 27 October .. 9 November
        assert await job.run_once() == 0
        assert (await job.check()).ok
        async with session_factory(engine)() as session:
            days = (await session.execute(select(ReportDay.day))).scalars().all()
        assert sorted(days) == [AS_OF.date() - timedelta(days=i) for i in range(14, 0, -1)]
        report = await report_of(loaded, "centre")
        assert report.data_quality.days_from_rollup == 7  # used as the job left them
        assert report.data_quality.days_recomputed == 0
        silent = RollupJob(session_factory(engine), lambda: None, lambda: AS_OF)
        assert await silent.run_once() == 0  # no goals file: nothing to count with
        # Stopped while it counts (the next day: every recent day again), the job lets the
        # count finish first: no transaction or connection cut off mid-statement.
        later = RollupJob(
            session_factory(engine), lambda: loaded.ctx, lambda: AS_OF + timedelta(days=1),
            window=14, first_delay=0,
        )  # fmt: skip
        await later.start()
        while later._busy is None or later._busy.done():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await later.stop()
        assert later.last_run is not None and later.last_counted == 14
    finally:
        await engine.dispose()


async def test_stored_tallies_are_used_once_final_and_outlive_the_detail(loaded: Week) -> None:
    """Counted after the repeat window closed, a day is final: the next report reads it
    as stored, and deleting the day's calls (a purge) changes nothing."""
    first = await report_of(loaded, "department")
    assert first.data_quality.days_recomputed == 7 and first.data_quality.days_from_rollup == 0
    engine = create_engine(loaded.url)
    try:
        async with session_factory(engine)() as session:
            days = (
                (await session.execute(select(ReportDay).order_by(ReportDay.day))).scalars().all()
            )
            # Counted on 10 November: only days up to 24 October would be final.
            assert not any(d.final for d in days if d.day >= MON)
        late = AS_OF + timedelta(days=30)
        async with session_factory(engine).begin() as session:
            p = parse_period("2014-W45")
            again = await build_report(session, period=p, by="department", ctx=loaded.ctx, now=late)
        assert again.data_quality.days_recomputed == 7
        async with session_factory(engine)() as session:
            finals = (
                (await session.execute(select(ReportDay.day).where(ReportDay.final.is_(True))))
                .scalars()
                .all()
            )
            assert set(finals) >= {MON + timedelta(days=i) for i in range(7)}
        from sqlalchemy import text

        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM survey_responses"))
            await conn.execute(text("DELETE FROM dispositions"))
            await conn.execute(text("DELETE FROM queue_visits"))
            await conn.execute(text("DELETE FROM calls"))
        async with session_factory(engine).begin() as session:
            purged = await build_report(
                session, period=p, by="department", ctx=loaded.ctx, now=late
            )
        assert (
            purged.data_quality.days_from_rollup == 7 and purged.data_quality.days_recomputed == 0
        )
        assert purged.groups == again.groups
        assert purged.centre.model_dump(exclude={"tasks_overdue"}) == again.centre.model_dump(
            exclude={"tasks_overdue"}
        )
    finally:
        await engine.dispose()


SAMPLE = ROOT / "tests" / "fixtures" / "reports" / "week45_by_department.json"


async def test_the_sample_report_is_this_weeks(loaded: Week) -> None:
    """tests/fixtures/reports/ holds this week's report by department, as the API serves
    it: the documents are rendered and tested against it. ACD_WRITE_SAMPLES=1 rewrites it
    after a change of the report's shape."""
    import os

    r = await report_of(loaded, "department")
    produced = json.loads(r.to_json())
    if os.environ.get("ACD_WRITE_SAMPLES") == "1":
        SAMPLE.write_text(
            json.dumps(produced, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    assert json.loads(SAMPLE.read_text(encoding="utf-8")) == produced
