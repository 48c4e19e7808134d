"""The dialplans the simulated PBX runs, one coroutine per call (``CallRun``).

Two dialplans:

``ContractDialplan``
    docs/dialplan-contract.md, the production dialplan: ``AGI(agi://<service>/ivr,
    <flow>)``, then ``ACD_ROUTE``: ``queue`` -> ``Queue(<queue>,c,,,<max wait>)`` and the
    survey AGI when ``ACD_SURVEY=1``; ``forward`` -> ``Dial(PJSIP/<number>@trunk,60)``;
    ``hangup`` -> ``Hangup(16)``; AGI failure or no route -> ``acd/info-fallback`` and
    the fallback queue.
``LabDialplan``
    tests/fixtures/ami/lab-config/extensions.conf, where the captures come from:
    82565682 runs a ``Read()`` menu in the dialplan, 82565683 the FastAGI menu that sets
    ``QUEUE``; ``acd-queue`` runs ``Queue(<queue>,t,,,600)``. Used by the fidelity tests.

Priorities and applications are those of the dialplans, so ``Newexten`` noise and the
``Priority`` of every event look like Asterisk's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol
from zoneinfo import ZoneInfo

from app.sim.behaviour import CallerBehaviour, Reply
from app.sim.channels import RING, RINGING, UP, Channel
from app.sim.queue import LeaveInfo
from app.sim.truth import CallTruth

if TYPE_CHECKING:
    from app.sim.pbx import Pbx, QueueConn

Location = tuple[str, str, int]


class Dialplan(Protocol):
    def owns(self, context: str, exten: str) -> bool: ...

    async def execute(self, run: CallRun, loc: Location) -> Location | None: ...


# ------------------------------------------------------------------------ the call run


class CallRun:
    """One call's trip through the dialplan; also the ground-truth bookkeeping."""

    def __init__(
        self,
        pbx: Pbx,
        chan: Channel,
        behaviour: CallerBehaviour,
        truth: CallTruth,
        dialplan: Dialplan,
    ) -> None:
        self.pbx = pbx
        self.chan = chan
        self.behaviour = behaviour
        self.truth = truth
        self.dialplan = dialplan
        chan.call = self
        # what happened, for the outcome
        self.joined: dict[str, float] = {}
        self.queue_status = ""
        self.last_queue: str | None = None
        self.answered_at: float | None = None
        self.talk = 0.0
        self.abandoned_in: str | None = None
        self.leave_wait: float | None = None
        self.recorded = False
        self.offer_choice = ""
        self.closed_prompt = False
        self.forwarded = False
        self.route = ""
        self.ended_in_ivr = False
        self.agi_sessions = 0
        self.on_interrupt: Callable[[], None] | None = None  # set by a running AGI

    # ------------------------------------------------------------ hooks
    def on_queue_join(self, queue: str, now: float) -> None:
        self.joined[queue] = now
        self.last_queue = queue
        self.truth.queues.append(queue)
        self.truth.joined = now

    def on_queue_leave(self, queue: str, info: LeaveInfo, now: float) -> None:
        self.leave_wait = now - self.joined.get(queue, now)

    def on_connect(self, conn: QueueConn, now: float) -> None:
        if self.answered_at is None:
            self.answered_at = now
            self.truth.agent = conn.member.interface
            self.truth.agent_name = conn.member.membername
            self.truth.queue = conn.queue
            self.truth.wait = now - self.joined.get(conn.queue, now)

    def on_agent_complete(self, conn: QueueConn, now: float) -> None:
        self.talk += now - conn.connected
        self.truth.talk = self.talk

    def note_keys(self, prompt: str, digits: str) -> None:
        base = prompt.rsplit("/", 1)[-1]
        if digits and not base.startswith("survey-"):
            # The menu's keys; survey answers are the survey's (truth.survey).
            self.truth.keys.append(digits)
        if base.startswith("offer-") and digits[:1] in ("1", "2"):
            self.offer_choice = "callback" if digits[:1] == "1" else "message"
        if base.startswith("survey-") and digits.isdigit():
            self.truth.survey.append(int(digits))

    def note_prompt(self, prompt: str) -> None:
        if prompt.rsplit("/", 1)[-1].startswith("closed") or prompt == "custom/closed":
            self.closed_prompt = True

    # ------------------------------------------------------------- run
    async def run(self, start: Location) -> None:
        loc: Location | None = start
        try:
            while loc is not None and not self.is_dead():
                self.chan.goto = None
                self.chan.context, self.chan.exten = loc[0], loc[1]
                loc = await self.dialplan.execute(self, loc)
                if self.pending_goto() is not None and not self.is_dead():
                    loc = self.pending_goto()
        finally:
            self.pbx.finalize(self.chan)
            self._settle()

    def _settle(self) -> None:
        t = self.truth
        now = self.pbx.now()
        if t.outcome is not None:
            return
        if self.answered_at is not None:
            t.finish("answered", now)
        elif self.abandoned_in is not None:
            t.queue = self.abandoned_in
            t.wait = self.leave_wait
            t.finish("abandoned", now)
        elif self.forwarded:
            t.finish("forwarded", now)
        elif self.queue_status in ("TIMEOUT", "LEAVEEMPTY"):
            # In the queue and out of it unanswered (the queue gave up, not the caller):
            # "abandoned" as the service defines it, "left the queue unanswered".
            t.queue = self.last_queue
            t.wait = self.leave_wait
            t.finish("abandoned", now, self.queue_status.lower())
        elif self.queue_status in ("JOINEMPTY", "FULL", "UNKNOWN"):
            t.queue = self.last_queue
            t.finish("failed", now, self.queue_status.lower())
        elif self.recorded:
            t.finish("message", now)
        elif self.offer_choice == "callback":
            t.finish("callback", now)
        elif self.closed_prompt:
            t.finish("closed", now)
        elif self.chan.hangup_requested and not self.joined:
            t.finish("ivr_hangup", now)
        else:
            t.finish("failed", now, "no_route" if not self.route else "service_hangup")

    # ---------------------------------------------------- applications
    def step(self, priority: int, app: str, data: str) -> None:
        self.pbx.newexten(self.chan, priority, app, data)

    def gone(self) -> bool:
        return self.chan.dead or self.chan.hangup_requested

    # Methods, not attribute tests: the channel changes while a coroutine awaits, and a
    # type checker would keep an attribute narrowed across the await.
    def pending_goto(self) -> Location | None:
        return self.chan.goto

    def is_dead(self) -> bool:
        return self.chan.dead

    async def playback(self, prompt: str) -> str:
        pbx, chan = self.pbx, self.chan
        if chan.state != UP:
            pbx.answer(chan)
        self.note_prompt(prompt)
        res = await pbx.pause(chan, pbx.config.prompt_seconds(prompt))
        pbx.varset(chan, "PLAYBACKSTATUS", "SUCCESS" if res == "ok" else "FAILED")
        return res

    async def read(self, var: str, prompt: str, max_digits: int, wait: float) -> str:
        """Read(): plays ``prompt`` and collects up to ``max_digits``; "" on timeout."""
        pbx, chan = self.pbx, self.chan
        pbx.varset(chan, "READSTATUS", "ERROR")
        reply = self.behaviour.respond(prompt, wait, max_digits)
        digits, status = await self.collect(prompt, reply, wait, max_digits)
        if status == "hangup":
            pbx.varset(chan, "READSTATUS", "HANGUP")
            return ""
        pbx.varset(chan, var, digits)
        pbx.varset(chan, "READSTATUS", "OK" if digits else "TIMEOUT")
        return digits

    async def collect(
        self, prompt: str, reply: Reply, wait: float, max_digits: int
    ) -> tuple[str, str]:
        """Play ``prompt`` and gather keys per ``reply``: (digits, ok|timeout|hangup)."""
        pbx, chan = self.pbx, self.chan
        length = pbx.config.prompt_seconds(prompt) if prompt else 0.0
        self.note_prompt(prompt)
        if reply.kind == "hangup":
            res = await pbx.pause(chan, max(0.0, reply.after))
            if res == "ok":
                pbx.remote_hangup(chan)
            return "", "hangup"
        if reply.kind == "timeout" or not reply.digits or reply.after >= length + wait:
            res = await pbx.pause(chan, length + wait)
            return "", "timeout" if res == "ok" else res
        res = await pbx.pause(chan, max(0.0, reply.after))
        if res != "ok":
            return "", res
        digits = ""
        keys = reply.digits
        for i, key in enumerate(keys):
            if i:
                res = await pbx.pause(chan, pbx.config.dtmf_gap)
                if res != "ok":
                    return digits, res
            pbx.dtmf(chan, key)
            if key == "#":
                self.note_keys(prompt, digits)
                return digits, "ok"
            digits += key
            if len(digits) >= max_digits:
                break
        self.note_keys(prompt, digits)
        if len(digits) < max_digits:
            res = await pbx.pause(chan, wait)
            return digits, "timeout" if res == "ok" else res
        return digits, "ok"

    async def queue(self, queue: str, options: str, max_wait: int) -> str:
        pbx, chan = self.pbx, self.chan
        self.last_queue = queue
        qc = pbx.queue_app(chan, queue, options, max_wait, self.behaviour)
        status = await qc.done.wait()
        self.queue_status = status
        if status == "HANGUP":
            if chan.goto is None:
                self.abandoned_in = queue
            return status
        if status != "CONNECTED":
            return status
        # Bridged: wait until the bridge ends (either side, transfer, redirect).
        while chan.bridge is not None and not chan.dead and chan.goto is None:
            await pbx.park(chan)
        self.queue_status = "CONTINUE"
        return "CONTINUE"

    async def dial_out(self, number: str, ring_limit: int) -> str:
        """Dial(PJSIP/<number>@trunk,<timeout>): the forward to an external number."""
        pbx, chan = self.pbx, self.chan
        cfg = pbx.config
        out = pbx.new_channel(
            "PJSIP/trunk", "outbound", linkedid=chan.linkedid, context="from-trunk", exten="s"
        )
        out.cid_num, out.cid_name = chan.cid_num, chan.cid_name
        pbx.chan_event(
            "NewCallerid", out, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )
        pbx.dest_event("DialBegin", chan, out, [("DialString", f"{number}@trunk")])
        pbx.set_state(out, RINGING)
        pbx.dest_event("DialState", chan, out, [("DialStatus", "RINGING")])
        self.forwarded = True
        rng = pbx.rng
        answers = rng.random() < cfg.forward_answer_share
        ring = rng.uniform(*cfg.forward_ring_seconds)
        if not answers or ring >= ring_limit:
            res = await pbx.pause(chan, float(ring_limit))
            status = "NOANSWER" if res == "ok" else "CANCEL"
            pbx.dest_event("DialEnd", chan, out, [("DialStatus", status)])
            pbx.destroy(out, 0)
            self.truth.detail = "not_answered"
            pbx.varset(chan, "DIALSTATUS", status)
            return status
        res = await pbx.pause(chan, ring)
        if res != "ok":
            pbx.dest_event("DialEnd", chan, out, [("DialStatus", "CANCEL")])
            pbx.destroy(out, 0)
            return "CANCEL"
        pbx.set_state(out, UP)
        pbx.dest_event("DialEnd", chan, out, [("DialStatus", "ANSWER")])
        bridge = pbx.new_bridge()
        pbx.bridge_enter(bridge, out)
        pbx.bridge_enter(bridge, chan)
        talk = rng.uniform(*cfg.forward_talk_seconds)
        caller_ends = rng.random() < 0.5
        pbx.kernel.call_later(talk, pbx.remote_hangup, chan if caller_ends else out)
        while chan.bridge is not None and not chan.dead:
            await pbx.park(chan)
        pbx.varset(chan, "DIALSTATUS", "ANSWER")
        return "ANSWER"

    async def agi(self, script: str, args: Sequence[str]) -> str:
        from app.sim.agi_client import run_agi

        self.agi_sessions += 1
        return await run_agi(self, script, list(args))


