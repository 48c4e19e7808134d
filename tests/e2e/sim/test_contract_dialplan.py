"""The simulator behaves as the contract's dialplan (docs/dialplan-contract.md), driven
by a scripted FastAGI service over real sockets: every ``ACD_ROUTE``, the survey session,
the fallback when the service fails, and res_agi's replies in the corner cases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.sim.behaviour import Reply, ScriptedAgent, ScriptedCaller, Talk
from app.sim.channels import Event
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues

ROOT = Path(__file__).resolve().parents[3]
CATALOGUE = load_queues(ROOT / "ivr_flows" / "queues.yaml")
T0 = 1415088000.0  # 2014-11-04 09:00 in Copenhagen


@dataclass
class Session:
    env: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    log: list[tuple[str, str]] = field(default_factory=list)

    async def cmd(self, line: str) -> str:
        self.writer.write((line + "\n").encode())
        await self.writer.drain()
        reply = await self.line()
        self.log.append((line, reply))
        return reply

    async def line(self) -> str:
        return (await asyncio.wait_for(self.reader.readline(), 5)).decode().rstrip("\n")


Handler = Callable[[Session], Awaitable[None]]


class ScriptedService:
    """A FastAGI server running ``handlers[script]`` for each session."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.sessions: list[Session] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        while line := (await reader.readline()).decode().rstrip("\n"):
            k, _, v = line.partition(": ")
            env[k] = v
        s = Session(env, reader, writer)
        self.sessions.append(s)
        try:
            await self.handlers[env["agi_network_script"]](s)
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def contract_pbx(
    handlers: dict[str, Handler], mode: str = "fast", **config: object
) -> AsyncIterator[tuple[SimulatedPbx, ScriptedService, list[Event]]]:
    service = ScriptedService(handlers)
    await service.start()
    cfg = PbxConfig(queues=CATALOGUE, start=T0, agi_address=f"127.0.0.1:{service.port}", **config)  # type: ignore[arg-type]
    sim = SimulatedPbx(cfg, mode=mode, ami_port=None)  # type: ignore[arg-type]
    events: list[Event] = []
    sim.pbx.listeners.append(events.append)
    async with sim:
        for i, queue in enumerate(("dagpenge", "kontanthjaelp")):
            iface = f"PJSIP/agent{i + 1}"
            sim.pbx.add_member(queue, iface, membername=f"Agent {i + 1}", state_interface=iface)
        yield sim, service, events
    await service.stop()


def names(events: list[Event], uid: str | None = None) -> list[str]:
    return [e.name for e in events if uid is None or e.get("Uniqueid") == uid]


async def menu_to(s: Session, queue: str, survey: str = "0") -> None:
    assert (await s.cmd('GET FULL VARIABLE "${CHANNEL(linkedid)}"')).startswith("200 result=1 (")
    assert await s.cmd("ANSWER") == "200 result=0"
    digit = await s.cmd("GET DATA acd/menu-main 5000 1")
    assert digit == "200 result=1"
    await s.cmd('SET VARIABLE ACD_ROUTE "queue"')
    await s.cmd(f'SET VARIABLE ACD_QUEUE "{queue}"')
    await s.cmd(f'SET VARIABLE ACD_SURVEY "{survey}"')


async def test_queue_route_then_survey_after_the_agent_hangs_up() -> None:
    scores: list[str] = []

    async def ivr(s: Session) -> None:
        await menu_to(s, "dagpenge", survey="1")

    async def survey(s: Session) -> None:
        for q in ("venlighed", "ventetid", "tilfredshed"):
            scores.append(await s.cmd(f"GET DATA acd/survey-{q} 5000 1"))
        assert (await s.cmd('STREAM FILE acd/info-tak ""')).startswith("200 result=0 endpos=")

    async with contract_pbx({"ivr": ivr, "survey": survey}) as (sim, service, events):
        sim.pbx.agents["pjsip/agent1"] = ScriptedAgent([3.0])
        caller = ScriptedCaller(
            replies=[
                Reply("digits", "1", 2.0),
                Reply("digits", "8", 1.0),
                Reply("digits", "7", 1.0),
                Reply("digits", "9", 1.0),
            ],
            talks=[Talk(40.0, caller_hangs_up=False)],
        )
        truth = await sim.call(caller)
    assert scores == ["200 result=8", "200 result=7", "200 result=9"]
    ivr_env = service.sessions[0].env
    assert (ivr_env["agi_network_script"], ivr_env["agi_arg_1"]) == ("ivr", "jobcenter")
    assert ivr_env["agi_extension"] == "82565682" and ivr_env["agi_context"] == "from-trunk"
    assert service.sessions[1].env["agi_network_script"] == "survey"
    assert (truth.outcome, truth.queue, truth.agent, truth.survey) == (
        "answered",
        "dagpenge",
        "PJSIP/agent1",
        [8, 7, 9],
    )
    assert truth.survey_flag and truth.keys == ["1"]  # menu keys; answers in .survey
    assert truth.wait == pytest.approx(3.0) and truth.talk == pytest.approx(40.0)
    seq = names(events, truth.linkedid)
    complete = seq.index("AgentComplete")
    assert seq.index("QueueCallerLeave") < seq.index("AgentConnect") < complete
    assert "AGIExecStart" in seq[complete:]  # the survey runs after the agent left
    reason = next(e for e in events if e.name == "AgentComplete").get("Reason")
    assert reason == "agent"
    last = [e for e in events if e.get("Uniqueid") == truth.linkedid][-1]
    assert (last.name, last.get("Cause")) == ("Hangup", "16")


