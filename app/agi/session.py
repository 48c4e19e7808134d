"""One FastAGI session: read the environment, run the flow engine (or the survey) over
the channel, record every step as a domain event, hand the route to the dialplan.

The engine decides; this module only carries its decisions out (``STREAM FILE``,
``GET DATA``, ``RECORD FILE``, ``SET VARIABLE``) and turns its facts into events with the
call's identity (pbx, linkedid, uniqueid, a stable key per step) and the injected clock.
Whatever happens (hang-up, timeout, garbage, a bug) the session ends with one
``IvrEnded`` and returns a short result word for the ``acd_agi_sessions`` metric.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.acd.estimates import EstimateSource
from app.acd.events import (
    DomainEvent,
    IvrCallbackAccepted,
    IvrCallbackDeclined,
    IvrCallbackOffered,
    IvrEnded,
    IvrEvent,
    IvrKey,
    IvrRouted,
    IvrStarted,
    IvrSurveyFlagged,
    IvrTimeout,
    SurveyAnswered,
)
from app.acd.records import fit_id
from app.agi import protocol as cmd
from app.agi.channel import AgiChannel, AgiError, ChannelHungUp, CommandFailed
from app.agi.protocol import Environment, ProtocolError, Reply, dtmf_from_result
from app.config.registry import ConfigRegistry
from app.ivr import engine
from app.ivr.engine import (
    ANY_KEY,
    Ask,
    CallInfo,
    CallState,
    Digits,
    Fact,
    Finish,
    Input,
    NoInput,
    Record,
    Recorded,
    Step,
)
from app.ivr.model import Flow
from app.ivr.survey import SurveySampler, SurveyState, survey_advance, survey_hung_up, survey_start
from app.logbudget import LogBudget
from app.metrics import Metrics
from app.privacy import CallerPrivacy, canonical_number

log = logging.getLogger(__name__)

SCRIPTS = ("ivr", "survey")
SHARED_COUNT_TIMEOUT = 0.5  # seconds for the shared survey count before counting here
# Asterisk's ids: up to 150 characters (AST_MAX_UNIQUEID; a long ``systemname`` makes
# them long), fitted to the log's 64 (``fit_id``) as the AMI normaliser fits them.
_UNIQUEID = re.compile(r"[0-9A-Za-z._-]{1,150}")
_GET_DATA_RESULT = re.compile(r"[0-9*#]*")


@dataclass
class SessionDeps:
    """What every session needs; shared by all sessions of one server."""

    pbx: str
    tz: ZoneInfo
    config: ConfigRegistry  # the running flows: a session keeps the one it starts with
    emit: Callable[[DomainEvent], None]
    estimates: EstimateSource
    privacy: CallerPrivacy
    metrics: Metrics
    clock: Callable[[], datetime]
    samplers: dict[str, SurveySampler] = field(default_factory=dict)
    # The every-n-th count shared by every replica (app/ha/relay.py SharedCounter): the
    # flow's name -> its count after this caller. None: this process's own count.
    counter: Callable[[str], Awaitable[int]] | None = None
    # A flood of bad connections must not flood the log (app/logbudget.py).
    warnings: LogBudget = field(default_factory=lambda: LogBudget(log, "FastAGI"))

    def sampler(self, flow: Flow) -> SurveySampler:
        sampler = self.samplers.get(flow.name)
        if sampler is None or sampler.every != flow.survey.every:
            sampler = self.samplers[flow.name] = SurveySampler(flow.survey.every)
        return sampler

    async def sample(self, flow: Flow) -> bool:
        """Is this caller routed to a queue the survey's every-n-th?"""
        every = flow.survey.every
        if every <= 0:
            return False
        if self.counter is not None:
            try:
                n = await asyncio.wait_for(self.counter(flow.name), SHARED_COUNT_TIMEOUT)
            except Exception as exc:  # Redis away: counted here, the menu goes on
                log.warning("survey sampling: shared count unavailable (%s)", exc)
            else:
                return n % every == 0
        return self.sampler(flow).next()


class Recorder:
    """Stamps events with the call's identity and a stable key per step."""

    def __init__(self, deps: SessionDeps, script: str, uniqueid: str, linkedid: str) -> None:
        self.deps = deps
        self.script = script
        self.uniqueid = fit_id(uniqueid, "agi.uniqueid")
        self.linkedid = fit_id(linkedid, "agi.linkedid")
        self.seq = 0

    def emit(self, kind: type[IvrEvent], **fields: Any) -> IvrEvent:
        self.seq += 1
        event = kind(
            at=self.deps.clock(),
            pbx=self.deps.pbx,
            key=fit_id(f"agi:{self.uniqueid}:{self.script}:{self.seq}"),
            linkedid=self.linkedid,
            uniqueid=self.uniqueid,
            **fields,
        )
        self.deps.emit(event)
        return event


