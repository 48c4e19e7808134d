"""The flow model: what ``ivr_flows/<flow>.yaml`` may say (pydantic, frozen, no extras).

A flow is a graph of named nodes:

- ``menu``: asks for one key (``GET DATA acd/menu-*``); each key leads to a node; a wrong
  key or no key replays it (after an optional prompt), at most ``tries`` times, then
  ``fallback`` (a queue, usually);
- ``message``: plays a prompt and goes on to ``next``; a key pressed during it answers
  the next menu (barge-in) when ``interruptible``;
- ``schedule``: goes to the first rule whose weekday and time window hold, else
  ``otherwise`` (e.g. Sygedagpenge 09:00-10:00 straight to the unit's own number);
- ``queue``: the caller joins a skill queue (``ACD_ROUTE=queue``), offered a call-back or
  a message first when the estimated wait is above the threshold;
- ``forward``: the call is dialled out to an external number (``ACD_ROUTE=forward``).

Opening hours, the call-back offer, the survey and the Danish prompt texts are sections
of the same file. Semantic checks across the graph (unknown nodes/queues, unreachable
nodes, loops without exit, missing prompts) live in :mod:`app.ivr.validate`.
"""

from __future__ import annotations

import itertools
import re
from datetime import date
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.acd.calendar import WEEKDAYS, Interval, Schedule, Weekday, parse_interval

NODE_ID = re.compile(r"[a-z][a-z0-9_]{0,40}")
PROMPT_NAME = re.compile(r"acd/[a-z0-9][a-z0-9-]{0,80}")
# '#' ends GET DATA's input and never comes back as a digit: it cannot be a menu choice.
MENU_KEYS = "0123456789*"
NUMBER = re.compile(r"\+?[0-9]{3,20}")

SurveyQuestionId = Literal["friendliness", "wait", "overall"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _prompt(value: str) -> str:
    if not PROMPT_NAME.fullmatch(value):
        raise ValueError(
            f"prompt {value!r} is not a prompt file name: acd/ then a-z, 0-9 and '-' "
            "(Danish letters spelt ae, oe, aa)"
        )
    return value


Prompt = Annotated[str, Field(description="prompt file under the sounds dir, e.g. acd/menu-x")]


class MenuNode(_Model):
    type: Literal["menu"]
    prompt: Prompt
    choices: dict[str, str]
    timeout_ms: int = Field(6000, ge=1000, le=30000)
    tries: int = Field(3, ge=1, le=9)
    invalid_prompt: Prompt | None = None
    timeout_prompt: Prompt | None = None
    fallback: str
    fallback_prompt: Prompt | None = None

    @field_validator("prompt", "invalid_prompt", "timeout_prompt", "fallback_prompt")
    @classmethod
    def _prompts(cls, value: str | None) -> str | None:
        return None if value is None else _prompt(value)

    @field_validator("choices")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("a menu needs at least one choice")
        for key in value:
            if len(key) != 1 or key not in MENU_KEYS:
                raise ValueError(
                    f"choice key {key!r} is not one keypad key 0-9 or * ('#' ends input)"
                )
        return value


class MessageNode(_Model):
    type: Literal["message"]
    prompt: Prompt
    next: str
    interruptible: bool = True

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str) -> str:
        return _prompt(value)


class QueueNode(_Model):
    type: Literal["queue"]
    queue: str
    prompt: Prompt | None = None  # said before the caller joins the queue
    callback_offer: bool = True
    callback_threshold_seconds: float | None = Field(None, ge=0)  # None = flow default

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str | None) -> str | None:
        return None if value is None else _prompt(value)


class ForwardNode(_Model):
    type: Literal["forward"]
    destination: str = Field(min_length=1, max_length=40)
    number: str
    prompt: Prompt | None = None
    rule: str = Field("", max_length=60)

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        value = value.replace(" ", "")
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} is not a phone number (digits, optional leading +)")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str | None) -> str | None:
        return None if value is None else _prompt(value)


class TimeRule(_Model):
    name: str = Field(min_length=1, max_length=60)
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    between: str  # "09:00-10:00", end exclusive
    goto: str

    @field_validator("between")
    @classmethod
    def _between(cls, value: str) -> str:
        parse_interval(value)
        return value

    @cached_property
    def interval(self) -> Interval:
        return parse_interval(self.between)


class ScheduleNode(_Model):
    type: Literal["schedule"]
    rules: tuple[TimeRule, ...]
    otherwise: str

    @field_validator("rules")
    @classmethod
    def _some(cls, value: tuple[TimeRule, ...]) -> tuple[TimeRule, ...]:
        if not value:
            raise ValueError("a schedule needs at least one rule")
        return value