# --------------------------------------------------------------------- helpers


def _weekday(name: str) -> int:
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index(name[:3].lower())


def time_matches(now: float, tz: str, hours: str, days: str) -> bool:
    """GotoIfTime's <times>,<weekdays> test (``*`` or ``HH:MM-HH:MM``, ``mon-fri``)."""
    local = dt.datetime.fromtimestamp(now, ZoneInfo(tz))
    if hours.strip() not in ("", "*"):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", hours.strip())
        if m is None:
            return False
        start = int(m[1]) * 60 + int(m[2])
        end = int(m[3]) * 60 + int(m[4])
        minute = local.hour * 60 + local.minute
        inside = start <= minute <= end if start <= end else (minute >= start or minute <= end)
        if not inside:
            return False
    if days.strip() not in ("", "*"):
        wd = local.weekday()
        ok = False
        for part in days.split("&"):
            if "-" in part:
                a, b = (_weekday(x) for x in part.split("-", 1))
                ok |= a <= wd <= b if a <= b else (wd >= a or wd <= b)
            else:
                ok |= _weekday(part) == wd
        if not ok:
            return False
    return True


async def _hangup_app(run: CallRun, priority: int, cause: int = 16) -> None:
    run.step(priority, "Hangup", str(cause) if cause != 16 else "")
    run.pbx.hangup_by_dialplan(run.chan, cause)


