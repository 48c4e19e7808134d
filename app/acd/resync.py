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
from app.acd.model import Visit
from app.acd.records import AgentStateRecord, GapRecord
from app.acd.state import CallCentre


@dataclass(frozen=True, slots=True)
class LiveChannel:
    uniqueid: str
    linkedid: str
    channel: str
    duration_seconds: float


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

    Calls we follow whose channels are all gone ended while we could not see them:
    they are closed with the best outcome the record allows and marked ``data_gap``.
    Channels the PBX has that we do not know start calls marked ``data_gap``.
    Members and pauses are taken as the PBX reports them.
    """
    cc.now = at if cc.now is None else max(cc.now, at)
    live = snapshot.channels_by_linkedid()
    closed = 0
    for linkedid, call in list(cc.calls.items()):
        if call.ended_at is not None or call.link == cc._link:
            continue
        alive = live.get(linkedid)
        if not alive:
            call.data_gap = True
            for v in call.visits:
                if v.outcome is None or v.talking:  # what the gap hid is a guess
                    v.data_gap = True
            cc._end_call(call, cc._gap_from or at, cause=None)
            closed += 1
        else:
            # Channels that hung up during the gap are gone; new ones are the call's.
            alive_ids = {c.uniqueid for c in alive}
            for uid in list(call.channels):
                if uid not in alive_ids:
                    call.channels.pop(uid, None)
                    cc._channel_call.pop(uid, None)
            for chan in alive:
                if chan.uniqueid not in call.channels:
                    call.channels[chan.uniqueid] = chan.channel
                    call.known.add(chan.uniqueid)
                    cc._channel_call[chan.uniqueid] = linkedid
    for linkedid, chans in live.items():
        if linkedid in cc.calls:
            continue
        # The caller's leg is the one whose Uniqueid is the Linkedid, else the oldest.
        first = next(
            (c for c in chans if c.uniqueid == linkedid),
            max(chans, key=lambda c: c.duration_seconds),
        )
        new = cc._call(linkedid, at)
        new.data_gap = True
        new.started_at = at - timedelta(seconds=first.duration_seconds)
        for chan in chans:
            new.channels[chan.uniqueid] = chan.channel
            new.known.add(chan.uniqueid)
            cc._channel_call[chan.uniqueid] = linkedid
        new.caller_uniqueid = first.uniqueid
        cc._touch(new, at)
    for entry in snapshot.entries:
        waiting_call = cc.calls.get(cc._channel_call.get(entry.uniqueid, entry.uniqueid))
        if waiting_call is None:
            continue
        call = waiting_call
        visit = call.visit(entry.queue)
        if visit is None or not visit.waiting:
            visit = Visit(
                seq=len(call.visits) + 1,
                queue=entry.queue,
                entered_at=at - timedelta(seconds=entry.wait_seconds),
                position=entry.position,
                data_gap=True,
                linkedid=call.linkedid,
            )
            cc._open_visit(call, visit)
            cc._touch(call, at)
    _resync_members(cc, snapshot.members, at)
    if cc._gap_from is not None:
        cc._records.append(GapRecord(cc.pbx, cc._gap_from, at, closed, cc._gap_reason))
        cc._gap_from = None
    return closed


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
