"""IVR statistics come from the event log: a morning of mixed calls over TCP, then the
figures computed from the recorded events alone (as the log would hold them)."""

from __future__ import annotations

from app.ivr.stats import ivr_stats, logged
from tests.agi_fake_asterisk import HANGUP, Caller
from tests.agi_support import agi_service, cph


async def test_statistics_from_the_log() -> None:
    async with agi_service(at=cph(2025, 3, 4, 10, 30)) as h:

        def caller(*answers: str | None) -> Caller:
            # Every prompt or question takes one second on the service's clock.
            return Caller(answers=list(answers), clock=h.clock, seconds_per_reply=1.0)

        await h.pbx.call(caller("2"), uniqueid="1.1")  # straight to dagpenge
        await h.pbx.call(caller("7", "2"), uniqueid="1.2")  # wrong key first
        await h.pbx.call(caller(None, None, None), uniqueid="1.3")  # silent: default queue
        await h.pbx.call(caller("3", HANGUP), uniqueid="1.4")  # leaves in the sygdom menu
        await h.pbx.call(caller("5", "1"), uniqueid="1.5")
        await h.pbx.call(caller("8", "8", "8"), script="survey", uniqueid="1.1")
    stats = ivr_stats(logged(h.events))
    assert stats.sessions == 5  # the survey session is not a menu session
    assert stats.keys == {
        ("hovedmenu", "2"): 2,
        ("hovedmenu", "7"): 1,
        ("hovedmenu", "3"): 1,
        ("hovedmenu", "5"): 1,
        ("samarbejdspartnere", "1"): 1,
    }
    assert stats.invalid == {"hovedmenu": 1}
    assert stats.timeouts == {"hovedmenu": 3}
    assert stats.hangups == {"sygdom": 1}
    assert stats.outcomes == {"routed": 4, "hangup": 1}
    assert stats.routed == {"dagpenge": 2, "kontanthjaelp": 1, "leverandoer": 1}
    # From IvrStarted (after the linked id) to IvrRouted: answer, welcome and the menu are
    # 3 s; a wrong key adds its notice and the replay (5 s); a sub-menu adds 1 s (4 s);
    # three silent menus with two notices between them take 7 s.
    assert sorted(stats.seconds_to_queue) == [3.0, 4.0, 5.0, 7.0]
    assert stats.median_seconds_to_queue == 4.5
