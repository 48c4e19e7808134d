"""app_queue as a pure model: members, callers, strategies, ring timeout/retry, wrap-up,
pause, join/leave-empty rules and the queue statistics. No I/O, no clock: every method
takes ``now`` (virtual epoch seconds) and returns what happened; the PBX (``pbx.py``)
turns that into channels and AMI events.

What it reproduces from apps/app_queue.c (Asterisk 22):
- Iteration orders, which decide who rings first and the order of list/status events:
  queues live in a 53-bucket hash container keyed by ``ast_str_case_hash(name) &
  INT_MAX``; members in a 37-bucket container keyed by ``member_hash_fn`` (first five
  characters from the ``/`` of the interface), one bucket for ``linear``/``rrordered``;
  within a bucket, insertion order.
- ``calc_metric``: rrmemory/rrordered (position vs ``rrpos``, ``store_next_rr`` after a
  ring), leastrecent (``1000000 - (now - lastcall)``, 0 if never called), fewestcalls,
  random, linear (per caller ``linpos``), ringall (everyone with the best metric at
  once); ``+ penalty * 1000000``.
- ``can_ring_entry``: paused, device not free (unless ``ringinuse``), wrap-up not over
  (``lastcall`` + the wrap-up time of the member's *last* queue).
- ``is_our_turn`` with autofill: a caller may ring when fewer than N callers ahead of it
  are not already ringing, N = available members. Callers not on turn re-check every
  second; after a failed attempt (no answer, nobody ringable) a caller waits ``retry``.
- ``get_member_status`` for joinempty/leavewhenempty; ``maxlen``; the Queue() timeout
  (``expire``) with ``timeoutpriority=app`` cutting a ring short.
- Statistics: holdtime/talktime exponential averages (first sample taken as is),
  completed/abandoned and their within-service-level counts; ``shared_lastcall`` updates
  ``lastcall``/``calls`` of the interface in every queue.
Times that Asterisk keeps as ``time_t`` (hold, talk, lastcall) are whole seconds here too.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from app.sim.conf import MemberSpec, QueuesConfig, QueueSpec


class Dev(IntEnum):
    """ast_device_state values as AMI prints them (QueueMemberStatus ``Status``)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


DEV_NAMES = {
    Dev.UNKNOWN: "UNKNOWN",
    Dev.NOT_INUSE: "NOT_INUSE",
    Dev.INUSE: "INUSE",
    Dev.BUSY: "BUSY",
    Dev.INVALID: "INVALID",
    Dev.UNAVAILABLE: "UNAVAILABLE",
    Dev.RINGING: "RINGING",
    Dev.RINGINUSE: "RINGINUSE",
    Dev.ONHOLD: "ONHOLD",
}

RECHECK = 1.0  # app_queue's RECHECK: seconds between is_our_turn checks


def str_case_hash(text: str) -> int:
    """ast_str_case_hash, restricted to INT_MAX as in Asterisk >= 13."""
    h = 5381
    for byte in text.lower().encode("utf-8"):
        h = ((h * 33) ^ byte) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


def member_hash(interface: str) -> int:
    """app_queue's member_hash_fn: the first five characters from the '/'."""
    slash = interface.find("/")
    chname = interface if slash < 0 else interface[slash:]
    ret = 0
    for i, ch in enumerate(chname.encode("utf-8")[:5]):
        c = ch if ch < 128 else ch & 0x7F
        v = 0 if c < 32 else (c - 64 if c > 96 else c - 32)
        ret += v << (i * 6)
    return ret


def device_available(status: int) -> bool:
    """member_status_available: free to be rung when ringinuse is off."""
    return status in (Dev.NOT_INUSE, Dev.UNKNOWN)


# --------------------------------------------------------------------------- members


