"""The simulated PBX: channels, device states, bridges, the Queue() application and the
AMI events Asterisk 22 emits for them. Synchronous and clock-driven: timer callbacks
and the per-call dialplan coroutines (``dialplan.py``) call into it; it never does I/O.
Listeners (the AMI server, test recorders) receive every ``Event``.

Event order follows the captures in tests/fixtures/ami. Where real Asterisk orders two
legs' events by thread timing (teardown of caller and agent leg, device-state driven
QueueMemberStatus), one documented order is used; the late-AgentComplete variant seen
in capture 06 (AgentComplete after the caller's Hangup, without Dest* fields) can be
switched on per call (``late_complete``) or as a share of calls.
"""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.ami.normalise import KEPT_VARIABLES as FILTERED_VARIABLES
from app.sim.behaviour import AgentBehaviour, CallerBehaviour, ScriptedAgent, Talk
from app.sim.channels import (
    CAUSE_TXT,
    DOWN,
    P_AGENT,
    P_CALL,
    P_DIALPLAN,
    P_DTMF,
    P_REPORTING,
    RING,
    RINGING,
    UNKNOWN,
    UP,
    Bridge,
    Channel,
    Event,
    Header,
)
from app.sim.clock import Kernel, Signal, Timer
from app.sim.conf import QueuesConfig
from app.sim.queue import DEV_NAMES, Dev, Entry, LeaveInfo, Member, QueueEngine
from app.sim.truth import CallTruth, TruthLog

Listener = Callable[[Event], None]
DtmfMode = Literal["info", "rfc4733"]


def default_prompt_seconds(prompt: str) -> float:
    """How long a prompt plays. No sound files here: a table by name/role."""
    known = {
        "custom/welcome": 1.995,
        "custom/menu": 2.0,
        "custom/agi_menu": 2.0,
        "custom/invalid": 1.5,
        "custom/default": 1.5,
        "custom/closed": 3.5,
        "acd/info-fallback": 3.0,
    }
    if prompt in known:
        return known[prompt]
    base = prompt.rsplit("/", 1)[-1]
    if base.startswith("menu-"):
        return 6.0
    if base.startswith("offer-"):
        return 5.0
    if base.startswith("survey-"):
        return 4.0
    if base.startswith("closed-"):
        return 6.0
    if base.startswith("confirm-"):
        return 3.0
    return 3.0


@dataclass
class PbxConfig:
    queues: QueuesConfig
    start: float = 1415088000.0  # 2014-11-04 09:00 Copenhagen
    timezone: str = "Europe/Copenhagen"
    noise: bool = False
    timestampevents: bool = False
    dtmf: DtmfMode = "info"
    dialplan: Literal["contract", "lab"] = "contract"
    agi_address: str = "127.0.0.1:4573"
    flow: str = "jobcenter"
    fallback_queue: str = "kontanthjaelp"
    numbers: tuple[str, ...] = ("82565682", "+4582565682")
    globals: dict[str, str] = field(default_factory=dict)
    late_complete_share: float = 0.0
    seed: int = 0
    first_channel_id: int = 0
    answer_delay: float = 0.0
    prompt_seconds: Callable[[str], float] = default_prompt_seconds
    rtcp_interval: float = 5.0
    agi_connect_timeout: float = 2.0  # res_agi's MAX_AGI_CONNECT (2000 ms)
    agi_reply_timeout: float = 30.0  # real seconds waiting for the service's next command
    agi_hangup_grace: float = 5.0  # real seconds for the service to close after HANGUP
    agi_version: str = "22.11.0-rc1"
    forward_answer_share: float = 0.98
    forward_ring_seconds: tuple[float, float] = (3.0, 12.0)
    forward_talk_seconds: tuple[float, float] = (60.0, 300.0)
    callback_answer_share: float = 0.8
    dtmf_gap: float = 0.3  # seconds between two keys of one input
    uptime: int = 48  # FullyBooted Uptime/LastReload at start
    # Virtual seconds the FastAGI service "thinks" before its n-th line (script, n);
    # None: no time passes (the fidelity tests replay the lab service's pauses).
    agi_think: Callable[[str, int], float] | None = None


@dataclass(eq=False)
class QueueConn:
    """A caller bridged with a queue member (from AgentConnect to AgentComplete)."""

    queue: str
    member: Member
    caller: Channel
    agent: Channel
    bridge: Bridge
    connected: float
    holdtime: int
    talk_timer: Timer | None = None
    deferred: bool = False
    done: bool = False


@dataclass(eq=False)
class Leg:
    member: Member
    chan: Channel
    answer_timer: Timer | None = None


