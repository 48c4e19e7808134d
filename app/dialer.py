"""The call-back dialer: places call-backs through AMI Originate when agents are free, and
keeps the call-back gauges (open, overdue) and today's follow-up gauges (registrations,
survey answers) for Prometheus.

Every ``ACD_DIALER_INTERVAL`` seconds it looks at the live state (``app.acd.dialer`` decides
who to call, purely); only when some agent is free does it read the open tasks. A chosen
task is claimed in the database (``open`` -> ``dialling``, one attempt more) before the
Originate is sent, so a crash cannot dial it twice unnoticed; the citizen's number is
unsealed only into the AMI action and never logged. The Originate is asynchronous
(``Async: true``, the manager session is not blocked while it rings) and answered by
Asterisk's ``OriginateResponse`` (Reason 4: answered, the citizen is put in the queue's
``acd-queue`` extension and gets the free agent; 3/5/8: no answer, busy, congestion).

A dialer that takes over (a new owner of the PBX, a restart) finds the tasks its
predecessor left ``dialling``, whose ``OriginateResponse`` went to a session that is gone.
It asks the PBX which calls carry their ``ACD_CALLBACK_ID`` (``Status`` with
``Variables``) before it reopens any: a call-back already answered is recorded as reached
(the citizen is in the queue: calling again would call them twice); one still ringing is
watched until it is answered or ends; only one the PBX no longer has is opened again.

Switched off with ``ACD_DIALER_ENABLED=false`` (the default): the gauges are still kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.dialer import Dial, free_agents, plan_dials, waiting_counts
from app.acd.kpi import day_bounds
from app.acd.state import CallCentre
from app.ami.parser import list_items
from app.components import Health, cancel_tasks
from app.metrics import Metrics
from app.privacy import CallerPrivacy
from app.settings import Settings
from app.store import callbacks as store
from app.store.followup import QUESTIONS, follow_up

if TYPE_CHECKING:
    from app.ami.link import AmiLink

log = logging.getLogger(__name__)

# OriginateResponse Reason (Asterisk's AST_CONTROL_* of the outgoing channel)
REASONS = {"4": "answered", "3": "no_answer", "1": "no_answer", "5": "busy", "8": "congestion"}
GAUGE_EVERY = 15.0  # seconds between two refreshes of the call-back gauges
HOLD_AFTER_ANSWER = 5.0  # seconds an answered call-back keeps its agent counted
CALLBACK_VARIABLE = "ACD_CALLBACK_ID"  # on the Originate's channel: which task it dials
UP = "6"  # ChannelState of an answered channel


@dataclass(frozen=True, slots=True)
class OnPbx:
    """A call-back's call as the PBX has it now."""

    answered: bool
    linkedid: str


async def callbacks_on_pbx(link: AmiLink) -> dict[int, OnPbx]:
    """The PBX's channels that carry a task's ``ACD_CALLBACK_ID`` (one ``Status``)."""
    reply = await link.action({"Action": "Status", "Variables": CALLBACK_VARIABLE}, as_list=True)
    found: dict[int, OnPbx] = {}
    for frame in list_items(reply):
        if frame.name != "Status":
            continue
        for variable in frame.getall("Variable"):
            name, _, value = variable.partition("=")
            if name.strip() == CALLBACK_VARIABLE and value.strip().isdigit():
                seen = OnPbx(
                    frame.get("ChannelState") == UP,
                    frame.get("Linkedid") or frame.get("Uniqueid"),
                )
                task = int(value)
                # Several channels of one task (a Local pair): answered if any is.
                if task not in found or seen.answered:
                    found[task] = seen
    return found


@dataclass
class _InFlight:
    dial: Dial
    task: asyncio.Task[None]
    release_at: float | None = None  # loop time; None while ringing