@dataclass(slots=True)
class Member:
    queue: str
    interface: str
    membername: str
    state_interface: str
    penalty: int = 0
    dynamic: bool = False
    paused: bool = False
    paused_reason: str = ""
    ringinuse: bool = False
    wrapuptime: int = 0
    calls: int = 0
    lastcall: int = 0
    lastpause: int = 0
    logintime: int = 0
    in_call: bool = False
    status: int = Dev.NOT_INUSE
    lastqueue: str | None = None
    bucket: int = 0
    seq: int = 0
    # The queue holding this member: any change to the member bumps its generation, so
    # the queue's cached count of available members is never stale.
    owner: Queue | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        owner = getattr(self, "owner", None)  # unset while __init__ runs
        if owner is not None:
            owner.generation += 1

    @property
    def membership(self) -> str:
        return "dynamic" if self.dynamic else "static"

    def blob(self) -> list[tuple[str, str]]:
        """The member fields of QueueMemberStatus/Added/Removed/Pause/Penalty, in order."""
        return [
            ("Queue", self.queue),
            ("MemberName", self.membername),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls)),
            ("LastCall", str(self.lastcall)),
            ("LastPause", str(self.lastpause)),
            ("LoginTime", str(self.logintime)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(int(self.status))),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
            ("Ringinuse", "1" if self.ringinuse else "0"),
            ("Wrapuptime", str(self.wrapuptime)),
        ]


# --------------------------------------------------------------------------- callers


@dataclass(slots=True)
class Entry:
    """A caller waiting in a queue (app_queue's ``queue_ent``)."""

    uid: str
    queue: str
    start: float
    opos: int
    expire: float | None = None
    linpos: int = 0
    pending: bool = False  # ringing members right now
    ringing: list[Member] = field(default_factory=list)
    ring_start: float = 0.0
    ring_deadline: float = 0.0
    tries: int = 0

    def holdtime(self, now: float) -> int:
        return int(now) - int(self.start)


