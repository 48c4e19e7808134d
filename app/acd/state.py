"""The call, agent and queue state machine: pure, fed events and a time.

One ``CallCentre`` per PBX follows
- every call, keyed by Asterisk's Linkedid (all channels of one call share it: caller
  leg, agent legs, transfer legs), from offered through the menu, queues, ringing agents,
  talk and transfers to its end and outcome;
- every queue member (logged in, paused with reason, device status) and every agent
  (available, ringing, on a call, in wrap-up).

It never awaits, never reads a clock and never logs to a socket: ``apply(event)`` moves
the state, ``tick(now)`` lets time pass (wrap-up ends, stale calls), ``drain()`` hands
over what changed as records for storage. Transitions live here and nowhere else: the
event-applying core and its table of handlers (``_HANDLERS``, the ``_on_*`` functions)
stay together, as h11 keeps its one state table. What the machine knows is
``app/acd/model.py``; the records made of it, ``app/acd/recording.py``; the PBX's own view
after a reconnect and how it is taken, ``app/acd/resync.py``.

How Asterisk orders a queue call (tests/fixtures/ami/README.md, point 5):
QueueCallerJoin -> AgentCalled -> [AgentRingNoAnswer -> AgentCalled ...] ->
QueueCallerLeave -> AgentConnect -> AgentComplete. An abandon is QueueCallerAbandon then
QueueCallerLeave. After a Redirect the first queue's AgentComplete only comes when the
caller finally hangs up, and it can come after the last Hangup (capture 06), so an ended
call is kept for a grace period to take late events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from app.acd import events as ev
from app.acd.model import (
    DEFAULT_WRAPUP,
    Agent,
    Call,
    Drained,
    Member,
    Visit,
    default_agent_id,
    in_wrapup,
    outcome_of,
    seconds_between,
)
from app.acd.presence import DEVICE_UNAVAILABLE, AgentStateName, state_of
from app.acd.queues import QueueCatalogue
from app.acd.recording import call_record, survey_record, visit_record
from app.acd.records import (
    AgentStateRecord,
    CallbackRecord,
    EventRecord,
    GapRecord,
    Record,
)

_new_tuple = tuple.__new__


class CallCentre:
    """The authoritative live state of one PBX."""

    def __init__(
        self,
        pbx: str,
        catalogue: QueueCatalogue | Callable[[], QueueCatalogue | None] | None = None,
        *,
        agent_of: Callable[[str], str] = default_agent_id,
        due_at: Callable[[datetime], datetime] | None = None,
        grace: timedelta = timedelta(seconds=60),
        stale_after: timedelta = timedelta(hours=12),
    ) -> None:
        self.pbx = pbx
        # The queues (wrap-up times): a function reading the configuration registry, so a
        # reload reaches the running state machine; a fixed catalogue in tools and tests.
        self._catalogue = catalogue if callable(catalogue) else (lambda: catalogue)
        self.agent_of = agent_of
        self._due_at = due_at or (lambda at: at + timedelta(days=2))
        self.grace = grace
        self.stale_after = stale_after
        self.calls: dict[str, Call] = {}  # live and recently ended, by linkedid
        self._channel_call: dict[str, str] = {}  # uniqueid -> linkedid
        self.members: dict[tuple[str, str], Member] = {}  # (queue, interface)
        # The same members by interface and by queue (each in the order first seen), so
        # that an agent's or a queue's members are not a scan of every membership: with
        # thousands of agents that scan ran several times per call event. Changed only
        # through _add_member/_pop_member.
        self._by_interface: dict[str, dict[str, Member]] = {}
        self._by_queue: dict[str, dict[str, Member]] = {}
        self.agents: dict[str, Agent] = {}  # interface
        # Visits that were waiting when opened, by queue and (linkedid, seq): who waits
        # where is asked for every caller the menu routes and every board tick, and a
        # scan of every call is too slow with thousands up. Entries that stopped waiting
        # are dropped when next read (a visit never waits again once answered or left).
        self._queued: dict[str, dict[tuple[str, int], tuple[Call, Visit]]] = {}
        self.now: datetime | None = None
        self._dirty_calls: set[str] = set()
        self._dirty_surveys: set[str] = set()
        self._records: list[Record] = []
        self._ended: list[Call] = []
        self._decided: list[Visit] = []
        self._talked: list[Visit] = []
        self._answered: list[Call] = []
        self._gap_from: datetime | None = None
        self._gap_reason = "ami link down"
        # Link sessions: events stream in while the resync's actions are in flight, so a
        # call or member heard of since the link came back is alive whatever the (older)
        # snapshot says; only what was last heard of before the loss is in doubt. A new
        # session starts when the link is lost and when it is back (``link_up``); while it
        # is down (``_linked`` false) nothing marks a call heard of. Only the PBX's own
        # events (AMI) ever do: the menu's (FastAGI, relayed from a standby) and the API's
        # say nothing of what the PBX did, and one applied while the resync's actions are
        # in flight would otherwise hide from it a call whose channels hung up unseen.
        self._link = 0
        self._linked = True
        self._from_pbx = True  # the event being applied is the PBX's (see _touch)
        # From a loss (or a restart) until the resync: a call first heard of now may have
        # begun unseen (``Call.in_gap``).
        self._doubt = False
        # The channels of each open call at the login (``link_up``): one of them missing
        # from the resync's view hung up unseen, even on a call heard of since the login.
        self._at_login: dict[str, frozenset[str]] = {}

    @property
    def catalogue(self) -> QueueCatalogue | None:
        return self._catalogue()

    # ---- public API --------------------------------------------------------------

    def apply(self, event: ev.DomainEvent, received_at: datetime | None = None) -> None:
        """Take one event. Its record for the event log is emitted too."""
        self.now = event.at if self.now is None else max(self.now, event.at)
        raw = event.raw
        # EventRecord's fields in order, made as the tuple it is (its generated __new__ is
        # a Python function taking keywords: a fifth of the cost of logging an event).
        self._records.append(
            _new_tuple(
                EventRecord,
                (
                    event.pbx,
                    event.key,
                    event.at,
                    received_at or event.at,
                    event.linkedid or None,
                    event.uniqueid or None,
                    event.SOURCE,
                    event.KIND,
                    event.data(),
                    raw if raw is None or type(raw) is dict else dict(raw),
                ),
            )
        )
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            if event.SOURCE == "ami":
                handler(self, event)
            else:
                self._from_pbx = False
                try:
                    handler(self, event)
                finally:
                    self._from_pbx = True

    def tick(self, now: datetime) -> None:
        """Let time pass: wrap-ups end, ended calls leave memory, stale calls close."""
        self.now = now if self.now is None else max(self.now, now)
        for agent in self.agents.values():
            if agent.wrapup_until is not None and agent.wrapup_until <= now:
                until = agent.wrapup_until
                agent.wrapup_until = None
                self._agent_state(agent, until, source_key=f"wrapup-end:{until.timestamp()}")
        for linkedid, call in list(self.calls.items()):
            if call.ended_at is not None:
                if now - call.ended_at >= self.grace:
                    self._forget(linkedid)
            elif call.last_at is not None and now - call.last_at >= self.stale_after:
                # Nothing heard of this call for longer than any call lasts: its Hangup
                # was lost. Closed where it was last heard of, flagged.
                call.data_gap = True
                for v in call.visits:
                    if v.outcome is None or v.talking:
                        v.data_gap = True
                self._end_call(call, call.last_at, cause=None)
                self._forget(linkedid)

    def drain(self) -> Drained:
        for linkedid in list(self._dirty_calls | self._dirty_surveys):
            call = self.calls.get(linkedid)
            if call is not None:
                self._emit_call(call)
        self._dirty_calls.clear()
        self._dirty_surveys.clear()
        out = Drained(self._records, self._ended, self._decided, self._talked, self._answered)
        self._records = []
        self._ended = []
        self._decided = []
        self._talked = []
        self._answered = []
        return out

    def _decide(self, visit: Visit, outcome: str) -> None:
        """Set a visit's outcome once; later events refine details, not the outcome."""
        if visit.outcome is None:
            visit.outcome = outcome
            self._decided.append(visit)
            if outcome == "answered":
                call = self.calls.get(visit.linkedid)
                if call is not None and call.answered_visit() is visit:
                    self._answered.append(call)

    def _talk_ended(self, visit: Visit, at: datetime) -> None:
        if visit.talk_end_at is None:
            visit.talk_end_at = at
            self._talked.append(visit)

    # ---- link gaps and resync ----------------------------------------------------

    def link_lost(self, at: datetime, reason: str = "ami link down") -> None:
        """The AMI link went down at ``at``: what follows until resync is a gap. Every
        call up now may miss a part (``in_gap``) until the resync looks at it."""
        self._link += 1
        self._linked = False
        self._doubt = True
        for call in self.calls.values():
            if call.ended_at is None:
                call.in_gap = True
        if self._gap_from is None:
            self._gap_from, self._gap_reason = at, reason
            self._records.append(GapRecord(self.pbx, at, None, 0, reason))

    def link_up(self) -> None:
        """The AMI link is back (logged in, before the resync's actions): what is heard
        of from now on is newer than the snapshot the resync will get."""
        if not self._linked:
            self._link += 1
            self._linked = True
            self._at_login = {
                lid: frozenset(c.channels) for lid, c in self.calls.items() if c.ended_at is None
            }

    @property
    def linked(self) -> bool:
        return self._linked

    def restore(
        self,
        events: Iterable[ev.DomainEvent],
        down_since: datetime | None,
        open_gap: datetime | None = None,
    ) -> int:
        """Calls that were up when the previous process stopped, rebuilt from their logged
        events (in the log's order) before the AMI link starts. Returns calls restored.

        Everything the replay produces is in the log already, so it is drained and
        dropped: call ``drain()`` (flush) before, or pending records are lost with it.
        The time the service was not watching is a gap, closed by the next ``resync``:
        from ``open_gap`` (the gap the previous process opened when it stopped) or, after
        a crash with calls up, from ``down_since`` (the log's last event). That resync
        closes the restored calls the PBX no longer has, as ``data_gap``, and continues
        the others with their keys, visits and visit numbering.
        """
        before = set(self.calls)
        for event in events:
            self.apply(event, event.at)
        self.drain()
        restored = [c for lid, c in self.calls.items() if lid not in before and c.ended_at is None]
        if open_gap is not None:
            self.link_lost(open_gap, "service restart")
        elif restored:
            last = max((c.last_at or c.started_at) for c in restored)
            self.link_lost(down_since or last, "service restart")
        # Whatever the log held, the PBX went on while no process watched: a call heard
        # of before the first resync may have begun unseen.
        self._doubt = True
        return len(restored)

    def waiting(self, queue: str) -> list[tuple[Call, Visit]]:
        """Callers waiting in ``queue`` now, in line order (joined first, then linkedid)."""
        group = self._queued.get(queue)
        if not group:
            return []
        out: list[tuple[Call, Visit]] = []
        stale: list[tuple[str, int]] = []
        for key, (c, v) in group.items():
            if v.waiting and c.ended_at is None and self.calls.get(c.linkedid) is c:
                out.append((c, v))
            else:
                stale.append(key)
        for key in stale:
            del group[key]
        out.sort(key=lambda cv: (cv[1].entered_at, cv[0].linkedid))
        return out

    def queues_waited_in(self) -> list[str]:
        """Queues that may have callers waiting (a superset; ``waiting`` says exactly)."""
        return [q for q, group in self._queued.items() if group]

    def _open_visit(self, call: Call, visit: Visit) -> None:
        call.visits.append(visit)
        if visit.waiting:
            self._queued.setdefault(visit.queue, {})[(call.linkedid, visit.seq)] = (call, visit)

    def members_of(self, queue: str) -> list[Member]:
        return list(self._by_queue.get(queue, {}).values())

    def memberships(self, interface: str) -> list[Member]:
        """An interface's members, one per queue."""
        return list(self._by_interface.get(interface, {}).values())

    def _add_member(self, member: Member) -> None:
        self.members[(member.queue, member.interface)] = member
        self._by_interface.setdefault(member.interface, {})[member.queue] = member
        self._by_queue.setdefault(member.queue, {})[member.interface] = member

    def _pop_member(self, key: tuple[str, str]) -> Member | None:
        member = self.members.pop(key, None)
        if member is not None:
            queue, interface = key
            for index, outer, inner in (
                (self._by_interface, interface, queue),
                (self._by_queue, queue, interface),
            ):
                group = index.get(outer)
                if group is not None:
                    group.pop(inner, None)
                    if not group:
                        del index[outer]
        return member

    def member_state(self, member: Member) -> AgentStateName:
        """The state of an agent as seen from one of its queues (app/acd/presence.py):
        the agent's own facts, with this membership's pause."""
        agent = self.agents.get(member.interface)
        if agent is None:
            return "paused" if member.paused else "available"
        return state_of(
            logged_in=True,
            on_call=agent.on_call is not None,
            ringing=bool(agent.ringing),
            paused=member.paused,
            wrapup=in_wrapup(agent, self.now),
            unreachable=agent.device_status in DEVICE_UNAVAILABLE,
        )

    # ---- internals: calls -----------------------------------------------------------

    def _call(self, linkedid: str, at: datetime) -> Call:
        call = self.calls.get(linkedid)
        if call is None:
            # First heard of since the link came back, by whatever source: begun after
            # the resync's view was taken, so newer than it (a menu event can overtake
            # the call's first AMI event).
            call = Call(
                pbx=self.pbx,
                linkedid=linkedid,
                started_at=at,
                last_at=at,
                in_gap=self._doubt,
                link=self._link if self._linked else 0,
            )
            self.calls[linkedid] = call
            self._dirty_calls.add(linkedid)
        return call

    def _call_of(self, event: ev.DomainEvent) -> Call | None:
        linkedid = event.linkedid or self._channel_call.get(event.uniqueid, "")
        if not linkedid:
            return None
        return self._call(linkedid, event.at)

    def _touch(self, call: Call, at: datetime) -> None:
        call.last_at = at if call.last_at is None else max(call.last_at, at)
        if self._linked and self._from_pbx:
            call.link = self._link
        self._dirty_calls.add(call.linkedid)

    def _emit_call(self, call: Call) -> None:
        """Records for a changed call: its row, its visits, its survey."""
        if call.linkedid in self._dirty_calls:
            self._dirty_calls.discard(call.linkedid)
            if call.ended_at is not None:
                # Recomputed on every change: a late event (the IVR's verdict racing the
                # Hangup, an AgentComplete after the last Hangup) still counts.
                call.outcome = outcome_of(call)
            self._records.append(call_record(call))
            self._records.extend(visit_record(call, v) for v in call.visits)
        if call.linkedid in self._dirty_surveys:
            self._dirty_surveys.discard(call.linkedid)
            if call.survey_started is not None:
                self._records.append(survey_record(call))

    def _forget(self, linkedid: str) -> None:
        call = self.calls.pop(linkedid, None)
        if call is None:
            return
        self._emit_call(call)
        for uid in call.known:
            if self._channel_call.get(uid) == linkedid:
                del self._channel_call[uid]
        # Out of the waiting index too: it is pruned when read, but without a reader (no
        # board running: tools, tests, a replay) it would keep every call that ever
        # waited. The pure core stays bounded on its own.
        for visit in call.visits:
            group = self._queued.get(visit.queue)
            if group is not None:
                group.pop((linkedid, visit.seq), None)
                if not group:
                    del self._queued[visit.queue]

    def _end_call(self, call: Call, at: datetime, cause: int | None) -> None:
        if call.ended_at is None:
            call.ended_at = at
            if cause is not None:
                call.hangup_cause = cause
            if call.in_gap and _gap_shows(call):
                # Part of this call went by unseen, and it shows in how it ends: its
                # record may be wrong, and says so.
                call.data_gap = True
                for v in call.visits:
                    if v.outcome is None or v.talking:
                        v.data_gap = True
            for v in call.visits:
                if v.waiting:
                    # Still in the queue when everything hung up: an abandon.
                    v.left_at = at
                    self._decide(v, "abandoned")
                    self._stop_ringing(call, v, at)
                elif v.talking:
                    self._talk_ended(v, at)
                    self._agent_call_ended(v, at, call)
                elif v.answered_at is None:
                    # Left the queue without an answer and nothing said why (no
                    # QUEUESTATUS): the caller did not get through.
                    self._decide(v, "abandoned")
            call.channels.clear()
            self._ended.append(call)
        call.outcome = outcome_of(call)
        self._touch(call, at)

    def _agent(self, interface: str, name: str = "") -> Agent:
        agent = self.agents.get(interface)
        if agent is None:
            agent = Agent(interface=interface, agent_id=self.agent_of(interface), name=name)
            self.agents[interface] = agent
        elif name and not agent.name:
            agent.name = name
        return agent

    def _logged_in(self, interface: str) -> bool:
        return bool(self._by_interface.get(interface))

    def _agent_state(
        self, agent: Agent, at: datetime, source_key: str, queue: str | None = None
    ) -> None:
        """Recompute an agent's state (app/acd/presence.py); record it when it changed."""
        state = state_of(
            logged_in=self._logged_in(agent.interface),
            on_call=agent.on_call is not None,
            ringing=bool(agent.ringing),
            paused=self._all_paused(agent.interface),
            wrapup=in_wrapup(agent, at),
            unreachable=agent.device_status in DEVICE_UNAVAILABLE,
        )
        reason = self._pause_reason(agent.interface) if state == "paused" else None
        if state != agent.state or reason != agent.reason:
            agent.state = state
            agent.since = at
            agent.reason = reason
            self._records.append(
                AgentStateRecord(
                    pbx=self.pbx,
                    event_key=f"{source_key}:{agent.interface}",
                    at=at,
                    agent_id=agent.agent_id,
                    interface=agent.interface,
                    queue=queue if state in ("ringing", "on_call", "wrapup") else None,
                    state=state,
                    reason=reason,
                )
            )

    def _pause_reason(self, interface: str) -> str | None:
        reasons = sorted({m.paused_reason for m in self.memberships(interface) if m.paused} - {""})
        return ", ".join(reasons) or None

    def _all_paused(self, interface: str) -> bool:
        mine = self.memberships(interface)
        return bool(mine) and all(m.paused for m in mine)

    def _stop_ringing(self, call: Call, visit: Visit, at: datetime, keep: str = "") -> None:
        for interface in list(visit.ringing):
            if interface == keep:
                continue
            visit.ringing.pop(interface, None)
            agent = self.agents.get(interface)
            if agent is not None:
                agent.ringing.discard(call.linkedid)
                self._agent_state(agent, at, f"ring-end:{call.linkedid}:{visit.seq}")

    def _agent_call_ended(self, visit: Visit, at: datetime, call: Call) -> None:
        """The agent of ``visit`` is off the call: wrap-up starts."""
        if visit.agent_interface is None:
            return
        agent = self.agents.get(visit.agent_interface)
        if agent is None or agent.on_call != call.linkedid:
            return
        agent.on_call = None
        agent.call_queue = None
        wrapup = self._wrapup_seconds(visit.queue)
        agent.wrapup_until = at + timedelta(seconds=wrapup) if wrapup > 0 else None
        self._agent_state(agent, at, f"talk-end:{call.linkedid}:{visit.seq}", visit.queue)

    def _wrapup_seconds(self, queue: str) -> int:
        catalogue = self.catalogue
        if catalogue is not None:
            q = catalogue.get(queue)
            if q is not None:
                return q.wrapup_seconds
        return DEFAULT_WRAPUP

    def _member_update(self, e: ev.MemberEvent, at: datetime, record: bool) -> Member:
        key = (e.queue, e.interface)
        member = self.members.get(key)
        agent = self._agent(e.interface, e.member_name)
        agent.device_status = e.status or agent.device_status
        if member is None:
            member = Member(
                queue=e.queue,
                interface=e.interface,
                name=e.member_name,
                membership=e.membership or "dynamic",
                penalty=e.penalty,
                since=at,
            )  # not paused yet: a first sight that is paused records the pause below
            self._add_member(member)
            if record:
                self._records.append(
                    AgentStateRecord(
                        self.pbx,
                        f"{e.key}:login:{e.queue}",
                        at,
                        agent.agent_id,
                        e.interface,
                        e.queue,
                        "logged_in",
                        None,
                    )
                )
        pause_changed = member.paused != e.paused or (
            e.paused and member.paused_reason != e.paused_reason
        )
        member.link = self._link
        member.name = e.member_name or member.name
        member.penalty = e.penalty
        member.membership = e.membership or member.membership
        if pause_changed:
            member.paused = e.paused
            member.paused_reason = e.paused_reason if e.paused else ""
            member.since = at
            if record:
                self._records.append(
                    AgentStateRecord(
                        self.pbx,
                        f"{e.key}:pause:{e.queue}",
                        at,
                        agent.agent_id,
                        e.interface,
                        e.queue,
                        "paused" if e.paused else "unpaused",
                        e.paused_reason or None if e.paused else None,
                    )
                )
        self._agent_state(agent, at, e.key)
        return member