class CallbackDialer:
    """Component (see module doc)."""

    name = "dialer"
    required = False

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        centre: CallCentre,
        metrics: Metrics,
        privacy: CallerPrivacy,
        link: AmiLink | None,
        queue_names: Callable[[], Iterable[str]],
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.centre = centre
        self.metrics = metrics
        self.privacy = privacy
        self.link = link
        self.queue_names = queue_names  # the running catalogue's (a reload changes them)
        self.enabled = settings.dialer_enabled and link is not None
        self.interval = settings.dialer_interval
        self.ring_seconds = settings.dialer_ring_seconds
        self.max_attempts = settings.dialer_max_attempts
        self.retry = timedelta(minutes=settings.dialer_retry_minutes)
        self.channel = settings.dialer_channel
        self.caller_id = settings.dialer_caller_id
        self.clock = clock  # the PBX's: call-backs are due on its days
        self.tz = settings.tz
        pbxs = settings.centre_pbxs
        # With several PBXs, this PBX's call-backs (store.DialScope).
        self.scope = (
            store.DialScope(
                settings.pbx_id,
                others=pbxs[1:],
                primary=settings.pbx_id == settings.primary_pbx,
            )
            if len(pbxs) > 1
            else store.EVERY_TASK
        )
        self.in_flight: dict[int, _InFlight] = {}
        self.placed = 0
        self._task: asyncio.Task[None] | None = None
        self._gauges_at = 0.0
        self._released = False
        # Tasks a predecessor left ringing on the PBX: watched until answered or gone
        # (task id -> loop time to give up and reopen it).
        self.watched: dict[int, float] = {}
        # Several processes for one PBX (app/ha): may this one act on the PBX now (its
        # lease held by its own clock), and the lease's (pbx, epoch) its claims carry
        # (the database refuses a deposed owner's claim).
        self.may_act: Callable[[], bool] | None = None
        self.fence: Callable[[], tuple[str, int]] | None = None

    async def _fence(self, session: AsyncSession) -> None:
        if self.fence is not None:
            pbx, epoch = self.fence()
            await session.execute(
                text("SELECT acd_fence(:pbx, :epoch)"), {"pbx": pbx, "epoch": epoch}
            )

    # ---- component -------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acd-dialer")

    async def stop(self) -> None:
        await cancel_tasks(self._task, *(f.task for f in self.in_flight.values()))

    async def check(self) -> Health:
        return Health(
            True,
            "dialling" if self.enabled else "disabled",
            {"in_flight": len(self.in_flight), "placed": self.placed},
        )

    # ---- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() >= self._gauges_at:
                    await self.refresh_gauges()
                    self._gauges_at = loop.time() + GAUGE_EVERY
                if self.enabled:
                    await self.round()
            except asyncio.CancelledError:
                raise
            except (SQLAlchemyError, OSError) as exc:
                log.warning("call-back dialer: database unreachable (%s)", type(exc).__name__)
            except Exception:
                log.exception("call-back dialer round failed")
            await asyncio.sleep(self.interval)

    async def refresh_gauges(self) -> None:
        async with self.sessions() as session:
            live, late = await store.counts_by_queue(session, self.clock())
        names = set(live) | set(late)
        names |= set(self.queue_names())
        m = self.metrics
        for queue in names:
            m.callbacks_open.labels(queue).set(live.get(queue, 0))
            m.callbacks_overdue.labels(queue).set(late.get(queue, 0))
        await self.refresh_follow_up(names)

    async def refresh_follow_up(self, names: set[str]) -> None:
        """Today's registrations and survey answers by queue (the PBX's day, as every
        "today" figure), for first-contact resolution and satisfaction in Grafana."""
        start, end = day_bounds(self.clock().astimezone(self.tz).date(), self.tz)
        async with self.sessions() as session:
            today = await follow_up(session, start, end)
        m = self.metrics
        for queue in names | set(today.registrations):
            registered, resolved = today.registrations.get(queue, (0, 0))
            m.today_registrations.labels(queue, "true").set(resolved)
            m.today_registrations.labels(queue, "false").set(registered - resolved)
        for queue in names | {q for q, _ in today.surveys}:
            for question in QUESTIONS:
                answers, total = today.surveys.get((queue, question), (0, 0))
                m.today_survey_answers.labels(queue, question).set(answers)
                m.today_survey_score.labels(queue, question).set(total)

    async def round(self) -> list[Dial]:
        """One look: place what the rules allow now; the dials placed."""
        link = self.link
        if link is None or link.state != "logged_in":
            return []
        if self.may_act is not None and not self.may_act():
            return []
        if not self._released:
            # Left dialling by a stop (or by the owner before a takeover).
            async with self.sessions() as session:
                left = await store.left_dialling(session, self.scope)
            if left:
                self.watched.update(dict.fromkeys(left, 0.0))
            self._released = True
        if self.watched:
            await self.follow_left(link)
        now_loop = asyncio.get_running_loop().time()
        for task_id, f in list(self.in_flight.items()):
            if f.release_at is not None and now_loop >= f.release_at:
                del self.in_flight[task_id]
        self.metrics.dialer_in_flight.set(
            sum(1 for f in self.in_flight.values() if f.release_at is None)
        )
        centre = self.centre
        free = free_agents(centre)
        reserved = {f.dial.interface for f in self.in_flight.values()}
        if not any(i not in reserved for i in free):
            return []
        queues = {q for i, qs in free.items() if i not in reserved for q in qs}
        now = self.clock()
        async with self.sessions() as session:
            tasks = await store.dial_candidates(
                session, queues, now, self.max_attempts, self.retry, scope=self.scope
            )
        sealed = {t.candidate.task_id: t.number_sealed for t in tasks}
        plan = plan_dials(
            [t.candidate for t in tasks],
            free,
            waiting_counts(centre),
            reserved,
            {f.dial.caller_hash for f in self.in_flight.values()},
        )
        placed = []
        for dial in plan:
            if self.may_act is not None and not self.may_act():
                break
            async with self.sessions.begin() as session:
                await self._fence(session)
                if not await store.claim(session, dial.task_id, now):
                    continue
            task = asyncio.create_task(
                self._originate(dial, sealed[dial.task_id]), name=f"callback-{dial.task_id}"
            )
            self.in_flight[dial.task_id] = _InFlight(dial, task)
            placed.append(dial)
            self.placed += 1
        self.metrics.dialer_in_flight.set(
            sum(1 for f in self.in_flight.values() if f.release_at is None)
        )
        return placed

    async def follow_left(self, link: AmiLink) -> None:
        """The tasks left dialling: answered on the PBX -> reached; still ringing -> wait
        (at most a ring's length and a margin); gone -> open again, the attempt counted,
        so not dialled again before the retry interval."""
        try:
            on_pbx = await callbacks_on_pbx(link)
        except Exception as exc:  # the PBX cannot say: wait, the next round asks again
            log.warning("call-back dialer: the PBX's channels unknown (%s)", type(exc).__name__)
            return
        now_loop = asyncio.get_running_loop().time()
        reopen: list[int] = []
        for task_id, give_up in list(self.watched.items()):
            seen = on_pbx.get(task_id)
            if seen is not None and seen.answered:
                del self.watched[task_id]
                await self._record(task_id, "answered", seen.linkedid)
                log.info("call-back %d: answered while its dialer changed: reached", task_id)
            elif seen is not None and give_up == 0.0:
                self.watched[task_id] = now_loop + self.ring_seconds + 15
            elif seen is None or now_loop >= give_up:
                del self.watched[task_id]
                reopen.append(task_id)
        if reopen:
            async with self.sessions.begin() as session:
                await self._fence(session)
                n = await store.release_interrupted(session, self.scope, reopen)
            log.warning("call-back dialer: %d tasks left dialling by a stop reopened", n)

    # ---- one call-back -----------------------------------------------------------------

    async def _record(self, task_id: int, outcome: str, linkedid: str | None) -> None:
        """An attempt's end, in the task (a reached one closes the number's other tasks)."""
        try:
            async with self.sessions.begin() as session:
                await self._fence(session)
                duplicates = await store.dialled(
                    session,
                    task_id,
                    reached=outcome == "answered",
                    outcome=outcome,
                    call_linkedid=linkedid,
                    now=self.clock(),
                    max_attempts=self.max_attempts,
                )
            if duplicates:
                log.info("call-back %d: %d duplicate tasks closed", task_id, duplicates)
        except (SQLAlchemyError, OSError):
            log.exception("call-back %d: could not record the attempt", task_id)

    def _action(self, dial: Dial, number: str) -> dict[str, str]:
        return {
            "Action": "Originate",
            "Channel": self.channel.format(number=number),
            "Context": "acd-queue",
            "Exten": dial.queue,
            "Priority": "1",
            "CallerID": f'"Jobcenter" <{self.caller_id}>',
            "Timeout": str(self.ring_seconds * 1000),
            "Async": "true",
            "Variable": f"ACD_CALLBACK_ID={dial.task_id}",
        }

    async def _originate(self, dial: Dial, number_sealed: str) -> None:
        outcome, linkedid = "error", None
        try:
            link = self.link
            if link is None:
                raise ConnectionError("no PBX")
            action = self._action(dial, self.privacy.unseal(number_sealed))
            # as_list=None: panoramisk keeps an async Originate open until the
            # OriginateResponse event with the same ActionID (or the deadline).
            reply: Any = await link.action(action, within=self.ring_seconds + 15)
            outcome, linkedid = _read_reply(reply)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:  # never the action itself: it holds the number
            log.warning("call-back %d: Originate failed (%s)", dial.task_id, type(exc).__name__)
        reached = outcome == "answered"
        self.metrics.dialer_originations.labels(outcome).inc()
        log.info("call-back %d (%s): %s", dial.task_id, dial.queue, outcome)
        await self._record(dial.task_id, outcome, linkedid)
        flight = self.in_flight.get(dial.task_id)
        if flight is not None:
            loop = asyncio.get_running_loop()
            flight.release_at = loop.time() + (HOLD_AFTER_ANSWER if reached else 0.0)


