"""The recorded scenarios of tests/fixtures/ami, scripted for the simulator.

Each scenario replays what the SIPp caller and agents did in the lab (keys and when,
ring and talk times, who hung up), on the lab's dialplan and queues.conf, starting from
the queue state the recording found (the recordings were made one after another on one
Asterisk: round-robin position, last calls, paused members). The AMI actions of each
``*.sent.txt`` are sent by the test client itself, at the same virtual times.

Times are seconds after the AMI client connected, as in ``*.times.txt``. ``epoch`` is the
virtual time of that instant: chosen inside the window where the capture's own relative
times give the capture's whole-second fields (HoldTime, TalkTime, RingTime, Uniqueid
epochs), which is where the capture's RTCP ``SentNTP`` and Ping ``Timestamp`` put it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from app.sim.behaviour import Reply, ScriptedAgent, ScriptedCaller, Talk
from app.sim.conf import QueuesConfig
from app.sim.pbx import Pbx, PbxConfig, default_prompt_seconds

WELCOME = 15962 / 8000  # custom/welcome: endpos=15962 in 08_fastagi.agi.txt
LAB_PROMPTS = {
    "custom/welcome": WELCOME,
    "custom/menu": 2.0,
    "custom/agi_menu": 2.0,
    "custom/invalid": 1.5,
    "custom/default": 1.5,
    "custom/closed": 6.536,  # 07: Playback(custom/closed) 0.631 -> Hangup 7.167
}


def lab_prompt_seconds(prompt: str) -> float:
    return LAB_PROMPTS.get(prompt) or default_prompt_seconds(prompt)


@dataclass(frozen=True)
class CaptureScenario:
    name: str
    epoch: float
    call_at: float | None
    number: str = "82565682"
    replies: tuple[Reply, ...] = ()
    wait_limit: float | None = None
    talks: tuple[Talk, ...] = ()
    agents: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)
    dtmf: Literal["info", "rfc4733"] = "info"
    late_complete: bool = False
    answer_delay: float = 0.0
    agi_think: tuple[float, ...] = ()
    setup: Callable[[Pbx, float], None] | None = None
    first_channel_id: int = 0
    end: float = 30.0

    def config(self, queues: QueuesConfig, agi_address: str = "127.0.0.1:4573") -> PbxConfig:
        think = self.agi_think

        def agi_think(script: str, index: int) -> float:
            return think[index] if index < len(think) else 0.0

        return PbxConfig(
            queues=queues,
            start=self.epoch,
            dialplan="lab",
            dtmf=self.dtmf,
            agi_address=agi_address,
            answer_delay=self.answer_delay,
            prompt_seconds=lab_prompt_seconds,
            first_channel_id=self.first_channel_id,
            agi_think=agi_think if think else None,
            late_complete_share=1.0 if self.late_complete else 0.0,
        )

    def caller(self) -> ScriptedCaller:
        return ScriptedCaller(
            number="4520001",
            name="Borger 1",
            replies=list(self.replies),
            wait_limit=self.wait_limit,
            talks=list(self.talks),
        )

    def prepare(self, pbx: Pbx) -> None:
        for iface, delays in self.agents.items():
            pbx.agents[iface.lower()] = ScriptedAgent(list(delays))
        if self.setup is not None:
            self.setup(pbx, self.epoch)


# ------------------------------------------------------------ the lab's state


def _rrpos(queue: str, pos: int) -> Callable[[Pbx, float], None]:
    def setup(pbx: Pbx, epoch: float) -> None:
        pbx.engine.queues[queue].rrpos = pos

    return setup


def _paused(*members: tuple[str, str, str]) -> Callable[[Pbx, float], None]:
    def setup(pbx: Pbx, epoch: float) -> None:
        for queue, iface, reason in members:
            pbx.engine.pause(iface, queue, True, reason, epoch - 5)

    return setup


def _lastcall(calls: Mapping[str, float]) -> Callable[[Pbx, float], None]:
    """``interface -> seconds before the epoch`` of its last call (all its queues)."""

    def setup(pbx: Pbx, epoch: float) -> None:
        for iface, ago in calls.items():
            for m in pbx.engine.memberships(iface):
                m.lastcall = int(epoch - ago)
                m.calls = max(m.calls, 1)

    return setup


def _chain(*steps: Callable[[Pbx, float], None]) -> Callable[[Pbx, float], None]:
    def setup(pbx: Pbx, epoch: float) -> None:
        for step in steps:
            step(pbx, epoch)

    return setup


def _lab_history_05(pbx: Pbx, epoch: float) -> None:
    """Where 04, 01, 02 (answered) and 03 (abandoned) left the lab before 05."""
    e = pbx.engine
    dag = e.queues["dagpenge"]
    dag.completed, dag.abandoned = 3, 1
    dag.completed_in_sl, dag.abandoned_in_sl = 3, 1
    dag.holdtime, dag.talktime = 8, 9
    for m in e.memberships("PJSIP/agent1"):
        m.calls, m.lastcall = 1, 1795362325
    for m in e.memberships("PJSIP/agent2"):
        m.calls, m.lastcall = 2, 1795362346
    agent1 = dag.member("PJSIP/agent1")
    if agent1 is not None:
        agent1.lastpause = 1795362356
    for q in e.queues.values():
        for m in q.members:
            m.logintime = 1795362267


# A digit ``after`` seconds into Read()/GET DATA (prompt start = after the welcome).
def _key(digit: str, at: float, prompt_start: float) -> Reply:
    return Reply("digits", digit, round(at - prompt_start, 3))


SCENARIOS: dict[str, CaptureScenario] = {
    "01_answered": CaptureScenario(
        "01_answered",
        epoch=1795362315.63,
        call_at=0.611,
        replies=(_key("1", 4.619, 0.611 + WELCOME),),
        talks=(Talk(3.492, caller_hangs_up=True),),
        agents={"PJSIP/agent1": (2.011,)},
        first_channel_id=3,
        end=13.138,
    ),
    "02_agent_hangup": CaptureScenario(
        "02_agent_hangup",
        epoch=1795362336.86,
        call_at=0.617,
        replies=(_key("1", 4.622, 0.617 + WELCOME),),
        talks=(Talk(3.016, caller_hangs_up=False),),
        agents={"PJSIP/agent2": (2.016,)},
        setup=_rrpos("dagpenge", 1),
        first_channel_id=5,
        end=12.679,
    ),
    "03_abandon": CaptureScenario(
        "03_abandon",
        epoch=1795362356.87,
        call_at=0.619,
        replies=(_key("1", 4.624, 0.619 + WELCOME),),
        wait_limit=8.007,
        setup=_paused(("dagpenge", "PJSIP/agent1", ""), ("dagpenge", "PJSIP/agent2", "")),
        first_channel_id=7,
        end=15.640,
    ),
    "04_ringnoanswer": CaptureScenario(
        "04_ringnoanswer",
        epoch=1795362271.87,
        call_at=0.612,
        replies=(_key("1", 4.617, 0.612 + WELCOME),),
        talks=(Talk(15.995, caller_hangs_up=True),),
        agents={"PJSIP/agent1": (None,), "PJSIP/agent2": (2.012,)},
        first_channel_id=0,
        end=37.636,
    ),
    "05_ami_actions": CaptureScenario(
        "05_ami_actions",
        epoch=1795362376.233,
        call_at=3.131,
        replies=(_key("1", 7.137, 3.131 + WELCOME),),
        wait_limit=15.005,
        setup=_lab_history_05,
        first_channel_id=8,
        end=25.160,
    ),
    "06_invalid_then_valid": CaptureScenario(
        "06_invalid_then_valid",
        epoch=1795362404.85,
        call_at=0.630,
        replies=(
            _key("9", 4.637, 0.630 + WELCOME),
            _key("2", 8.640, 4.637 + LAB_PROMPTS["custom/invalid"]),
        ),
        talks=(Talk(8.014, caller_hangs_up=True),),
        agents={"PJSIP/agent3": (2.010,)},
        late_complete=True,
        setup=_lastcall({"PJSIP/agent2": 60.0}),
        first_channel_id=9,
        end=21.685,
    ),
    "07_closed": CaptureScenario(
        "07_closed",
        epoch=1795362429.87,
        call_at=0.630,
        first_channel_id=11,
        end=10.181,
    ),
    "08_fastagi": CaptureScenario(
        "08_fastagi",
        epoch=1795362443.12,
        call_at=0.616,
        number="82565683",
        replies=(_key("1", 4.623, 0.616 + 0.502 + 1.994),),
        talks=(Talk(7.496, caller_hangs_up=True),),
        agents={"PJSIP/agent1": (2.010,)},
        answer_delay=0.502,
        # The scripted service closes the socket 0.501 s after its last reply.
        agi_think=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.501),
        first_channel_id=12,
        end=17.638,
    ),
    "08b_fastagi_hangup": CaptureScenario(
        "08b_fastagi_hangup",
        epoch=1795362460.88,
        call_at=0.622,
        number="82565683",
        replies=(Reply("hangup", after=0.509),),
        answer_delay=0.502,
        agi_think=(0.0, 0.0, 0.0, 0.044),
        first_channel_id=14,
        end=6.840,
    ),
    "09_blindtransfer": CaptureScenario(
        "09_blindtransfer",
        epoch=1795362472.360,
        call_at=0.619,
        replies=(_key("1", 4.626, 0.619 + WELCOME),),
        talks=(Talk(600.0, caller_hangs_up=True), Talk(13.981, caller_hangs_up=True)),
        agents={"PJSIP/agent2": (2.011,), "PJSIP/agent3": (2.009,)},
        setup=_chain(
            _rrpos("dagpenge", 1), _lastcall({"PJSIP/agent3": 60.0, "PJSIP/agent2": 100.0})
        ),
        first_channel_id=15,
        end=27.644,
    ),
    "09b_redirect": CaptureScenario(
        "09b_redirect",
        epoch=1795362499.84,
        call_at=0.634,
        replies=(_key("1", 4.647, 0.634 + WELCOME),),
        talks=(Talk(600.0, caller_hangs_up=True), Talk(13.961, caller_hangs_up=True)),
        agents={"PJSIP/agent1": (2.011,), "PJSIP/agent2": (2.013,)},
        setup=_chain(_rrpos("dagpenge", 0), _lastcall({"PJSIP/agent2": 20.0, "PJSIP/agent3": 5.0})),
        first_channel_id=18,
        end=27.659,
    ),
    "11_rfc4733_dtmf": CaptureScenario(
        "11_rfc4733_dtmf",
        epoch=1795362633.8,
        call_at=0.625,
        replies=(_key("1", 4.772, 0.625 + WELCOME),),
        talks=(Talk(4.856, caller_hangs_up=True),),
        agents={"PJSIP/agent1": (2.008,)},
        dtmf="rfc4733",
        first_channel_id=53,
        end=14.649,
    ),
}


def scenario(name: str) -> CaptureScenario:
    return SCENARIOS[name]


__all__ = ["SCENARIOS", "CaptureScenario", "lab_prompt_seconds", "replace", "scenario"]