def _gap_shows(call: Call) -> bool:
    """A call that lived through a gap no resync compared (its events came again before
    the resync's answers), at its end: could what went by unseen make its record wrong?
    Not when every part of it was closed by events heard since (a talk ended by its
    AgentComplete, a wait by its abandon or connect); yes when it began unseen, when its
    end must guess how a wait or a talk ended, or when the menu sent it to a queue whose
    join went by unseen."""
    if not call.start_seen:
        return True
    if any(v.outcome is None or v.talking for v in call.visits):
        return True
    return call.ivr_route == "queue" and not call.visits


# --------------------------------------------------------------------------------------
# Transitions: one function per event type
# --------------------------------------------------------------------------------------


def _on_channel_created(cc: CallCentre, e: ev.ChannelCreated) -> None:
    call = cc._call(e.linkedid or e.uniqueid, e.at)
    call.channels[e.uniqueid] = e.channel
    call.known.add(e.uniqueid)
    cc._channel_call[e.uniqueid] = call.linkedid
    if e.uniqueid == call.linkedid or not call.caller_uniqueid:
        # The first channel of a call is the caller's leg: its start is seen.
        if not call.start_seen:
            call.start_seen = True
            call.in_gap = False
            call.started_at = e.at if call.caller_uniqueid else min(call.started_at, e.at)
        if not call.caller_uniqueid:
            call.caller_uniqueid = e.uniqueid
            call.started_at = min(call.started_at, e.at)
        if not call.caller_hash and e.caller.hash:
            call.caller_hash, call.caller_display = e.caller.hash, e.caller.display
        if not call.dialled and e.exten and e.exten != "s":
            call.dialled = e.exten
    cc._touch(call, e.at)


