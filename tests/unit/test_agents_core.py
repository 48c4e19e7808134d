"""The pure parts of issue 7: who may do what, work.yaml, what an agent action must ask of
the PBX, the dialer's choice, confirmations, time in states."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from app.acd import events as ev
from app.acd.access import ROLES, WRITE_SCOPES, Principal, check_user, may_act_on_call
from app.acd.agents import (
    TalkingLeg,
    WrongState,
    plan_login,
    plan_logout,
    plan_pause,
    plan_unpause,
    talking_leg,
)
from app.acd.dialer import Candidate, plan_dials
from app.acd.state import CallCentre
from app.acd.work import WorkConfig
from app.ami.agent_actions import Pbx, PbxUnavailable, is_state_reply, transfer
from app.ami.confirm import Confirmations, Step, run_steps
from app.config.errors import ConfigInvalid
from app.config.loader import load_config
from app.privacy import Caller
from app.store.auth import hash_secret, new_secret, parse_secret
from app.store.reports import time_in_states

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2014, 11, 4, 8, 0, tzinfo=UTC)
CPH = ZoneInfo("Europe/Copenhagen")

# ---- access --------------------------------------------------------------------------


def test_roles_and_reach() -> None:
    agent = Principal("anne", "agent", agent_id="agent1")
    sup = Principal("sara", "supervisor", teams=frozenset({"nord"}))
    admin = Principal("root", "admin")
    integ = Principal("crm", "integration")
    granted = Principal("crm2", "integration", grants=frozenset({"callbacks:write", "bogus"}))
    assert agent.has("agents:write") and not agent.has("agents:admin")
    assert sup.has("agents:admin") and not sup.has("ivr:admin")
    assert admin.has("ivr:admin")
    assert integ.has("calls:read") and not integ.has("calls:write")
    assert granted.has("callbacks:write") and not granted.has("bogus")
    assert agent.reaches("agent1", "syd") and not agent.reaches("agent2", "nord")
    assert sup.reaches("agent2", "nord") and not sup.reaches("agent1", "syd")
    assert not sup.reaches("agent3", None)
    assert admin.reaches("x", None) and integ.reaches("x", None)
    assert agent.own_agent == "agent1" and sup.own_agent is None


def test_one_rule_for_reading_and_acting_on_a_call() -> None:
    agent = Principal("anne", "agent", agent_id="agent1")
    sup = Principal("sara", "supervisor", teams=frozenset({"nord"}))
    took = {"agent1": "nord", "agent2": "syd"}  # the agents concerned, with their teams
    for read in (True, False):
        assert may_act_on_call(agent, took, read=read)
        assert not may_act_on_call(agent, {"agent2": "syd"}, read=read)
        assert may_act_on_call(Principal("root", "admin"), {}, read=read)
        assert may_act_on_call(Principal("crm", "integration"), {"x": None}, read=read)
    assert may_act_on_call(sup, {"agent2": "syd"}, read=True)  # reads every call
    assert not may_act_on_call(sup, {"agent2": "syd"})  # acts on its teams' only
    assert may_act_on_call(sup, took) and not may_act_on_call(sup, {"agent3": None})
    assert not may_act_on_call(Principal("x", "agent"), {"": None})  # no agent id


def test_user_definitions_are_checked() -> None:
    assert check_user("agent", "agent1", (), ()) == []
    assert check_user("agent", None, (), ())  # needs --agent
    assert check_user("supervisor", None, (), ())  # needs a team
    assert check_user("admin", None, ("nord",), ())  # teams only for supervisors
    assert check_user("admin", None, (), ("calls:write",))  # grants only for integrations
    assert check_user("integration", None, (), ("calls:read",))  # not a write scope
    assert check_user("root", None, (), ())
    assert check_user("integration", None, (), sorted(WRITE_SCOPES)) == []
    assert set(ROLES) == {"agent", "supervisor", "admin", "integration"}


def test_secrets_are_random_typed_and_hashed() -> None:
    token_id, secret = new_secret("key")
    assert parse_secret(secret) == ("key", token_id)
    assert parse_secret(new_secret("bearer")[1])[0] == "bearer"  # type: ignore[index]
    assert new_secret("key")[1] != secret
    for bad in ("", "acdk_x_y", secret + "x", secret.replace("acdk", "acdx"), secret[:-1]):
        assert parse_secret(bad) is None
    assert len(hash_secret(secret)) == 64 and hash_secret(secret) != secret


# ---- work.yaml -----------------------------------------------------------------------


def test_shipped_work_file_is_valid_and_not_a_flow() -> None:
    config = load_config(ROOT / "ivr_flows")
    work = config.work
    assert work is not None
    assert work.pause_reason("lunch") is not None and work.pause_reason("nap") is None
    assert work.disposition("dagpenge", "availability") is not None
    assert work.disposition("kontanthjaelp", "availability") is None
    assert work.disposition(None, "payment") is not None
    assert "work" not in config.flows
    # JKA's number is the menu's forward number: one unit, one number.
    flow = yaml.safe_load((ROOT / "ivr_flows" / "jobcenter.yaml").read_text(encoding="utf-8"))
    forward = flow["nodes"]["viderestil_jka"]
    jka = work.destination(forward["destination"])
    assert jka is not None and jka.number == forward["number"]


def _work(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pause_reasons": [{"code": "lunch", "title": "Frokost"}],
        "dispositions": {"common": [{"code": "other", "title": "Andet"}]},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pause_reasons": []}, "at least 1"),
        ({"pause_reasons": [{"code": "Lunch", "title": "x"}]}, "pattern"),
        ({"pause_reasons": [{"code": "a", "title": "x"}, {"code": "a", "title": "y"}]}, "twice"),
        (
            {
                "dispositions": {
                    "common": [{"code": "x", "title": "y"}],
                    "queues": {"dagpenge": [{"code": "x", "title": "z"}]},
                }
            },
            "twice",
        ),
        ({"destinations": [{"name": "u", "title": "U", "number": "12ab"}]}, "phone number"),
        (
            {
                "destinations": [
                    {
                        "name": "u",
                        "title": "U",
                        "number": "+4512345678",
                        "hours": {"mon": ["10:00-09:00"]},
                    }
                ]
            },
            "ends before",
        ),
        ({"goals": {"first_contact_resolution": 1.5}}, "less than or equal"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_work_files_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkConfig.model_validate(_work(**changes))


def test_work_file_queue_names_are_checked(tmp_path: Path) -> None:
    data = _work(dispositions={"queues": {"dagpengge": [{"code": "x", "title": "y"}]}})
    for name in ("queues.yaml", "jobcenter.yaml"):
        (tmp_path / name).write_bytes((ROOT / "ivr_flows" / name).read_bytes())
    text = yaml.safe_dump(data, sort_keys=False)
    (tmp_path / "work.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as exc:
        load_config(tmp_path)
    (error,) = exc.value.errors
    line = text.splitlines().index("    dagpengge:") + 1
    assert str(error) == (
        f"{tmp_path}/work.yaml:{line}: dispositions.queues.dagpengge: "
        "'dagpengge' is not a queue of queues.yaml"
    )


def test_destination_hours_backup_and_holidays() -> None:
    work = load_config(ROOT / "ivr_flows").work
    assert work is not None
    jka, amager = work.destination("jka"), work.destination("jc_amager")
    assert jka is not None and amager is not None
    tuesday = datetime(2014, 11, 4, 9, 30, tzinfo=CPH)
    assert jka.route(tuesday) == ("+4582565690", True, None)
    number, in_hours, nxt = jka.route(tuesday.replace(hour=10, minute=0))
    assert (number, in_hours, nxt) == (None, False, datetime(2014, 11, 5, 9, 0, tzinfo=CPH))
    # Outside its hours a unit with a back-up line (bagvagt) takes the call there.
    assert amager.route(tuesday.replace(hour=12, minute=30))[:2] == ("+4582565699", False)
    # Christmas Eve (Wednesday) is closed: next window after the holidays.
    eve = datetime(2014, 12, 24, 9, 30, tzinfo=CPH)
    assert jka.route(eve) == (None, False, datetime(2014, 12, 29, 9, 0, tzinfo=CPH))


# ---- agent actions: what to ask of the PBX -------------------------------------------


def _member(cc: CallCentre, queue: str, iface: str, paused: bool = False, reason: str = "") -> None:
    cc.apply(
        ev.MemberAdded(at=T0, pbx="p", key=f"add{queue}{iface}", queue=queue, interface=iface,
                       member_name="A", status=1, paused=paused, paused_reason=reason)
    )  # fmt: skip


def test_plans_follow_the_state() -> None:
    cc = CallCentre("p")
    with pytest.raises(WrongState, match="logged out"):
        plan_pause(cc, "PJSIP/agent1", "lunch", None)
    with pytest.raises(WrongState, match="logged out already"):
        plan_logout(cc, "PJSIP/agent1")
    _member(cc, "dagpenge", "PJSIP/agent1")
    assert plan_login(cc, "PJSIP/agent1", [("dagpenge", 0), ("virksomhed", 1)]) == [
        ("virksomhed", 1)
    ]
    with pytest.raises(WrongState, match="already logged in"):
        plan_login(cc, "pjsip/AGENT1", [("dagpenge", 0)])
    _member(cc, "virksomhed", "PJSIP/agent1", paused=True, reason="meeting")
    assert plan_pause(cc, "PJSIP/agent1", "lunch", None) == ["dagpenge", "virksomhed"]
    assert plan_pause(cc, "PJSIP/agent1", "meeting", None) == ["dagpenge"]
    with pytest.raises(WrongState, match="not logged in to a_kasse"):
        plan_pause(cc, "PJSIP/agent1", "lunch", "a_kasse")
    with pytest.raises(WrongState, match="paused already"):
        plan_pause(cc, "PJSIP/agent1", "meeting", "virksomhed")
    assert plan_unpause(cc, "PJSIP/agent1", None) == ["virksomhed"]
    with pytest.raises(WrongState, match="not paused"):
        plan_unpause(cc, "PJSIP/agent1", "dagpenge")
    assert plan_logout(cc, "PJSIP/agent1") == ["dagpenge", "virksomhed"]


# ---- confirmations -------------------------------------------------------------------


class FakeLink:
    """Answers each action after ``reply_after`` s; emits its event after ``event_after`` s
    (None: never), through the confirmations, as the pipeline would."""

    def __init__(self, conf: Confirmations, replies: dict[str, str], event_after: float | None):
        self.conf, self.replies, self.event_after = conf, replies, event_after
        self.sent: list[dict[str, str]] = []

    async def action(self, action: dict[str, str], **_: object) -> dict[str, str]:
        self.sent.append(action)
        queue = action["Queue"]
        reply = self.replies.get(queue, "Success")
        if reply == "Success" and self.event_after is not None:
            asyncio.get_running_loop().call_later(
                self.event_after,
                self.conf.on_event,
                ev.MemberAdded(at=T0, pbx="p", key=queue, queue=queue,
                               interface="PJSIP/Agent1", member_name="A"),
            )  # fmt: skip
        return {"Response": reply, "Message": "ok" if reply == "Success" else reply}


def _steps(*queues: str) -> list[Step]:
    return [
        Step(q, {"Action": "QueueAdd", "Queue": q}, "added", (q, "pjsip/agent1")) for q in queues
    ]


async def test_each_step_waits_for_its_own_event() -> None:
    conf = Confirmations()
    link = FakeLink(conf, {"virksomhed": "Unable to add interface: Already there"}, 0.01)
    result = await run_steps(link.action, conf, _steps("dagpenge", "virksomhed"), within=1.0)
    assert result.confirmed == ["dagpenge"]
    assert result.refused == [("virksomhed", "Unable to add interface: Already there")]
    assert conf.pending == 0


async def test_no_event_in_time_is_unconfirmed_and_bounded() -> None:
    conf = Confirmations()
    link = FakeLink(conf, {}, None)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await run_steps(link.action, conf, _steps("dagpenge"), within=0.2)
    assert result.unconfirmed == ["dagpenge"] and not result.ok
    assert 0.19 <= loop.time() - t0 < 1.0 and conf.pending == 0


async def test_an_event_before_the_response_still_confirms() -> None:
    conf = Confirmations()
    link = FakeLink(conf, {}, 0.0)
    result = await run_steps(link.action, conf, _steps("dagpenge"), within=0.5)
    assert result.ok and result.confirmed == ["dagpenge"]


async def test_unrelated_events_do_not_confirm() -> None:
    conf = Confirmations()
    future = conf.expect("paused", ("dagpenge", "pjsip/agent1"),
                         lambda e: getattr(e, "paused_reason", "") == "lunch")  # fmt: skip
    base = {"at": T0, "pbx": "p", "queue": "dagpenge", "member_name": "A"}
    conf.on_event(ev.MemberPaused(**base, key="1", interface="PJSIP/agent2", paused=True,
                                  paused_reason="lunch"))  # fmt: skip
    conf.on_event(ev.MemberPaused(**base, key="2", interface="PJSIP/agent1", paused=True,
                                  paused_reason="meeting"))  # fmt: skip
    conf.on_event(ev.MemberPaused(**base, key="3", interface="PJSIP/agent1", paused=False))
    assert not future.done()
    conf.on_event(ev.MemberPaused(**base, key="4", interface="PJSIP/agent1", paused=True,
                                  paused_reason="lunch"))  # fmt: skip
    assert future.done()
    conf.forget([future])
    assert conf.pending == 0


# ---- the dialer's choice -------------------------------------------------------------


def _c(task: int, queue: str, number: str, minutes: int) -> Candidate:
    return Candidate(task, queue, number, T0 + timedelta(minutes=minutes))


def test_dials_only_for_free_agents_oldest_first_once_per_number() -> None:
    tasks = [_c(1, "dagpenge", "A", 5), _c(2, "dagpenge", "A", 1), _c(3, "dagpenge", "B", 3),
             _c(4, "virksomhed", "C", 0), _c(5, "dagpenge", "D", 9)]  # fmt: skip
    assert plan_dials(tasks, {}, {}) == []
    one = plan_dials(tasks, {"PJSIP/a1": {"dagpenge"}}, {})
    assert [(d.task_id, d.interface) for d in one] == [(2, "PJSIP/a1")]
    two = plan_dials(tasks, {"PJSIP/a1": {"dagpenge"}, "PJSIP/a2": {"dagpenge"}}, {})
    assert [d.task_id for d in two] == [2, 3]  # task 1 is number A again
    # Callers waiting in the queue are ahead: they take the free agents first.
    assert plan_dials(tasks, {"PJSIP/a1": {"dagpenge"}}, {"dagpenge": 1}) == []
    # An agent already counted for a ringing call-back, or a number already ringing.
    assert plan_dials(tasks, {"PJSIP/a1": {"dagpenge"}}, {}, reserved=["PJSIP/a1"]) == []
    ringing = plan_dials(tasks, {"PJSIP/a1": {"dagpenge"}}, {}, ringing_numbers=["A"])
    assert [d.task_id for d in ringing] == [3]
    # One agent in two queues is one agent: never two call-backs for it.
    both = plan_dials(tasks, {"PJSIP/a1": {"dagpenge", "virksomhed"}}, {})
    assert [d.task_id for d in both] == [4]
    # The agent serving fewer queues goes first, keeping the versatile one free.
    free = {"PJSIP/a1": {"dagpenge", "virksomhed"}, "PJSIP/a2": {"dagpenge"}}
    picks = plan_dials(tasks, free, {})
    assert [(d.task_id, d.interface) for d in picks] == [(4, "PJSIP/a1"), (2, "PJSIP/a2")]


# ---- time in states ------------------------------------------------------------------


def test_time_in_states_clips_to_the_period() -> None:
    start, until = T0, T0 + timedelta(hours=1)
    changes = [
        (T0 - timedelta(minutes=5), "available"),  # before: clipped to the start
        (T0 + timedelta(minutes=10), "on_call"),
        (T0 + timedelta(minutes=20), "wrapup"),
        (T0 + timedelta(minutes=21), "paused"),
        (T0 + timedelta(hours=2), "available"),  # after: clipped to the end
    ]
    out = time_in_states("logged_out", changes, start, until)
    assert out["available"] == 600 and out["on_call"] == 600 and out["wrapup"] == 60
    assert out["paused"] == 39 * 60 and sum(out.values()) == 3600
    assert time_in_states(None, [], start, until)["logged_out"] == 3600


# ---- transfers and the PBX link --------------------------------------------------------


class RecordingLink:
    def __init__(self, state: str = "logged_in") -> None:
        self.state = state
        self.sent: list[dict[str, str]] = []

    async def action(self, action: dict[str, str], **_: object) -> dict[str, str]:
        self.sent.append(action)
        return {"Response": "Error", "Message": "Transfer not permitted"}


def _leg(agent_channel: str | None) -> TalkingLeg:
    return TalkingLeg("1.1", "agent1", "dagpenge", agent_channel, "PJSIP/trunk-00000001")


async def test_transfers_blind_transfer_the_agent_leg_or_redirect_the_caller() -> None:
    link = RecordingLink()
    pbx = Pbx(link, Confirmations(), CallCentre("p"), 0.2)
    result, via = await transfer(pbx, _leg("PJSIP/agent1-00000002"), number="+4582565690")
    assert via == "blind_transfer" and link.sent[-1] == {
        "Action": "BlindTransfer",
        "Channel": "PJSIP/agent1-00000002",
        "Context": "acd-transfer",
        "Exten": "+4582565690",
    }
    assert result.refused == [("external", "Transfer not permitted")]
    assert is_state_reply("Transfer not permitted") and not is_state_reply("Out of memory")
    _, via = await transfer(pbx, _leg(None), queue="kontanthjaelp")
    assert via == "redirect" and link.sent[-1] == {
        "Action": "Redirect",
        "Channel": "PJSIP/trunk-00000001",
        "Context": "acd-queue",
        "Exten": "kontanthjaelp",
        "Priority": "1",
    }
    with pytest.raises(WrongState):  # a unit's number needs the agent leg
        await transfer(pbx, _leg(None), number="+4582565690")
    with pytest.raises(PbxUnavailable, match="disconnected"):
        await transfer(
            Pbx(RecordingLink("disconnected"), Confirmations(), CallCentre("p"), 0.2),
            _leg("PJSIP/agent1-00000002"),
            queue="kontanthjaelp",
        )
    with pytest.raises(PbxUnavailable, match="no PBX"):
        Pbx(None, Confirmations(), CallCentre("p"), 0.2).ready()


def test_talking_leg_needs_a_live_answered_call() -> None:
    cc = CallCentre("p")
    with pytest.raises(WrongState, match="not live"):
        talking_leg(cc, "1.1")
    cc.apply(
        ev.ChannelCreated(at=T0, pbx="p", key="c", linkedid="1.1", uniqueid="1.1",
                          channel="PJSIP/trunk-1", caller=Caller("h", "d"), context="from-trunk",
                          exten="82565682", state=4)
    )  # fmt: skip
    with pytest.raises(WrongState, match="no agent is talking"):
        talking_leg(cc, "1.1")


async def test_a_lost_connection_neither_resends_nor_logs_an_originate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """panoramisk re-queues (and logs, arguments and all) actions without an answer when
    the connection closes; the link's manager forgets them: no number in any log."""
    import logging

    from panoramisk.ami_protocol import AMIProtocol

    from app.ami.link import _Manager, _NeverResend

    class Transport:
        def write(self, data: bytes) -> None:
            pass

        def close(self) -> None:
            pass

    manager = _Manager(forgetable_actions=_NeverResend())
    protocol = AMIProtocol()
    protocol.connection_made(Transport())
    protocol.factory = manager
    protocol.log = logging.getLogger("app.ami.link")
    manager.protocol = protocol
    manager.link = type("L", (), {"lost": lambda self, exc: None})()
    future = manager.send_action(
        {"Action": "Originate", "Channel": "PJSIP/+4520000001@trunk", "Async": "true"}
    )
    with caplog.at_level(logging.DEBUG):
        protocol.close()
    assert not manager.awaiting_actions
    assert "20000001" not in caplog.text
    future.cancel()