async def run_session(channel: AgiChannel, deps: SessionDeps) -> str:
    """Run one connection to its end; returns the result word for metrics.

    Errors before the caller is known (garbage, silence, a half environment) close the
    socket without events: the dialplan sees no ``ACD_ROUTE`` and uses its fallback.
    """
    try:
        env = await channel.read_environment()
    except ProtocolError as exc:
        deps.warnings.warning("protocol_error", "FastAGI: not an AGI client (%s); closing", exc)
        return "protocol_error"
    except AgiError as exc:
        if not channel.evicted:  # an eviction is logged where it is done
            deps.warnings.warning(
                exc.reason, "FastAGI: environment not received (%s); closing", exc.reason
            )
        return "incomplete" if exc.reason == "closed" else "timeout"
    uniqueid = env.get("uniqueid")
    script = env.get("network_script")
    if not _UNIQUEID.fullmatch(uniqueid):
        deps.warnings.warning(
            "protocol_error", "FastAGI: environment without a usable agi_uniqueid; closing"
        )
        return "protocol_error"
    if script not in SCRIPTS:
        deps.warnings.warning(
            "unknown_script", "FastAGI %s: unknown script; the dialplan falls back", uniqueid
        )
        return "unknown_script"
    flow_name = env.get("arg_1")
    session = _Session(channel, deps, env, script, uniqueid)
    return await session.run(flow_name)


