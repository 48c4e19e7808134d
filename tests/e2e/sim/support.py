"""Test support for the simulated PBX: a raw AMI client, a replaying FastAGI server and
the comparison of event streams with the recorded captures."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.sim.amiproto import Message, StreamReader, parse_sent, parse_stream

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"

# Events the service consumes (the AMI normaliser's table); the contract compares them.
CONSUMED = frozenset(
    {
        "Newchannel",
        "Newstate",
        "NewCallerid",
        "DTMFBegin",
        "DTMFEnd",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentRingNoAnswer",
        "AgentConnect",
        "AgentComplete",
        "AgentDump",
        "BlindTransfer",
        "AttendedTransfer",
        "BridgeEnter",
        "BridgeLeave",
        "Hangup",
        "QueueMemberStatus",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberPause",
        "QueueMemberPenalty",
        "AGIExecStart",
        "AGIExecEnd",
        "FullyBooted",
    }
)
# Two legs' teardown and device-state driven member status are ordered by thread timing
# in a real Asterisk (compare 01, 04 and 08: same scenario, different interleavings), so
# those are compared per channel / per member, not in the global order.
RACY = frozenset({"QueueMemberStatus", "BridgeLeave", "Hangup"})
# Never compared: noise (off in the simulator by default) and unconsumed device states.
NOT_COMPARED = frozenset(
    {"VarSet", "Newexten", "RTCPSent", "RTCPReceived", "DeviceStateChange", "SuccessfulAuth"}
)
KEY_FIELDS = (
    "Queue",
    "Position",
    "Count",
    "OriginalPosition",
    "Interface",
    "MemberName",
    "HoldTime",
    "TalkTime",
    "RingTime",
    "Reason",
    "Paused",
    "PausedReason",
    "Membership",
    "Penalty",
    "ChannelState",
    "Cause",
    "Digit",
    "Direction",
    "Command",
    "ResultCode",
    "Result",
    "Context",
    "Exten",
    "Extension",
    "IsExternal",
    "CallerIDNum",
    "ConnectedLineNum",
)
MEMBER_FIELDS = ("Status", "Paused", "PausedReason", "Membership", "Penalty")
ID_FIELDS = (
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "TransfererUniqueid",
    "TransfererLinkedid",
    "TransfereeUniqueid",
    "TransfereeLinkedid",
)
CHAN_FIELDS = ("Channel", "DestChannel", "TransfererChannel", "TransfereeChannel")


def capture(name: str) -> list[Message]:
    banner, msgs = parse_stream((FIXTURES / f"{name}.ami.txt").read_bytes())
    assert banner == "Asterisk Call Manager/11.0.0"
    return msgs


def sent_actions(name: str) -> list[tuple[float, Message]]:
    return list(parse_sent((FIXTURES / f"{name}.sent.txt").read_text(encoding="utf-8")))


# ------------------------------------------------------------------ AMI client


class RawAmi:
    """An AMI client on a bare socket that keeps every message it gets, in order."""

    def __init__(self) -> None:
        self.reader = StreamReader()
        self.messages: list[Message] = []
        self.raw = bytearray()
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None
        self.closed = asyncio.Event()

    async def connect(self, port: int, host: str = "127.0.0.1") -> None:
        self._r, self._w = await asyncio.open_connection(host, port)
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self._r is not None
        try:
            while True:
                data = await self._r.read(4096)
                if not data:
                    break
                self.raw += data
                self.messages += self.reader.feed(data)
                self._new.set()
        finally:
            self.closed.set()
            self._new.set()

    async def send(self, message: Message | bytes) -> None:
        assert self._w is not None
        self._w.write(message if isinstance(message, bytes) else message.encode())
        await self._w.drain()

    async def wait_for(self, pred: Callable[[Message], bool], limit: float = 5.0) -> Message:
        async def loop() -> Message:
            seen = 0
            while True:
                for m in self.messages[seen:]:
                    if pred(m):
                        return m
                seen = len(self.messages)
                if self.closed.is_set():
                    raise ConnectionError("AMI connection closed")
                self._new.clear()
                await self._new.wait()

        return await asyncio.wait_for(loop(), limit)

    async def response(self, action_id: str, limit: float = 5.0) -> Message:
        first = await self.wait_for(
            lambda m: m.has("Response") and m.get("ActionID") == action_id, limit
        )
        if first.get("EventList") == "start":
            await self.wait_for(
                lambda m: m.get("EventList") == "Complete" and m.get("ActionID") == action_id,
                limit,
            )
        return first

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()
            with contextlib.suppress(Exception):
                await self._w.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


# ----------------------------------------------------------- FastAGI replay server


@dataclass
class AgiReplay:
    """Plays the service side of an ``NN_*.agi.txt`` transcript; keeps what it got."""

    transcript: Path
    received: bytearray = field(default_factory=bytearray)
    replies: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self) -> list[tuple[str, str]]:
        steps = []
        for line in self.transcript.read_text(encoding="utf-8").splitlines():
            m = re.match(r"\[\s*[\d.]+\] (<<|>>|--) ?(.*)$", line)
            if m:
                steps.append((m[1], m[2]))
        return steps

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _readline(self, reader: asyncio.StreamReader) -> str:
        line = await asyncio.wait_for(reader.readline(), 10)
        self.received += line
        return line.decode("utf-8").rstrip("\n")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._readline(reader):
                pass
            expect_env = True
            for kind, text in self.script():
                if kind == "<<" and expect_env:
                    if text == "":
                        expect_env = False
                    continue
                if kind == ">>":
                    writer.write((text + "\n").encode())
                    await writer.drain()
                elif kind == "<<":
                    self.replies.append(await self._readline(reader))
                elif text.startswith("closing socket"):
                    break
        finally:
            writer.close()
            self.done.set()


# -------------------------------------------------------------------- comparison


def _events(msgs: Iterable[Message]) -> list[Message]:
    return [
        m
        for m in msgs
        if m.has("Event") and m.get("Event") not in NOT_COMPARED and not m.has("ActionID")
    ]


class IdMap:
    """Capture ids -> simulator ids, learnt in order of first appearance; consistent."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.chans: dict[str, str] = {}
        self.problems: list[str] = []

    def learn(self, cap: Message, sim: Message) -> None:
        for f in ID_FIELDS:
            a, b = cap.get(f), sim.get(f)
            if a and b and a not in self.ids:
                self.ids[a] = b
        for f in CHAN_FIELDS:
            a, b = cap.get(f), sim.get(f)
            if a and b and a not in self.chans:
                self.chans[a] = b

    def check(self, cap: Message, sim: Message, where: str) -> None:
        for f in ID_FIELDS:
            a, b = cap.get(f), sim.get(f)
            if bool(a) != bool(b) or (a and self.ids.get(a) != b):
                self.problems.append(f"{where}: {f} {a!r}->{self.ids.get(a)!r} but sim {b!r}")
        for f in CHAN_FIELDS:
            a, b = cap.get(f), sim.get(f)
            if bool(a) != bool(b):
                self.problems.append(f"{where}: {f} present in one only ({a!r}/{b!r})")
            elif a and a.rsplit("-", 1)[0] != b.rsplit("-", 1)[0]:
                self.problems.append(f"{where}: {f} device {a!r} vs {b!r}")