class Pbx:
    """One simulated Asterisk box (see module doc)."""

    def __init__(self, kernel: Kernel, config: PbxConfig, truth: TruthLog | None = None):
        self.kernel = kernel
        self.config = config
        self.rng = random.Random(f"pbx:{config.seed}")
        self.engine = QueueEngine(config.queues, kernel.now(), random.Random(config.seed))
        self.listeners: list[Listener] = []
        # Originate actions per ACD_CALLBACK_ID (app/sim/manager.py): one a call-back.
        self.callbacks_originated: dict[str, int] = {}
        self.agi_turn = 0  # several FastAGI hosts: where the next session starts
        self.channels: dict[str, Channel] = {}
        self.by_uid: dict[str, Channel] = {}
        self._n = config.first_channel_id
        self.globals: dict[str, str] = dict(config.globals)
        self.agents: dict[str, AgentBehaviour] = {}
        self.default_agent: AgentBehaviour = ScriptedAgent()
        self.unregistered: set[str] = set()
        self._devstate: dict[str, str] = {}
        self._dev_chans: dict[str, set[Channel]] = {}
        self.truth = truth if truth is not None else TruthLog()
        self.event_count = 0
        self.qcalls: dict[str, QueueCall] = {}
        self.booted = kernel.now()
        self.dialplan: Any = None  # dialplan.Dialplan, set by the runner
        # number/device -> (behaviour, seconds until answer or None) for Originate
        self.callee_factory: Callable[[str, str], tuple[CallerBehaviour, float | None]] = (
            _default_callee
        )
        self._bridge_rng = random.Random(f"bridge:{config.seed}")

    # ---------------------------------------------------------------- events
    def now(self) -> float:
        return self.kernel.now()

    def emit(self, name: str, privilege: str, fields: list[Header], linkedid: str = "") -> Event:
        ev = Event(name, privilege, fields, self.kernel.now())
        self.event_count += 1
        if linkedid:
            rec = self.truth.records.get(linkedid)
            if rec is not None:
                rec.events += 1
        for listener in self.listeners:
            listener(ev)
        return ev

    def chan_event(
        self, name: str, chan: Channel, extra: Iterable[Header] = (), privilege: str = P_CALL
    ) -> Event:
        return self.emit(name, privilege, [*chan.snapshot(), *extra], chan.linkedid)

    def dest_event(
        self,
        name: str,
        chan: Channel,
        dest: Channel | None,
        extra: Iterable[Header] = (),
        privilege: str = P_CALL,
        dest_snapshot: list[Header] | None = None,
    ) -> Event:
        fields = chan.snapshot()
        if dest is not None:
            fields += dest_snapshot if dest_snapshot is not None else dest.snapshot("Dest")
        fields += list(extra)
        return self.emit(name, privilege, fields, chan.linkedid)

    # variables and noise -------------------------------------------------
    def varset(self, chan: Channel, variable: str, value: str) -> None:
        chan.vars[variable] = value
        # Without noise the simulator stands for an Asterisk behind the service's
        # manager.conf, whose eventfilter still passes VarSet for the variables it uses.
        if (self.config.noise or variable in FILTERED_VARIABLES) and not chan.dead:
            self.chan_event("VarSet", chan, [("Variable", variable), ("Value", value)], P_DIALPLAN)

    def noise_var(self, chan: Channel, variable: str, value: str) -> None:
        """A VarSet Asterisk emits that nothing here reads (queue/RTP bookkeeping)."""
        if self.config.noise and not chan.dead:
            self.chan_event("VarSet", chan, [("Variable", variable), ("Value", value)], P_DIALPLAN)

    def newexten(self, chan: Channel, priority: int, app: str, appdata: str) -> None:
        chan.priority = priority
        chan.app = app
        chan.appdata = appdata
        if self.config.noise and not chan.dead:
            self.chan_event(
                "Newexten",
                chan,
                [("Extension", chan.exten), ("Application", app), ("AppData", appdata)],
                P_DIALPLAN,
            )

    def _rtcp_tick(self, chan: Channel) -> None:
        if chan.dead or not chan.up:
            return
        chan.rtcp_count += 1
        n = chan.rtcp_count
        self.chan_event(
            "RTCPSent",
            chan,
            [
                ("To", "127.0.0.1:16071"),
                ("From", "127.0.0.1:20683"),
                ("MES", "88.1"),
                ("SSRC", f"0x{zlib.crc32(chan.uniqueid.encode()):08x}"),
                ("PT", "200(SR)"),
                ("ReportCount", "1"),
                ("SentNTP", f"{self.now():.6f}"),
                ("SentRTP", str(n * 40000)),
                ("SentPackets", str(n * 250)),
                ("SentOctets", str(n * 40000)),
                ("Report0SourceSSRC", f"0x{zlib.crc32(chan.name.encode()):08x}"),
                ("Report0FractionLost", "0"),
                ("Report0CumulativeLost", "0"),
                ("Report0HighestSequence", str(n * 250 % 65536)),
                ("Report0SequenceNumberCycles", "0"),
                ("Report0IAJitter", "6"),
                ("Report0LSR", "0"),
                ("Report0DLSR", "0.0000"),
            ],
            P_REPORTING,
        )
        self.kernel.call_later(self.config.rtcp_interval, self._rtcp_tick, chan)

    def _rtp_qos(self, chan: Channel, suffix: str = "") -> None:
        if not self.config.noise:
            return
        for var, val in (
            ("RTPAUDIOQOS", "ssrc=421722531;themssrc=129510;lp=0;rxjitter=0.000000;rxcount=126"),
            ("RTPAUDIOQOSJITTER", "minrxjitter=000.000000;maxrxjitter=000.000875;"),
            ("RTPAUDIOQOSLOSS", "  minrxlost=000.000000;  maxrxlost=000.000000;"),
            ("RTPAUDIOQOSRTT", "     minrtt=000.000000;     maxrtt=000.000000;"),
            ("RTPAUDIOQOSMES", "   minrxmes=088.087887;   maxrxmes=088.087887;"),
        ):
            self.noise_var(chan, var + suffix, val)

    # ------------------------------------------------------------ channels
    def next_id(self) -> int:
        n = self._n
        self._n += 1
        return n

    def new_channel(
        self,
        device: str,
        role: str,
        *,
        linkedid: str | None = None,
        state: int = DOWN,
        cid_num: str = UNKNOWN,
        cid_name: str = UNKNOWN,
        context: str = "",
        exten: str = "s",
        dnid: str = "",
    ) -> Channel:
        n = self.next_id()
        now = self.now()
        uid = f"{int(now)}.{n}"
        chan = Channel(
            name=f"{device}-{n:08x}",
            uniqueid=uid,
            linkedid=linkedid or uid,
            device=device,
            created=now,
            state=state,
            cid_num=cid_num,
            cid_name=cid_name,
            context=context,
            exten=exten,
            dnid=dnid,
            role=role,
        )
        chan.gone = self.kernel.signal()
        self.channels[chan.name.lower()] = chan
        self.by_uid[uid] = chan
        self._dev_chans.setdefault(device.lower(), set()).add(chan)
        self.chan_event("Newchannel", chan)
        if role == "caller":
            self.noise_var(chan, "SIPDOMAIN", "127.0.0.1")
        return chan

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(name.lower())

    def set_state(self, chan: Channel, state: int) -> None:
        if chan.dead or chan.state == state:
            return
        chan.state = state
        if state == UP and chan.answered_at is None:
            chan.answered_at = self.now()
        self.chan_event("Newstate", chan)
        self.update_device(chan.device)
        # RTCP reports: the captures show them on the trunk (caller) leg only.
        if (
            state == UP
            and self.config.noise
            and self.config.rtcp_interval > 0
            and chan.device.lower() == "pjsip/trunk"
        ):
            self.kernel.call_later(self.config.rtcp_interval, self._rtcp_tick, chan)

    def answer(self, chan: Channel) -> None:
        self.set_state(chan, UP)

    def dtmf(self, chan: Channel, digit: str) -> None:
        if self.config.dtmf == "rfc4733":
            self.chan_event(
                "DTMFBegin", chan, [("Digit", digit), ("Direction", "Received")], P_DTMF
            )
            self.chan_event(
                "DTMFEnd",
                chan,
                [("Digit", digit), ("DurationMs", "140"), ("Direction", "Received")],
                P_DTMF,
            )
        else:
            self.chan_event(
                "DTMFEnd",
                chan,
                [("Digit", digit), ("DurationMs", "160"), ("Direction", "Received")],
                P_DTMF,
            )

    def soft_hangup(self, chan: Channel, cause: int = 16) -> None:
        if not chan.dead:
            self.chan_event("SoftHangupRequest", chan, [("Cause", str(cause))])

    def destroy(self, chan: Channel, cause: int) -> None:
        """The channel is gone: Hangup event, device state, waiters woken."""
        if chan.dead:
            return
        if chan.role == "caller":
            self._rtp_qos(chan)
        chan.dead = True
        chan.hangup_cause = cause
        self.chan_event(
            "Hangup", chan, [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
        )
        self.channels.pop(chan.name.lower(), None)
        self.by_uid.pop(chan.uniqueid, None)
        devs = self._dev_chans.get(chan.device.lower())
        if devs is not None:
            devs.discard(chan)
        self.update_device(chan.device)
        assert chan.gone is not None
        chan.gone.set(cause)
        self.interrupt(chan, "hangup")

    def interrupt(self, chan: Channel, why: str) -> None:
        waiting, chan.waiting = chan.waiting, None
        if waiting is not None:
            waiting.set(why)
        if chan.call is not None and chan.call.on_interrupt is not None:
            chan.call.on_interrupt()

    async def pause(self, chan: Channel, seconds: float) -> str:
        """Let the channel sit for ``seconds`` (playback, Wait): ``ok``, ``hangup`` or
        ``goto`` when interrupted by a hang-up or a Redirect."""
        if chan.dead or chan.hangup_requested:
            return "hangup"
        if chan.goto is not None:
            return "goto"
        sig: Signal[str] = self.kernel.signal()
        chan.waiting = sig
        timer = self.kernel.call_later(seconds, sig.set, "ok")
        try:
            return await sig.wait()
        finally:
            timer.cancel()
            if chan.waiting is sig:
                chan.waiting = None

    async def park(self, chan: Channel) -> str:
        """Wait, without a time limit, until ``interrupt`` wakes the channel."""
        if chan.dead:
            return "hangup"
        sig: Signal[str] = self.kernel.signal()
        chan.waiting = sig
        try:
            return await sig.wait()
        finally:
            if chan.waiting is sig:
                chan.waiting = None

    # ------------------------------------------------------- device states
    def set_registered(self, device: str, registered: bool) -> None:
        key = device.lower()
        if registered:
            self.unregistered.discard(key)
        else:
            self.unregistered.add(key)
        self.update_device(device)

    def device_state(self, device: str) -> int:
        chans = self._dev_chans.get(device.lower(), ())
        ringing = any(c.state == RINGING for c in chans)
        inuse = any(c.state in (UP, RING) and c.answered_at is not None for c in chans)
        if ringing and inuse:
            return Dev.RINGINUSE
        if inuse:
            return Dev.INUSE
        if ringing:
            return Dev.RINGING
        if device.lower() == "pjsip/trunk" or device.lower() in self.unregistered:
            return Dev.UNAVAILABLE
        return Dev.NOT_INUSE

    def devstate_event(self, device: str, state: str) -> None:
        if self._devstate.get(device) == state:
            return
        self._devstate[device] = state
        self.emit("DeviceStateChange", P_CALL, [("Device", device), ("State", state)])

    def update_device(self, device: str) -> None:
        state = self.device_state(device)
        key = device.lower()
        if key != "pjsip/trunk" and device not in self._devstate and state == Dev.NOT_INUSE:
            # First sight of an idle agent device: cached, not announced.
            self._devstate[device] = DEV_NAMES[Dev(state)]
        else:
            self.devstate_event(device, DEV_NAMES[Dev(state)])
        changed = self.engine.set_device_state(device, state)
        for m in changed:
            self.emit("QueueMemberStatus", P_AGENT, m.blob())
        for q in {m.queue for m in changed}:
            self.avail_devstate(q)

    def queue_devstate(self, queue: str) -> None:
        q = self.engine.queues[queue]
        self.devstate_event(f"Queue:{queue}", "RINGING" if q.entries else "NOT_INUSE")

    def avail_devstate(self, queue: str) -> None:
        q = self.engine.queues.get(queue)
        if q is None:
            return
        now = self.now()
        avail = any(self.engine.is_member_available(q, m, now) for m in q.members)
        name = f"Queue:{queue}_avail"
        state = "NOT_INUSE" if avail else "INUSE"
        if name not in self._devstate and avail:
            self._devstate[name] = state
            return
        self.devstate_event(name, state)

    def agent_behaviour(self, interface: str) -> AgentBehaviour:
        return self.agents.get(interface.lower(), self.default_agent)

    # -------------------------------------------------------------- members
    def member_event(self, name: str, m: Member) -> None:
        self.emit(name, P_AGENT, m.blob())

    def add_member(
        self,
        queue: str,
        interface: str,
        *,
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
        membername: str = "",
        state_interface: str = "",
        wrapuptime: int = 0,
    ) -> Member:
        m = self.engine.add_member(
            queue,
            interface,
            self.now(),
            penalty,
            paused,
            reason,
            membername,
            state_interface,
            wrapuptime,
        )
        m.status = self.device_state(m.state_interface)
        self.engine.device[m.state_interface.lower()] = m.status
        self.devstate_event(
            f"Queue:{queue}_pause_{interface}", "INUSE" if m.paused else "NOT_INUSE"
        )
        self.member_event("QueueMemberAdded", m)
        self.avail_devstate(queue)
        return m

    def remove_member(self, queue: str, interface: str) -> Member:
        m = self.engine.remove_member(queue, interface)
        self.member_event("QueueMemberRemoved", m)
        self.avail_devstate(queue)
        return m

    def pause_member(
        self, interface: str, queue: str | None, paused: bool, reason: str = ""
    ) -> list[Member]:
        members = self.engine.pause(interface, queue, paused, reason, self.now())
        for m in members:
            self.devstate_event(
                f"Queue:{m.queue}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE"
            )
            self.avail_devstate(m.queue)
            self.member_event("QueueMemberPause", m)
        return members

    def set_penalty(self, interface: str, queue: str | None, penalty: int) -> list[Member]:
        members = self.engine.set_penalty(interface, queue, penalty)
        for m in members:
            self.member_event("QueueMemberPenalty", m)
        return members

    # --------------------------------------------------------------- bridges
    def new_bridge(self) -> Bridge:
        bid = str(uuid.UUID(int=self._bridge_rng.getrandbits(128), version=4))
        bridge = Bridge(bid)
        self.emit("BridgeCreate", P_CALL, bridge.headers())
        return bridge

    def bridge_enter(self, bridge: Bridge, chan: Channel) -> None:
        bridge.channels.append(chan)
        chan.bridge = bridge
        self.emit("BridgeEnter", P_CALL, [*bridge.headers(), *chan.snapshot()], chan.linkedid)
        if len(bridge.channels) == 2:
            bridge.technology = "native_rtp"
            a, b = bridge.channels
            if self.config.noise:
                for _ in range(3):
                    self.noise_var(b, "BRIDGEPEER", a.name)
                    self.noise_var(b, "BRIDGEPVTCALLID", a.uniqueid)
                    self.noise_var(a, "BRIDGEPEER", b.name)
                    self.noise_var(a, "BRIDGEPVTCALLID", b.uniqueid)
                self._rtp_qos(b)
                self._rtp_qos(a, "BRIDGED")

    def bridge_leave(self, chan: Channel) -> None:
        bridge = chan.bridge
        if bridge is None:
            return
        if chan in bridge.channels:
            bridge.channels.remove(chan)
        chan.bridge = None
        self.emit("BridgeLeave", P_CALL, [*bridge.headers(), *chan.snapshot()], chan.linkedid)

    def bridge_destroy(self, bridge: Bridge) -> None:
        self.emit("BridgeDestroy", P_CALL, bridge.headers())

    # -------------------------------------------------------- hang-ups
    def _ended_by(self, chan: Channel, who: str) -> None:
        """Truth: who ended the call, the first to do so (the caller's leg is the one
        whose Uniqueid is the Linkedid, as the service reads it)."""
        rec = self.truth.records.get(chan.linkedid)
        if rec is not None and rec.hangup_by is None:
            rec.hangup_by = who

    def ami_hangup(self, chan: Channel, cause: int = 16) -> None:
        """AMI Hangup: a soft hang-up with ``cause``, then as if the party hung up."""
        if chan.uniqueid == chan.linkedid and not (chan.dead or chan.hangup_requested):
            self._ended_by(chan, "system")
        self.remote_hangup(chan, request=("SoftHangupRequest", cause))

    def remote_hangup(self, chan: Channel, request: tuple[str, int] | None = None) -> None:
        """The party on ``chan`` hangs up (a SIP BYE), wherever the channel is."""
        if chan.dead or chan.hangup_requested:
            return
        chan.hangup_requested = True
        if request is None and chan.uniqueid == chan.linkedid:
            self._ended_by(chan, "caller")
        elif request is None and chan.role == "agent" and chan.bridge is not None:
            self._ended_by(chan, "agent")  # an agent hanging up a conversation
        if request is not None:
            self.chan_event(request[0], chan, [("Cause", str(request[1]))])
        elif chan.role == "caller" and chan.call is not None and chan.bridge is not None:
            # A caller leaving a transferred/redirected call: HangupRequest shows Cause.
            if len(chan.conns) > 1:
                self.chan_event("HangupRequest", chan, [("Cause", "16")])
            else:
                self.chan_event("HangupRequest", chan)
        else:
            self.chan_event("HangupRequest", chan)
        qc = self.qcalls.get(chan.uniqueid)
        if qc is not None:
            qc.caller_gone()
            return
        if chan.bridge is not None:
            self.bridged_hangup(chan)
            return
        if chan.role == "agent":
            # A ringing agent declining: handled by its queue call.
            qc = self.qcalls.get(chan.qcall_uid)
            if qc is not None:
                qc.leg_declined(chan)
                return
        self.interrupt(chan, "hangup")
        if chan.role != "caller" and chan.call is None:
            self.soft_hangup(chan)
            self.destroy(chan, 16)

    def hangup_by_dialplan(self, chan: Channel, cause: int = 16) -> None:
        """Hangup() in the dialplan (or the end of it)."""
        if chan.dead:
            return
        if chan.uniqueid == chan.linkedid and not chan.hangup_requested:
            self._ended_by(chan, "system")
        if chan.bridge is not None:
            self.bridged_hangup(chan)
            return
        self.soft_hangup(chan, 16)
        # A channel whose caller already hung up ends with cause 0, as in 03 and 08b.
        self.destroy(chan, 0 if chan.hangup_requested else cause)

    def finalize(self, chan: Channel) -> None:
        """End of the dialplan for a channel the caller already hung up (or not)."""
        if chan.dead:
            return
        if chan.hangup_requested:
            self.soft_hangup(chan, 16)
            self.destroy(chan, 0)
        else:
            self.hangup_by_dialplan(chan, 16)

    # ---------------------------------------------------- bridged teardown
    def bridged_hangup(self, chan: Channel) -> None:
        """``chan`` hangs up while bridged: queue bookkeeping, then both legs."""
        bridge = chan.bridge
        assert bridge is not None
        peer = bridge.peer(chan)
        if chan.role == "agent":
            conn = _conn_of_agent(chan)
            if conn is not None:
                self._agent_hangup(conn)
                return
        active = next((c for c in chan.conns if not c.deferred and not c.done), None)
        if chan.role == "caller" and active is not None:
            self._caller_hangup(active)
            return
        # A plain two-party bridge (Dial to an external number).
        self.bridge_leave(chan)
        self.soft_hangup(chan, 16)
        self.destroy(chan, 16)
        if peer is not None and not peer.dead:
            self.bridge_leave(peer)
            self.bridge_destroy(bridge)
            if peer.role == "caller" and peer.call is not None:
                self.interrupt(peer, "peer")
            else:
                self.destroy(peer, 16)
        else:
            self.bridge_destroy(bridge)

    def agent_complete(self, conn: QueueConn, reason: str, with_dest: bool = True) -> None:
        if conn.done:
            return
        conn.done = True
        if conn.talk_timer is not None:
            conn.talk_timer.cancel()
        now = self.now()
        talk = int(now) - int(conn.connected)
        extra = [
            ("Queue", conn.queue),
            ("Interface", conn.member.interface),
            ("MemberName", conn.member.membername),
            ("HoldTime", str(conn.holdtime)),
            ("TalkTime", str(talk)),
            ("Reason", reason),
        ]
        dest = conn.agent if with_dest and not conn.agent.dead else None
        self.dest_event("AgentComplete", conn.caller, dest, extra, P_AGENT)
        self.engine.complete(conn.queue, conn.member, now, talk, conn.holdtime)
        run = conn.caller.call
        if run is not None:
            run.on_agent_complete(conn, now)

    def _deferred_completes(self, caller: Channel) -> None:
        for conn in caller.conns:
            if conn.deferred and not conn.done:
                self.agent_complete(conn, "caller", with_dest=False)

    def _caller_hangup(self, conn: QueueConn) -> None:
        caller, agent, bridge = conn.caller, conn.agent, conn.bridge
        late = caller.late_complete
        self._deferred_completes(caller)
        if not late:
            self.agent_complete(conn, "caller")
            self._bridgepeer_clear(caller, agent)
            self.bridge_leave(caller)
            self._queue_vars_noise(caller, conn.queue, twice=True)
            self.soft_hangup(caller, 16)
            self.destroy(caller, 16)
            self.bridge_leave(agent)
            self.bridge_destroy(bridge)
            self._rtp_qos(agent)
            self.destroy(agent, 16)
        else:
            self._bridgepeer_clear(caller, agent)
            self.bridge_leave(caller)
            self.bridge_leave(agent)
            self._queue_vars_noise(caller, conn.queue, twice=True)
            self.soft_hangup(caller, 16)
            self._rtp_qos(agent)
            self.destroy(agent, 16)
            self.destroy(caller, 16)
            self.agent_complete(conn, "caller", with_dest=False)
            self.bridge_destroy(bridge)

    def _agent_hangup(self, conn: QueueConn) -> None:
        caller, agent, bridge = conn.caller, conn.agent, conn.bridge
        self.agent_complete(conn, "agent")
        self._bridgepeer_clear(caller, agent)
        self.bridge_leave(agent)
        self.destroy(agent, 16)
        self.bridge_leave(caller)
        if "c" not in caller.queue_options:
            self.soft_hangup(caller, 16)
            self.bridge_destroy(bridge)
            self.destroy(caller, 16)
        else:
            self.bridge_destroy(bridge)
            self.interrupt(caller, "continue")

    def _bridgepeer_clear(self, caller: Channel, agent: Channel) -> None:
        if self.config.noise:
            for ch in (caller, agent):
                self.noise_var(ch, "BRIDGEPEER", "")
                self.noise_var(ch, "BRIDGEPVTCALLID", "")

    def _queue_vars_noise(self, chan: Channel, queue: str, twice: bool = False) -> None:
        if not self.config.noise:
            return
        q = self.engine.queues.get(queue)
        if q is None:
            return
        for _ in range(2 if twice else 1):
            for var, val in (
                ("QUEUENAME", queue),
                ("QUEUEMAX", str(q.spec.maxlen)),
                ("QUEUESTRATEGY", q.spec.strategy),
                ("QUEUECALLS", str(len(q.entries))),
                ("QUEUEHOLDTIME", str(q.holdtime)),
                ("QUEUETALKTIME", str(q.talktime)),
                ("QUEUECOMPLETED", str(q.completed)),
                ("QUEUEABANDONED", str(q.abandoned)),
                ("QUEUESRVLEVEL", str(q.spec.servicelevel)),
                ("QUEUESRVLEVELPERF", f"{q.sl_perf():.1f}"),
            ):
                self.noise_var(chan, var, val)

    # ------------------------------------------------ transfer & redirect
    def blind_transfer(self, transferer: Channel, context: str, exten: str) -> str:
        """AMI BlindTransfer: the transferer's bridge peers go to context/exten.

        Returns "" on success or the Asterisk error message.
        """
        bridge = transferer.bridge
        if bridge is None:
            return "Transfer not permitted"
        transferee = bridge.peer(transferer)
        if transferee is None:
            return "Transfer not permitted"
        self.chan_event("Unhold", transferer)
        fields: list[Header] = [("Result", "Success")]
        fields += transferer.snapshot("Transferer")
        fields += transferee.snapshot("Transferee")
        fields += bridge.headers()
        fields += [("IsExternal", "Yes"), ("Context", context), ("Extension", exten)]
        self.emit("BlindTransfer", P_CALL, fields, transferer.linkedid)
        # The leg that runs a dialplan here is the caller's. Transferring the agent leg
        # (the contract's way) sends the caller on; a transfer "of the caller" does the
        # same here (Asterisk would put the agent leg into that queue as a caller).
        mover, other = transferee, transferer
        if transferee.call is None and transferer.call is not None:
            mover, other = transferer, transferee
        conn = _conn_of_agent(other)
        if conn is not None:
            self.agent_complete(conn, "transfer")
        self._move_out_of_bridge(mover, other, bridge, context, exten)
        return ""

    def redirect(self, chan: Channel, context: str, exten: str, priority: int) -> str:
        """AMI Redirect of ``chan`` to context/exten/priority ("" or an error)."""
        if chan.role != "caller" or chan.call is None:
            # Agent or outbound leg: it has no dialplan of its own here.
            self.remote_hangup(chan)
            return ""
        qc = self.qcalls.get(chan.uniqueid)
        if qc is not None:
            chan.goto = (context, exten, priority)
            qc.redirected()
            self.interrupt(chan, "goto")
            return ""
        if chan.bridge is not None:
            bridge = chan.bridge
            peer = bridge.peer(chan)
            for conn in chan.conns:
                if not conn.done and not conn.deferred:
                    conn.deferred = True
                    if conn.talk_timer is not None:
                        conn.talk_timer.cancel()
            if peer is not None:
                self._move_out_of_bridge(chan, peer, bridge, context, exten, priority)
            return ""
        chan.goto = (context, exten, priority)
        self.interrupt(chan, "goto")
        return ""

    def _move_out_of_bridge(
        self,
        mover: Channel,
        other: Channel,
        bridge: Bridge,
        context: str,
        exten: str,
        priority: int = 1,
    ) -> None:
        mover.context, mover.exten, mover.priority = context, exten, priority
        mover.goto = (context, exten, priority)
        self.bridge_leave(mover)
        self.interrupt(mover, "goto")
        self.bridge_leave(other)
        self.bridge_destroy(bridge)
        self.destroy(other, 16)

    # ----------------------------------------------------------- originate
    def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int,
        application: str,
        data: str,
        timeout: float,
        callerid: str,
        variables: dict[str, str],
        action_id: str | None,
        report: bool,
        on_result: Callable[[bool], None],
    ) -> None:
        """AMI Originate: ring the channel; when answered run context/exten or the app."""
        from app.sim.dialplan import CallRun, originate_call, outbound_channel

        device, number = outbound_channel(channel)
        if device.lower().startswith("pjsip/") and device.lower() != "pjsip/trunk":
            behaviour, _ = self.callee_factory(number, device)
            answer_after = self.agent_behaviour(device).on_ring("", self.now())
        else:
            behaviour, answer_after = self.callee_factory(number, device)
        cid_name, cid_num = _split_callerid(callerid)
        chan = self.new_channel(
            device,
            "caller",
            cid_num=cid_num or UNKNOWN,
            cid_name=cid_name or UNKNOWN,
            context=context or "default",
            exten=exten or "s",
            dnid=number,
        )
        chan.conn_num = number
        chan.vars.update(variables)
        truth = self.truth.add(
            CallTruth(linkedid=chan.linkedid, caller=number, arrived=self.now(), origin="originate")
        )
        run = CallRun(self, chan, behaviour, truth, self.dialplan)
        target = None if application else (context, exten, priority)
        app = (application, data) if application else None

        async def go() -> None:
            reason = await originate_call(
                self, run, device, number, timeout, target, app, answer_after
            )
            ok = reason == "4"
            on_result(ok)
            if report:
                self.emit(
                    "OriginateResponse",
                    P_CALL,
                    [
                        *([("ActionID", action_id)] if action_id else []),
                        ("Response", "Success" if ok else "Failure"),
                        ("Channel", chan.name if ok else channel),
                        ("Context", context),
                        ("Exten", exten),
                        ("Application", application),
                        ("Data", data),
                        ("Reason", reason),
                        ("Uniqueid", chan.uniqueid),
                        ("CallerIDNum", cid_num or UNKNOWN),
                        ("CallerIDName", cid_name or UNKNOWN),
                    ],
                    chan.linkedid,
                )

        self.kernel.spawn(go(), name=f"originate-{chan.name}")

    # ------------------------------------------------------------- queue
    def queue_app(
        self, chan: Channel, queue: str, options: str, timeout: int, behaviour: CallerBehaviour
    ) -> QueueCall:
        qc = QueueCall(self, chan, queue, options, timeout, behaviour)
        qc.start()
        return qc


