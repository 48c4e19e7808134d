"""Today's follow-up gauges (first-contact resolution and satisfaction by queue) from the
registrations and survey answers in the database, as Prometheus shows them (real SQLite
and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.store.models import SurveyResponse
from tests.work_support import office


def _value(metrics: str, sample: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith(sample + " "))
    return float(line.split()[-1])


async def test_registrations_and_survey_answers_of_today_by_queue(
    db_url: str, tmp_path: Path
) -> None:
    async with office(db_url, tmp_path) as o:
        admin = o.who["admin"]
        for call, body in (
            ("mine", {"reason": "payment", "resolved": True}),
            ("theirs", {"reason": "case_status", "transferred_to": "jka"}),
            ("both", {"reason": "payment", "resolved": True, "agent": "agent1"}),
            ("both", {"reason": "documents", "resolved": False, "agent": "agent2"}),
        ):
            r = await o.http.put(f"/v1/calls/{o.calls[call]}/disposition", headers=admin, json=body)
            assert r.status_code == 201, r.text
        async with o.rt.sessions.begin() as s:
            s.add(
                SurveyResponse(
                    pbx="pbx1", linkedid="seed.theirs", call_id=o.calls["theirs"],
                    agent="agent2", queue="kontanthjaelp",
                    started_at=datetime.now(UTC) - timedelta(minutes=8),
                    friendliness=9, wait=None, overall=4, completed=False,
                )
            )  # fmt: skip
            # Yesterday's answer is not today's.
            s.add(
                SurveyResponse(
                    pbx="pbx1", linkedid="seed.yesterday", call_id=None, agent="agent2",
                    queue="kontanthjaelp", started_at=datetime.now(UTC) - timedelta(days=1),
                    friendliness=1, wait=1, overall=1, completed=True,
                )
            )  # fmt: skip
        await o.rt.dialer.refresh_gauges()
        metrics = (await o.http.get("/metrics")).text
        reg = "acd_today_registrations"
        # dagpenge: mine (resolved) and both by agent1 (resolved) -> FCR 2/2.
        assert _value(metrics, f'{reg}{{queue="dagpenge",resolved="true"}}') == 2
        assert _value(metrics, f'{reg}{{queue="dagpenge",resolved="false"}}') == 0
        # kontanthjaelp: theirs (transferred: not settled) and both by agent2 (not) -> 0/2.
        assert _value(metrics, f'{reg}{{queue="kontanthjaelp",resolved="true"}}') == 0
        assert _value(metrics, f'{reg}{{queue="kontanthjaelp",resolved="false"}}') == 2
        answers, score = "acd_today_survey_answers", "acd_today_survey_score_sum"
        assert _value(metrics, f'{answers}{{question="overall",queue="dagpenge"}}') == 1
        assert _value(metrics, f'{score}{{question="overall",queue="dagpenge"}}') == 7
        assert _value(metrics, f'{answers}{{question="overall",queue="kontanthjaelp"}}') == 1
        assert _value(metrics, f'{score}{{question="overall",queue="kontanthjaelp"}}') == 4
        assert _value(metrics, f'{answers}{{question="wait",queue="kontanthjaelp"}}') == 0
        assert _value(metrics, f'{score}{{question="friendliness",queue="kontanthjaelp"}}') == 9