def key(m: Message, fields: Sequence[str] = KEY_FIELDS) -> tuple[str, tuple[tuple[str, str], ...]]:
    return m.get("Event"), tuple((f, m.get(f)) for f in fields if m.has(f))


def _chan_keys(m: Message) -> set[str]:
    return {
        m.get(f)
        for f in ("Uniqueid", "DestUniqueid", "TransfererUniqueid", "TransfereeUniqueid")
        if m.get(f)
    }


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def add(self, what: str, cap: object, sim: object) -> None:
        self.problems.append(f"{what}:\n  capture: {cap}\n  sim:     {sim}")

    def __bool__(self) -> bool:
        return not self.problems


def compare_events(cap_msgs: Sequence[Message], sim_msgs: Sequence[Message]) -> Report:
    """The fidelity contract for events (module doc of test_fidelity)."""
    rep = Report()
    cap = [m for m in _events(cap_msgs) if m.get("Event") in CONSUMED]
    sim = [m for m in _events(sim_msgs) if m.get("Event") in CONSUMED]
    ids = IdMap()
    # 1. the global order of everything consumed except the racy ones
    ca = [m for m in cap if m.get("Event") not in RACY]
    sa = [m for m in sim if m.get("Event") not in RACY]
    if [key(m) for m in ca] != [key(m) for m in sa]:
        rep.add("global order (consumed, non-racy)", [key(m) for m in ca], [key(m) for m in sa])
    for c, s in zip(ca, sa, strict=False):
        ids.learn(c, s)
    for i, (c, s) in enumerate(zip(ca, sa, strict=False)):
        ids.check(c, s, f"#{i} {c.get('Event')}")
    # 2. per channel, with the racy ones
    cap_chans = list(dict.fromkeys(u for m in cap for u in sorted(_chan_keys(m))))
    for cu in cap_chans:
        su = ids.ids.get(cu)
        cseq = [key(m) for m in cap if cu in _chan_keys(m)]
        sseq = [key(m) for m in sim if su in _chan_keys(m)]
        if cseq != sseq:
            rep.add(f"channel {cu} (sim {su})", cseq, sseq)

    # 3. per member (queue, interface): status, pause, membership
    def members(msgs: Sequence[Message]) -> dict[tuple[str, str], list[object]]:
        out: dict[tuple[str, str], list[object]] = {}
        for m in msgs:
            if m.get("Event", "").startswith("QueueMember"):
                out.setdefault((m.get("Queue"), m.get("Interface")), []).append(
                    key(m, MEMBER_FIELDS)
                )
        return out

    if members(cap) != members(sim):
        rep.add("member status sequences", members(cap), members(sim))
    # 4. the same events, as many of each (consumed and the other non-noise ones)
    cc = Counter(m.get("Event") for m in _events(cap_msgs))
    sc = Counter(m.get("Event") for m in _events(sim_msgs))
    if cc != sc:
        rep.add("event counts (non-noise)", dict(cc - sc), dict(sc - cc))
    rep.problems += ids.problems
    return rep


