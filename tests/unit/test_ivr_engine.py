"""The pure flow engine on the shipped menu: every decision, time and estimates given."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.acd.estimates import EstimateSource, QueueEstimate, no_estimates
from app.acd.events import (
    IvrCallbackAccepted,
    IvrCallbackDeclined,
    IvrCallbackOffered,
    IvrClosed,
    IvrForwarded,
    IvrKey,
    IvrMenuEntered,
    IvrRouted,
    IvrTimeout,
    SurveyAnswered,
    SurveyEnded,
    SurveyStarted,
)
from app.config.loader import load_config
from app.ivr import engine
from app.ivr.engine import (
    Ask,
    CallInfo,
    CallState,
    Digits,
    Finish,
    Input,
    NoInput,
    Play,
    Record,
    Recorded,
    Step,
)
from app.ivr.graph import key_path, key_paths
from app.ivr.model import Flow
from app.ivr.survey import SurveySampler, survey_advance, survey_hung_up, survey_start
from tests.expectations import AREA_KEYS

ROOT = Path(__file__).resolve().parents[2]
FLOW: Flow = load_config(ROOT / "ivr_flows").flows["jobcenter"]
CPH = ZoneInfo("Europe/Copenhagen")
TUESDAY_1030 = datetime(2025, 3, 4, 10, 30, tzinfo=CPH)
CALL = CallInfo(uniqueid="1795362443.12", has_number=True)


def waits(**seconds: float | None) -> EstimateSource:
    def source(queue: str) -> QueueEstimate | None:
        return QueueEstimate(queue, 5, 3, 0, seconds[queue]) if queue in seconds else None

    return source


def run(
    inputs: list[Input],
    *,
    at: datetime = TUESDAY_1030,
    estimates: EstimateSource = no_estimates,
    call: CallInfo = CALL,
) -> list[Step[CallState]]:
    """Start a call and feed ``inputs``; returns every step."""
    steps = [engine.start(FLOW, call, at, estimates)]
    for given in inputs:
        assert not isinstance(steps[-1].then, Finish), "the call already ended"
        steps.append(engine.advance(FLOW, steps[-1].state, given, at, estimates))
    return steps


def facts(steps: list[Step[CallState]]) -> list[tuple[str, dict[str, object]]]:
    return [(f.kind.KIND, f.fields) for s in steps for f in s.facts]


def keys(*digits: str) -> list[Input]:
    return [Digits(d) for d in digits]


def test_the_call_starts_with_the_welcome_then_the_main_menu() -> None:
    step = engine.start(FLOW, CALL, TUESDAY_1030, no_estimates)
    assert step.plays == (Play("acd/info-velkommen", interruptible=True),)
    assert step.then == Ask("acd/menu-hovedmenu", 6000, 1)
    assert facts([step]) == [("ivr_menu", {"menu": "hovedmenu", "attempt": 1})]


@pytest.mark.parametrize(("queue", "path"), sorted(AREA_KEYS.items()))
def test_every_area_is_reached_by_its_keys(queue: str, path: list[str]) -> None:
    steps = run(keys(*path))
    final = steps[-1]
    assert final.then == Finish("queue", "routed", queue=queue)
    routed = [f for f in final.facts if f.kind is IvrRouted]
    assert routed[0].fields["queue"] == queue
    assert routed[0].fields["fallback"] is False
    assert final.state.keys == tuple(path)
    key_facts = [f.fields["digit"] for s in steps for f in s.facts if f.kind is IvrKey]
    assert key_facts == path


def test_key_path_is_what_a_caller_presses() -> None:
    assert key_paths(FLOW) == AREA_KEYS
    assert key_path(FLOW, "sygedagpenge") == ["3", "1"]
    with pytest.raises(KeyError, match="no_such"):
        key_path(FLOW, "no_such")


def test_the_biggest_areas_have_the_shortest_paths() -> None:
    assert all(len(AREA_KEYS[q]) == 1 for q in ("kontanthjaelp", "dagpenge", "genregistrering"))
    catalogue = load_config(ROOT / "ivr_flows").queues
    assert catalogue is not None
    volumes = {q.name: q.calls_per_year for q in catalogue.queues}
    mean = sum(len(AREA_KEYS[q]) * n for q, n in volumes.items()) / sum(volumes.values())
    assert mean < 1.4


def test_invalid_key_replays_the_menu_after_a_prompt() -> None:
    steps = run(keys("9"))
    step = steps[-1]
    assert step.plays == (Play("acd/info-ugyldigt-valg", interruptible=True),)
    assert step.then == Ask("acd/menu-hovedmenu", 6000, 1)
    assert step.state.attempt == 2
    assert facts([step]) == [
        ("ivr_key", {"menu": "hovedmenu", "digit": "9", "valid": False}),
        ("ivr_menu", {"menu": "hovedmenu", "attempt": 2}),
    ]
    # ... and a valid key then routes as usual.
    assert run([Digits("9"), Digits("2")])[-1].then == Finish("queue", "routed", queue="dagpenge")


def test_three_timeouts_go_to_the_default_queue() -> None:
    steps = run([NoInput(), NoInput(), NoInput()])
    assert [f for f in facts(steps) if f[0] == "ivr_timeout"] == [
        ("ivr_timeout", {"menu": "hovedmenu", "attempt": 1}),
        ("ivr_timeout", {"menu": "hovedmenu", "attempt": 2}),
        ("ivr_timeout", {"menu": "hovedmenu", "attempt": 3}),
    ]
    assert steps[1].plays == (Play("acd/info-intet-valg", interruptible=True),)
    final = steps[-1]
    assert final.plays == (Play("acd/info-stilles-videre"),)
    assert final.then == Finish("queue", "routed", queue="kontanthjaelp")
    routed = facts([final])[-1]
    assert routed == (
        "ivr_routed",
        {"queue": "kontanthjaelp", "menu": "hovedmenu", "fallback": True,
         "estimated_wait_seconds": None},
    )  # fmt: skip


def test_invalid_and_timeout_share_the_three_tries() -> None:
    steps = run([Digits("9"), NoInput(), Digits("#")])
    assert steps[-1].then == Finish("queue", "routed", queue="kontanthjaelp")
    assert steps[-1].state.fallback


def test_sub_menu_default_is_its_own_area() -> None:
    steps = run([Digits("3"), Digits("9"), Digits("9"), Digits("9")])
    assert steps[-1].then == Finish("queue", "routed", queue="sygeopfoelgning")
    steps = run([Digits("5"), NoInput(), NoInput(), NoInput()])
    assert steps[-1].then == Finish("queue", "routed", queue="virksomhed")


def test_star_replays_and_zero_goes_back_to_the_top() -> None:
    steps = run(keys("*", "3", "0", "2"))
    asked = [s.then.prompt for s in steps if isinstance(s.then, Ask)]
    assert asked == ["acd/menu-hovedmenu", "acd/menu-hovedmenu", "acd/menu-sygdom",
                     "acd/menu-hovedmenu"]  # fmt: skip
    assert steps[-1].then == Finish("queue", "routed", queue="dagpenge")
    assert steps[-1].facts[-1].fields["menu"] == "hovedmenu"


def test_a_caller_pressing_keys_forever_still_reaches_a_person() -> None:
    steps = run(keys(*["*"] * FLOW.max_inputs, "*"))
    assert steps[-1].then == Finish("queue", "routed", queue=FLOW.default_queue)
    assert steps[-1].facts[-1].fields["fallback"] is True


@pytest.mark.parametrize(
    ("at", "forwarded"),
    [
        (datetime(2025, 3, 4, 9, 0, tzinfo=CPH), True),
        (datetime(2025, 3, 4, 9, 30, tzinfo=CPH), True),
        (datetime(2025, 3, 4, 9, 59, tzinfo=CPH), True),
        (datetime(2025, 3, 4, 10, 0, tzinfo=CPH), False),
        (datetime(2025, 3, 4, 10, 30, tzinfo=CPH), False),
        (datetime(2025, 3, 4, 8, 59, tzinfo=CPH), False),
    ],
)
def test_sygedagpenge_between_nine_and_ten_goes_straight_to_the_unit(
    at: datetime, forwarded: bool
) -> None:
    final = run(keys("3", "1"), at=at)[-1]
    if forwarded:
        assert final.then == Finish("forward", "forwarded", number="+4582565690")
        assert final.plays == (Play("acd/info-viderestilling-jka"),)
        assert facts([final])[-1] == (
            "ivr_forwarded",
            {"destination": "jka", "number": "+4582565690", "rule": "sygedagpenge-jka-0900-1000"},
        )
    else:
        assert final.then == Finish("queue", "routed", queue="sygedagpenge")


def test_sygeopfoelgning_is_not_forwarded_at_nine_thirty() -> None:
    final = run(keys("3", "2"), at=datetime(2025, 3, 4, 9, 30, tzinfo=CPH))[-1]
    assert final.then == Finish("queue", "routed", queue="sygeopfoelgning")


@pytest.mark.parametrize(
    ("at", "reason", "first", "when"),
    [
        # Tuesday evening: tomorrow 08:00.
        (datetime(2025, 3, 4, 18, 0, tzinfo=CPH), "hours", "acd/closed-lukket",
         ("acd/cal-i-morgen", "acd/cal-kl-0800")),
        # Easter Monday: open again Tuesday 22 April (tomorrow).
        (datetime(2025, 4, 21, 10, 0, tzinfo=CPH), "holiday", "acd/closed-helligdag",
         ("acd/cal-i-morgen", "acd/cal-kl-0800")),
        # Christmas Day (Thursday): next is Monday 29 December.
        (datetime(2025, 12, 25, 11, 0, tzinfo=CPH), "holiday", "acd/closed-helligdag",
         ("acd/cal-mandag", "acd/cal-den-29", "acd/cal-december", "acd/cal-kl-0800")),
        # Early Monday morning: today at 08:00.
        (datetime(2025, 3, 3, 7, 15, tzinfo=CPH), "hours", "acd/closed-lukket",
         ("acd/cal-i-dag", "acd/cal-kl-0800")),
    ],
)  # fmt: skip
def test_closed_calls_hear_why_and_when_we_open(
    at: datetime, reason: str, first: str, when: tuple[str, ...]
) -> None:
    step = engine.start(FLOW, CALL, at, no_estimates)
    assert step.then == Finish("hangup", "closed")
    assert [p.prompt for p in step.plays] == [
        first,
        "acd/closed-aabner-igen",
        *when,
        "acd/closed-farvel",
    ]
    assert not any(p.interruptible for p in step.plays)
    (fact,) = step.facts
    assert fact.kind is IvrClosed and fact.fields["reason"] == reason
    opens = fact.fields["next_open"]
    assert isinstance(opens, datetime) and opens.tzinfo is UTC
    assert opens.astimezone(CPH).time().hour == 8


def test_long_wait_offers_a_call_back_which_is_accepted() -> None:
    est = waits(dagpenge=900.0)
    steps = run(keys("2", "1", "1"), estimates=est)
    offer, confirm, done = steps[1], steps[2], steps[3]
    assert offer.then == Ask("acd/offer-tilbagekald", 6000, 1)
    assert facts([offer])[-1] == (
        "ivr_callback_offered", {"queue": "dagpenge", "estimated_wait_seconds": 900.0}
    )  # fmt: skip
    assert confirm.then == Ask("acd/confirm-tilbagekald", 6000, 1)
    assert done.then == Finish("hangup", "callback")
    assert done.plays == (Play("acd/info-tilbagekald-bestilt"),)
    assert facts([done])[-1] == ("ivr_callback_accepted", {"queue": "dagpenge", "task": "callback"})


@pytest.mark.parametrize("answer", [Digits("2"), NoInput()])
def test_call_back_not_confirmed_keeps_the_place_in_the_queue(answer: Input) -> None:
    steps = run([Digits("2"), Digits("1"), answer], estimates=waits(dagpenge=900.0))
    final = steps[-1]
    assert final.then == Finish("queue", "routed", queue="dagpenge")
    assert final.plays == (Play("acd/info-bliver-i-koeen"),)
    kinds = [f.kind for f in final.facts]
    assert kinds[-2:] == [IvrCallbackDeclined, IvrRouted]
    assert final.facts[-1].fields["estimated_wait_seconds"] == 900.0


@pytest.mark.parametrize("answer", [Digits("3"), Digits("*"), NoInput()])
def test_declining_the_offer_keeps_waiting(answer: Input) -> None:
    final = run([Digits("2"), answer], estimates=waits(dagpenge=900.0))[-1]
    assert final.then == Finish("queue", "routed", queue="dagpenge")
    assert IvrCallbackDeclined in [f.kind for f in final.facts]


@pytest.mark.parametrize("ewt", [None, 299.0, 300.0])
def test_no_offer_when_the_wait_is_short_or_unknown(ewt: float | None) -> None:
    estimates = waits(dagpenge=ewt) if ewt is not None else waits()
    final = run(keys("2"), estimates=estimates)[-1]
    assert final.then == Finish("queue", "routed", queue="dagpenge")
    assert IvrCallbackOffered not in [f.kind for f in final.facts]


def test_leaving_a_message() -> None:
    steps = run([Digits("1"), Digits("2")], estimates=waits(kontanthjaelp=1200.0))
    record = steps[-1]
    assert record.plays == (Play("acd/info-indtal-besked"),)
    assert record.then == Record(
        "/var/spool/asterisk/acd-messages/1795362443.12", "wav", 120_000, "#", True
    )
    done = engine.advance(FLOW, record.state, Recorded(40000, "dtmf"), TUESDAY_1030, no_estimates)
    assert done.then == Finish("hangup", "message")
    assert done.plays == (Play("acd/info-besked-gemt"),)
    (fact,) = done.facts
    assert fact.kind is IvrCallbackAccepted
    assert fact.fields == {
        "queue": "kontanthjaelp",
        "task": "message",
        "recording": "/var/spool/asterisk/acd-messages/1795362443.12",
    }


def test_hanging_up_while_recording_still_leaves_the_message() -> None:
    record = run([Digits("1"), Digits("2")], estimates=waits(kontanthjaelp=1200.0))[-1]
    done = engine.advance(FLOW, record.state, Recorded(24000, "hangup"), TUESDAY_1030, no_estimates)
    assert done.then == Finish("none", "message")
    assert [f.kind for f in done.facts] == [IvrCallbackAccepted]
    empty = engine.advance(FLOW, record.state, Recorded(0, "hangup"), TUESDAY_1030, no_estimates)
    assert empty.then == Finish("none", "hangup") and empty.facts == ()


def test_an_empty_message_puts_the_caller_back_in_the_queue() -> None:
    record = run([Digits("1"), Digits("2")], estimates=waits(kontanthjaelp=1200.0))[-1]
    done = engine.advance(FLOW, record.state, Recorded(0, "dtmf"), TUESDAY_1030, no_estimates)
    assert done.then == Finish("queue", "routed", queue="kontanthjaelp")


def test_a_hidden_number_cannot_be_called_back_so_a_message_is_offered() -> None:
    hidden = CallInfo(uniqueid="7.7", has_number=False)
    final = run(keys("1", "1"), estimates=waits(kontanthjaelp=1200.0), call=hidden)[-1]
    assert [p.prompt for p in final.plays] == ["acd/info-skjult-nummer", "acd/info-indtal-besked"]
    assert isinstance(final.then, Record)
    assert final.then.path.endswith("/7.7")


def test_the_engine_is_deterministic_and_leaves_its_inputs_alone() -> None:
    a = run(keys("3", "9", "1"), estimates=waits(sygedagpenge=600.0))
    b = run(keys("3", "9", "1"), estimates=waits(sygedagpenge=600.0))
    assert a == b
    assert a[0].state.attempt == 1  # earlier states were not mutated


def test_menu_events_cover_the_statistics() -> None:
    steps = run([Digits("7"), NoInput(), Digits("2")])
    kinds = [f.kind for s in steps for f in s.facts]
    assert kinds == [IvrMenuEntered, IvrKey, IvrMenuEntered, IvrTimeout, IvrMenuEntered, IvrKey,
                     IvrRouted]  # fmt: skip


def test_forward_fact_shape() -> None:
    step = run(keys("3", "1"), at=datetime(2025, 3, 4, 9, 30, tzinfo=CPH))[-1]
    assert [f.kind for f in step.facts][-1] is IvrForwarded


# ---- survey --------------------------------------------------------------------------


def survey(inputs: list[Input]) -> list[Step[object]]:
    steps: list[Step[object]] = [survey_start(FLOW)]  # type: ignore[list-item]
    for given in inputs:
        steps.append(survey_advance(FLOW, steps[-1].state, given))  # type: ignore[arg-type]
    return steps


def test_survey_asks_three_questions_and_thanks() -> None:
    steps = survey(keys("8", "5", "7"))
    asked = [s.then.prompt for s in steps if isinstance(s.then, Ask)]
    assert asked == ["acd/survey-imoedekommenhed", "acd/survey-ventetid", "acd/survey-tilfredshed"]
    assert all(s.then.timeout_ms == 5000 for s in steps if isinstance(s.then, Ask))
    assert steps[-1].then == Finish("none", "survey_done")
    assert steps[-1].plays == (Play("acd/info-tak-for-svar"),)
    got = [(f.kind, f.fields) for s in steps for f in s.facts]
    assert got == [
        (SurveyStarted, {}),
        (SurveyAnswered, {"question": "friendliness", "value": 8}),
        (SurveyAnswered, {"question": "wait", "value": 5}),
        (SurveyAnswered, {"question": "overall", "value": 7}),
        (SurveyEnded, {"completed": True}),
    ]


def test_survey_invalid_answer_is_asked_once_more() -> None:
    steps = survey([Digits("0"), Digits("9"), Digits("5"), Digits("5")])
    assert steps[1].plays == (Play("acd/info-ugyldigt-svar", interruptible=True),)
    assert steps[1].then == Ask("acd/survey-imoedekommenhed", 5000, 1)
    answered = [f.fields for s in steps for f in s.facts if f.kind is SurveyAnswered]
    assert answered[0] == {"question": "friendliness", "value": 9}
    assert steps[-1].facts[-1].fields == {"completed": True}


def test_survey_second_miss_skips_the_question() -> None:
    steps = survey([Digits("*"), NoInput(), Digits("4"), Digits("6")])
    answered = [f.fields["question"] for s in steps for f in s.facts if f.kind is SurveyAnswered]
    assert answered == ["wait", "overall"]
    assert steps[-1].facts[-1].fields == {"completed": False}


def test_survey_hang_up_keeps_answers_and_is_incomplete() -> None:
    steps = survey(keys("8", "5"))
    assert [(f.kind, f.fields) for f in survey_hung_up(FLOW, steps[-1].state)] == [  # type: ignore[arg-type]
        (SurveyEnded, {"completed": False})
    ]


@pytest.mark.parametrize(
    ("every", "pattern"),
    [(5, [False, False, False, False, True] * 3), (1, [True] * 4), (0, [False] * 6)],
)
def test_every_nth_caller_is_flagged(every: int, pattern: list[bool]) -> None:
    sampler = SurveySampler(every)
    assert [sampler.next() for _ in pattern] == pattern