def _on_caller_id(cc: CallCentre, e: ev.CallerIdChanged) -> None:
    call = cc._call_of(e)
    if call is not None and e.uniqueid == call.caller_uniqueid and e.caller.hash:
        call.caller_hash, call.caller_display = e.caller.hash, e.caller.display
        cc._touch(call, e.at)


def _on_dtmf(cc: CallCentre, e: ev.DtmfDigit) -> None:
    # Menu keys: digits the caller sends before reaching a queue. SIP INFO gives only
    # DTMFEnd, RFC 4733 gives Begin and End: count the End.
    if not e.end or not e.received:
        return
    call = cc._call_of(e)
    if call is None or e.uniqueid != call.caller_uniqueid or call.visits:
        return
    call.dtmf_keys.append(e.digit)
    cc._touch(call, e.at)


def _on_varset(cc: CallCentre, e: ev.VariableSet) -> None:
    call = cc._call_of(e)
    if call is None:
        return
    if e.variable == "QUEUESTATUS":
        call.queue_status = e.value
        visit = call.visit()
        outcome = {"TIMEOUT": "timeout", "LEAVEEMPTY": "empty", "LEAVEUNAVAIL": "empty"}
        if visit is not None and visit.left_at is not None and e.value in outcome:
            cc._decide(visit, outcome[e.value])
    cc._touch(call, e.at)