@dataclass(frozen=True, slots=True)
class JoinResult:
    ok: bool
    reason: str = ""  # FULL, JOINEMPTY, UNKNOWN when not ok
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class LeaveInfo:
    queue: str
    position: int
    count: int
    original_position: int
    holdtime: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What a caller's check at ``now`` leads to.

    kind: ``ring`` (members), ``wait`` (check again at ``until``), ``leave`` (reason
    ``TIMEOUT`` or ``LEAVEEMPTY``; ``abandon`` says if app_queue records it abandoned).
    """

    kind: str
    members: tuple[Member, ...] = ()
    until: float = 0.0
    reason: str = ""
    abandon: bool = False
    ring_timeout: float = 0.0


# ---------------------------------------------------------------------------- queues


@dataclass(slots=True)
class Queue:
    spec: QueueSpec
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    rrpos: int = 0
    wrapped: bool = False
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    _seq: int = 0
    generation: int = 0  # bumped on any change to the members or to one of them
    _available: tuple[int, int, int] = (-1, -1, 0)  # (generation, second, count)
    _by_interface: dict[str, Member] = field(default_factory=dict)  # lower-case interface

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def buckets(self) -> int:
        return 1 if self.spec.strategy in ("linear", "rrordered") else 37

    def add_member(self, member: Member) -> None:
        member.bucket = member_hash(member.interface) % self.buckets
        self._seq += 1
        member.seq = self._seq
        member.owner = self
        self.members.append(member)
        self.members.sort(key=lambda m: (m.bucket, m.seq))
        self._by_interface.setdefault(member.interface.lower(), member)
        self.generation += 1

    def remove_member(self, member: Member) -> None:
        self.members.remove(member)
        self._by_interface.pop(member.interface.lower(), None)
        member.owner = None
        self.generation += 1

    def member(self, interface: str) -> Member | None:
        return self._by_interface.get(interface.lower())

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def sl_perf(self) -> float:
        return 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0

    def sl_perf2(self) -> float:
        total = self.completed + self.abandoned
        if not total:
            return 0.0
        return 100.0 * (self.completed_in_sl + self.abandoned_in_sl) / total


class QueueError(Exception):
    """An AMI-facing failure; ``code`` is app_queue's RES_* name."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class QueueEngine:
    """All queues of one PBX (see module doc)."""

    def __init__(
        self,
        config: QueuesConfig,
        now: float,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.rng = rng or random.Random(0)
        self.device: dict[str, int] = {}
        self.queues: dict[str, Queue] = {}
        self.entries: dict[str, Entry] = {}
        # Members by lower-case state interface: a device state change finds its members
        # without a scan of every queue's members (thousands at 100x).
        self._by_state: dict[str, list[Member]] = {}
        for spec in config.queues:
            q = Queue(spec)
            for m in spec.members:
                self._attach(q, self._new_member(spec, m, now, dynamic=False))
            self.queues[spec.name] = q
        self._ordered = self._order()
        self._rank = {q.name: i for i, q in enumerate(self._ordered)}

    def _attach(self, q: Queue, member: Member) -> None:
        q.add_member(member)
        self._by_state.setdefault(member.state_interface.lower(), []).append(member)

    def _detach(self, q: Queue, member: Member) -> None:
        q.remove_member(member)
        key = member.state_interface.lower()
        group = [m for m in self._by_state.get(key, []) if m is not member]
        if group:
            self._by_state[key] = group
        else:
            self._by_state.pop(key, None)

    # ---------------------------------------------------------------- lookup
    def _order(self) -> list[Queue]:
        # 53-bucket hash container, insertion order within a bucket.
        return [
            q
            for _, q in sorted(
                enumerate(self.queues.values()),
                key=lambda iq: (str_case_hash(iq[1].name) % 53, iq[0]),
            )
        ]

    def ordered(self) -> list[Queue]:
        """Queues in Asterisk's iteration order (QueueStatus, QueueMemberStatus fan-out)."""
        return self._ordered

    def get(self, name: str) -> Queue | None:
        return self.queues.get(name)

    def memberships(self, interface: str) -> Iterator[Member]:
        """Every queue's member object for ``interface``, in queue iteration order."""
        for q in self._ordered:
            m = q.member(interface)
            if m is not None:
                yield m

    def by_state_interface(self, state_interface: str) -> Iterator[Member]:
        """The members on ``state_interface``, in queue iteration order then each queue's
        member order (bucket, then when added), as app_queue walks them."""
        found = self._by_state.get(state_interface.lower(), [])
        yield from sorted(found, key=lambda m: (self._rank[m.queue], m.bucket, m.seq))

    def _new_member(self, spec: QueueSpec, m: MemberSpec, now: float, dynamic: bool) -> Member:
        state_if = m.state
        return Member(
            queue=spec.name,
            interface=m.interface,
            membername=m.name,
            state_interface=state_if,
            penalty=m.penalty,
            dynamic=dynamic,
            ringinuse=spec.ringinuse if m.ringinuse is None else m.ringinuse,
            wrapuptime=m.wrapuptime,
            logintime=int(now),
            status=self.device.get(state_if.lower(), Dev.NOT_INUSE),
        )

    # --------------------------------------------------------- device state
    def set_device_state(self, state_interface: str, state: int) -> list[Member]:
        """A device changed state; the members (all queues) whose status changed."""
        key = state_interface.lower()
        if self.device.get(key) == state:
            return []
        self.device[key] = state
        changed = []
        for m in self.by_state_interface(state_interface):
            if m.status != state:
                m.status = state
                changed.append(m)
        return changed

    # ------------------------------------------------------- availability
    def wrapuptime_of(self, member: Member) -> int:
        if member.wrapuptime:
            return member.wrapuptime
        q = self.queues.get(member.lastqueue or member.queue)
        return q.spec.wrapuptime if q is not None else 0

    def in_wrapup(self, member: Member, now: float) -> bool:
        wrap = self.wrapuptime_of(member)
        return bool(member.lastcall and wrap and (int(now) - member.lastcall) < wrap)

    def is_member_available(self, q: Queue, member: Member, now: float) -> bool:
        """app_queue's is_member_available (QueueSummary, autofill counting)."""
        status = member.status
        available = False
        if status in (Dev.INVALID, Dev.UNAVAILABLE):
            available = False
        elif status in (Dev.INUSE, Dev.BUSY, Dev.RINGING, Dev.RINGINUSE, Dev.ONHOLD):
            available = member.ringinuse and not member.paused
        else:
            available = not member.paused
        wrap = member.wrapuptime or q.spec.wrapuptime
        if member.lastcall and wrap and int(now) - wrap < member.lastcall:
            available = False
        return available

    def can_ring(self, member: Member, now: float) -> bool:
        """app_queue's can_ring_entry."""
        if member.paused:
            return False
        if member.status in (Dev.INVALID, Dev.UNAVAILABLE):
            return False
        if not member.ringinuse and not device_available(member.status):
            return False
        return not self.in_wrapup(member, now)

    def num_available(self, q: Queue, now: float) -> int:
        # Every waiting caller asks this every RECHECK. The answer depends on the members
        # (any change bumps the queue's generation), on the members list (adding or
        # removing one bumps it too) and on int(now) (wrap-up), only.
        gen, second = q.generation, int(now)
        cached_gen, cached_second, cached = q._available
        if cached_gen == gen and cached_second == second:
            return cached
        avl = 0
        for m in q.members:
            avl += self.is_member_available(q, m, now)
            if avl and (not q.spec.autofill or q.spec.strategy == "ringall"):
                break
        q._available = (gen, second, avl)
        return avl

    def member_status_empty(self, q: Queue, rules: frozenset[str], now: float) -> bool:
        """get_member_status: True when no member is usable under ``rules``."""
        if not q.members:
            return True
        for m in q.members:
            st = m.status
            if st == Dev.INVALID and "invalid" in rules:
                continue
            if st == Dev.UNAVAILABLE and "unavailable" in rules:
                continue
            if st == Dev.INUSE and "inuse" in rules:
                continue
            if st == Dev.RINGING and "ringing" in rules:
                continue
            if st == Dev.UNKNOWN and "unknown" in rules:
                continue
            if m.paused and "paused" in rules:
                continue
            if "wrapup" in rules and self.in_wrapup(m, now):
                continue
            return False
        return True

    # --------------------------------------------------------------- callers
    def join(self, queue: str, uid: str, now: float, timeout: int = 0) -> JoinResult:
        q = self.queues.get(queue)
        if q is None:
            return JoinResult(False, "UNKNOWN")
        if q.spec.joinempty and self.member_status_empty(q, q.spec.joinempty, now):
            return JoinResult(False, "JOINEMPTY")
        if q.spec.maxlen and len(q.entries) >= q.spec.maxlen:
            return JoinResult(False, "FULL")
        entry = Entry(
            uid=uid,
            queue=queue,
            start=now,
            opos=len(q.entries) + 1,
            expire=(now + timeout) if timeout > 0 else None,
        )
        q.entries.append(entry)
        self.entries[uid] = entry
        return JoinResult(True, position=entry.opos, count=len(q.entries))

    def entry(self, uid: str) -> Entry | None:
        return self.entries.get(uid)

    def leave(self, uid: str, now: float, abandoned: bool = False) -> LeaveInfo:
        """Take the caller out (answered, abandoned, timeout, empty, transferred)."""
        entry = self.entries.pop(uid)
        q = self.queues[entry.queue]
        pos = q.position(entry)
        q.entries.remove(entry)
        hold = entry.holdtime(now)
        if abandoned:
            q.abandoned += 1
            if hold <= q.spec.servicelevel:
                q.abandoned_in_sl += 1
        entry.ringing = []
        entry.pending = False
        return LeaveInfo(q.name, pos, len(q.entries), entry.opos, hold)

    def is_our_turn(self, entry: Entry, now: float) -> bool:
        q = self.queues[entry.queue]
        avl = self.num_available(q, now)
        idx = 0
        for ch in q.entries:
            if ch is entry:
                return idx < avl and (q.spec.autofill or q.position(entry) == 1)
            if idx >= avl:
                return False
            if not ch.pending:
                idx += 1
        return False

    def _metric(self, q: Queue, m: Member, pos: int, entry: Entry, now: float) -> int:
        strategy = q.spec.strategy
        if strategy == "ringall":
            metric = 0
        elif strategy in ("rrmemory", "rrordered"):
            if pos < q.rrpos:
                metric = 1000 + pos
            else:
                if pos > q.rrpos:
                    q.wrapped = True
                metric = pos
        elif strategy == "linear":
            if pos < entry.linpos:
                metric = 1000 + pos
            else:
                if pos > entry.linpos:
                    q.wrapped = True
                metric = pos
        elif strategy == "leastrecent":
            metric = 0 if not m.lastcall else 1000000 - (int(now) - m.lastcall)
        elif strategy == "fewestcalls":
            metric = m.calls
        elif strategy in ("random", "wrandom"):
            metric = self.rng.randrange(1000)
        else:  # pragma: no cover - conf.py rejects unknown strategies
            metric = 0
        return metric + m.penalty * 1000000

    def check(self, uid: str, now: float, our_turn_loop: bool) -> Decision:
        """One turn of the caller's loop at ``now``.

        ``our_turn_loop`` False: the holding pen (wait_our_turn); True: the head loop
        after ``retry`` (queue_exec), where a failed attempt leads to ``wait retry``.
        """
        entry = self.entries[uid]
        q = self.queues[entry.queue]
        if entry.expire is not None and now >= entry.expire:
            return Decision("leave", reason="TIMEOUT")
        if not self.is_our_turn(entry, now):
            if q.spec.leavewhenempty and self.member_status_empty(q, q.spec.leavewhenempty, now):
                return Decision("leave", reason="LEAVEEMPTY", abandon=our_turn_loop)
            return Decision("wait", until=now + RECHECK, reason="recheck")
        members = self._choose(q, entry, now)
        if members:
            timeout = float(q.spec.timeout)
            if entry.expire is not None and q.spec.timeoutpriority == "app":
                left = max(0.0, entry.expire - now)
                timeout = min(timeout, left) if timeout else left
            return Decision("ring", members=tuple(members), ring_timeout=timeout)
        # Nobody ringable although it is our turn: try_calling comes back empty.
        if q.spec.leavewhenempty and self.member_status_empty(q, q.spec.leavewhenempty, now):
            return Decision("leave", reason="LEAVEEMPTY", abandon=True)
        return Decision("wait", until=now + q.spec.retry, reason="retry")

    def _choose(self, q: Queue, entry: Entry, now: float) -> list[Member]:
        if q.spec.strategy in ("rrmemory", "rrordered"):
            q.wrapped = False
        everyone = [
            (self._metric(q, m, pos, entry, now), pos, m) for pos, m in enumerate(q.members)
        ]
        ringable = sorted(
            (t for t in everyone if self.can_ring(t[2], now)), key=lambda t: (t[0], t[1])
        )
        if not ringable:
            self._store_next(q, entry, None)
            return []
        best = ringable[0]
        if q.spec.strategy == "ringall":
            chosen = [m for metric, _, m in ringable if metric == best[0]]
        else:
            chosen = [best[2]]
        # store_next_rr / store_next_lin: the best member not tried yet. ring_one tried
        # (and dropped) every unringable member with a better metric than the one rung;
        # the ones after it are untried, ringable or not.
        untried = sorted(
            (t for t in everyone if t[2] not in chosen and (t[0], t[1]) > (best[0], best[1])),
            key=lambda t: (t[0], t[1]),
        )
        self._store_next(q, entry, untried[0] if untried else None)
        return chosen

    def _store_next(self, q: Queue, entry: Entry, nxt: tuple[int, int, Member] | None) -> None:
        strategy = q.spec.strategy
        if strategy in ("rrmemory", "rrordered"):
            if nxt is not None:
                q.rrpos = nxt[0] % 1000
            elif q.wrapped:
                q.rrpos = 0
            else:
                q.rrpos += 1
            q.wrapped = False
        elif strategy == "linear":
            if nxt is not None:
                entry.linpos = nxt[0] % 1000
            elif q.wrapped:
                entry.linpos = 0
            else:
                entry.linpos += 1
            q.wrapped = False

    def start_ring(self, uid: str, members: Iterable[Member], now: float, timeout: float) -> None:
        entry = self.entries[uid]
        entry.ringing = list(members)
        entry.pending = True
        entry.ring_start = now
        entry.ring_deadline = now + timeout
        entry.tries += 1

    def ring_ended(self, uid: str, member: Member) -> bool:
        """One ringing member stopped (no answer, declined). True if none rings any more."""
        entry = self.entries.get(uid)
        if entry is None:
            return True
        if member in entry.ringing:
            entry.ringing.remove(member)
        if not entry.ringing:
            entry.pending = False
            return True
        return False

    # -------------------------------------------------- answered / completed
    def connect(self, uid: str, member: Member, now: float) -> LeaveInfo:
        """The member answered: the caller leaves the queue (QueueCallerLeave first)."""
        entry = self.entries[uid]
        q = self.queues[entry.queue]
        hold = entry.holdtime(now)
        # recalc_holdtime: the very first sample of a queue is taken as it is.
        if q.completed + q.abandoned == 0:
            q.holdtime = hold
        else:
            q.holdtime = ((q.holdtime << 2) - q.holdtime + hold) >> 2
        member.in_call = True
        member.lastqueue = q.name
        return self.leave(uid, now)

    def complete(
        self, queue: str, member: Member, now: float, talktime: int, holdtime: int
    ) -> None:
        """update_queue: the call with ``member`` ended (AgentComplete)."""
        q = self.queues[queue]
        targets = (
            list(self.memberships(member.interface)) if self.config.shared_lastcall else [member]
        )
        if member not in targets:
            targets.append(member)  # removed meanwhile: still account the call
        for m in targets:
            m.lastcall = int(now)
            m.calls += 1
            m.lastqueue = q.name
        member.in_call = False
        q.completed += 1
        if holdtime <= q.spec.servicelevel:
            q.completed_in_sl += 1
        if q.completed == 1:
            q.talktime = talktime
        else:
            q.talktime = ((q.talktime << 2) - q.talktime + talktime) >> 2

    # ------------------------------------------------------- member admin
    def add_member(
        self,
        queue: str,
        interface: str,
        now: float,
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
        membername: str = "",
        state_interface: str = "",
        wrapuptime: int = 0,
    ) -> Member:
        q = self.queues.get(queue)
        if q is None:
            raise QueueError("NOSUCHQUEUE")
        if q.member(interface) is not None:
            raise QueueError("EXISTS")
        spec = MemberSpec(interface, penalty, membername, state_interface, None, wrapuptime)
        m = self._new_member(q.spec, spec, now, dynamic=True)
        if paused:
            m.paused = True
            m.paused_reason = reason
            m.lastpause = int(now)
        # A newly added member inherits the shared lastcall of its other queues.
        if self.config.shared_lastcall:
            for other in self.memberships(interface):
                if other.lastcall > m.lastcall:
                    m.lastcall, m.calls, m.lastqueue = other.lastcall, other.calls, other.lastqueue
        self._attach(q, m)
        return m

    def remove_member(self, queue: str, interface: str) -> Member:
        q = self.queues.get(queue)
        if q is None:
            raise QueueError("NOSUCHQUEUE")
        m = q.member(interface)
        if m is None:
            raise QueueError("EXISTS")
        if not m.dynamic:
            raise QueueError("NOT_DYNAMIC")
        self._detach(q, m)
        return m

    def pause(
        self, interface: str, queue: str | None, paused: bool, reason: str, now: float
    ) -> list[Member]:
        """set_member_paused: one queue, or every queue of the member (no ``queue``)."""
        found: list[Member] = []
        for q in self._ordered:
            if queue and q.name.lower() != queue.lower():
                continue
            m = q.member(interface)
            if m is None:
                continue
            m.paused = paused
            m.paused_reason = reason if paused else ""
            if paused:
                m.lastpause = int(now)
            found.append(m)
        if not found:
            raise QueueError("NOTFOUND")
        return found

    def set_penalty(self, interface: str, queue: str | None, penalty: int) -> list[Member]:
        if penalty < 0:
            raise QueueError("INVALID")
        found = []
        for q in self._ordered:
            if queue and q.name.lower() != queue.lower():
                continue
            m = q.member(interface)
            if m is not None:
                m.penalty = penalty
                found.append(m)
        if not found:
            raise QueueError("NOTFOUND")
        return found

    # ------------------------------------------------------------- reports
    def summary(self, q: Queue, now: float) -> dict[str, int]:
        logged = sum(1 for m in q.members if m.status not in (Dev.INVALID, Dev.UNAVAILABLE))
        avail = sum(1 for m in q.members if self.is_member_available(q, m, now))
        longest = max((e.holdtime(now) for e in q.entries), default=0)
        return {
            "LoggedIn": logged,
            "Available": avail,
            "Callers": len(q.entries),
            "HoldTime": q.holdtime,
            "TalkTime": q.talktime,
            "LongestHoldTime": longest,
        }
