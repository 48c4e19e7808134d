"""AMI frames -> typed domain events: one table from event name to function.

Pure: the normaliser holds only the PBX name, the caller-privacy keys and a bounded
duplicate counter for event identities. Every event it makes carries
- ``at``: the frame's ``Timestamp`` (manager.conf ``timestampevents = yes``) or else the
  receive time the adapter passes in, so a backlog or a replay never distorts durations;
- ``key``: a hash of the frame's bytes (plus an occurrence number for identical frames),
  so the same stream written twice is stored once;
- ``raw``: the frame's fields for the log, caller numbers and names replaced by their
  keyed hash and long digit runs in free text masked.

Events not in ``HANDLERS`` are not the service's business and are dropped (most of them
never reach here: the parser skips them by name, and manager.conf filters at the source).

The list items that answer the resync's actions (``QueueStatus``, ``CoreShowChannels``)
come through here too, as the same frames (``Normaliser.list_item``, ``LIST_HANDLERS``):
a ``QueueMember`` item is read by the same function as a ``QueueMemberStatus`` event, so
a member's fields are mapped in one place; waiting callers and live channels become the
resync's ``LiveEntry`` and ``LiveChannel`` (app/acd/resync.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime

from app.acd import events as ev
from app.acd.records import fit_id
from app.acd.resync import LiveChannel, LiveEntry
from app.ami.parser import AmiFrame, RawPredicate
from app.privacy import Caller, CallerPrivacy, mask_number

# Channel variables worth an event: the queue's verdict, the AGI's, the IVR's routing.
KEPT_VARIABLES = frozenset(
    {
        "QUEUESTATUS",
        "AGISTATUS",
        "DIALSTATUS",
        "ACD_ROUTE",
        "ACD_QUEUE",
        "ACD_FORWARD",
        "ACD_SURVEY",
    }
)
_CALLER_KEYS = ("CallerIDNum", "CallerIDName", "ConnectedLineNum", "ConnectedLineName")
_FREE_TEXT_KEYS = frozenset({"AppData", "Command", "Result", "Value", "Data", "Message"})
_LONG_DIGITS = re.compile(r"\+?\d{6,}")
_DUP_WINDOW = 65536
_blake2b = hashlib.blake2b
_MEMO_SIZE = 4096  # Timestamp seconds remembered
# Callers' hashes remembered: a call repeats its caller in every event, so the calls up
# now (at most a few hundred) are what matters. 65,536 (the frames' window) kept some
# forty days of callers, and the service's memory rose with them (bench/soak.py).
_CALLER_MEMO = 4096


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _int(value: str, default: int = 0) -> int:
    """A numeric header; ``default`` when it is none, or beyond 64 bits (Asterisk's are C
    integers; a longer one would stop the log's JSON encoder). A column narrower than
    that fits it in the record (``app.acd.records.bounded``)."""
    try:
        number = int(value)
    except ValueError:
        return default
    return number if _INT_MIN <= number <= _INT_MAX else default


def _uid(f: AmiFrame, header: str) -> str:
    """A Uniqueid or Linkedid header as the 64-character columns hold it: Asterisk allows
    150 characters. Every id header goes through here, so matching ids stay matching."""
    return fit_id(f.get(header), "ami." + header)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # not "²" or "٣", which isdigit() takes


def parse_timestamp(value: str) -> datetime | None:
    """``1795362316.123456`` -> aware UTC datetime (exact to the microsecond); None for
    anything else, a time out of datetime's range included (the caller then uses the
    receive time: a garbled header must not stop the reader)."""
    sec, _, usec = value.partition(".")
    if not _digits(sec) or (usec and not _digits(usec)):
        return None
    micro = int((usec + "000000")[:6]) if usec else 0
    try:
        return datetime.fromtimestamp(int(sec), UTC).replace(microsecond=micro)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass(slots=True)
class _Ctx:
    """What every handler needs besides the frame."""

    pbx: str
    at: datetime
    key: str
    raw: dict[str, str]
    privacy: Normaliser


Handler = Callable[[AmiFrame, _Ctx], ev.DomainEvent | None]


def _base(f: AmiFrame, c: _Ctx) -> dict[str, object]:
    return {
        "at": c.at,
        "pbx": c.pbx,
        "key": c.key,
        "linkedid": _uid(f, "Linkedid"),
        "uniqueid": _uid(f, "Uniqueid"),
        "raw": c.raw,
    }


def _newchannel(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.ChannelCreated(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        caller=c.privacy.caller(f.get("CallerIDNum")),
        context=f.get("Context"),
        exten=f.get("Exten"),
        state=_int(f.get("ChannelState")),
    )


def _newstate(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.ChannelStateChanged(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        state=_int(f.get("ChannelState")),
        state_desc=f.get("ChannelStateDesc"),
    )


def _newcallerid(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.CallerIdChanged(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        caller=c.privacy.caller(f.get("CallerIDNum")),
    )


def _dtmf(end: bool) -> Handler:
    def handler(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
        duration = f.get("DurationMs")
        return ev.DtmfDigit(
            **_base(f, c),  # type: ignore[arg-type]
            channel=f.get("Channel"),
            digit=f.get("Digit"),
            received=f.get("Direction") == "Received",
            end=end,
            duration_ms=_int(duration) if duration else None,
        )

    return handler


def _varset(f: AmiFrame, c: _Ctx) -> ev.DomainEvent | None:
    variable = f.get("Variable")
    if variable not in KEPT_VARIABLES:
        return None
    return ev.VariableSet(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        variable=variable,
        value=f.get("Value"),
    )


def _queue_join(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.QueueCallerJoined(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        queue=f.get("Queue"),
        position=_int(f.get("Position")),
        count=_int(f.get("Count")),
        caller=c.privacy.caller(f.get("CallerIDNum")),
    )


def _queue_leave(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.QueueCallerLeft(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        queue=f.get("Queue"),
        position=_int(f.get("Position")),
        count=_int(f.get("Count")),
    )


def _queue_abandon(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.QueueCallerAbandoned(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        queue=f.get("Queue"),
        position=_int(f.get("Position")),
        original_position=_int(f.get("OriginalPosition")),
        hold_time=_int(f.get("HoldTime")),
    )


def _agent_fields(f: AmiFrame, c: _Ctx) -> dict[str, object]:
    return {
        **_base(f, c),
        "channel": f.get("Channel"),
        "queue": f.get("Queue"),
        "interface": f.get("Interface"),
        "member_name": f.get("MemberName"),
        "agent_channel": f.get("DestChannel"),
        "agent_uniqueid": _uid(f, "DestUniqueid"),
    }


def _agent_called(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.AgentCalled(**_agent_fields(f, c))  # type: ignore[arg-type]


def _agent_ringnoanswer(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.AgentRingNoAnswer(
        **_agent_fields(f, c),  # type: ignore[arg-type]
        ring_time_ms=_int(f.get("RingTime")),
    )


def _agent_connect(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.AgentConnected(
        **_agent_fields(f, c),  # type: ignore[arg-type]
        hold_time=_int(f.get("HoldTime")),
        ring_time=_int(f.get("RingTime")),
    )


def _agent_complete(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.AgentCompleted(
        **_agent_fields(f, c),  # type: ignore[arg-type]
        hold_time=_int(f.get("HoldTime")),
        talk_time=_int(f.get("TalkTime")),
        reason=f.get("Reason"),
    )


def _agent_dump(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.AgentDumped(**_agent_fields(f, c))  # type: ignore[arg-type]


def _masked_destination(value: str) -> str:
    """A queue name stays; a number (which may be a citizen's) is masked."""
    return mask_number(value) if _LONG_DIGITS.search(value) else value


def _blind_transfer(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.BlindTransferred(
        at=c.at,
        pbx=c.pbx,
        key=c.key,
        raw=c.raw,
        linkedid=_uid(f, "TransfereeLinkedid"),
        uniqueid=_uid(f, "TransfereeUniqueid"),
        result=f.get("Result"),
        transferer_channel=f.get("TransfererChannel"),
        transferer_uniqueid=_uid(f, "TransfererUniqueid"),
        transferee_channel=f.get("TransfereeChannel"),
        context=f.get("Context"),
        extension=_masked_destination(f.get("Extension")),
    )


def _attended_transfer(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    dest_type = f.get("DestType")
    destination = f.get("DestApp") or f.get("DestBridgeUniqueid") or f.get("DestExten")
    return ev.AttendedTransferred(
        at=c.at,
        pbx=c.pbx,
        key=c.key,
        raw=c.raw,
        linkedid=_uid(f, "TransfereeLinkedid") or _uid(f, "OrigTransfererLinkedid"),
        uniqueid=_uid(f, "TransfereeUniqueid") or _uid(f, "OrigTransfererUniqueid"),
        result=f.get("Result"),
        transferer_channel=f.get("OrigTransfererChannel"),
        transferer_uniqueid=_uid(f, "OrigTransfererUniqueid"),
        target_channel=f.get("TransferTargetChannel") or f.get("SecondTransfererChannel"),
        dest_type=dest_type,
        destination=_masked_destination(destination),
    )


def _bridge(entered: bool) -> Handler:
    def handler(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
        return ev.BridgeChanged(
            **_base(f, c),  # type: ignore[arg-type]
            channel=f.get("Channel"),
            bridge_id=f.get("BridgeUniqueid"),
            entered=entered,
            num_channels=_int(f.get("BridgeNumChannels")),
        )

    return handler


def _hangup(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.ChannelHungUp(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        cause=_int(f.get("Cause")),
        cause_txt=f.get("Cause-txt"),
    )


def _hangup_request(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.HangupRequested(
        **_base(f, c),  # type: ignore[arg-type]
        channel=f.get("Channel"),
        cause=_int(f.get("Cause")),
    )


def _member(cls: type[ev.MemberEvent]) -> Callable[[AmiFrame, _Ctx], ev.MemberEvent]:
    def handler(f: AmiFrame, c: _Ctx) -> ev.MemberEvent:
        # List items of QueueStatus say Name/Location; the events MemberName/Interface.
        return cls(
            at=c.at,
            pbx=c.pbx,
            key=c.key,
            raw=c.raw,
            queue=f.get("Queue"),
            interface=f.get("Interface") or f.get("Location"),
            member_name=f.get("MemberName") or f.get("Name"),
            state_interface=f.get("StateInterface"),
            membership=f.get("Membership"),
            penalty=_int(f.get("Penalty")),
            calls_taken=_int(f.get("CallsTaken")),
            last_call=_int(f.get("LastCall")),
            in_call=f.get("InCall") == "1",
            status=_int(f.get("Status")),
            paused=f.get("Paused") == "1",
            paused_reason=f.get("PausedReason"),
            ringinuse=f.get("Ringinuse") == "1",
        )

    return handler


def _queue_entry(f: AmiFrame, c: _Ctx) -> LiveEntry:
    """A caller waiting in a queue (QueueEntry, a list item of QueueStatus)."""
    return LiveEntry(
        queue=f.get("Queue"),
        uniqueid=_uid(f, "Uniqueid"),
        position=_int(f.get("Position")),
        wait_seconds=float(_int(f.get("Wait"))),
    )


def _duration(value: str) -> float:
    """``00:01:05`` (CoreShowChannel Duration) -> seconds."""
    total = 0
    for part in value.split(":"):
        try:
            total = total * 60 + int(part)
        except ValueError:
            return 0.0
    return float(total)


def _core_show_channel(f: AmiFrame, c: _Ctx) -> LiveChannel:
    """A channel up now (CoreShowChannel, a list item of CoreShowChannels); its ids fitted
    as the events' are, so the two name one call."""
    return LiveChannel(
        uniqueid=_uid(f, "Uniqueid"),
        linkedid=_uid(f, "Linkedid") or _uid(f, "Uniqueid"),
        channel=f.get("Channel"),
        duration_seconds=_duration(f.get("Duration")),
        application=f.get("Application"),
        application_data=f.get("ApplicationData"),
        bridge_id=f.get("BridgeId"),
    )


def _device_state(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
    return ev.DeviceStateChanged(
        at=c.at, pbx=c.pbx, key=c.key, raw=c.raw, device=f.get("Device"), state=f.get("State")
    )


# res_agi's commands; the longest that starts a command line is its verb.
AGI_VERBS = frozenset(
    {
        "ANSWER",
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "CONTROL STREAM FILE",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET DATA",
        "GET FULL VARIABLE",
        "GET OPTION",
        "GET VARIABLE",
        "GOSUB",
        "HANGUP",
        "NOOP",
        "RECEIVE CHAR",
        "RECEIVE TEXT",
        "RECORD FILE",
        "SAY ALPHA",
        "SAY DATE",
        "SAY DATETIME",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY PHONETIC",
        "SAY TIME",
        "SEND IMAGE",
        "SEND TEXT",
        "SET AUTOHANGUP",
        "SET CALLERID",
        "SET CONTEXT",
        "SET EXTENSION",
        "SET MUSIC",
        "SET PRIORITY",
        "SET VARIABLE",
        "SPEECH ACTIVATE GRAMMAR",
        "SPEECH CREATE",
        "SPEECH DEACTIVATE GRAMMAR",
        "SPEECH DESTROY",
        "SPEECH LOAD GRAMMAR",
        "SPEECH RECOGNIZE",
        "SPEECH SET",
        "SPEECH UNLOAD GRAMMAR",
        "STREAM FILE",
        "TDD MODE",
        "VERBOSE",
        "WAIT FOR DIGIT",
    }
)


def agi_verb(command: str) -> str:
    words = command.split()
    for n in (3, 2, 1):
        verb = " ".join(words[:n]).upper()
        if len(words) >= n and verb in AGI_VERBS:
            return verb
    return "OTHER"


def _agi_exec(start: bool) -> Handler:
    def handler(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
        # Only the verb: arguments and results may carry a caller's number.
        verb = agi_verb(f.get("Command"))
        code = f.get("ResultCode")
        return ev.AgiExec(
            **_base(f, c),  # type: ignore[arg-type]
            channel=f.get("Channel"),
            start=start,
            command_id=f.get("CommandId"),
            command=verb,
            result_code=_int(code) if code else None,
        )

    return handler


def _lifecycle(what: str) -> Handler:
    def handler(f: AmiFrame, c: _Ctx) -> ev.DomainEvent:
        detail = f.get("Status") or f.get("Shutdown") or f.get("Module")
        return ev.PbxLifecycle(
            at=c.at,
            pbx=c.pbx,
            key=c.key,
            raw=c.raw,
            what=what,  # type: ignore[arg-type]
            detail=detail,
        )

    return handler


# The one table: AMI event name -> normaliser function.
HANDLERS: dict[str, Handler] = {
    "Newchannel": _newchannel,
    "Newstate": _newstate,
    "NewCallerid": _newcallerid,
    "DTMFBegin": _dtmf(end=False),
    "DTMFEnd": _dtmf(end=True),
    "VarSet": _varset,
    "QueueCallerJoin": _queue_join,
    "QueueCallerLeave": _queue_leave,
    "QueueCallerAbandon": _queue_abandon,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _agent_ringnoanswer,
    "AgentConnect": _agent_connect,
    "AgentComplete": _agent_complete,
    "AgentDump": _agent_dump,
    "BlindTransfer": _blind_transfer,
    "AttendedTransfer": _attended_transfer,
    "BridgeEnter": _bridge(entered=True),
    "BridgeLeave": _bridge(entered=False),
    "Hangup": _hangup,
    "HangupRequest": _hangup_request,
    "QueueMemberAdded": _member(ev.MemberAdded),
    "QueueMemberRemoved": _member(ev.MemberRemoved),
    "QueueMemberPause": _member(ev.MemberPaused),
    "QueueMemberStatus": _member(ev.MemberStatus),
    "QueueMemberPenalty": _member(ev.MemberPenalty),
    "QueueMemberRinginuse": _member(ev.MemberRinginuse),
    "DeviceStateChange": _device_state,
    "AGIExecStart": _agi_exec(start=True),
    "AGIExecEnd": _agi_exec(start=False),
    "FullyBooted": _lifecycle("booted"),
    "Shutdown": _lifecycle("shutdown"),
    "Reload": _lifecycle("reload"),
}

ListItem = ev.MemberEvent | LiveEntry | LiveChannel

# The list items of the resync's actions the state machine takes. QueueParams (a queue's
# counters) and the *Complete items are not its business: Asterisk's own counters are not
# what the service counts.
LIST_HANDLERS: dict[str, Callable[[AmiFrame, _Ctx], ListItem]] = {
    "QueueMember": _member(ev.MemberStatus),
    "QueueEntry": _queue_entry,
    "CoreShowChannel": _core_show_channel,
}

_KEPT_VARIABLE_NAMES = frozenset(v.encode() for v in KEPT_VARIABLES)


def _kept_varset(raw: bytes) -> bool:
    start = raw.find(b"\r\nVariable: ")
    if start < 0:
        return False
    start += 12
    end = raw.find(b"\r\n", start)
    return raw[start : end if end >= 0 else len(raw)] in _KEPT_VARIABLE_NAMES


# What the service asks Asterisk for (manager.conf include filters): the events the state
# machine uses, and the PBX's lifecycle. The table above understands more (Newstate,
# Bridge*, AGIExec*, DeviceStateChange) and logs them if they come, but asking for them
# would double the stream for nothing: QueueMemberStatus already carries the device state
# of every agent, and the IVR's own sessions report what AGIExec would.
CONSUMED_EVENTS = frozenset(HANDLERS) - {
    "Newstate",
    "BridgeEnter",
    "BridgeLeave",
    "AGIExecStart",
    "AGIExecEnd",
    "DeviceStateChange",
}

# What the parser should decode (with a byte-level test where a name is not enough);
# everything else is skipped without decoding.
WANTED_EVENTS: dict[str, RawPredicate | None] = dict.fromkeys(HANDLERS)
WANTED_EVENTS["VarSet"] = _kept_varset


def _mask_text(value: str) -> str:
    return _LONG_DIGITS.sub("•", value)


def py_scrub(
    index: Mapping[str, str],
    hash: Callable[[str], str],
    mask: Callable[[str], str],
    free_text: AbstractSet[str],
) -> dict[str, str]:
    """A frame's fields (one value a key) for the log: a copy with each caller number or
    name (a key ending in one of ``_CALLER_KEYS``) replaced by ``hash`` of it, and each
    free-text value (a key in ``free_text``) by ``mask`` of it. The reference for the C
    ``scrub`` (app/ami/_speedups.c), which calls ``mask`` only where a value has six
    digits in a row, the least ``_LONG_DIGITS`` matches."""
    out = dict(index)
    for key, value in index.items():
        out[key] = _scrubbed(key, value, hash, mask, free_text)
    return out


def _scrubbed(
    key: str,
    value: str,
    hash: Callable[[str], str],
    mask: Callable[[str], str],
    free_text: AbstractSet[str],
) -> str:
    """One header's value for the log: a caller number or name hashed, free text masked."""
    if key.endswith(_CALLER_KEYS):
        return hash(value)
    if key in free_text:
        return mask(value)
    return value


scrub_index: Callable[
    [dict[str, str], Callable[[str], str], Callable[[str], str], AbstractSet[str]],
    dict[str, str],
]
try:
    from app.ami._speedups import scrub as scrub_index
except ImportError:  # no C compiler at install: the same results, in Python
    scrub_index = py_scrub

utc_time: Callable[[str], datetime | None] | None
try:  # parse_timestamp in C; None: Normaliser.timestamp's Python version
    from app.ami._speedups import utc_time
except ImportError:
    utc_time = None


class Normaliser:
    def __init__(self, pbx: str, privacy: CallerPrivacy) -> None:
        self.pbx = pbx
        self.privacy = privacy
        self._seen: dict[str, int] = {}
        self._hashes: dict[str, str] = {}  # caller number/name -> keyed hash (bounded)
        self._callers: dict[str, Caller] = {}  # caller number -> Caller (bounded)
        # Timestamp seconds -> (year, month, day, hour, minute, second) in UTC (bounded)
        self._seconds: dict[str, tuple[int, int, int, int, int, int]] = {}
        self.dropped = 0  # frames in the table whose content is not kept (most VarSet)
        self._ctx = _Ctx(pbx=pbx, at=datetime.min.replace(tzinfo=UTC), key="", raw={}, privacy=self)

    def event_key(self, raw: bytes) -> str:
        """Identity of a frame: its hash, plus how often the same bytes came before.

        With ``timestampevents`` every frame is unique by its timestamp; without, two
        identical frames (a repeated DeviceStateChange) stay two events. The counter is
        bounded: it restarts every ``_DUP_WINDOW`` distinct frames, deterministically,
        so replaying the same stream gives the same keys.
        """
        hexd = _blake2b(raw, digest_size=16).hexdigest()
        seen = self._seen
        n = seen.get(hexd, 0)
        if len(seen) >= _DUP_WINDOW:
            seen.clear()
        seen[hexd] = n + 1
        return hexd if n == 0 else f"{hexd}.{n}"

    def hash(self, value: str) -> str:
        """Keyed hash of a caller number or name, memoised: a call repeats its caller in
        every event, and HMAC is the costliest step of normalising."""
        cached = self._hashes.get(value)
        if cached is None:
            if len(self._hashes) >= _CALLER_MEMO:
                self._hashes.clear()
            cached = self._hashes[value] = self.privacy.hash(value)
        return cached

    def caller(self, number: str) -> Caller:
        """Memoised like ``hash`` (Caller is frozen): the same caller, the same object."""
        cached = self._callers.get(number)
        if cached is None:
            if len(self._callers) >= _CALLER_MEMO:
                self._callers.clear()
            cached = self._callers[number] = Caller(
                hash=self.hash(number), display=mask_number(number)
            )
        return cached

    def scrub(self, frame: AmiFrame) -> dict[str, str]:
        """The frame's fields for the log, with no caller number or name in clear."""
        if frame.repeats_keys:
            return self._scrub_lines(frame)
        # One key each (every event Asterisk sends): a copy of the frame's index with the
        # few sensitive values replaced, in C where it was built.
        return scrub_index(frame.index, self.hash, _mask_text, _FREE_TEXT_KEYS)

    def _scrub_lines(self, frame: AmiFrame) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, raw_value in frame.fields:
            value = _scrubbed(key, raw_value, self.hash, _mask_text, _FREE_TEXT_KEYS)
            if key in out:  # repeated keys (Output:) are joined, order kept
                out[key] = out[key] + "\n" + value
            else:
                out[key] = value
        return out

    def timestamp(self, value: str) -> datetime | None:
        """``parse_timestamp``: in C where the extension is built (``utc_time``, ~5x
        faster), else this Python version with whole seconds memoised."""
        if utc_time is not None:
            return utc_time(value)
        return self._timestamp(value)

    def _timestamp(self, value: str) -> datetime | None:
        """Events come many to a second, and an aware datetime from epoch seconds is the
        dear part of ``parse_timestamp``: the second's fields are remembered and the
        datetime built from them (a quarter of the cost of ``replace``)."""
        sec, _, usec = value.partition(".")
        fields = self._seconds.get(sec)
        if fields is None:
            base = parse_timestamp(sec)
            if base is None:
                return None
            if len(self._seconds) >= _MEMO_SIZE:
                self._seconds.clear()
            fields = self._seconds[sec] = (
                base.year,
                base.month,
                base.day,
                base.hour,
                base.minute,
                base.second,
            )
        if not usec:
            micro = 0
        elif _digits(usec):
            micro = int((usec + "000000")[:6])
        else:
            return None
        year, month, day, hour, minute, second = fields
        return datetime(year, month, day, hour, minute, second, micro, UTC)

    def normalise(self, frame: AmiFrame, received_at: datetime) -> ev.DomainEvent | None:
        handler = HANDLERS.get(frame.name) if frame.kind == "event" else None
        if handler is None:
            return None
        if frame.name == "VarSet" and frame.get("Variable") not in KEPT_VARIABLES:
            self.dropped += 1
            return None
        stamp = frame.get("Timestamp")
        at = (self.timestamp(stamp) if stamp else None) or received_at
        # One context, filled anew for each frame (handlers read it and keep nothing of
        # it): a new object per frame cost as much as a small event.
        ctx = self._ctx
        ctx.at = at
        ctx.key = self.event_key(frame.raw)
        ctx.raw = self.scrub(frame)
        return handler(frame, ctx)

    def list_item(self, frame: AmiFrame, at: datetime) -> ListItem | None:
        """A list item answering a resync action, at the resync's time ``at``; None for
        items the state machine does not take.

        Its key is the resync's time and what it names, not the frame's bytes: the same
        member is listed alike at every resync, and each resync's records are its own."""
        handler = LIST_HANDLERS.get(frame.name) if frame.kind == "event" else None
        if handler is None:
            return None
        ctx = self._ctx
        ctx.at = at
        interface = frame.get("Interface") or frame.get("Location")
        ctx.key = f"resync:{at.timestamp()}:{frame.get('Queue')}:{interface}"
        ctx.raw = self.scrub(frame)
        return handler(frame, ctx)