async def test_forward_route_dials_the_number_on_the_trunk() -> None:
    async def ivr(s: Session) -> None:
        await s.cmd("ANSWER")
        await s.cmd('SET VARIABLE ACD_ROUTE "forward"')
        await s.cmd('SET VARIABLE ACD_FORWARD "70112233"')

    async with contract_pbx({"ivr": ivr}, forward_answer_share=1.0) as (sim, _, events):
        truth = await sim.call(ScriptedCaller())
    assert truth.outcome == "forwarded"
    dial = next(e for e in events if e.name == "DialBegin")
    assert dial.get("DialString") == "70112233@trunk"
    assert dial.get("DestLinkedid") == truth.linkedid
    assert dial.get("DestChannel").startswith("PJSIP/trunk-")
    assert [e.get("DialStatus") for e in events if e.name == "DialEnd"] == ["ANSWER"]
    assert names(events).count("BridgeEnter") == 2


@pytest.mark.parametrize(
    ("script", "replies", "outcome"),
    [
        (['STREAM FILE acd/closed-hours ""'], [], "closed"),
        (
            ["GET DATA acd/offer-wait 5000 1", "GET DATA acd/confirm-callback 5000 1"],
            [Reply("digits", "1", 2.0), Reply("digits", "1", 1.0)],
            "callback",
        ),
        (
            ["GET DATA acd/offer-wait 5000 1", 'RECORD FILE msg/x wav "#" 60000 BEEP'],
            [Reply("digits", "2", 2.0)],
            "message",
        ),
        (['VERBOSE "nothing to do" 1'], [], "failed"),
    ],
)
async def test_hangup_route_outcomes(script: list[str], replies: list[Reply], outcome: str) -> None:
    got: list[str] = []

    async def ivr(s: Session) -> None:
        await s.cmd("ANSWER")
        for line in script:
            got.append(await s.cmd(line))
        await s.cmd('SET VARIABLE ACD_ROUTE "hangup"')

    caller = ScriptedCaller(replies=list(replies), recordings=[Reply("digits", "#", 12.0)])
    async with contract_pbx({"ivr": ivr}) as (sim, _, events):
        truth = await sim.call(caller)
    assert truth.outcome == outcome
    if outcome == "message":
        assert got[-1] == "200 result=35 (dtmf) endpos=96000"
    if outcome == "failed":
        assert truth.detail == "service_hangup"
    hangup = [e for e in events if e.name == "Hangup"][-1]
    assert hangup.get("Cause") == "16"


async def test_service_unreachable_or_silent_goes_to_the_fallback_queue() -> None:
    sim = SimulatedPbx(
        PbxConfig(queues=CATALOGUE, start=T0, agi_address="127.0.0.1:1"), mode="fast", ami_port=None
    )
    async with sim:
        sim.pbx.add_member("kontanthjaelp", "PJSIP/agent9", membername="Ni")
        truth = await sim.call(ScriptedCaller(talks=[Talk(5.0)]))
    assert (truth.agi_status, truth.queues, truth.outcome) == (
        "FAILURE",
        ["kontanthjaelp"],
        "answered",
    )

    async def silent(s: Session) -> None:
        await s.cmd("ANSWER")
        await asyncio.sleep(1.0)  # never says anything again

    async with contract_pbx({"ivr": silent}, agi_reply_timeout=0.2) as (sim, _, events):
        truth = await sim.call(ScriptedCaller(talks=[Talk(5.0)]))
    assert (truth.agi_status, truth.queues) == ("FAILURE", ["kontanthjaelp"])
    fallback = [e for e in events if e.name == "Newexten"]
    assert fallback == []  # noise is off: no Newexten at all

    async def no_route(s: Session) -> None:
        await s.cmd("ANSWER")

    async with contract_pbx({"ivr": no_route}) as (sim, _, _events):
        truth = await sim.call(ScriptedCaller(talks=[Talk(5.0)]))
    assert (truth.agi_status, truth.queues) == ("SUCCESS", ["kontanthjaelp"])


