"""Resync: the PBX's own view after the AMI link (re)connects, and how the state machine
takes it.

The AMI adapter asks for ``QueueStatus`` and ``CoreShowChannels``; their list items go
through the normaliser like events (``Normaliser.list_item``, app/ami/normalise.py: a
``QueueMember`` is read as a member status there and nowhere else) and are gathered here
into a ``Snapshot``. ``resync`` closes the calls the PBX no longer has (``data_gap``),
starts the ones it has that we do not know, reopens waiting visits and takes members and
pauses as reported; the gap it closes becomes a ``GapRecord``.

Pure, as the state machine (app/acd/state.py) whose state it changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.acd import events as ev
from app.acd.model import Call, Visit
from app.acd.records import AgentStateRecord, GapRecord
from app.acd.state import CallCentre, answered_in_gap


@dataclass(frozen=True, slots=True)
class LiveChannel:
    uniqueid: str
    linkedid: str
    channel: str
    duration_seconds: float
    application: str = ""  # Queue (a caller in a queue, waiting or bridged), AppQueue (an
    application_data: str = ""  # agent's leg), AGI (the menu), ...; Queue's data: queue,...
    bridge_id: str = ""


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """A caller waiting in a queue (QueueEntry of QueueStatus)."""

    queue: str
    uniqueid: str
    position: int
    wait_seconds: float


@dataclass(frozen=True)
class Snapshot:
    channels: tuple[LiveChannel, ...]
    entries: tuple[LiveEntry, ...]
    members: tuple[ev.MemberEvent, ...]

    @classmethod
    def of(cls, items: Iterable[LiveChannel | LiveEntry | ev.MemberEvent]) -> Snapshot:
        """The normalised list items of one resync, sorted by kind (order kept)."""
        channels: list[LiveChannel] = []
        entries: list[LiveEntry] = []
        members: list[ev.MemberEvent] = []
        for item in items:
            if isinstance(item, LiveChannel):
                channels.append(item)
            elif isinstance(item, LiveEntry):
                entries.append(item)
            else:
                members.append(item)
        return cls(channels=tuple(channels), entries=tuple(entries), members=tuple(members))

    def channels_by_linkedid(self) -> dict[str, list[LiveChannel]]:
        out: dict[str, list[LiveChannel]] = {}
        for chan in self.channels:
            out.setdefault(chan.linkedid, []).append(chan)
        return out


def resync(cc: CallCentre, snapshot: Snapshot, at: datetime) -> int:
    """Rebuild from the PBX's own view after a (re)connect. Returns calls closed.

    Every call up before the gap ends with an outcome:
    - a call we follow whose channels are all gone ended while we could not see it: it is
      closed with the best outcome the record allows and marked ``data_gap``;
    - a call still up is compared with the PBX's view (``_reconcile``): where they agree
      (still waiting in the same queue, still talking to the same agent, still in the
      menu) it goes on as if nothing happened; where they differ, what the gap hid is
      rebuilt as well as the view tells it (answered by the agent whose leg is bridged to
      it, moved to another queue, left the queue, talk ended) and marked ``data_gap``;
      its later events apply as usual;
    - a call the PBX has that we never saw (begun in the gap) is adopted, marked.
    Calls heard of over AMI since the link came back (only the PBX's own events count),
    or first heard of then, are newer than the view and left alone, except that a channel
    one had at the login and the view lacks hung up in the gap: it is dropped, and the
    call closed if none is left. Members and pauses are taken as the PBX reports them.
    """
    cc.now = at if cc.now is None else max(cc.now, at)
    live = snapshot.channels_by_linkedid()
    entries = {e.uniqueid: e for e in snapshot.entries}
    closed = 0
    looked_at: set[str] = set()
    at_login, cc._at_login = cc._at_login, {}
    for linkedid, call in list(cc.calls.items()):
        if call.ended_at is not None:
            continue
        if call.link == cc._link:
            # Heard of since the login: alive then. But a channel it had at the login
            # that the view lacks hung up unseen (an agent's leg whose Hangup went by in
            # the gap would otherwise keep the call open after the caller's).
            closed += _drop_unseen_hangups(cc, call, at_login.get(linkedid), live, at)
            continue
        looked_at.add(linkedid)
        alive = live.get(linkedid)
        if not alive:
            call.in_gap = True
            call.data_gap = True
            for v in call.visits:
                if v.outcome is None or v.talking:  # what the gap hid is a guess
                    v.data_gap = True
            gone = cc._gap_from or at
            if call.last_at is not None and gone < call.last_at <= at:
                gone = call.last_at  # heard of (the menu) after the loss
            cc._end_call(call, gone, cause=None)
            closed += 1
            continue
        # Channels that hung up during the gap are gone; new ones are the call's.
        alive_ids = {c.uniqueid for c in alive}
        for uid in list(call.channels):
            if uid not in alive_ids:
                _channel_gone(cc, call, uid)
        for chan in alive:
            if chan.uniqueid not in call.channels:
                call.channels[chan.uniqueid] = chan.channel
                call.known.add(chan.uniqueid)
                cc._channel_call[chan.uniqueid] = linkedid
        _reconcile(cc, call, alive, entries, at)
    for linkedid, chans in live.items():
        if linkedid in cc.calls:
            continue
        # The caller's leg is the one whose Uniqueid is the Linkedid, else the oldest.
        first = _caller_leg(None, linkedid, chans)
        new = cc._call(linkedid, at)
        new.data_gap = True
        new.in_gap = True
        new.started_at = at - timedelta(seconds=first.duration_seconds)
        for chan in chans:
            new.channels[chan.uniqueid] = chan.channel
            new.known.add(chan.uniqueid)
            cc._channel_call[chan.uniqueid] = linkedid
        new.caller_uniqueid = first.uniqueid
        cc._touch(new, at)
        looked_at.add(linkedid)
        _reconcile(cc, new, chans, entries, at)
    for entry in snapshot.entries:
        # Calls heard of since the link came back: a waiting visit the view shows and we
        # do not have is opened (the join went by before we listened again).
        waiting_call = cc.calls.get(cc._channel_call.get(entry.uniqueid, entry.uniqueid))
        if waiting_call is None or waiting_call.linkedid in looked_at:
            continue
        call = waiting_call
        visit = call.visit(entry.queue)
        if visit is None or not visit.waiting:
            _open_from_entry(cc, call, entry, at)
            cc._touch(call, at)
    _resync_members(cc, snapshot.members, at)
    if cc._gap_from is not None:
        cc._records.append(GapRecord(cc.pbx, cc._gap_from, at, closed, cc._gap_reason))
        cc._gap_from = None
    cc._doubt = False
    return closed


def _drop_unseen_hangups(
    cc: CallCentre,
    call: Call,
    before: frozenset[str] | None,
    live: dict[str, list[LiveChannel]],
    at: datetime,
) -> int:
    """Of a call heard of since the login, the channels it had at the login and the view
    lacks: gone in the gap. An agent's talk on one of them ended then; a call left with
    no channel ended when last heard of. Returns 1 if the call was closed."""
    if not before:
        return 0
    alive = {c.uniqueid for c in live.get(call.linkedid, ())}
    gone = [uid for uid in before if uid in call.channels and uid not in alive]
    if not gone:
        return 0
    gap_from = cc._gap_from or at
    for uid in gone:
        _channel_gone(cc, call, uid)
        for v in call.visits:
            if v.agent_uniqueid == uid and v.talking:
                _talk_ended_unseen(cc, call, v, gap_from)
    call.in_gap = call.data_gap = True
    if call.channels:
        cc._touch(call, at)
        return 0
    cc._end_call(call, call.last_at or at, cause=None)
    return 1


def _channel_gone(cc: CallCentre, call: Call, uid: str) -> None:
    """One of the call's channels hung up while nobody watched."""
    call.channels.pop(uid, None)
    cc._channel_call.pop(uid, None)


def _talk_ended_unseen(cc: CallCentre, call: Call, visit: Visit, gap_from: datetime) -> None:
    """The agent's leg of a talk went in the gap (hung up, or moved on): the talk ended
    when the gap began (or at the answer, if that came later), flagged."""
    cc._talk_ended(visit, max(visit.answered_at or gap_from, gap_from))
    cc._agent_call_ended(visit, gap_from, call)
    visit.data_gap = True


def _caller_leg(call: Call | None, linkedid: str, chans: list[LiveChannel]) -> LiveChannel:
    ids = {linkedid, call.caller_uniqueid if call is not None else ""}
    return next(
        (c for c in chans if c.uniqueid in ids),
        max(chans, key=lambda c: c.duration_seconds),
    )


def _agent_interface(cc: CallCentre, chan: LiveChannel) -> str | None:
    """``PJSIP/agent1-0000002a`` -> ``PJSIP/agent1`` when that is an agent's leg."""
    interface = chan.channel.rsplit("-", 1)[0] if "-" in chan.channel else chan.channel
    if chan.application == "AppQueue" or interface in cc.agents:
        return interface
    return None


def _open_from_entry(cc: CallCentre, call: Call, entry: LiveEntry, at: datetime) -> Visit:
    visit = Visit(
        seq=len(call.visits) + 1,
        queue=entry.queue,
        entered_at=at - timedelta(seconds=entry.wait_seconds),
        position=entry.position,
        data_gap=True,
        linkedid=call.linkedid,
    )
    call.data_gap = True
    cc._open_visit(call, visit)
    return visit


def _reconcile(
    cc: CallCentre,
    call: Call,
    chans: list[LiveChannel],
    entries: dict[str, LiveEntry],
    at: datetime,
) -> None:
    """A call still up after a gap against the PBX's view of it (see ``resync``)."""
    caller = _caller_leg(call, call.linkedid, chans)
    if not call.start_seen:
        # Begun in the gap (or first heard of by the menu): its start as the PBX counts it.
        call.started_at = at - timedelta(seconds=caller.duration_seconds)
        call.caller_uniqueid = call.caller_uniqueid or caller.uniqueid
        call.start_seen = True  # its channels are all known from here
    entry = next((entries[c.uniqueid] for c in chans if c.uniqueid in entries), None)
    legs = [
        (c, iface)
        for c in chans
        if c is not caller and (iface := _agent_interface(cc, c)) is not None
    ]
    # The agent bridged with the caller (the caller's bridge), else any agent leg.
    leg = next(
        ((c, i) for c, i in legs if caller.bridge_id and c.bridge_id == caller.bridge_id),
        legs[0] if legs else None,
    )
    gap_from = cc._gap_from or at
    changed = unsettled = False
    current = call.visit()
    if current is not None and current.outcome is None and current.answered_at is None:
        # Waiting when the link went (or just left the queue, its outcome not yet known).
        if entry is not None and entry.queue == current.queue:
            pass  # still waiting where it was
        elif leg is not None and entry is None and current.left_at is not None:
            # Left the queue for an agent just before the view (the AgentConnect is on
            # its way): its events settle it; if they went by in the gap, the
            # AgentComplete does (app/acd/state.py), or its end is flagged.
            unsettled = True
        elif leg is not None and entry is None:
            chan, iface = leg
            answered = at - timedelta(seconds=chan.duration_seconds)
            answered_in_gap(cc, call, current, iface, chan.uniqueid, answered, guessed=True)
            changed = True
        else:
            # Left the queue unseen: for another queue, or without an agent.
            current.left_at = current.left_at or max(current.entered_at, gap_from)
            current.data_gap = True
            cc._stop_ringing(call, current, at)
            cc._decide(current, "transferred" if entry is not None else "abandoned")
            changed = True
    elif (
        current is not None
        and current.talking
        and (current.agent_uniqueid is None or current.agent_uniqueid not in call.channels)
    ):
        _talk_ended_unseen(cc, call, current, gap_from)
        changed = True
    waiting = call.visit()
    if entry is not None and (waiting is None or not waiting.waiting):
        _open_from_entry(cc, call, entry, at)
        changed = True
    elif (
        entry is None
        and leg is not None
        and (current is None or (current.answered_at is None and current.outcome is not None))
    ):
        # Joined a queue and was answered, all in the gap.
        queue = (
            caller.application_data.split(",", 1)[0]
            if caller.application == "Queue"
            else call.ivr_queue
        )
        if queue:
            chan, iface = leg
            answered = at - timedelta(seconds=chan.duration_seconds)
            routed = call.routed_at
            visit = Visit(
                seq=len(call.visits) + 1,
                queue=queue,
                entered_at=routed if routed is not None and routed <= answered else answered,
                position=None,
                estimated_wait=call.ivr_estimate if not call.visits else None,
                data_gap=True,
                linkedid=call.linkedid,
                guessed_entry=True,
            )
            cc._open_visit(call, visit)
            answered_in_gap(cc, call, visit, iface, chan.uniqueid, answered, guessed=True)
            changed = True
    if (
        not changed
        and entry is None
        and leg is None
        and call.ivr_route == "queue"
        and not any(v.queue == call.ivr_queue for v in call.visits)
    ):
        # The menu sent it to a queue while we could not see the PBX, and it is in no
        # queue now: whatever the queue did (refused it, timed out) went by unseen.
        changed = True
    if changed:
        call.data_gap = True
        call.in_gap = True
        cc._touch(call, at)
    elif not call.data_gap and not unsettled:
        call.in_gap = False  # the PBX's view is ours: nothing went by unseen


def _resync_members(cc: CallCentre, members: Iterable[ev.MemberEvent], at: datetime) -> None:
    seen: set[tuple[str, str]] = set()
    for m in members:
        seen.add((m.queue, m.interface))
        cc._member_update(m, at, record=True)
    stale = [k for k, m in cc.members.items() if k not in seen and m.link != cc._link]
    for key in stale:
        member = cc._pop_member(key)
        assert member is not None
        agent = cc.agents.get(member.interface)
        cc._records.append(
            AgentStateRecord(
                cc.pbx,
                f"resync-logout:{at.timestamp()}:{member.queue}:{member.interface}",
                at,
                agent.agent_id if agent else None,
                member.interface,
                member.queue,
                "logged_out",
                "resync",
            )
        )
        if agent is not None:
            cc._agent_state(agent, at, f"resync:{at.timestamp()}")
