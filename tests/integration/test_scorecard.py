"""GET /v1/agents/{id}/today on a known day: every figure against its goal, on SQLite and
PostgreSQL. Tuesday 4 March 2025 (CET, UTC+1): agent1 logs in 08:00, takes two calls,
lunches 09:00-09:30, logs out 11:00 local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.store.models import AgentStateChange, Call, Disposition, QueueVisit, SurveyResponse
from tests.work_support import office


def utc(h: int, m: int = 0, s: int = 0, day: int = 4) -> datetime:
    return datetime(2025, 3, day, h, m, s, tzinfo=UTC)


# (at, state, queue, reason): agent-level changes, and per-queue rows that must not count
STATES = [
    (utc(20, day=3), "logged_out", None, None),
    (utc(7), "logged_in", "dagpenge", None),  # per queue
    (utc(7), "available", None, None),
    (utc(7, 10), "ringing", "dagpenge", None),
    (utc(7, 10, 5), "on_call", "dagpenge", None),
    (utc(7, 15, 5), "wrapup", "dagpenge", None),
    (utc(7, 15, 35), "available", None, None),
    (utc(8), "paused", "dagpenge", "lunch"),  # per queue
    (utc(8), "paused", None, "lunch"),
    (utc(8, 30), "unpaused", "dagpenge", None),  # per queue
    (utc(8, 30), "available", None, None),
    (utc(9), "on_call", "dagpenge", None),
    (utc(9, 4), "wrapup", "dagpenge", None),
    (utc(9, 4, 30), "available", None, None),
    (utc(10), "logged_out", "dagpenge", None),  # per queue
    (utc(10), "logged_out", None, None),
]


async def test_scorecard_of_a_known_day(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        async with o.rt.sessions.begin() as s:
            for i, (at, state, queue, reason) in enumerate(STATES):
                s.add(
                    AgentStateChange(
                        pbx="pbx1", event_key=f"k{i}", at=at, agent_id="agent1",
                        interface="PJSIP/agent1", queue=queue, state=state, reason=reason,
                    )
                )  # fmt: skip
            calls = {}
            for name, answered, talk, agent in (
                ("a", utc(7, 10, 5), 300.0, "agent1"),
                ("b", utc(9), 240.0, "agent1"),
                ("c", utc(9, 30), 100.0, "agent2"),
                ("tomorrow", utc(7, day=5), 100.0, "agent1"),
            ):
                call = Call(
                    pbx="pbx1", linkedid=f"day.{name}", started_at=answered - timedelta(minutes=1),
                    answered_at=answered, ended_at=answered + timedelta(seconds=talk),
                    talk_seconds=talk, agent=agent, queue="dagpenge", outcome="answered",
                )  # fmt: skip
                s.add(call)
                await s.flush()
                calls[name] = call.id
                s.add(
                    QueueVisit(
                        pbx="pbx1", linkedid=call.linkedid, seq=1, queue="dagpenge",
                        entered_at=answered - timedelta(seconds=40), answered_at=answered,
                        talk_seconds=talk, agent=agent, outcome="answered",
                    )
                )  # fmt: skip
            for name, resolved, target in (("a", True, None), ("b", False, "kontanthjaelp")):
                s.add(
                    Disposition(
                        call_id=calls[name], agent_id="agent1", queue="dagpenge",
                        reason="payment", resolved=resolved, transferred_to=target,
                    )
                )  # fmt: skip
            for name, at, scores in (
                ("a", utc(7, 16), (9, 6, 8)),
                ("tomorrow", utc(7, 5, day=5), (1, 1, 1)),
            ):
                s.add(
                    SurveyResponse(
                        pbx="pbx1", linkedid=f"day.{name}", call_id=calls[name], agent="agent1",
                        queue="dagpenge", started_at=at, friendliness=scores[0], wait=scores[1],
                        overall=scores[2], completed=True,
                    )
                )  # fmt: skip

        r = await o.http.get("/v1/agents/agent1/today?date=2025-03-04", headers=o.who["agent1"])
        assert r.status_code == 200, r.text
        card = r.json()
        assert card["period_start"].startswith("2025-03-03T23:00:00")
        assert card["calls_answered"] == 2
        assert (card["talk_seconds"], card["wrapup_seconds"]) == (540.0, 60.0)
        assert card["seconds_in_state"] == {
            "logged_out": 75600.0,
            "available": 8395.0,
            "ringing": 5.0,
            "on_call": 540.0,
            "wrapup": 60.0,
            "paused": 1800.0,
            "unavailable": 0.0,
        }
        assert card["average_handle_seconds"] == {
            "value": 300.0, "goal": 420.0, "direction": "at_most", "met": True,
        }  # fmt: skip
        assert card["registration_rate"]["value"] == 1.0 and card["registration_rate"]["met"]
        assert (card["registered"], card["resolved"], card["transferred"]) == (2, 1, 1)
        assert card["first_contact_resolution"] == {
            "value": 0.5, "goal": 0.6, "direction": "at_least", "met": False,
        }  # fmt: skip
        assert card["satisfaction"] == {
            "value": 8.0, "goal": 6.5, "direction": "above", "met": True,
        }  # fmt: skip
        assert (card["friendliness"], card["wait"], card["survey_answers"]) == (9.0, 6.0, 1)
        assert card["ready_share"]["value"] == round(9000 / 10800, 4)
        assert card["ready_share"]["met"] is False

        empty = (
            await o.http.get("/v1/agents/agent2/today?date=2025-03-04", headers=o.who["admin"])
        ).json()
        assert empty["calls_answered"] == 1 and empty["average_handle_seconds"]["value"] == 100.0
        assert empty["registration_rate"]["value"] == 0.0 and empty["satisfaction"]["met"] is None
        assert empty["first_contact_resolution"]["value"] is None
        future = await o.http.get("/v1/agents/agent1/today?date=2099-01-01", headers=o.who["admin"])
        assert future.status_code == 422
        nobody = await o.http.get("/v1/agents/ghost/today", headers=o.who["admin"])
        assert nobody.status_code == 404


async def test_the_scorecard_uses_the_pbx_clock_and_counts_a_live_talk_until_now(
    db_url: str, tmp_path: Path
) -> None:
    """The PBX plays 4 March 2025 at 09:02 UTC (the demo, a PBX with another clock): the
    agent's "today" is that day, and a call answered at 09:00 and still up counts two
    minutes of talk, not the rest of the day; a talk whose call ended in a data gap (no
    end of talk known) counts none."""
    async with office(db_url, tmp_path) as o:
        o.rt.pipeline.skew = utc(9, 2) - datetime.now(UTC)
        async with o.rt.sessions.begin() as s:
            for name, ended in (("live", None), ("lost", utc(8, 50))):
                answered = utc(9) if name == "live" else utc(8, 40)
                call = Call(
                    pbx="pbx1", linkedid=f"now.{name}", started_at=answered - timedelta(minutes=1),
                    answered_at=answered, ended_at=ended, agent="agent1", queue="dagpenge",
                    outcome=None if ended is None else "answered", data_gap=ended is not None,
                )  # fmt: skip
                s.add(call)
                s.add(
                    QueueVisit(
                        pbx="pbx1", linkedid=call.linkedid, seq=1, queue="dagpenge",
                        entered_at=answered - timedelta(seconds=30), answered_at=answered,
                        agent="agent1", outcome="answered", data_gap=ended is not None,
                    )
                )  # fmt: skip
        r = await o.http.get("/v1/agents/agent1/today", headers=o.who["agent1"])
        assert r.status_code == 200, r.text
        card = r.json()
        assert card["date"] == "2025-03-04"
        assert card["period_end"].startswith("2025-03-04T09:02")
        assert card["calls_answered"] == 2
        assert 120.0 <= card["talk_seconds"] < 125.0  # the live call so far; the lost one 0
        # Another day than the PBX's today is refused as the future.
        ahead = await o.http.get("/v1/agents/agent1/today?date=2025-03-05", headers=o.who["agent1"])
        assert ahead.status_code == 422