def _on_queue_join(cc: CallCentre, e: ev.QueueCallerJoined) -> None:
    call = cc._call_of(e)
    if call is None:
        return
    if not call.caller_uniqueid:
        call.caller_uniqueid = e.uniqueid
    if not call.caller_hash and e.caller.hash:
        call.caller_hash, call.caller_display = e.caller.hash, e.caller.display
    current = call.visit()
    if current is not None and current.talking:
        # Joining another queue while talking to an agent: moved on (a Redirect gives no
        # AgentComplete now; capture 09b). The talk with that agent ends here.
        cc._talk_ended(current, e.at)
        call.transferred_to = call.transferred_to or e.queue
        cc._agent_call_ended(current, e.at, call)
    elif current is not None and current.waiting:
        current.left_at = e.at
        cc._decide(current, "transferred")
        cc._stop_ringing(call, current, e.at)
    cc._open_visit(
        call,
        Visit(
            seq=len(call.visits) + 1,
            queue=e.queue,
            entered_at=e.at,
            position=e.position,
            # What the menu expected when it sent the caller here (for EWT accuracy).
            estimated_wait=call.ivr_estimate if not call.visits else None,
            linkedid=call.linkedid,
        ),
    )
    cc._touch(call, e.at)


def _gap_visit(cc: CallCentre, call: Call, queue: str, entered_at: datetime) -> Visit:
    """A visit whose QueueCallerJoin went by in a gap, made from a later event."""
    visit = Visit(
        seq=len(call.visits) + 1,
        queue=queue,
        entered_at=entered_at,
        position=None,
        data_gap=True,
        linkedid=call.linkedid,
        guessed_entry=True,
    )
    call.data_gap = True
    cc._open_visit(call, visit)
    return visit