class _Session:
    def __init__(
        self,
        channel: AgiChannel,
        deps: SessionDeps,
        env: Environment,
        script: str,
        uniqueid: str,
    ) -> None:
        self.ch = channel
        self.deps = deps
        self.env = env
        self.script = script
        self.uniqueid = uniqueid
        self.rec: Recorder | None = None
        self.node = ""  # where in the flow the caller is (for IvrEnded.menu)
        self.started = 0.0

    def local_now(self) -> datetime:
        return self.deps.clock().astimezone(self.deps.tz)

    async def run(self, flow_name: str) -> str:
        try:
            linkedid = await self._linkedid()
        except ChannelHungUp:
            return "hangup"
        except ProtocolError as exc:
            self.deps.warnings.warning(
                "protocol_error", "FastAGI %s: protocol error (%s)", self.uniqueid, exc
            )
            return "protocol_error"
        except AgiError as exc:
            return exc.reason if exc.reason == "timeout" else "error"
        self.rec = Recorder(self.deps, self.script, self.uniqueid, linkedid)
        number = self.env.get("callerid")
        self.rec.emit(
            IvrStarted,
            flow=flow_name[:64],
            script=self.script,
            caller=self.deps.privacy.caller(number),
            dialled=(self.env.get("dnid") or self.env.get("extension"))[:32],
            channel=self.env.get("channel")[:80],
        )
        self.started = time.monotonic()
        flow = self.deps.config.current.flow(flow_name)
        if flow is None:
            log.error("FastAGI %s: no flow named %r is loaded", self.uniqueid, flow_name[:64])
            return self._end("error")
        try:
            if self.script == "survey":
                reason = await self._survey(flow)
            else:
                reason = await self._ivr(flow, number)
        except ChannelHungUp as exc:
            reason = "hangup" if exc.confirmed else "error"
        except ProtocolError as exc:
            self.deps.warnings.warning(
                "protocol_error", "FastAGI %s: protocol error (%s)", self.uniqueid, exc
            )
            reason = "error"
        except AgiError as exc:
            reason = "timeout" if exc.reason == "timeout" else "error"
        except asyncio.CancelledError:
            self._end("stopped")  # the server is stopping: the log still sees the end
            raise
        except Exception:
            log.exception("FastAGI %s: session failed; the dialplan falls back", self.uniqueid)
            reason = "error"
        return self._end(reason)

    def _end(self, reason: str) -> str:
        assert self.rec is not None
        if self.script == "ivr":
            self.deps.metrics.ivr_outcomes.labels(reason).inc()
            if reason == "hangup":
                self.deps.metrics.ivr_hangups.labels(self.node or "-").inc()
        self.rec.emit(IvrEnded, reason=reason, menu=self.node)
        return reason

    async def _linkedid(self) -> str:
        try:
            reply = await self.ch.execute(cmd.get_full_variable("${CHANNEL(linkedid)}"))
        except CommandFailed:
            return self.uniqueid
        value = (reply.data or "") if reply.ok and reply.result == "1" else ""
        return value if _UNIQUEID.fullmatch(value) else self.uniqueid

    # ---- the menu -------------------------------------------------------------------

    async def _ivr(self, flow: Flow, number: str) -> str:
        presentation = self.env.get("callingpres")
        hidden = presentation.isdigit() and int(presentation) & 0x60 == 0x20
        has_number = bool(canonical_number(number)) and not hidden
        # A message's file is named by the call and a random part: nobody who knows (or
        # guesses) a call's id finds its recording (docs/privacy.md, voice messages).
        call = CallInfo(
            uniqueid=self.uniqueid,
            has_number=has_number,
            message_name=f"{self.uniqueid}-{secrets.token_hex(8)}",
        )
        await self.ch.execute(cmd.answer())
        t0 = time.perf_counter()
        step = engine.start(flow, call, self.local_now(), self.deps.estimates)
        while True:
            self.node = step.state.node
            self._facts(step.facts)
            try:
                given = await self._carry_out(step, t0)
            except ChannelHungUp as exc:
                # A hang-up while a message is being recorded leaves the message.
                if step.state.phase == "record" and exc.confirmed and exc.reply is not None:
                    given = Recorded(exc.reply.endpos or 0, "hangup")
                else:
                    self._facts(engine.hung_up(flow, step.state))
                    raise
            if given is None:
                assert isinstance(step.then, Finish)
                await self._finish(flow, step.state, step.then, number)
                return step.then.reason
            t0 = time.perf_counter()
            step = engine.advance(flow, step.state, given, self.local_now(), self.deps.estimates)

    async def _carry_out(self, step: Step[Any], t0: float) -> Input | None:
        """Play the step's prompts and wait for its ``then``; None for a Finish."""
        first = True
        for play in step.plays:
            reply = await self._send(
                cmd.stream_file(play.prompt, ANY_KEY if play.interruptible else ""),
                t0 if first else None,
            )
            first = False
            if play.interruptible:
                key = dtmf_from_result(reply.result)
                if key is not None:
                    return Digits(key)  # barge-in: the key answers the step's question
        then = step.then
        if isinstance(then, Ask):
            reply = await self._send(
                cmd.get_data(then.prompt, then.timeout_ms, then.max_digits), t0 if first else None
            )
            return _get_data_input(reply)
        if isinstance(then, Record):
            reply = await self._send(
                cmd.record_file(then.path, then.fmt, then.escape, then.max_ms, beep=then.beep),
                t0 if first else None,
            )
            return Recorded(reply.endpos or 0, "dtmf" if reply.data == "dtmf" else "timeout")
        return None

    async def _send(self, command: cmd.Command, t0: float | None) -> Reply:
        if t0 is not None:
            # Reply received -> engine -> next command sent: the service's own latency.
            self.deps.metrics.agi_step_seconds.observe(time.perf_counter() - t0)
        return await self.ch.execute(command)

    async def _finish(self, flow: Flow, state: CallState, then: Finish, number: str) -> None:
        if then.route == "none":
            return
        survey = False
        if then.route == "queue":
            survey = await self.deps.sample(flow)
            if survey:
                assert self.rec is not None
                self.rec.emit(IvrSurveyFlagged)
        values = {
            "ACD_ROUTE": then.route,
            "ACD_QUEUE": then.queue if then.route == "queue" else "",
            "ACD_FORWARD": then.number if then.route == "forward" else "",
            "ACD_SURVEY": "1" if survey else "0",
        }
        for name, value in values.items():
            await self.ch.execute(cmd.set_variable(name, value))

    def _facts(self, facts: tuple[Fact, ...]) -> None:
        assert self.rec is not None
        m = self.deps.metrics
        for fact in facts:
            fields = dict(fact.fields)
            if fact.kind is IvrCallbackAccepted:
                number = self.env.get("callerid")
                fields["caller"] = self.deps.privacy.caller(number)
                if fields.get("task") == "callback" and canonical_number(number):
                    fields["number_sealed"] = self.deps.privacy.seal(canonical_number(number))
            event = self.rec.emit(fact.kind, **fields)
            # Metrics from the same facts (labels from the flow, never caller data).
            if isinstance(event, IvrKey):
                m.ivr_keys.labels(event.menu, event.digit).inc()
                if not event.valid:
                    m.ivr_invalid.labels(event.menu).inc()
            elif isinstance(event, IvrTimeout):
                m.ivr_timeouts.labels(event.menu).inc()
            elif isinstance(event, IvrRouted):
                m.ivr_time_to_queue.labels(event.queue).observe(time.monotonic() - self.started)
            elif isinstance(event, IvrCallbackOffered):
                m.ivr_callback_offers.labels(event.queue, "offered").inc()
            elif isinstance(event, IvrCallbackAccepted):
                m.ivr_callback_offers.labels(event.queue, event.task).inc()
            elif isinstance(event, IvrCallbackDeclined):
                m.ivr_callback_offers.labels(event.queue, "declined").inc()
            elif isinstance(event, SurveyAnswered):
                m.survey_answers.labels(event.question, str(event.value)).inc()

    # ---- the survey -----------------------------------------------------------------

    async def _survey(self, flow: Flow) -> str:
        self.node = "survey"
        await self.ch.execute(cmd.answer())
        t0 = time.perf_counter()
        step: Step[SurveyState] = survey_start(flow)
        while True:
            self._facts(step.facts)
            try:
                given = await self._carry_out(step, t0)
            except ChannelHungUp:
                self._facts(survey_hung_up(flow, step.state))
                raise
            if given is None:
                assert isinstance(step.then, Finish)
                return step.then.reason
            t0 = time.perf_counter()
            step = survey_advance(flow, step.state, given)


def _get_data_input(reply: Reply) -> Input:
    """``200 result=<digits>`` or ``200 result= (timeout)``."""
    if not _GET_DATA_RESULT.fullmatch(reply.result):
        raise ProtocolError(f"GET DATA result is not keys ({len(reply.result)} characters)")
    if not reply.result:
        return NoInput()
    return Digits(reply.result)