def _read_reply(reply: Any) -> tuple[str, str | None]:
    """(outcome, linkedid of the call-back call) from Originate's reply."""
    messages = reply if isinstance(reply, list) else [reply]
    first = messages[0] if messages else None
    if first is None or first.get("Response") != "Success":
        return "failed", None
    final = next((m for m in messages if m.get("Event") == "OriginateResponse"), None)
    if final is None:
        return "failed", None
    reason = REASONS.get(str(final.get("Reason", "")), "failed")
    if final.get("Response") != "Success" and reason == "answered":
        reason = "failed"
    uniqueid = final.get("Uniqueid") or None
    return reason, uniqueid


# --------------------------------------------------------------------------------------
# Click-to-dial: an agent calls a citizen back from its own phone
# --------------------------------------------------------------------------------------

AGENT_RING_SECONDS = 20


async def dial_for_agent(
    link: Any,
    *,
    interface: str,
    number: str,
    task_id: int,
    caller_id: str,
    ring_seconds: int = AGENT_RING_SECONDS,
) -> tuple[str, str | None]:
    """Ring the agent's phone; when it answers, the PBX dials the citizen
    (``acd-transfer,<number>``, the same context external transfers use). Returns the
    agent leg's outcome (``answered``, ``no_answer``, ...) and its call's linkedid. The
    number goes only into the AMI action; the agent's phone shows the task, not it."""
    action = {
        "Action": "Originate",
        "Channel": interface,
        "Context": "acd-transfer",
        "Exten": number,
        "Priority": "1",
        "CallerID": f'"Tilbageringning {task_id}" <{caller_id}>',
        "Timeout": str(ring_seconds * 1000),
        "Async": "true",
        "Variable": f"ACD_CALLBACK_ID={task_id}",
    }
    try:
        reply: Any = await link.action(action, within=ring_seconds + 10)
    except TimeoutError:
        return "timeout", None
    return _read_reply(reply)