# ------------------------------------------------------------------- contract


class ContractDialplan:
    """docs/dialplan-contract.md (see module doc)."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx

    def owns(self, context: str, exten: str) -> bool:
        if context == "from-trunk":
            return exten in self.pbx.config.numbers
        if context == "acd-transfer":
            return bool(re.fullmatch(r"\+?[0-9]+", exten))
        return context == "acd-queue" and bool(re.fullmatch(r"[a-z].+", exten))

    async def execute(self, run: CallRun, loc: Location) -> Location | None:
        context, exten, _ = loc
        if context == "from-trunk" and exten in self.pbx.config.numbers:
            return await self._inbound(run)
        if context == "acd-queue" and re.fullmatch(r"[a-z].+", exten):
            return await self._queue(run, exten)
        if context == "acd-transfer" and re.fullmatch(r"\+?[0-9]+", exten):
            return await self._transfer_out(run, exten)
        # No such extension: Asterisk hangs the channel up.
        run.pbx.hangup_by_dialplan(run.chan, 16)
        return None

    def _agi_address(self) -> str:
        return self.pbx.globals.get("ACD_AGI_ADDRESS", self.pbx.config.agi_address)

    async def _inbound(self, run: CallRun) -> Location | None:
        pbx, chan = self.pbx, run.chan
        flow = pbx.config.flow
        run.step(1, "NoOp", f'ACD inbound from "{chan.cid_name}" <{chan.cid_num}>')
        run.step(2, "AGI", f"agi://{self._agi_address()}/ivr,{flow}")
        status = await run.agi("ivr", [flow])
        pbx.varset(chan, "AGISTATUS", status)
        run.truth.agi_status = status
        if run.pending_goto() is not None:
            return run.pending_goto()
        if run.gone():
            run.ended_in_ivr = True
            return None
        route = chan.vars.get("ACD_ROUTE", "")
        run.route = route
        run.truth.survey_flag = chan.vars.get("ACD_SURVEY", "") == "1"
        run.step(3, "GotoIf", f'$["{status}" != "SUCCESS" | "{route}" = ""]?fallback')
        if status != "SUCCESS" or route not in ("queue", "forward", "hangup"):
            run.step(9, "Playback", "acd/info-fallback")
            res = await run.playback("acd/info-fallback")
            if res != "ok":
                return run.pending_goto() if res == "goto" else None
            fallback = pbx.globals.get("ACD_FALLBACK_QUEUE", pbx.config.fallback_queue)
            run.step(10, "Goto", f"acd-queue,{fallback},1")
            return ("acd-queue", fallback, 1)
        if route == "queue":
            queue = chan.vars.get("ACD_QUEUE", "")
            run.step(4, "GotoIf", f'$["{route}" = "queue"]?acd-queue,{queue},1')
            return ("acd-queue", queue, 1)
        if route == "forward":
            number = chan.vars.get("ACD_FORWARD", "")
            run.step(6, "Dial", f"PJSIP/{number}@trunk,60")
            await run.dial_out(number, 60)
            if run.pending_goto() is not None:
                return run.pending_goto()
            if not run.is_dead():
                await _hangup_app(run, 7)
            return None
        await _hangup_app(run, 5, 16)
        return None

    async def _transfer_out(self, run: CallRun, number: str) -> Location | None:
        """``[acd-transfer]``: Dial(PJSIP/${EXTEN}@trunk,60), Hangup()."""
        run.step(1, "Dial", f"PJSIP/{number}@trunk,60")
        await run.dial_out(number, 60)
        if run.pending_goto() is not None:
            return run.pending_goto()
        if not run.is_dead():
            await _hangup_app(run, 2)
        return None

    async def _queue(self, run: CallRun, queue: str) -> Location | None:
        pbx, chan = self.pbx, run.chan
        spec = pbx.engine.config.get(queue)
        max_wait = spec.max_wait if spec is not None else 0
        run.step(1, "NoOp", f"Queue {queue} for {chan.cid_num}")
        run.step(2, "Queue", f"{queue},c,,,{max_wait or ''}")
        status = await run.queue(queue, "c", max_wait)
        pbx.varset(chan, "QUEUESTATUS", status)
        if run.pending_goto() is not None:
            return run.pending_goto()
        if run.gone():
            return None
        survey = chan.vars.get("ACD_SURVEY", "")
        run.step(3, "GotoIf", f'$["{survey}" = "1"]?survey')
        if survey == "1":
            run.step(5, "AGI", f"agi://{self._agi_address()}/survey,{pbx.config.flow}")
            status = await run.agi("survey", [pbx.config.flow])
            pbx.varset(chan, "AGISTATUS", status)
            if run.pending_goto() is not None:
                return run.pending_goto()
            if run.gone():
                return None
            await _hangup_app(run, 6)
            return None
        await _hangup_app(run, 4)
        return None


# ------------------------------------------------------------------------ lab


class LabDialplan:
    """tests/fixtures/ami/lab-config/extensions.conf (see module doc)."""

    MENU: ClassVar[dict[str, str]] = {
        "1": "dagpenge",
        "2": "kontanthjaelp",
        "3": "sygedagpenge",
        "4": "virksomhed",
    }

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        pbx.globals.setdefault("OPEN_HOURS", "00:00-23:59")
        pbx.globals.setdefault("OPEN_DAYS", "mon-sun")
        pbx.globals.setdefault("DEFAULT_QUEUE", "dagpenge")

    def owns(self, context: str, exten: str) -> bool:
        return (context == "from-trunk" and exten in ("82565682", "82565683")) or (
            context == "acd-queue" and bool(re.fullmatch(r"[a-z].+", exten))
        )

    async def execute(self, run: CallRun, loc: Location) -> Location | None:
        context, exten, _ = loc
        if context == "from-trunk" and exten == "82565682":
            return await self._menu(run)
        if context == "from-trunk" and exten == "82565683":
            return await self._fastagi(run)
        if context == "acd-menu" and exten in self.MENU:
            run.step(1, "Goto", f"acd-queue,{self.MENU[exten]},1")
            return ("acd-queue", self.MENU[exten], 1)
        if context == "acd-queue" and re.fullmatch(r"[a-z].+", exten):
            return await self._queue(run, exten)
        run.pbx.hangup_by_dialplan(run.chan, 16)
        return None

    async def _menu(self, run: CallRun) -> Location | None:
        pbx, chan = self.pbx, run.chan
        g = pbx.globals
        run.step(1, "NoOp", f'ACD inbound from "{chan.cid_name}" <{chan.cid_num}>')
        run.step(2, "Set", "CDR(userfield)=acd-main")
        hours, days = g.get("OPEN_HOURS", "*"), g.get("OPEN_DAYS", "*")
        run.step(3, "GotoIfTime", f"{hours},{days},*,*?open")
        if not time_matches(pbx.now(), pbx.config.timezone, hours, days):
            run.step(4, "Answer", "")
            pbx.answer(chan)
            run.step(5, "Playback", "custom/closed")
            if await run.playback("custom/closed") != "ok":
                return None
            await _hangup_app(run, 6, 16)
            return None
        run.step(7, "Answer", "")
        pbx.answer(chan)
        run.step(8, "Playback", "custom/welcome")
        if await run.playback("custom/welcome") != "ok":
            return run.pending_goto()
        run.step(9, "Set", "TRIES=0")
        pbx.varset(chan, "TRIES", "0")
        tries = 0
        while True:
            run.step(10, "Read", "DIGIT,custom/menu,1,,1,6")
            digit = await run.read("DIGIT", "custom/menu", 1, 6.0)
            if run.gone() or run.pending_goto() is not None:
                return run.pending_goto()
            ok = digit in self.MENU
            run.step(11, "GotoIf", f"{1 if ok else 0}?acd-menu,{digit},1")
            if ok:
                return ("acd-menu", digit, 1)
            tries += 1
            run.step(12, "Set", f"TRIES=$[{tries - 1} + 1]")
            pbx.varset(chan, "TRIES", str(tries))
            run.step(13, "GotoIf", f"{1 if tries < 2 else 0}?retry")
            if tries >= 2:
                run.step(14, "Playback", "custom/default")
                if await run.playback("custom/default") != "ok":
                    return run.pending_goto()
                default = g.get("DEFAULT_QUEUE", "dagpenge")
                run.step(15, "Goto", f"acd-queue,{default},1")
                return ("acd-queue", default, 1)
            run.step(16, "Playback", "custom/invalid")
            if await run.playback("custom/invalid") != "ok":
                return run.pending_goto()
            run.step(17, "Goto", "menu")

    async def _fastagi(self, run: CallRun) -> Location | None:
        pbx, chan = self.pbx, run.chan
        run.step(1, "NoOp", f'ACD FastAGI entry from "{chan.cid_name}" <{chan.cid_num}>')
        run.step(2, "AGI", f"agi://{pbx.config.agi_address}/ivr,lab,{chan.exten}")
        status = await run.agi("ivr", ["lab", chan.exten])
        pbx.varset(chan, "AGISTATUS", status)
        if run.pending_goto() is not None:
            return run.pending_goto()
        if run.gone():
            return None
        queue = chan.vars.get("QUEUE", "")
        run.route = "queue" if queue else ""
        run.step(3, "NoOp", f"AGISTATUS={status} QUEUE={queue}")
        run.step(4, "GotoIf", f"{1 if queue else 0}?acd-queue,{queue},1")
        if queue:
            return ("acd-queue", queue, 1)
        await _hangup_app(run, 5)
        return None

    async def _queue(self, run: CallRun, queue: str) -> Location | None:
        chan = run.chan
        run.step(1, "NoOp", f"Queue {queue} for {chan.cid_num}")
        run.step(2, "Set", "CHANNEL(musicclass)=default")
        run.step(3, "Queue", f"{queue},t,,,600")
        status = await run.queue(queue, "t", 600)
        if run.pending_goto() is not None:
            return run.pending_goto()
        if run.gone():
            return None
        run.step(4, "NoOp", f"QUEUESTATUS={status}")
        await _hangup_app(run, 5)
        return None


# --------------------------------------------------------------- originate


async def originate_call(
    pbx: Pbx,
    run: CallRun,
    device: str,
    number: str,
    ring_limit: float,
    target: Location | None,
    application: tuple[str, str] | None,
    answer_after: float | None,
) -> str:
    """An Originate: ring ``device`` (``number``), then run the dialplan or application.

    Returns the OriginateResponse reason: ``4`` answered, ``3`` no answer, ``1`` failure.
    """
    chan = run.chan
    pbx.set_state(chan, RINGING)
    if answer_after is None or answer_after >= ring_limit:
        res = await pbx.pause(chan, ring_limit)
        if not run.is_dead():
            pbx.destroy(chan, 0 if res == "ok" else 16)
        run.truth.finish("failed", pbx.now(), "originate_no_answer")
        return "3"
    res = await pbx.pause(chan, answer_after)
    if res != "ok":
        return "1"
    pbx.answer(chan)
    if application is not None:
        app, data = application
        run.step(1, app, data)
        if app.lower() == "playback":
            for prompt in data.split("&"):
                if await run.playback(prompt) != "ok":
                    break
        elif app.lower() == "wait":
            await pbx.pause(chan, float(data or 0))
        elif app.lower() == "queue":
            parts = data.split(",")
            timeout_q = int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else 0
            await run.queue(parts[0], parts[1] if len(parts) > 1 else "", timeout_q)
        if not run.is_dead():
            pbx.hangup_by_dialplan(chan, 16)
        run._settle()
        return "4"
    if target is not None:
        pbx.kernel.spawn(run.run(target), name=f"originate-{chan.name}")
    return "4"


def new_inbound(
    pbx: Pbx,
    behaviour: CallerBehaviour,
    number: str,
    dialplan: Dialplan,
) -> CallRun:
    """A call arriving on the trunk for ``number`` (Newchannel, state Ring)."""
    chan = pbx.new_channel(
        "PJSIP/trunk",
        "caller",
        state=RING,
        cid_num=behaviour.number,
        cid_name=behaviour.name,
        context="from-trunk",
        exten=number,
        dnid=number,
    )
    truth = pbx.truth.add(
        CallTruth(
            linkedid=chan.linkedid,
            caller=behaviour.number,
            arrived=pbx.now(),
            target_queue=behaviour.target,
        )
    )
    return CallRun(pbx, chan, behaviour, truth, dialplan)


async def run_inbound(
    pbx: Pbx, behaviour: CallerBehaviour, number: str, dialplan: Dialplan
) -> CallTruth:
    run = new_inbound(pbx, behaviour, number, dialplan)
    await run.run(("from-trunk", number, 1))
    return run.truth


def outbound_channel(channel: str) -> tuple[str, str]:
    """Originate's Channel (``PJSIP/<number>@trunk``, ``PJSIP/agent1``): device, number."""
    tech, _, rest = channel.partition("/")
    if "@" in rest:
        number, _, endpoint = rest.partition("@")
        return f"{tech}/{endpoint}", number
    return channel, rest


__all__ = [
    "CallRun",
    "ContractDialplan",
    "Dialplan",
    "LabDialplan",
    "Location",
    "new_inbound",
    "originate_call",
    "outbound_channel",
    "run_inbound",
    "time_matches",
]
