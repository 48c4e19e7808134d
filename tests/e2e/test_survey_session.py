"""The satisfaction survey session (``agi://.../survey,jobcenter``) after the agent leaves,
over real TCP: answered, half answered, invalid answers, hang-ups."""

from __future__ import annotations

from tests.agi_fake_asterisk import HANGUP, Caller
from tests.agi_support import agi_service, cph

AFTER_CALL = cph(2025, 3, 4, 10, 42)
QUESTIONS = ["acd/survey-imoedekommenhed", "acd/survey-ventetid", "acd/survey-tilfredshed"]


def answers(h: object) -> list[tuple[str, int]]:
    return [(e.question, e.value) for e in h.of("survey_answer")]  # type: ignore[attr-defined]


async def test_survey_answered() -> None:
    async with agi_service(at=AFTER_CALL) as h:
        r = await h.pbx.call(
            Caller(answers=["8", "5", "9"], linkedid="1795362440.10"),
            script="survey",
            uniqueid="1795362443.12",
        )
    assert r.commands == [
        'GET FULL VARIABLE "${CHANNEL(linkedid)}"',
        "ANSWER",
        "GET DATA acd/survey-imoedekommenhed 5000 1",
        "GET DATA acd/survey-ventetid 5000 1",
        "GET DATA acd/survey-tilfredshed 5000 1",
        'STREAM FILE acd/info-tak-for-svar ""',
    ]
    assert r.closed_by_service and not r.variables  # the dialplan just hangs up after
    assert h.kinds() == [
        "ivr_started",
        "survey_started",
        "survey_answer",
        "survey_answer",
        "survey_answer",
        "survey_ended",
        "ivr_ended",
    ]
    assert answers(h) == [("friendliness", 8), ("wait", 5), ("overall", 9)]
    assert h.one("survey_ended").completed is True
    assert h.one("ivr_started").script == "survey"
    assert h.one("ivr_ended").reason == "survey_done"
    # Stored with the call: the same linked id as the menu session's events.
    assert {e.linkedid for e in h.events} == {"1795362440.10"}
    assert [e.key for e in h.events][:2] == [
        "agi:1795362443.12:survey:1",
        "agi:1795362443.12:survey:2",
    ]
    assert h.metric("acd_survey_answers_total", question="wait", score="5") == 1


async def test_survey_half_answered_keeps_the_answers() -> None:
    async with agi_service(at=AFTER_CALL) as h:
        r = await h.pbx.call(Caller(answers=["7", "4", HANGUP]), script="survey")
    assert r.hung_up and r.closed_by_service
    assert r.asked == QUESTIONS
    assert answers(h) == [("friendliness", 7), ("wait", 4)]
    assert h.one("survey_ended").completed is False
    assert h.one("ivr_ended").reason == "hangup"
    assert h.kinds()[-2:] == ["survey_ended", "ivr_ended"]


async def test_survey_hang_up_before_any_answer() -> None:
    async with agi_service(at=AFTER_CALL) as h:
        await h.pbx.call(Caller(answers=[HANGUP]), script="survey")
    assert answers(h) == []
    assert h.one("survey_ended").completed is False


async def test_survey_invalid_answer_is_asked_again_once() -> None:
    async with agi_service(at=AFTER_CALL) as h:
        r = await h.pbx.call(Caller(answers=["0", "6", "#", "*", "3"]), script="survey")
    assert r.prompts == [
        "acd/survey-imoedekommenhed",
        "acd/info-ugyldigt-svar",
        "acd/survey-imoedekommenhed",  # asked again once ...
        "acd/survey-ventetid",
        "acd/info-ugyldigt-svar",
        "acd/survey-ventetid",  # ... a second miss skips the question
        "acd/survey-tilfredshed",
        "acd/info-tak-for-svar",
    ]
    assert answers(h) == [("friendliness", 6), ("overall", 3)]
    assert h.one("survey_ended").completed is False


async def test_survey_silence_is_asked_again_then_skipped() -> None:
    async with agi_service(at=AFTER_CALL) as h:
        await h.pbx.call(Caller(answers=[None, "5", "5", "5"]), script="survey")
    assert answers(h) == [("friendliness", 5), ("wait", 5), ("overall", 5)]
    assert h.one("survey_ended").completed is True


async def test_survey_runs_outside_opening_hours_too() -> None:
    # An agent's call may end after closing time; the survey still runs.
    async with agi_service(at=cph(2025, 3, 4, 15, 20)) as h:
        await h.pbx.call(Caller(answers=["9", "9", "9"]), script="survey")
    assert h.one("survey_ended").completed is True
    assert "ivr_closed" not in h.kinds()
