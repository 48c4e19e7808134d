"""Channels, bridges and AMI events of the simulated PBX: plain data, no I/O.

Identifiers are allocated like Asterisk does: one counter for the whole box gives both
the channel name suffix (``PJSIP/trunk-0000000f``, 8 hex digits) and the Uniqueid
(``<epoch>.<n>``, epoch = the second the channel was created). ``Linkedid`` is the
Uniqueid of the channel that started the call; every leg created for it inherits it.
Bridge ids are UUIDs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.sim.clock import Signal

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
}
DOWN, RING, RINGING, UP = 0, 4, 5, 6

CAUSE_TXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
}

UNKNOWN = "<unknown>"

# Event privileges as Asterisk prints them (the ``Privilege`` line).
P_CALL = "call,all"
P_DIALPLAN = "dialplan,all"
P_AGENT = "agent,all"
P_DTMF = "dtmf,all"
P_AGI = "agi,all"
P_REPORTING = "reporting,all"
P_SYSTEM = "system,all"
P_SECURITY = "security,all"

Header = tuple[str, str]


class Event:
    """One AMI event; encoded lazily and at most twice (with/without Timestamp)."""

    __slots__ = ("_enc", "_enc_ts", "at", "fields", "name", "privilege")

    def __init__(self, name: str, privilege: str, fields: list[Header], at: float) -> None:
        self.name = name
        self.privilege = privilege
        self.fields = fields
        self.at = at
        self._enc: bytes | None = None
        self._enc_ts: bytes | None = None

    def headers(self, timestamp: bool = False) -> list[Header]:
        out: list[Header] = [("Event", self.name)]
        if self.privilege:
            out.append(("Privilege", self.privilege))
            if timestamp:
                out.append(("Timestamp", f"{self.at:.6f}"))
        out.extend(self.fields)
        return out

    def encode(self, timestamp: bool = False) -> bytes:
        if timestamp:
            if self._enc_ts is None:
                self._enc_ts = _encode(self.headers(True))
            return self._enc_ts
        if self._enc is None:
            self._enc = _encode(self.headers(False))
        return self._enc

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Event({self.name}, {dict(self.fields)!r})"


def _encode(headers: list[Header]) -> bytes:
    parts = []
    for k, v in headers:
        if "\r" in v or "\n" in v:
            v = v.replace("\r", " ").replace("\n", " ")
        parts.append(f"{k}: {v}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    device: str  # e.g. PJSIP/trunk, PJSIP/agent1
    created: float
    state: int = DOWN
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    language: str = "en"
    accountcode: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 1
    dnid: str = ""
    vars: dict[str, str] = field(default_factory=dict)
    app: str = ""
    appdata: str = ""
    bridge: Bridge | None = None
    dead: bool = False
    hangup_cause: int = 0
    answered_at: float | None = None
    gone: Signal[int] | None = None  # set with the cause when the channel hangs up
    role: str = "caller"  # caller | agent | outbound
    call: Any = None  # the dialplan run (dialplan.CallRun) that owns this channel
    # --- simulator bookkeeping (not Asterisk state) ---
    waiting: Signal[str] | None = None  # set by ``Pbx.interrupt`` to wake the dialplan
    hangup_requested: bool = False
    goto: tuple[str, str, int] | None = None  # a Redirect/transfer target to continue at
    queue_options: str = ""
    late_complete: bool = False
    conns: list[Any] = field(default_factory=list)  # QueueConn of a caller
    conn: Any = None  # QueueConn of an agent leg
    qcall_uid: str = ""  # the caller an agent leg rings for
    rtcp_count: int = 0

    def snapshot(self, prefix: str = "") -> list[Header]:
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", self.cid_num),
            (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.conn_num),
            (prefix + "ConnectedLineName", self.conn_name),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.accountcode),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]

    @property
    def up(self) -> bool:
        return self.state == UP

    def state_desc(self) -> str:
        return STATE_DESC.get(self.state, "Unknown")


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    channels: list[Channel] = field(default_factory=list)
    technology: str = "simple_bridge"

    def headers(self) -> list[Header]:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", self.technology),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def peer(self, chan: Channel) -> Channel | None:
        return next((c for c in self.channels if c is not chan), None)