Node = Annotated[
    MenuNode | MessageNode | QueueNode | ForwardNode | ScheduleNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("menu", "message", "queue", "forward", "schedule")


class HoursConfig(_Model):
    weekly: dict[Weekday, tuple[str, ...]]
    public_holidays: bool = True
    closed_dates: dict[date, str] = Field(default_factory=dict)
    closed_prompt: Prompt  # outside the weekly hours
    holiday_prompt: Prompt  # a public holiday
    override_prompt: Prompt  # an extra closed date
    opens_prompt: Prompt  # "we open again" (then the day and the time)
    goodbye_prompt: Prompt | None = None

    @field_validator("weekly", mode="before")
    @classmethod
    def _closed_word(cls, value: object) -> object:
        # "closed" (or an empty list) for a day without phone hours; one string = one span.
        if isinstance(value, dict):
            out: dict[object, object] = {}
            for day, spans in value.items():
                if spans in ("closed", None):
                    out[day] = ()
                elif isinstance(spans, str):
                    out[day] = (spans,)
                else:
                    out[day] = spans
            return out
        return value

    @field_validator("weekly")
    @classmethod
    def _spans(cls, value: dict[Weekday, tuple[str, ...]]) -> dict[Weekday, tuple[str, ...]]:
        for day, spans in value.items():
            intervals = sorted((parse_interval(s) for s in spans), key=lambda i: i.start)
            for a, b in itertools.pairwise(intervals):
                if b.start < a.end:
                    raise ValueError(f"{day}: opening hours overlap")
        missing = [d for d in WEEKDAYS if d not in value]
        if missing:
            raise ValueError(f"every weekday needs hours or 'closed'; missing {missing}")
        return value

    @field_validator(
        "closed_prompt", "holiday_prompt", "override_prompt", "opens_prompt", "goodbye_prompt"
    )
    @classmethod
    def _prompts(cls, value: str | None) -> str | None:
        return None if value is None else _prompt(value)

    @cached_property
    def schedule(self) -> Schedule:
        return Schedule(
            weekly={
                day: tuple(sorted((parse_interval(s) for s in spans), key=lambda i: i.start))
                for day, spans in self.weekly.items()
            },
            public_holidays=self.public_holidays,
            closed_dates=tuple(sorted(self.closed_dates.items())),
        )


class CallbackConfig(_Model):
    threshold_seconds: float = Field(300, ge=0)
    offer_prompt: Prompt  # acd/offer-*: 1 call-back, 2 message, else keep waiting
    offer_timeout_ms: int = Field(6000, ge=1000, le=30000)
    confirm_prompt: Prompt  # acd/confirm-*: 1 yes, 2 no
    booked_prompt: Prompt
    no_number_prompt: Prompt  # caller id hidden: a call-back is impossible, leave a message
    message_prompt: Prompt  # "speak after the tone, end with #"
    message_saved_prompt: Prompt
    declined_prompt: Prompt | None = None
    message_dir: str = "/var/spool/asterisk/acd-messages"
    message_format: Literal["wav", "gsm"] = "wav"
    message_max_seconds: int = Field(120, ge=10, le=600)

    @field_validator(
        "offer_prompt",
        "confirm_prompt",
        "booked_prompt",
        "no_number_prompt",
        "message_prompt",
        "message_saved_prompt",
        "declined_prompt",
    )
    @classmethod
    def _prompts(cls, value: str | None) -> str | None:
        return None if value is None else _prompt(value)

    @field_validator("message_dir")
    @classmethod
    def _dir(cls, value: str) -> str:
        if not re.fullmatch(r"/?[A-Za-z0-9_][A-Za-z0-9_./-]*", value) or ".." in value:
            raise ValueError(f"{value!r} is not a plain directory path")
        return value.rstrip("/")


class SurveyQuestion(_Model):
    id: SurveyQuestionId
    prompt: Prompt

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: str) -> str:
        return _prompt(value)


class SurveyConfig(_Model):
    every: int = Field(5, ge=0, le=1000)  # every Nth caller routed to a queue; 0 = none
    questions: tuple[SurveyQuestion, ...]
    timeout_ms: int = Field(5000, ge=1000, le=30000)
    invalid_prompt: Prompt
    thanks_prompt: Prompt

    @field_validator("questions")
    @classmethod
    def _three(cls, value: tuple[SurveyQuestion, ...]) -> tuple[SurveyQuestion, ...]:
        ids = [q.id for q in value]
        if sorted(ids) != sorted(["friendliness", "wait", "overall"]):
            raise ValueError("the survey asks exactly friendliness, wait and overall, once each")
        return value

    @field_validator("invalid_prompt", "thanks_prompt")
    @classmethod
    def _prompts(cls, value: str) -> str:
        return _prompt(value)


class Flow(_Model):
    name: str
    title: str
    numbers: tuple[str, ...] = Field(min_length=1)
    start: str
    default_queue: str  # where the dialplan sends calls when the service cannot answer
    fallback_prompt: Prompt  # what the dialplan plays then (acd/info-fallback)
    unanswered_prompt: Prompt  # the dialplan, when a queue gives up (max wait, no agents)
    max_inputs: int = Field(30, ge=5, le=200)  # guard: inputs per call before the default
    hours: HoursConfig
    callback: CallbackConfig
    survey: SurveyConfig
    nodes: dict[str, Node]
    prompts: dict[str, str]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NODE_ID.fullmatch(value):
            raise ValueError("flow names are a-z, 0-9 and '_', starting with a letter")
        return value

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number in value:
            if not NUMBER.fullmatch(number):
                raise ValueError(f"{number!r} is not a dialled number")
        return value

    @field_validator("fallback_prompt", "unanswered_prompt")
    @classmethod
    def _prompts(cls, value: str) -> str:
        return _prompt(value)

    @field_validator("nodes")
    @classmethod
    def _node_ids(cls, value: dict[str, Node]) -> dict[str, Node]:
        for node_id in value:
            if not NODE_ID.fullmatch(node_id):
                raise ValueError(f"node id {node_id!r}: use a-z, 0-9 and '_'")
        return value

    @field_validator("prompts")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            _prompt(name)
            if not text.strip():
                raise ValueError(f"prompt {name!r} has no text")
        return value