def _on_queue_abandon(cc: CallCentre, e: ev.QueueCallerAbandoned) -> None:
    call = cc._call_of(e)
    visit = call.visit(e.queue) if call is not None else None
    if call is not None and visit is None and call.in_gap:
        visit = _gap_visit(cc, call, e.queue, e.at - timedelta(seconds=e.hold_time))
    if call is None or visit is None:
        return
    visit.left_at = visit.left_at or e.at
    cc._decide(visit, "abandoned")
    call.ended_by_first("caller")  # Asterisk's own word: the caller left while waiting
    visit.reported_hold = e.hold_time
    cc._stop_ringing(call, visit, e.at)
    cc._touch(call, e.at)


def _on_queue_leave(cc: CallCentre, e: ev.QueueCallerLeft) -> None:
    call = cc._call_of(e)
    visit = call.visit(e.queue) if call is not None else None
    if call is None or visit is None or visit.left_at is not None:
        return
    # Leave comes just before AgentConnect when answered: the wait ends at the connect,
    # so only the leave time is noted here; the outcome waits for what follows.
    visit.left_at = e.at
    cc._touch(call, e.at)


def _on_agent_called(cc: CallCentre, e: ev.AgentCalled) -> None:
    call = cc._call_of(e)
    visit = call.visit(e.queue) if call is not None else None
    if call is None or visit is None:
        return
    visit.ringing[e.interface] = e.at
    agent = cc._agent(e.interface, e.member_name)
    agent.ringing.add(call.linkedid)
    cc._agent_state(agent, e.at, e.key, e.queue)
    cc._touch(call, e.at)