def _split_callerid(value: str) -> tuple[str, str]:
    """``"Name" <number>`` (or a bare number) to (name, number)."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].partition("<")
        return name.strip().strip('"'), num.strip()
    return "", value


def _default_callee(number: str, device: str) -> tuple[CallerBehaviour, float | None]:
    from app.sim.behaviour import ScriptedCaller

    return ScriptedCaller(number=number, name=UNKNOWN, talks=[Talk(120.0, True)]), 5.0


def _conn_of_agent(chan: Channel) -> QueueConn | None:
    conn: QueueConn | None = chan.conn
    if conn is not None and not conn.done:
        return conn
    return None


class QueueCall:
    """One run of the Queue() application for one caller (app_queue's queue_exec)."""

    def __init__(
        self,
        pbx: Pbx,
        chan: Channel,
        queue: str,
        options: str,
        timeout: int,
        behaviour: CallerBehaviour,
    ) -> None:
        self.pbx = pbx
        self.kernel = pbx.kernel
        self.chan = chan
        self.queue = queue
        self.options = options
        self.timeout = timeout
        self.behaviour = behaviour
        self.done: Signal[str] = pbx.kernel.signal()
        self.legs: list[Leg] = []
        self.head = False
        self.check_timer: Timer | None = None
        self.ring_timer: Timer | None = None
        self.patience_timer: Timer | None = None
        self.joined_at = 0.0
        self.conn: QueueConn | None = None

    # ------------------------------------------------------------- join
    def start(self) -> None:
        pbx, chan = self.pbx, self.chan
        now = pbx.now()
        chan.queue_options = self.options
        for var in (
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "QUEUEWAIT",
            "QUEUEWAIT_MS",
        ):
            pbx.noise_var(chan, var, "")
        result = pbx.engine.join(self.queue, chan.uniqueid, now, self.timeout)
        if not result.ok:
            pbx.varset(chan, "QUEUESTATUS", result.reason)
            self.done.set(result.reason)
            return
        self.joined_at = now
        pbx.qcalls[chan.uniqueid] = self
        pbx.queue_devstate(self.queue)
        pbx.chan_event(
            "QueueCallerJoin",
            chan,
            [
                ("Queue", self.queue),
                ("Position", str(result.position)),
                ("Count", str(result.count)),
            ],
            P_AGENT,
        )
        pbx.chan_event("MusicOnHoldStart", chan, [("Class", "default")])
        if chan.call is not None:
            chan.call.on_queue_join(self.queue, now)
        patience = self.behaviour.patience(self.queue)
        if patience is not None:
            self.patience_timer = self.kernel.call_later(patience, pbx.remote_hangup, chan)
        self._schedule_check(now)

    def _schedule_check(self, when: float) -> None:
        if self.check_timer is not None:
            self.check_timer.cancel()
        self.check_timer = self.kernel.call_at(when, self._check)

    # ------------------------------------------------------------ turns
    def _check(self) -> None:
        self.check_timer = None
        pbx = self.pbx
        if self.chan.uniqueid not in pbx.engine.entries or self.legs:
            return
        now = pbx.now()
        decision = pbx.engine.check(self.chan.uniqueid, now, self.head)
        if decision.kind == "ring":
            self._ring(list(decision.members), decision.ring_timeout)
        elif decision.kind == "wait":
            # After a ``retry`` wait (a failed try) the next check is the head loop.
            self.head = decision.reason == "retry"
            self._schedule_check(decision.until)
        else:
            self._leave(decision.reason, decision.abandon)

    def _leave(self, reason: str, abandon: bool) -> None:
        pbx, chan = self.pbx, self.chan
        now = pbx.now()
        entry = pbx.engine.entry(chan.uniqueid)
        if entry is None:
            return
        pbx.chan_event("MusicOnHoldStop", chan)
        if abandon:
            self._abandon_event(entry, now)
        info = pbx.engine.leave(chan.uniqueid, now, abandoned=abandon)
        self._leave_event(info)
        pbx.varset(chan, "QUEUESTATUS", reason)
        self._finish(reason)

    def _abandon_event(self, entry: Entry, now: float) -> None:
        q = self.pbx.engine.queues[self.queue]
        self.pbx.chan_event(
            "QueueCallerAbandon",
            self.chan,
            [
                ("Queue", self.queue),
                ("Position", str(q.position(entry))),
                ("OriginalPosition", str(entry.opos)),
                ("HoldTime", str(entry.holdtime(now))),
            ],
            P_AGENT,
        )

    def _leave_event(self, info: LeaveInfo) -> None:
        pbx = self.pbx
        pbx.queue_devstate(self.queue)
        pbx.chan_event(
            "QueueCallerLeave",
            self.chan,
            [("Queue", info.queue), ("Position", str(info.position)), ("Count", str(info.count))],
            P_AGENT,
        )
        if self.chan.call is not None:
            self.chan.call.on_queue_leave(self.queue, info, pbx.now())

    def _finish(self, status: str) -> None:
        for t in (self.check_timer, self.ring_timer, self.patience_timer):
            if t is not None:
                t.cancel()
        self.pbx.qcalls.pop(self.chan.uniqueid, None)
        self.done.set(status)

    # ------------------------------------------------------------ ringing
    def _ring(self, members: list[Member], timeout: float) -> None:
        pbx, chan = self.pbx, self.chan
        now = pbx.now()
        pbx.engine.start_ring(chan.uniqueid, members, now, timeout)
        for m in members:
            leg = self._ring_member(m)
            self.legs.append(leg)
            delay = pbx.agent_behaviour(m.interface).on_ring(self.queue, now)
            if delay is not None and delay < timeout:
                leg.answer_timer = self.kernel.call_later(delay, self._answer, leg)
        self.ring_timer = self.kernel.call_later(timeout, self._ring_timeout)

    def _ring_member(self, m: Member) -> Leg:
        pbx, chan = self.pbx, self.chan
        agent = pbx.new_channel(
            m.state_interface if "/" in m.state_interface else m.interface,
            "agent",
            linkedid=chan.linkedid,
            context="agents",
            exten="s",
        )
        agent.qcall_uid = chan.uniqueid
        pbx.newexten(agent, 1, "AppQueue", "(Outgoing Line)")
        dnid = chan.dnid or chan.exten
        agent.cid_num = dnid
        agent.cid_name = UNKNOWN
        pbx.chan_event(
            "NewCallerid", agent, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )
        pbx.noise_var(agent, "DIALEDPEERNUMBER", m.interface.split("/", 1)[-1])
        dial_snapshot = agent.snapshot("Dest")
        agent.exten = self.queue
        agent.conn_num, agent.conn_name = chan.cid_num, chan.cid_name
        pbx.dest_event(
            "AgentCalled",
            chan,
            agent,
            [("Queue", self.queue), ("Interface", m.interface), ("MemberName", m.membername)],
            P_AGENT,
        )
        pbx.dest_event(
            "DialBegin", chan, agent, [("DialString", m.interface)], dest_snapshot=dial_snapshot
        )
        if (chan.conn_num, chan.conn_name) != (agent.cid_num, UNKNOWN):
            chan.conn_num, chan.conn_name = agent.cid_num, UNKNOWN
            pbx.chan_event("NewConnectedLine", chan)
        pbx.set_state(agent, RINGING)
        pbx.newexten(agent, 1, "AppQueue", "(Outgoing Line)")
        pbx.chan_event("NewConnectedLine", agent)
        pbx.dest_event("DialState", chan, agent, [("DialStatus", "RINGING")])
        return Leg(m, agent)

    def _drop_leg(self, leg: Leg, status: str, cause: int) -> None:
        pbx = self.pbx
        if leg.answer_timer is not None:
            leg.answer_timer.cancel()
        if leg in self.legs:
            self.legs.remove(leg)
        if not leg.chan.dead:
            pbx.dest_event("DialEnd", self.chan, leg.chan, [("DialStatus", status)])
            pbx.destroy(leg.chan, cause)
        pbx.engine.ring_ended(self.chan.uniqueid, leg.member)

    def _ring_timeout(self) -> None:
        self.ring_timer = None
        pbx, chan = self.pbx, self.chan
        entry = pbx.engine.entry(chan.uniqueid)
        if entry is None:
            return
        now = pbx.now()
        ring_ms = round((now - entry.ring_start) * 1000)
        for leg in list(self.legs):
            m = leg.member
            pbx.avail_devstate(self.queue)
            pbx.dest_event(
                "AgentRingNoAnswer",
                chan,
                leg.chan,
                [
                    ("Queue", self.queue),
                    ("Interface", m.interface),
                    ("MemberName", m.membername),
                    ("RingTime", str(ring_ms)),
                ],
                P_AGENT,
            )
            pbx.dest_event("DialEnd", chan, leg.chan, [("DialStatus", "NOANSWER")])
            self._drop_leg(leg, "CANCEL", 0)
        self._after_failed_try()

    def leg_declined(self, agent: Channel) -> None:
        """The agent rejected the ring (busy): like a no-answer without the wait."""
        leg = next((lg for lg in self.legs if lg.chan is agent), None)
        if leg is None:
            return
        self._drop_leg(leg, "BUSY", 17)
        if not self.legs:
            if self.ring_timer is not None:
                self.ring_timer.cancel()
                self.ring_timer = None
            self._after_failed_try()

    def _after_failed_try(self) -> None:
        pbx = self.pbx
        now = pbx.now()
        uid = self.chan.uniqueid
        entry = pbx.engine.entry(uid)
        if entry is None:
            return
        q = pbx.engine.queues[self.queue]
        if q.spec.leavewhenempty and pbx.engine.member_status_empty(q, q.spec.leavewhenempty, now):
            self._leave("LEAVEEMPTY", abandon=True)
            return
        if entry.expire is not None and now >= entry.expire:
            self._leave("TIMEOUT", abandon=False)
            return
        self.head = True
        self._schedule_check(now + q.spec.retry)

    # ------------------------------------------------------------ answer
    def _answer(self, leg: Leg) -> None:
        pbx, chan = self.pbx, self.chan
        if leg not in self.legs or chan.uniqueid not in pbx.engine.entries:
            return
        if self.ring_timer is not None:
            self.ring_timer.cancel()
            self.ring_timer = None
        now = pbx.now()
        entry = pbx.engine.entries[chan.uniqueid]
        ring_start = entry.ring_start
        agent, m = leg.chan, leg.member
        leg.answer_timer = None
        for other in list(self.legs):
            if other is not leg:
                self._drop_leg(other, "CANCEL", 26)
        self.legs = []
        pbx.set_state(agent, UP)
        pbx.dest_event("DialEnd", chan, agent, [("DialStatus", "ANSWER")])
        pbx.chan_event("MusicOnHoldStop", chan)
        if pbx.config.noise:
            for var, val in (
                ("MEMBERINTERFACE", m.interface),
                ("MEMBERNAME", m.membername),
                ("MEMBERCALLS", str(m.calls)),
                ("MEMBERLASTCALL", str(m.lastcall)),
                ("MEMBERPENALTY", str(m.penalty)),
                ("MEMBERDYNAMIC", "1" if m.dynamic else "0"),
                ("MEMBERREALTIME", "0"),
            ):
                pbx.noise_var(chan, var, val)
                pbx.noise_var(agent, var, val)
            for ch in (chan, agent):
                pbx.noise_var(ch, "QEHOLDTIME", str(entry.holdtime(now)))
                pbx.noise_var(ch, "QEORIGINALPOS", str(entry.opos))
            pbx._queue_vars_noise(chan, self.queue)
            pbx._queue_vars_noise(agent, self.queue)
        hold = entry.holdtime(now)
        info = pbx.engine.connect(chan.uniqueid, m, now)
        pbx.engine.ring_ended(chan.uniqueid, m)
        self._leave_event(info)
        pbx.noise_var(chan, "QUEUEPOSITION", str(info.position))
        pbx.noise_var(chan, "QUEUEWAIT", str(hold))
        pbx.noise_var(chan, "QUEUEWAIT_MS", str(round((now - entry.start) * 1000)))
        pbx.dest_event(
            "AgentConnect",
            chan,
            agent,
            [
                ("Queue", self.queue),
                ("Interface", m.interface),
                ("MemberName", m.membername),
                ("HoldTime", str(hold)),
                ("RingTime", str(int(now) - int(ring_start))),
            ],
            P_AGENT,
        )
        bridge = pbx.new_bridge()
        pbx.bridge_enter(bridge, agent)
        pbx.bridge_enter(bridge, chan)
        conn = QueueConn(self.queue, m, chan, agent, bridge, now, hold)
        chan.conns.append(conn)
        agent.conn = conn
        agent.qcall_uid = ""
        if (
            pbx.config.late_complete_share > 0
            and not chan.late_complete
            and pbx.rng.random() < pbx.config.late_complete_share
        ):
            chan.late_complete = True
        self.conn = conn
        if self.patience_timer is not None:
            self.patience_timer.cancel()
        talk: Talk = self.behaviour.talk(self.queue)
        who = chan if talk.caller_hangs_up else agent
        conn.talk_timer = self.kernel.call_later(talk.seconds, pbx.remote_hangup, who)
        if chan.call is not None:
            chan.call.on_connect(conn, now)
        pbx.qcalls.pop(chan.uniqueid, None)
        for t in (self.check_timer, self.patience_timer):
            if t is not None:
                t.cancel()
        self.done.set("CONNECTED")

    # ------------------------------------------------------------ abandon
    def caller_gone(self) -> None:
        """The caller hung up while waiting (or while agents rang): abandon."""
        pbx, chan = self.pbx, self.chan
        entry = pbx.engine.entry(chan.uniqueid)
        if entry is None:
            return
        if self.ring_timer is not None:
            self.ring_timer.cancel()
            self.ring_timer = None
        pbx.chan_event("MusicOnHoldStop", chan)
        for leg in list(self.legs):
            self._drop_leg(leg, "CANCEL", 0)
        now = pbx.now()
        self._abandon_event(entry, now)
        info = pbx.engine.leave(chan.uniqueid, now, abandoned=True)
        self._leave_event(info)
        self._finish("HANGUP")

    def redirected(self) -> None:
        """An AMI Redirect took the waiting caller out of the queue."""
        self.caller_gone()
