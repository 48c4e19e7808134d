"""Every path through the 82 56 56 82 menu, driven over real TCP by a FastAGI client that
speaks as Asterisk 22 does. Time is injected (a fake clock); live waits are given."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import pytest

from app.acd.events import DomainEvent
from tests.agi_fake_asterisk import HANGUP, Caller, CallResult, asterisk_env
from tests.agi_support import agi_service, cph, waits
from tests.expectations import AREA_KEYS

TUESDAY_1030 = cph(2025, 3, 4, 10, 30)
ROUTE_VARIABLES = ["ACD_ROUTE", "ACD_QUEUE", "ACD_FORWARD", "ACD_SURVEY"]


def set_commands(r: CallResult) -> list[str]:
    return [c.split(" ")[2] for c in r.commands if c.startswith("SET VARIABLE")]


def assert_no_clear_number(events: list[DomainEvent], *numbers: str) -> None:
    for event in events:
        blob = json.dumps(event.data(), ensure_ascii=False)
        for number in numbers:
            assert number not in blob, (event.kind, blob)


@pytest.mark.parametrize(("queue", "keys"), sorted(AREA_KEYS.items()))
async def test_each_area_by_its_keys(queue: str, keys: list[str]) -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        r = await h.pbx.call(Caller(answers=list(keys)))
    assert r.closed_by_service and not r.hung_up
    # As recorded from a real Asterisk: the linked id first, then answer, welcome, menus.
    assert r.commands[:3] == [
        'GET FULL VARIABLE "${CHANNEL(linkedid)}"',
        "ANSWER",
        'STREAM FILE acd/info-velkommen "0123456789*#"',
    ]
    assert r.commands[3] == "GET DATA acd/menu-hovedmenu 6000 1"
    assert r.variables == {
        "ACD_ROUTE": "queue",
        "ACD_QUEUE": queue,
        "ACD_FORWARD": "",
        "ACD_SURVEY": "0",
    }
    assert set_commands(r) == ROUTE_VARIABLES  # the route is the last thing set
    assert h.kinds()[0] == "ivr_started" and h.kinds()[-1] == "ivr_ended"
    assert h.one("ivr_routed").queue == queue
    assert [e.digit for e in h.of("ivr_key")] == keys
    assert h.one("ivr_ended").reason == "routed"
    assert h.metric("acd_ivr_keys_total", menu="hovedmenu", key=keys[0]) == 1
    assert h.metric("acd_agi_sessions_total", result="routed") == 1
    assert h.metric("acd_ivr_time_to_queue_seconds_count", queue=queue) == 1


async def test_events_carry_the_call_identity_and_stable_keys() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        await h.pbx.call(Caller(answers=["2"], linkedid="1795362440.10"), uniqueid="1795362443.12")
    events = h.events
    assert {e.pbx for e in events} == {"pbx1"}
    assert {e.linkedid for e in events} == {"1795362440.10"}  # from CHANNEL(linkedid)
    assert {e.uniqueid for e in events} == {"1795362443.12"}
    assert [e.key for e in events] == [f"agi:1795362443.12:ivr:{i}" for i in range(1, 6)]
    assert all(e.at == TUESDAY_1030 and e.at.tzinfo is UTC for e in events)
    assert all(e.source == "agi" for e in events)
    started = h.one("ivr_started")
    assert (started.flow, started.script, started.dialled) == ("jobcenter", "ivr", "82565682")
    assert started.channel == "PJSIP/trunk-0000000c"
    assert started.caller.display == "•••••01" and started.caller.hash
    assert_no_clear_number(events, "4520001")


async def test_invalid_key_then_valid() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        r = await h.pbx.call(Caller(answers=["8", "2"]))
    assert r.prompts == [
        "acd/info-velkommen",
        "acd/menu-hovedmenu",
        "acd/info-ugyldigt-valg",
        "acd/menu-hovedmenu",
    ]
    assert r.variables["ACD_QUEUE"] == "dagpenge"
    keys = [(e.digit, e.valid) for e in h.of("ivr_key")]
    assert keys == [("8", False), ("2", True)]
    assert [e.attempt for e in h.of("ivr_menu")] == [1, 2]
    assert h.metric("acd_ivr_invalid_keys_total", menu="hovedmenu") == 1


async def test_three_timeouts_reach_the_default_queue() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        r = await h.pbx.call(Caller(answers=[None, None, None]))
    assert r.prompts == [
        "acd/info-velkommen",
        "acd/menu-hovedmenu",
        "acd/info-intet-valg",
        "acd/menu-hovedmenu",
        "acd/info-intet-valg",
        "acd/menu-hovedmenu",
        "acd/info-stilles-videre",
    ]
    assert r.variables["ACD_ROUTE"] == "queue" and r.variables["ACD_QUEUE"] == "kontanthjaelp"
    assert [e.attempt for e in h.of("ivr_timeout")] == [1, 2, 3]
    routed = h.one("ivr_routed")
    assert routed.fallback is True and routed.menu == "hovedmenu"
    assert h.metric("acd_ivr_timeouts_total", menu="hovedmenu") == 3


async def test_barge_in_during_the_welcome() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        r = await h.pbx.call(Caller(barge={"acd/info-velkommen": "2"}))
    assert "GET DATA acd/menu-hovedmenu 6000 1" not in r.commands
    assert r.variables["ACD_QUEUE"] == "dagpenge"
    assert [e.digit for e in h.of("ivr_key")] == ["2"]


@pytest.mark.parametrize(
    ("at", "reason", "expected_prompts", "next_open"),
    [
        # Tuesday evening: "... vi åbner igen i morgen klokken otte"
        (cph(2025, 3, 4, 18, 0), "hours",
         ["acd/closed-lukket", "acd/closed-aabner-igen", "acd/cal-i-morgen", "acd/cal-kl-0800"],
         cph(2025, 3, 5, 8, 0)),
        # Saturday: Monday 10 March
        (cph(2025, 3, 8, 11, 0), "hours",
         ["acd/closed-lukket", "acd/closed-aabner-igen", "acd/cal-mandag", "acd/cal-den-10",
          "acd/cal-marts", "acd/cal-kl-0800"],
         cph(2025, 3, 10, 8, 0)),
        # Easter Monday (2. påskedag) 2025: Tuesday 22 April, tomorrow
        (cph(2025, 4, 21, 10, 0), "holiday",
         ["acd/closed-helligdag", "acd/closed-aabner-igen", "acd/cal-i-morgen", "acd/cal-kl-0800"],
         cph(2025, 4, 22, 8, 0)),
        # Christmas Day 2025 (Thursday): Monday 29 December
        (cph(2025, 12, 25, 10, 0), "holiday",
         ["acd/closed-helligdag", "acd/closed-aabner-igen", "acd/cal-mandag", "acd/cal-den-29",
          "acd/cal-december", "acd/cal-kl-0800"],
         cph(2025, 12, 29, 8, 0)),
        # Store bededag 2023 was still a holiday
        (cph(2023, 5, 5, 10, 0), "holiday",
         ["acd/closed-helligdag", "acd/closed-aabner-igen", "acd/cal-mandag", "acd/cal-den-8",
          "acd/cal-maj", "acd/cal-kl-0800"],
         cph(2023, 5, 8, 8, 0)),
    ],
)  # fmt: skip
async def test_closed(
    at: datetime, reason: str, expected_prompts: list[str], next_open: datetime
) -> None:
    async with agi_service(at=at) as h:
        r = await h.pbx.call(Caller(answers=["1"]))
    assert r.prompts == [*expected_prompts, "acd/closed-farvel"]
    assert not r.asked  # nothing is asked when closed
    assert r.variables == {
        "ACD_ROUTE": "hangup",
        "ACD_QUEUE": "",
        "ACD_FORWARD": "",
        "ACD_SURVEY": "0",
    }
    closed = h.one("ivr_closed")
    assert closed.reason == reason and closed.next_open == next_open
    assert h.one("ivr_ended").reason == "closed"
    assert "ivr_routed" not in h.kinds()


async def test_store_bededag_is_an_ordinary_day_from_2024() -> None:
    async with agi_service(at=cph(2024, 4, 26, 10, 0)) as h:
        r = await h.pbx.call(Caller(answers=["2"]))
    assert r.variables["ACD_QUEUE"] == "dagpenge"


async def test_sygedagpenge_at_0930_goes_straight_to_the_unit() -> None:
    async with agi_service(at=cph(2025, 3, 4, 9, 30)) as h:
        r = await h.pbx.call(Caller(answers=["3", "1"]))
    assert r.prompts[-1] == "acd/info-viderestilling-jka"
    assert r.variables == {
        "ACD_ROUTE": "forward",
        "ACD_QUEUE": "",
        "ACD_FORWARD": "+4582565690",
        "ACD_SURVEY": "0",
    }
    forwarded = h.one("ivr_forwarded")
    assert (forwarded.destination, forwarded.number) == ("jka", "+4582565690")
    assert forwarded.rule == "sygedagpenge-jka-0900-1000"
    assert h.one("ivr_ended").reason == "forwarded"


async def test_sygedagpenge_at_1030_joins_the_queue() -> None:
    async with agi_service(at=cph(2025, 3, 4, 10, 30)) as h:
        r = await h.pbx.call(Caller(answers=["3", "1"]))
    assert r.variables["ACD_ROUTE"] == "queue" and r.variables["ACD_QUEUE"] == "sygedagpenge"
    assert "ivr_forwarded" not in h.kinds()


async def test_long_wait_call_back_accepted() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(dagpenge=900.0)) as h:
        r = await h.pbx.call(Caller(answers=["2", "1", "1"]), callerid="20123456")
    assert r.asked == [
        "acd/menu-hovedmenu",
        "acd/offer-tilbagekald",
        "acd/confirm-tilbagekald",
    ]
    assert r.prompts[-1] == "acd/info-tilbagekald-bestilt"
    assert r.variables["ACD_ROUTE"] == "hangup"
    offered = h.one("ivr_callback_offered")
    assert (offered.queue, offered.estimated_wait_seconds) == ("dagpenge", 900.0)
    accepted = h.one("ivr_callback_accepted")
    assert (accepted.queue, accepted.task) == ("dagpenge", "callback")
    assert accepted.caller.display == "+45 ••••••56"
    assert h.privacy.unseal(accepted.number_sealed) == "+4520123456"
    assert "number_sealed" not in accepted.data()  # never into the event log
    assert h.one("ivr_ended").reason == "callback"
    assert_no_clear_number(h.events, "20123456")
    assert h.metric("acd_ivr_callback_offers_total", queue="dagpenge", answer="callback") == 1


async def test_long_wait_call_back_declined() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(dagpenge=900.0)) as h:
        r = await h.pbx.call(Caller(answers=["2", "9"]))
    assert r.prompts[-1] == "acd/info-bliver-i-koeen"
    assert r.variables["ACD_ROUTE"] == "queue" and r.variables["ACD_QUEUE"] == "dagpenge"
    assert h.one("ivr_callback_declined").queue == "dagpenge"
    assert h.one("ivr_routed").estimated_wait_seconds == 900.0


async def test_long_wait_confirm_refused_keeps_the_place() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(dagpenge=900.0)) as h:
        r = await h.pbx.call(Caller(answers=["2", "1", "2"]))
    assert r.variables["ACD_QUEUE"] == "dagpenge"
    assert "ivr_callback_accepted" not in h.kinds()
    assert h.one("ivr_callback_declined").queue == "dagpenge"


async def test_long_wait_leave_a_message() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(kontanthjaelp=1500.0)) as h:
        r = await h.pbx.call(Caller(answers=["1", "2"], record=(64000, "dtmf")), uniqueid="99.1")
    recorded = next(c for c in r.commands if c.startswith("RECORD FILE"))
    # The file: the call's id and a random part (no recording found by guessing an id).
    assert re.fullmatch(
        r'RECORD FILE /var/spool/asterisk/acd-messages/99\.1-[0-9a-f]{16} wav "#" 120000 BEEP',
        recorded,
    ), recorded
    assert r.prompts[-2:] == ["acd/info-indtal-besked", "acd/info-besked-gemt"]
    assert r.variables["ACD_ROUTE"] == "hangup"
    accepted = h.one("ivr_callback_accepted")
    assert accepted.task == "message"
    assert recorded.split()[2] == accepted.recording
    assert accepted.number_sealed is None
    assert h.one("ivr_ended").reason == "message"


@pytest.mark.parametrize("callingpres", ["32", "35", "67"])
async def test_hidden_number_gets_a_message_instead_of_a_call_back(callingpres: str) -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(kontanthjaelp=1500.0)) as h:
        r = await h.pbx.call(
            Caller(answers=["1", "1"], record=(24000, "timeout")), callingpres=callingpres
        )
    if callingpres == "67":  # "number unavailable" is not "withheld": it has a number
        assert "acd/confirm-tilbagekald" in r.asked
        return
    assert "acd/confirm-tilbagekald" not in r.asked
    assert r.prompts[-3:] == [
        "acd/info-skjult-nummer",
        "acd/info-indtal-besked",
        "acd/info-besked-gemt",
    ]
    assert h.one("ivr_callback_accepted").task == "message"


async def test_unknown_estimate_means_no_offer() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(dagpenge=None)) as h:
        r = await h.pbx.call(Caller(answers=["2"]))
    assert r.variables["ACD_QUEUE"] == "dagpenge"
    assert "ivr_callback_offered" not in h.kinds()


async def test_every_fifth_caller_routed_is_flagged_for_the_survey() -> None:
    async with agi_service(at=TUESDAY_1030) as h:
        flags = []
        for i in range(10):
            r = await h.pbx.call(Caller(answers=["1"]), uniqueid=f"100.{i}")
            flags.append(r.variables["ACD_SURVEY"])
        # Closed-hours and forwarded calls are not counted: they never meet an agent.
        h.clock.now = cph(2025, 3, 4, 9, 30)
        r = await h.pbx.call(Caller(answers=["3", "1"]), uniqueid="100.99")
        assert r.variables["ACD_SURVEY"] == "0"
    assert flags == ["0", "0", "0", "0", "1", "0", "0", "0", "0", "1"]
    assert [e.uniqueid for e in h.of("ivr_survey_flagged")] == ["100.4", "100.9"]


# ---- hang-ups at every step -----------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "at", "estimates", "node"),
    [
        (Caller(hangup_on="acd/info-velkommen"), TUESDAY_1030, {}, "hovedmenu"),
        (Caller(answers=[HANGUP]), TUESDAY_1030, {}, "hovedmenu"),
        (Caller(answers=["9"], hangup_on="acd/info-ugyldigt-valg"), TUESDAY_1030, {}, "hovedmenu"),
        (Caller(answers=["3", HANGUP]), TUESDAY_1030, {}, "sygdom"),
        (Caller(answers=["5", None, HANGUP]), TUESDAY_1030, {}, "samarbejdspartnere"),
        (Caller(answers=[None, None, None], hangup_on="acd/info-stilles-videre"), TUESDAY_1030, {},
         "koe_kontanthjaelp"),
        (Caller(answers=["2", HANGUP]), TUESDAY_1030, {"dagpenge": 900.0}, "koe_dagpenge"),
        (Caller(answers=["2", "1", HANGUP]), TUESDAY_1030, {"dagpenge": 900.0}, "koe_dagpenge"),
        (Caller(answers=["3", "1"], hangup_on="acd/info-viderestilling-jka"),
         cph(2025, 3, 4, 9, 30), {}, "viderestil_jka"),
        (Caller(hangup_on="acd/closed-aabner-igen"), cph(2025, 3, 4, 18, 0), {}, ""),
    ],
    ids=["welcome", "main-menu", "invalid-prompt", "sub-menu", "after-timeout", "fallback-prompt",
         "offer", "confirm", "forward-prompt", "closed-message"],
)  # fmt: skip
async def test_hang_up_at_each_step(
    caller: Caller, at: datetime, estimates: dict[str, float], node: str
) -> None:
    async with agi_service(at=at, estimates=waits(**estimates)) as h:
        r = await asyncio.wait_for(h.pbx.call(caller), 5)
        assert h.server.active == 0
    assert r.hung_up and r.closed_by_service
    # Nothing is sent on a dead channel: the last command is the interrupted one.
    last = r.commands[-1]
    assert last.startswith(("STREAM FILE", "GET DATA")), r.commands
    assert not r.variables  # no route on a channel that is gone
    ended = h.one("ivr_ended")
    assert ended.reason == "hangup"
    assert ended.menu == node
    assert h.metric("acd_ivr_hangups_total", menu=node or "-") == 1
    assert h.metric("acd_agi_sessions_total", result="hangup") == 1


async def test_hang_up_while_recording_keeps_the_message() -> None:
    async with agi_service(at=TUESDAY_1030, estimates=waits(kontanthjaelp=1500.0)) as h:
        r = await h.pbx.call(Caller(answers=["1", "2"], record=(32000, "hangup")), uniqueid="5.5")
    assert r.hung_up and r.closed_by_service
    assert not r.variables
    accepted = h.one("ivr_callback_accepted")
    assert accepted.task == "message" and accepted.recording is not None
    assert re.fullmatch(r"/var/spool/asterisk/acd-messages/5\.5-[0-9a-f]{16}", accepted.recording)
    assert h.one("ivr_ended").reason == "message"


async def test_a_missing_prompt_file_is_an_error_not_a_hang_up() -> None:
    # Asterisk answers STREAM FILE of a missing file with result=-1 but sends no HANGUP.
    async with agi_service(at=TUESDAY_1030) as h:
        reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
        writer.write(asterisk_env(port=h.server.port))
        replies = [
            b"200 result=1 (1795362443.12)\n",
            b"200 result=0\n",
            b"200 result=-1 endpos=0\n",
        ]
        for reply in replies:
            assert await asyncio.wait_for(reader.readline(), 2)
            writer.write(reply)
        assert await asyncio.wait_for(reader.read(), 3) == b""  # closed after the grace
        writer.close()
    assert h.one("ivr_ended").reason == "error"
    assert h.metric("acd_ivr_hangups_total", menu="hovedmenu") == 0


async def test_many_callers_at_once_each_get_their_own_route() -> None:
    async with agi_service(at=TUESDAY_1030, max_sessions=100) as h:
        calls = [
            h.pbx.call(Caller(answers=list(keys), think=0.01), uniqueid=f"200.{i}")
            for i, keys in enumerate(list(AREA_KEYS.values()) * 5)
        ]
        results = await asyncio.gather(*calls)
    queues = [r.variables["ACD_QUEUE"] for r in results]
    assert queues == list(AREA_KEYS) * 5
    assert h.metric("acd_agi_sessions_total", result="routed") == 55
    assert len({e.key for e in h.events}) == len(h.events)  # keys unique across sessions