def _on_agent_ringnoanswer(cc: CallCentre, e: ev.AgentRingNoAnswer) -> None:
    call = cc._call_of(e)
    visit = call.visit(e.queue) if call is not None else None
    if call is None or visit is None:
        return
    visit.ringing.pop(e.interface, None)
    agent = cc._agent(e.interface, e.member_name)
    agent.ringing.discard(call.linkedid)
    cc._agent_state(agent, e.at, e.key, e.queue)
    cc._touch(call, e.at)


def _on_agent_connect(cc: CallCentre, e: ev.AgentConnected) -> None:
    call = cc._call_of(e)
    visit = call.visit(e.queue) if call is not None else None
    if call is not None and visit is None and call.in_gap:
        visit = _gap_visit(cc, call, e.queue, e.at - timedelta(seconds=e.hold_time))
    if call is None or visit is None:
        return
    rang_at = visit.ringing.get(e.interface)
    visit.answered_at = e.at
    visit.left_at = visit.left_at or e.at
    cc._decide(visit, "answered")
    visit.ring_seconds = seconds_between(rang_at, e.at) if rang_at else float(e.ring_time)
    visit.agent_interface = e.interface
    visit.agent_uniqueid = e.agent_uniqueid or None
    visit.agent = cc.agent_of(e.interface)
    visit.reported_hold = e.hold_time
    cc._stop_ringing(call, visit, e.at, keep=e.interface)
    visit.ringing.pop(e.interface, None)
    agent = cc._agent(e.interface, e.member_name)
    agent.ringing.discard(call.linkedid)
    agent.on_call = call.linkedid
    agent.call_queue = e.queue
    agent.wrapup_until = None
    cc._agent_state(agent, e.at, e.key, e.queue)
    cc._touch(call, e.at)


def answered_in_gap(
    cc: CallCentre,
    call: Call,
    visit: Visit,
    interface: str,
    agent_uniqueid: str | None,
    answered_at: datetime,
    *,
    guessed: bool,
    member_name: str = "",
) -> None:
    """``visit`` was answered by ``interface`` while the service could not see it (the
    AgentConnect went by in a gap): the answer as well as it is known, flagged. A visit
    already closed as not answered (a guess at the call's end) is put right."""
    answered_at = max(answered_at, visit.entered_at)
    visit.answered_at = answered_at
    visit.left_at = answered_at
    visit.guessed_answer = guessed
    visit.agent_interface = interface
    visit.agent_uniqueid = agent_uniqueid
    visit.agent = cc.agent_of(interface)
    visit.data_gap = True
    call.data_gap = True
    if visit.outcome not in (None, "answered"):
        visit.outcome = None  # the guess is replaced (counted again as answered)
    cc._decide(visit, "answered")
    cc._stop_ringing(call, visit, answered_at, keep=interface)
    visit.ringing.clear()
    if call.ended_at is None and visit.talk_end_at is None:
        agent = cc._agent(interface, member_name)
        agent.ringing.discard(call.linkedid)
        agent.on_call = call.linkedid
        agent.call_queue = visit.queue
        agent.wrapup_until = None
        cc._agent_state(agent, answered_at, f"gap-answer:{call.linkedid}:{visit.seq}", visit.queue)


def _answered_in_gap(cc: CallCentre, call: Call, e: ev.AgentCompleted) -> Visit | None:
    """An AgentComplete for a visit whose answer went by in a gap: the visit as the
    event's HoldTime and TalkTime tell it."""
    answered_at = e.at - timedelta(seconds=e.talk_time)
    visit = call.visit(e.queue)
    if visit is None or visit.answered_at is not None:
        visit = _gap_visit(cc, call, e.queue, answered_at - timedelta(seconds=e.hold_time))
        visit.guessed_entry = False
    answered_in_gap(
        cc,
        call,
        visit,
        e.interface,
        e.agent_uniqueid or None,
        answered_at,
        guessed=False,
        member_name=e.member_name,
    )
    return visit


def _on_agent_complete(cc: CallCentre, e: ev.AgentCompleted) -> None:
    call = cc._call_of(e)
    if call is None:
        return
    visit = next(
        (
            v
            for v in reversed(call.visits)
            if v.queue == e.queue and v.agent_interface == e.interface
        ),
        None,
    )
    if visit is None and call.in_gap:
        visit = _answered_in_gap(cc, call, e)
    if visit is None:
        return
    if visit.guessed_answer or visit.guessed_entry:
        # The queue's own figures: talk and hold time, to the second.
        answered = e.at - timedelta(seconds=e.talk_time)
        if visit.guessed_answer:
            visit.answered_at = visit.left_at = answered
            visit.guessed_answer = False
        if visit.guessed_entry and visit.answered_at is not None:
            visit.entered_at = visit.answered_at - timedelta(seconds=e.hold_time)
            visit.guessed_entry = False
    visit.complete_reason = e.reason
    if e.reason in ("caller", "agent"):
        # Who ended the conversation (transfer: the call goes on). It can come after the
        # last Hangup (capture 06): the row is written again with it.
        call.ended_by_first(e.reason)  # type: ignore[arg-type]
    visit.reported_talk = e.talk_time
    if visit.talk_end_at is None:
        cc._talk_ended(visit, e.at)
        cc._agent_call_ended(visit, e.at, call)
    cc._touch(call, e.at)