async def test_res_agi_replies_in_the_corner_cases() -> None:
    replies: list[str] = []

    async def ivr(s: Session) -> None:
        replies.append(await s.cmd("ANSWER"))
        replies.append(await s.cmd("GET DATA acd/menu-main 3000 1"))  # times out
        replies.append(await s.cmd("FOO BAR"))
        s.writer.write(b"STREAM FILE\n")
        await s.writer.drain()
        usage = [await s.line() for _ in range(3)]
        replies.append("|".join(usage))
        replies.append(await s.cmd("GET VARIABLE NOT_SET"))
        replies.append(await s.cmd("GET DATA acd/menu-main 5000 1"))  # caller hangs up
        replies.append(await s.line())  # the separate HANGUP line
        replies.append(await s.cmd("GET VARIABLE ACD_ROUTE"))  # allowed on a dead channel
        replies.append(await s.cmd("ANSWER"))  # not allowed any more

    caller = ScriptedCaller(replies=[Reply("timeout"), Reply("hangup", after=1.0)])
    async with contract_pbx({"ivr": ivr}) as (sim, _, events):
        truth = await sim.call(caller)
    assert replies == [
        "200 result=0",
        "200 result= (timeout)",
        "510 Invalid or unknown command",
        "520-Invalid command syntax.  Proper usage follows:|"
        " Usage: STREAM FILE <filename> <escape digits> [sample offset]|"
        "520 End of proper usage.",
        "200 result=0",
        "200 result=-1",
        "HANGUP",
        "200 result=0",
        "511 Command Not Permitted on a dead channel or intercept routine",
    ]
    assert (truth.outcome, truth.agi_status) == ("ivr_hangup", "HANGUP")
    ends = [e for e in events if e.name == "AGIExecEnd"]
    assert [e.get("ResultCode") for e in ends[:4]] == ["200", "200", "510", "520"]
    assert names(events, truth.linkedid)[-2:] == ["SoftHangupRequest", "Hangup"]
    hangup = [e for e in events if e.name == "Hangup"][-1]
    assert hangup.get("Cause") == "0"  # the caller hung up, as in 08b


async def test_a_hangup_while_the_service_thinks_sends_hangup_at_once() -> None:
    thinking = asyncio.Event()
    seen: list[str] = []

    async def ivr(s: Session) -> None:
        await s.cmd("ANSWER")
        thinking.set()
        seen.append(await s.line())

    async with contract_pbx({"ivr": ivr}) as (sim, _, _events):
        task = sim.start_call(ScriptedCaller())
        await asyncio.wait_for(thinking.wait(), 5)
        chan = next(iter(sim.pbx.channels.values()))
        sim.pbx.ami_hangup(chan, 16)
        truth = await task
    assert seen == ["HANGUP"]
    assert truth.outcome == "ivr_hangup"


@pytest.mark.parametrize("which", ["agent", "caller"])
async def test_transfers_and_an_ami_hangup_of_the_agent_leg(which: str) -> None:
    async def ivr(s: Session) -> None:
        await menu_to(s, "dagpenge")

    async with contract_pbx({"ivr": ivr}, mode="manual") as (sim, _, events):
        sim.pbx.agents["pjsip/agent1"] = ScriptedAgent([2.0])
        sim.pbx.agents["pjsip/agent2"] = ScriptedAgent([2.0])
        caller = ScriptedCaller(
            replies=[Reply("digits", "1", 1.0)], talks=[Talk(100.0), Talk(100.0)]
        )
        task = sim.start_call(caller)
        await sim.advance_to(T0 + 30)
        assert sum(e.name == "AgentConnect" for e in events) == 1
        agent_leg = next(c for c in sim.pbx.channels.values() if c.role == "agent")
        caller_leg = next(c for c in sim.pbx.channels.values() if c.role == "caller")
        transferer = agent_leg if which == "agent" else caller_leg
        assert sim.pbx.blind_transfer(transferer, "acd-queue", "kontanthjaelp") == ""
        await sim.advance_to(T0 + 60)
        assert sum(e.name == "AgentConnect" for e in events) == 2
        second = next(c for c in sim.pbx.channels.values() if c.role == "agent")
        assert second.device == "PJSIP/agent2"
        sim.pbx.ami_hangup(second, 16)  # the agent leg hung up over AMI
        await sim.advance_to(T0 + 300)
        truth = await task
    reasons = [e.get("Reason") for e in events if e.name == "AgentComplete"]
    assert reasons == ["transfer", "agent"]
    assert truth.queues == ["dagpenge", "kontanthjaelp"] and truth.outcome == "answered"
    assert not sim.pbx.channels  # nothing left dangling
    joins = [e for e in events if e.name == "QueueCallerJoin"]
    assert {e.get("Uniqueid") for e in joins} == {truth.linkedid}
