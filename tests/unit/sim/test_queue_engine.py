"""The pure app_queue model: strategies, ring timeout/retry, wrap-up, pause, join/leave
empty, abandon and the statistics, with time passed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.sim.conf import parse_queues_conf
from app.sim.queue import Dev, QueueEngine, QueueError, member_hash, str_case_hash

LAB = Path(__file__).resolve().parents[2] / "fixtures" / "ami" / "lab-config" / "queues.conf"
T0 = 1_415_088_000.0


def engine(text: str) -> QueueEngine:
    return QueueEngine(parse_queues_conf(text), T0)


def queue(strategy: str, members: int = 3, extra: str = "") -> QueueEngine:
    # agentN share member_hash_fn's bucket ("/agen"), so they keep the config order
    lines = "\n".join(f"member => PJSIP/agent{i},0,A{i}" for i in range(1, members + 1))
    return engine(
        f"[q]\nstrategy = {strategy}\ntimeout = 10\nretry = 2\nringinuse = no\n{extra}\n{lines}\n"
    )


def ring(e: QueueEngine, uid: str, now: float, head: bool = False) -> list[str]:
    d = e.check(uid, now, head)
    assert d.kind == "ring", d
    e.start_ring(uid, d.members, now, d.ring_timeout)
    return [m.interface for m in d.members]


def answer_and_complete(e: QueueEngine, uid: str, iface: str, at: float, talk: int) -> None:
    q = e.queues[e.entries[uid].queue]
    m = q.member(iface)
    assert m is not None
    e.connect(uid, m, at)
    e.complete(q.name, m, at + talk, talk, 0)


def test_iteration_orders_are_asterisks() -> None:
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    # the order QueueStatus lists them in 05_ami_actions
    assert [q.name for q in e.ordered()] == [
        "sygedagpenge",
        "kontanthjaelp",
        "dagpenge",
        "virksomhed",
    ]
    assert str_case_hash("Dagpenge") == str_case_hash("dagpenge")
    # members: one bucket for all PJSIP/agentN (member_hash_fn), insertion order
    assert member_hash("PJSIP/agent1") == member_hash("PJSIP/agent2")
    assert [m.interface for m in e.queues["kontanthjaelp"].members] == [
        "PJSIP/agent2",
        "PJSIP/agent3",
    ]
    assert [m.queue for m in e.memberships("PJSIP/agent2")] == ["kontanthjaelp", "dagpenge"]
    # short names land in different buckets: Asterisk's order is not the config order
    short = engine(
        "[q]\nstrategy = rrmemory\n" + "".join(f"member => PJSIP/a{i}\n" for i in (1, 2, 3))
    )
    assert [m.interface for m in short.queues["q"].members] == ["PJSIP/a2", "PJSIP/a1", "PJSIP/a3"]


def test_rrmemory_goes_round_and_remembers() -> None:
    e = queue("rrmemory")
    order = []
    for i in range(4):
        uid = f"c{i}"
        e.join("q", uid, T0 + i * 100)
        (iface,) = ring(e, uid, T0 + i * 100)
        order.append(iface)
        answer_and_complete(e, uid, iface, T0 + i * 100, 10)
    assert order == ["PJSIP/agent1", "PJSIP/agent2", "PJSIP/agent3", "PJSIP/agent1"]


def test_rrmemory_skips_a_busy_member_and_continues_after_it() -> None:
    e = queue("rrmemory")
    e.set_device_state("PJSIP/agent1", Dev.INUSE)  # busy elsewhere
    e.join("q", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent2"]
    answer_and_complete(e, "c1", "PJSIP/agent2", T0, 10)
    e.set_device_state("PJSIP/agent1", Dev.NOT_INUSE)
    e.join("q", "c2", T0 + 100)
    assert ring(e, "c2", T0 + 100) == ["PJSIP/agent3"]


def test_leastrecent_prefers_never_called_then_the_longest_idle() -> None:
    e = queue("leastrecent")
    q = e.queues["q"]
    q.members[0].lastcall = int(T0 - 50)
    q.members[2].lastcall = int(T0 - 500)
    e.join("q", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent2"]  # never called: metric 0
    answer_and_complete(e, "c1", "PJSIP/agent2", T0, 5)
    e.join("q", "c2", T0 + 100)
    assert ring(e, "c2", T0 + 100) == ["PJSIP/agent3"]  # idle longest


def test_fewestcalls_and_linear() -> None:
    e = queue("fewestcalls")
    e.queues["q"].members[0].calls = 5
    e.queues["q"].members[1].calls = 2
    e.queues["q"].members[2].calls = 9
    e.join("q", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent2"]
    lin = queue("linear")
    lin.join("q", "c1", T0)
    assert ring(lin, "c1", T0) == ["PJSIP/agent1"]
    # no answer: the same caller goes on down the list, another caller starts at the top
    lin.ring_ended("c1", lin.queues["q"].members[0])
    lin.join("q", "c2", T0)
    assert ring(lin, "c1", T0 + 12, head=True) == ["PJSIP/agent2"]
    lin.ring_ended("c1", lin.queues["q"].members[1])
    lin.leave("c1", T0 + 13)
    assert ring(lin, "c2", T0 + 13) == ["PJSIP/agent1"]


def test_ringall_rings_every_free_member_of_the_best_penalty() -> None:
    e = engine(
        "[q]\nstrategy = ringall\ntimeout = 10\n"
        "member => PJSIP/agent1,0\nmember => PJSIP/agent2,0\nmember => PJSIP/agent3,1\n"
    )
    e.join("q", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent1", "PJSIP/agent2"]
    e2 = engine(
        "[q]\nstrategy = ringall\ntimeout = 10\nringinuse = no\n"
        "member => PJSIP/agent1,0\nmember => PJSIP/agent2,0\nmember => PJSIP/agent3,1\n"
    )
    e2.set_device_state("PJSIP/agent1", Dev.INUSE)
    e2.set_device_state("PJSIP/agent2", Dev.UNAVAILABLE)
    e2.join("q", "c1", T0)
    assert ring(e2, "c1", T0) == ["PJSIP/agent3"]


def test_penalty_orders_members_in_every_strategy() -> None:
    e = engine("[q]\nstrategy = rrmemory\nmember => PJSIP/agent1,2\nmember => PJSIP/agent2,0\n")
    e.join("q", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent2"]


def test_ring_timeout_then_retry_before_the_next_try() -> None:
    e = queue("rrmemory", members=2)
    e.join("q", "c1", T0)
    d = e.check("c1", T0, False)
    assert d.kind == "ring" and d.ring_timeout == 10.0
    e.start_ring("c1", d.members, T0, d.ring_timeout)
    assert e.ring_ended("c1", d.members[0]) is True  # no answer after 10 s
    # the PBX waits ``retry`` (2 s), then the head loop rings the next member
    assert ring(e, "c1", T0 + 12, head=True) == ["PJSIP/agent2"]


def test_queue_timeout_cuts_the_ring_short_and_then_leaves() -> None:
    e = queue("rrmemory", members=1)
    e.join("q", "c1", T0, timeout=15)
    e.check("c1", T0, False)
    e.ring_ended("c1", e.queues["q"].members[0])
    d = e.check("c1", T0 + 12, True)
    assert d.kind == "ring" and d.ring_timeout == pytest.approx(3.0)  # expires at T0+15
    e.ring_ended("c1", e.queues["q"].members[0])
    d = e.check("c1", T0 + 15, True)
    assert (d.kind, d.reason, d.abandon) == ("leave", "TIMEOUT", False)


def test_wrapup_keeps_a_member_from_the_next_call_in_every_queue() -> None:
    e = engine(
        "[general]\nshared_lastcall = yes\n"
        "[a]\nstrategy = rrmemory\nwrapuptime = 30\nmember => PJSIP/x,0\n"
        "[b]\nstrategy = rrmemory\nwrapuptime = 5\nretry = 5\nmember => PJSIP/x,0\n"
    )
    e.join("a", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/x"]
    answer_and_complete(e, "c1", "PJSIP/x", T0, 60)  # ends at T0+60
    assert [m.lastcall for m in e.memberships("PJSIP/x")] == [int(T0 + 60)] * 2
    e.join("b", "c2", T0 + 70)
    # queue b counts the member available (its own 5 s wrap-up is over), but ringing
    # uses the wrap-up of the member's last queue (a: 30 s): a failed try, wait retry
    d = e.check("c2", T0 + 70, False)
    assert (d.kind, d.reason, d.until) == ("wait", "retry", T0 + 70 + 5)
    assert e.check("c2", T0 + 89, True).kind == "wait"
    assert ring(e, "c2", T0 + 90, head=True) == ["PJSIP/x"]


def test_pause_blocks_calls_and_without_queue_applies_to_all() -> None:
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    paused = e.pause("PJSIP/agent2", None, True, "Frokost", T0)
    assert [(m.queue, m.paused_reason) for m in paused] == [
        ("kontanthjaelp", "Frokost"),
        ("dagpenge", "Frokost"),
    ]
    assert all(m.lastpause == int(T0) for m in paused)
    e.join("dagpenge", "c1", T0)
    assert ring(e, "c1", T0) == ["PJSIP/agent1"]
    e.pause("PJSIP/agent2", "dagpenge", False, "", T0 + 1)
    assert e.queues["dagpenge"].member("PJSIP/agent2").paused is False  # type: ignore[union-attr]
    assert e.queues["kontanthjaelp"].member("PJSIP/agent2").paused is True  # type: ignore[union-attr]
    with pytest.raises(QueueError) as err:
        e.pause("PJSIP/nobody", None, True, "", T0)
    assert err.value.code == "NOTFOUND"


def test_everyone_paused_the_caller_waits_and_rechecks_every_second() -> None:
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    e.pause("PJSIP/agent1", "dagpenge", True, "", T0)
    e.pause("PJSIP/agent2", "dagpenge", True, "", T0)
    # joinempty=unavailable,invalid: paused members do not make the queue empty
    assert e.join("dagpenge", "c1", T0).ok
    d = e.check("c1", T0, False)
    assert d.kind == "wait" and d.until == T0 + 1
    assert e.summary(e.queues["dagpenge"], T0)["Available"] == 0


def test_joinempty_rules() -> None:
    e = queue("rrmemory", members=2, extra="joinempty = paused,unavailable")
    e.pause("PJSIP/agent1", None, True, "", T0)
    e.set_device_state("PJSIP/agent2", Dev.UNAVAILABLE)
    r = e.join("q", "c1", T0)
    assert (r.ok, r.reason) == (False, "JOINEMPTY")
    e.set_device_state("PJSIP/agent2", Dev.INUSE)  # busy still counts as a member
    assert e.join("q", "c1", T0).ok
    empty = engine("[q]\nstrategy = rrmemory\njoinempty = unavailable\n")
    assert empty.join("q", "c1", T0).reason == "JOINEMPTY"  # no members at all
    assert engine("[q]\nstrategy = rrmemory\n").join("q", "c1", T0).ok  # no rule: joins
    assert e.join("nosuch", "c9", T0).reason == "UNKNOWN"


def test_leavewhenempty_and_maxlen() -> None:
    e = queue("rrmemory", members=1, extra="leavewhenempty = unavailable\nmaxlen = 1")
    assert e.join("q", "c1", T0).ok
    r = e.join("q", "c2", T0)
    assert (r.ok, r.reason) == (False, "FULL")
    e.set_device_state("PJSIP/agent1", Dev.UNAVAILABLE)
    d = e.check("c1", T0 + 1, False)
    assert (d.kind, d.reason, d.abandon) == ("leave", "LEAVEEMPTY", False)
    d = e.check("c1", T0 + 1, True)  # the head loop after a failed try records it abandoned
    assert (d.kind, d.reason, d.abandon) == ("leave", "LEAVEEMPTY", True)


def test_autofill_lets_as_many_callers_ring_as_members_are_free() -> None:
    e = queue("rrmemory", members=2)
    for i in range(3):
        e.join("q", f"c{i}", T0)
    assert ring(e, "c0", T0) == ["PJSIP/agent1"]
    e.set_device_state("PJSIP/agent1", Dev.RINGING)
    assert ring(e, "c1", T0) == ["PJSIP/agent2"]  # c0 is ringing: c1 is first in line
    e.set_device_state("PJSIP/agent2", Dev.RINGING)
    d = e.check("c2", T0, False)
    assert d.kind == "wait"


def test_abandon_positions_and_statistics() -> None:
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    for i, uid in enumerate(("c1", "c2", "c3")):
        e.join("dagpenge", uid, T0 + i)
    info = e.leave("c2", T0 + 40, abandoned=True)
    assert (info.position, info.count, info.original_position, info.holdtime) == (2, 2, 2, 39)
    info = e.leave("c3", T0 + 45, abandoned=True)
    assert (info.position, info.original_position) == (2, 3)  # moved up when c2 left
    q = e.queues["dagpenge"]
    assert (q.abandoned, q.abandoned_in_sl) == (2, 0)  # held longer than servicelevel 30


def test_holdtime_and_talktime_averages_like_app_queue() -> None:
    """05_ami_actions: after holds 14, 2, 2 and talks 16, 3, 3: Holdtime 8, TalkTime 9."""
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    q = e.queues["dagpenge"]
    agent = q.members[0]
    for i, (hold, talk) in enumerate(((14, 16), (2, 3), (2, 3))):
        t = T0 + 1000 * i
        e.join("dagpenge", f"c{i}", t)
        e.connect(f"c{i}", agent, t + hold)
        e.complete("dagpenge", agent, t + hold + talk, talk, hold)
    assert (q.holdtime, q.talktime, q.completed, q.completed_in_sl) == (8, 9, 3, 3)
    assert f"{q.sl_perf():.1f}" == "100.0"
    assert agent.calls == 3 and agent.lastcall == int(T0 + 2000 + 2 + 3)
    assert agent.in_call is False


def test_member_admin_errors() -> None:
    e = QueueEngine(parse_queues_conf(LAB.read_text()), T0)
    with pytest.raises(QueueError) as err:
        e.remove_member("dagpenge", "PJSIP/agent1")
    assert err.value.code == "NOT_DYNAMIC"
    with pytest.raises(QueueError) as err:
        e.add_member("dagpenge", "PJSIP/agent1", T0)
    assert err.value.code == "EXISTS"
    with pytest.raises(QueueError) as err:
        e.add_member("nosuch", "PJSIP/agent1", T0)
    assert err.value.code == "NOSUCHQUEUE"
    m = e.add_member("virksomhed", "PJSIP/agent1", T0, penalty=2, membername="Agent One")
    assert (m.dynamic, m.penalty, m.membername, m.logintime) == (True, 2, "Agent One", int(T0))
    assert [x.queue for x in e.memberships("PJSIP/agent1")] == ["dagpenge", "virksomhed"]
    assert e.remove_member("virksomhed", "PJSIP/agent1") is m
    with pytest.raises(QueueError) as err:
        e.remove_member("virksomhed", "PJSIP/agent1")
    assert err.value.code == "EXISTS"