def _on_agent_dump(cc: CallCentre, e: ev.AgentDumped) -> None:
    _on_agent_ringnoanswer(
        cc,
        ev.AgentRingNoAnswer(
            at=e.at,
            pbx=e.pbx,
            key=e.key,
            linkedid=e.linkedid,
            uniqueid=e.uniqueid,
            channel=e.channel,
            queue=e.queue,
            interface=e.interface,
            member_name=e.member_name,
            ring_time_ms=0,
        ),
    )


def _on_blind_transfer(cc: CallCentre, e: ev.BlindTransferred) -> None:
    call = cc._call_of(e)
    if call is None or e.result != "Success":
        return
    call.transferred_to = call.transferred_to or e.extension
    cc._touch(call, e.at)


def _on_api_transfer(cc: CallCentre, e: ev.CallTransferred) -> None:
    call = cc._call_of(e)
    if call is None:
        return
    # The PBX's event recorded the extension (a unit's number, masked); the API knows
    # which named unit that was. A later transfer does not overwrite an earlier one.
    if call.transferred_to in (None, e.recorded):
        call.transferred_to = e.target
    cc._touch(call, e.at)


def _on_attended_transfer(cc: CallCentre, e: ev.AttendedTransferred) -> None:
    call = cc._call_of(e)
    if call is None or e.result != "Success":
        return
    call.transferred_to = call.transferred_to or e.destination or e.dest_type
    cc._touch(call, e.at)


def _on_hangup(cc: CallCentre, e: ev.ChannelHungUp) -> None:
    linkedid = e.linkedid or cc._channel_call.get(e.uniqueid, "")
    call = cc.calls.get(linkedid)
    if call is None and cc._doubt and e.uniqueid == linkedid:
        # The caller's own leg of a call begun in a gap, ended before the resync saw it:
        # recorded (what little is known of it, flagged) rather than lost.
        call = cc._call(linkedid, e.at)
        call.caller_uniqueid = e.uniqueid
        call.data_gap = True
    if call is None:
        return
    caller_leg = e.uniqueid in (call.caller_uniqueid, call.linkedid)
    # A call begun in a gap may not have all its channels known: the caller's hang-up
    # ends it, another leg's does not.
    partial = call.in_gap and not call.start_seen
    call.channels.pop(e.uniqueid, None)
    cc._channel_call.pop(e.uniqueid, None)
    if e.uniqueid == call.caller_uniqueid:
        call.hangup_cause = e.cause
    else:
        # An agent leg hung up while talking (the agent cleared, or a redirect left it):
        # that agent's talk ends now, even if AgentComplete comes later (capture 06).
        for v in call.visits:
            if v.agent_uniqueid == e.uniqueid and v.talking:
                cc._talk_ended(v, e.at)
                cc._agent_call_ended(v, e.at, call)
    if (caller_leg and partial) or (not call.channels and not partial):
        call.hung_up = call.hung_up or call.ended_at is None
        cc._end_call(call, e.at, cause=None)
    cc._touch(call, e.at)


def _on_hangup_request(cc: CallCentre, e: ev.HangupRequested) -> None:
    """The far end of a channel hung up: on the caller's leg the caller; on the leg of an
    agent in conversation that agent. Other legs (a ringing agent, a forward's far end)
    name nobody: if the caller's leg is then hung up by the PBX, the system ended it."""
    call = cc.calls.get(e.linkedid or cc._channel_call.get(e.uniqueid, ""))
    if call is None or call.ended_at is not None:
        return
    if e.uniqueid == call.caller_uniqueid:
        call.ended_by_first("caller")
    elif any(v.agent_uniqueid == e.uniqueid and v.talking for v in call.visits):
        call.ended_by_first("agent")
    else:
        return
    cc._touch(call, e.at)


def _on_member(cc: CallCentre, e: ev.MemberEvent) -> None:
    if isinstance(e, ev.MemberRemoved):
        member = cc._pop_member((e.queue, e.interface))
        agent = cc._agent(e.interface, e.member_name)
        if member is not None:
            cc._records.append(
                AgentStateRecord(
                    cc.pbx,
                    f"{e.key}:logout:{e.queue}",
                    e.at,
                    agent.agent_id,
                    e.interface,
                    e.queue,
                    "logged_out",
                    None,
                )
            )
        cc._agent_state(agent, e.at, e.key)
        return
    cc._member_update(e, e.at, record=True)


def _on_device_state(cc: CallCentre, e: ev.DeviceStateChanged) -> None:
    agent = cc.agents.get(e.device)
    if agent is None:
        return
    agent.device_status = {
        "NOT_INUSE": 1,
        "INUSE": 2,
        "BUSY": 3,
        "INVALID": 4,
        "UNAVAILABLE": 5,
        "RINGING": 6,
        "RINGINUSE": 7,
        "ONHOLD": 8,
    }.get(e.state, agent.device_status)
    cc._agent_state(agent, e.at, e.key)


# ---- IVR events (from the FastAGI sessions) ------------------------------------------


def _ivr_call(cc: CallCentre, e: ev.DomainEvent) -> Call | None:
    call = cc._call_of(e)
    if call is not None:
        cc._touch(call, e.at)
    return call