def responses(msgs: Sequence[Message]) -> dict[str, list[Message]]:
    """Per ActionID: the response and its list items, in order."""
    out: dict[str, list[Message]] = {}
    for m in msgs:
        aid = m.get("ActionID")
        if aid:
            out.setdefault(aid, []).append(m)
    return out


RESPONSE_FIELDS = (
    "Response",
    "Message",
    "EventList",
    "ListItems",
    "Items",
    "Variable",
    "Value",
    "Ping",
    "Events",
    "Queue",
    "Name",
    "Location",
    "StateInterface",
    "Membership",
    "Penalty",
    "CallsTaken",
    "InCall",
    "Status",
    "Paused",
    "PausedReason",
    "Wrapuptime",
    "Max",
    "Strategy",
    "Calls",
    "Holdtime",
    "TalkTime",
    "Completed",
    "Abandoned",
    "ServiceLevel",
    "ServicelevelPerf",
    "ServicelevelPerf2",
    "Weight",
    "Position",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Wait",
    "Priority",
    "LoggedIn",
    "Available",
    "Callers",
    "HoldTime",
    "LongestHoldTime",
    "ChannelState",
    "Context",
    "Exten",
    "Application",
    "ApplicationData",
    "Type",
    "DNID",
    "Data",
)


def compare_responses(cap_msgs: Sequence[Message], sim_msgs: Sequence[Message]) -> Report:
    rep = Report()
    cap, sim = responses(cap_msgs), responses(sim_msgs)
    if list(cap) != list(sim):
        rep.add("action ids answered", list(cap), list(sim))
    for aid, cmsgs in cap.items():
        smsgs = sim.get(aid, [])
        ck = [
            (m.keys()[0], m.name, tuple((f, m.get(f)) for f in RESPONSE_FIELDS if m.has(f)))
            for m in cmsgs
        ]
        sk = [
            (m.keys()[0], m.name, tuple((f, m.get(f)) for f in RESPONSE_FIELDS if m.has(f)))
            for m in smsgs
        ]
        if aid and cmsgs and cmsgs[0].get("Message") == "Command output follows":
            # CLI text has "N secs ago" in it: compare the shape and the first line.
            co, so = cmsgs[0].get_all("Output"), smsgs[0].get_all("Output") if smsgs else []
            if len(co) != len(so) or co[:1] != so[:1]:
                rep.add(f"{aid} command output", co, so)
            continue
        if ck != sk:
            rep.add(f"response {aid}", ck, sk)
        # header order of every response and item (ActionID position included)
        if [m.keys() for m in cmsgs] != [m.keys() for m in smsgs]:
            rep.add(f"{aid} header order", [m.keys() for m in cmsgs], [m.keys() for m in smsgs])
    return rep
