"""The satisfaction survey after the agent leaves, and who is asked to take it. Pure.

Three questions (DOMAIN.md: imødekommenhed, ventetid, tilfredshed), each answered 1-9 on
the keypad. A wrong key or no key asks the same question once more; a second miss leaves
that question unanswered and moves on. Every answer is its own event, so a caller who
hangs up after two questions keeps those two answers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.acd.events import SurveyAnswered, SurveyEnded, SurveyStarted
from app.ivr.engine import Ask, Fact, Finish, Input, Play, Step
from app.ivr.model import Flow

ASKS_PER_QUESTION = 2  # the question, and once more after an invalid answer
VALID = "123456789"


@dataclass(frozen=True, slots=True)
class SurveyState:
    index: int = 0  # the question being asked
    asked: int = 1  # times it has been asked
    answers: tuple[tuple[str, int], ...] = ()


def survey_start(flow: Flow) -> Step[SurveyState]:
    state = SurveyState()
    return Step(state, (), _ask(flow, state), (Fact(SurveyStarted),))


def survey_advance(flow: Flow, state: SurveyState, given: Input) -> Step[SurveyState]:
    questions = flow.survey.questions
    question = questions[state.index]
    digits = getattr(given, "digits", "")
    facts: list[Fact] = []
    if len(digits) == 1 and digits in VALID:
        value = int(digits)
        facts.append(Fact(SurveyAnswered, {"question": question.id, "value": value}))
        state = replace(state, answers=(*state.answers, (question.id, value)))
    elif state.asked < ASKS_PER_QUESTION:
        state = replace(state, asked=state.asked + 1)
        plays = (Play(flow.survey.invalid_prompt, interruptible=True),)
        return Step(state, plays, _ask(flow, state), tuple(facts))
    state = replace(state, index=state.index + 1, asked=1)
    if state.index < len(questions):
        return Step(state, (), _ask(flow, state), tuple(facts))
    completed = len(state.answers) == len(questions)
    facts.append(Fact(SurveyEnded, {"completed": completed}))
    plays = (Play(flow.survey.thanks_prompt),)
    return Step(state, plays, Finish("none", "survey_done"), tuple(facts))


def survey_hung_up(flow: Flow, state: SurveyState) -> tuple[Fact, ...]:
    """The caller left mid-survey: the answers given stand; the survey is incomplete."""
    return (Fact(SurveyEnded, {"completed": False}),)


def _ask(flow: Flow, state: SurveyState) -> Ask:
    question = flow.survey.questions[state.index]
    return Ask(question.prompt, flow.survey.timeout_ms)


class SurveySampler:
    """Every ``every``-th caller routed to a queue is flagged for the survey.

    A plain counter (deterministic, exactly 1 in N); it lives in the FastAGI server, so it
    restarts with the process. ``every`` = 0 flags nobody.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.count = 0

    def next(self) -> bool:
        if self.every <= 0:
            return False
        self.count += 1
        return self.count % self.every == 0