def _on_ivr_started(cc: CallCentre, e: ev.IvrStarted) -> None:
    call = _ivr_call(cc, e)
    if call is None or e.script != "ivr":
        return
    call.ivr_seen = True
    if not call.caller_uniqueid:
        call.caller_uniqueid = e.uniqueid
    if e.caller.hash:
        call.caller_hash, call.caller_display = e.caller.hash, e.caller.display
    if e.dialled:
        call.dialled = e.dialled


def _on_ivr_key(cc: CallCentre, e: ev.IvrKey) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.ivr_seen = True
        call.ivr_keys.append(e.digit)


def _on_ivr_routed(cc: CallCentre, e: ev.IvrRouted) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.ivr_route = "queue"
        call.ivr_estimate = e.estimated_wait_seconds
        call.ivr_queue = e.queue
        call.routed_at = e.at


def _on_ivr_forwarded(cc: CallCentre, e: ev.IvrForwarded) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.ivr_route = "forwarded"
        call.forwarded_to = e.destination


def _on_ivr_closed(cc: CallCentre, e: ev.IvrClosed) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.ivr_route = "closed"


def _on_ivr_ended(cc: CallCentre, e: ev.IvrEnded) -> None:
    # Only a call already followed: a session's end never starts one (it may come after
    # the call has ended and left memory).
    if e.reason not in ("hangup", "stopped"):
        return
    call = cc.calls.get(e.linkedid or cc._channel_call.get(e.uniqueid, ""))
    if call is None:
        return
    if e.reason == "stopped":
        # The process serving the menu stopped mid-session (a deposed owner, a restart):
        # the dialplan falls back, and a key the caller pressed then was never read. The
        # call's menu and route are incomplete: flagged.
        call.data_gap = True
        cc._dirty_calls.add(call.linkedid)
    elif call.ended_by_first("caller"):
        # The session saw the caller hang up (HANGUP during the menu or the survey).
        # Written again, but not "heard of on this link": FastAGI runs on while the AMI
        # link is down, and says nothing of the call's channels.
        cc._dirty_calls.add(call.linkedid)


def _on_survey_flagged(cc: CallCentre, e: ev.IvrSurveyFlagged) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.survey_flagged = True


def _on_callback_accepted(cc: CallCentre, e: ev.IvrCallbackAccepted) -> None:
    call = _ivr_call(cc, e)
    if call is None:
        return
    call.ivr_route = e.task
    # The caller keeps the place in line they had: the time they first joined a queue,
    # or the time of the choice if they chose before joining.
    first = call.visits[0].entered_at if call.visits else e.at
    cc._records.append(
        CallbackRecord(
            kind=e.task,
            pbx=cc.pbx,
            linkedid=call.linkedid,
            queue=e.queue,
            caller_hash=e.caller.hash,
            caller_display=e.caller.display,
            number_sealed=e.number_sealed,
            requested_at=first,
            due_at=cc._due_at(e.at),
            note=None,
            recording=e.recording,
        )
    )


def _on_survey_started(cc: CallCentre, e: ev.SurveyStarted) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.survey_started = call.survey_started or e.at
        cc._dirty_surveys.add(call.linkedid)


def _on_survey_answer(cc: CallCentre, e: ev.SurveyAnswered) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.survey_started = call.survey_started or e.at
        call.survey[e.question] = e.value
        cc._dirty_surveys.add(call.linkedid)


def _on_survey_ended(cc: CallCentre, e: ev.SurveyEnded) -> None:
    call = _ivr_call(cc, e)
    if call is not None:
        call.survey_started = call.survey_started or e.at
        call.survey_done = e.completed
        cc._dirty_surveys.add(call.linkedid)


_HANDLERS: dict[type[ev.DomainEvent], Callable[[CallCentre, Any], None]] = {
    ev.ChannelCreated: _on_channel_created,
    ev.CallerIdChanged: _on_caller_id,
    ev.DtmfDigit: _on_dtmf,
    ev.VariableSet: _on_varset,
    ev.QueueCallerJoined: _on_queue_join,
    ev.QueueCallerAbandoned: _on_queue_abandon,
    ev.QueueCallerLeft: _on_queue_leave,
    ev.AgentCalled: _on_agent_called,
    ev.AgentRingNoAnswer: _on_agent_ringnoanswer,
    ev.AgentConnected: _on_agent_connect,
    ev.AgentCompleted: _on_agent_complete,
    ev.AgentDumped: _on_agent_dump,
    ev.BlindTransferred: _on_blind_transfer,
    ev.AttendedTransferred: _on_attended_transfer,
    ev.CallTransferred: _on_api_transfer,
    ev.ChannelHungUp: _on_hangup,
    ev.HangupRequested: _on_hangup_request,
    ev.MemberAdded: _on_member,
    ev.MemberRemoved: _on_member,
    ev.MemberPaused: _on_member,
    ev.MemberStatus: _on_member,
    ev.MemberPenalty: _on_member,
    ev.MemberRinginuse: _on_member,
    ev.DeviceStateChanged: _on_device_state,
    ev.IvrStarted: _on_ivr_started,
    ev.IvrKey: _on_ivr_key,
    ev.IvrRouted: _on_ivr_routed,
    ev.IvrForwarded: _on_ivr_forwarded,
    ev.IvrClosed: _on_ivr_closed,
    ev.IvrEnded: _on_ivr_ended,
    ev.IvrSurveyFlagged: _on_survey_flagged,
    ev.IvrCallbackAccepted: _on_callback_accepted,
    ev.SurveyStarted: _on_survey_started,
    ev.SurveyAnswered: _on_survey_answer,
    ev.SurveyEnded: _on_survey_ended,
}
