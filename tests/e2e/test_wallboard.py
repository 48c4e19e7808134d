"""The wallboard in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against the service on a real port.

It renders every queue, follows a caller joining without a reload, colours each figure
against its own goal as the API gives them (never a whole card; an expected wait with
nobody waiting is no breach), shows a team's totals on a team's wall, and fits the wall
screens a centre has (1366x768 to 3840x2160): no sideways scrolling, no figure cut at its
card's edge, even with the longest figures the board can show."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.reports.goals import live_goals, load_goals
from tests.auth_support import viewer_headers
from tests.browser_support import headless_chromium, until
from tests.integration.test_live_api import live_app, staff
from tests.live_support import Feed, serving

SIZES = [(1366, 768), (1600, 900), (1920, 1080), (3840, 2160)]
ROOT = Path(__file__).resolve().parents[2]
# The goals the wallboard colours by: the agreement in force in ivr_flows/goals.yaml.
GOALS = live_goals(load_goals(ROOT / "ivr_flows"), date.today())


def _shown(value: Any) -> tuple[str, str]:
    """(text, colour class) of a figure: the class sits on its box."""
    cell = value.find_element("xpath", "..")
    colour = next((c for c in ("ok", "warn", "bad") if c in cell.get_attribute("class")), "")
    return value.text, colour


def field(driver: Any, queue: str, name: str) -> tuple[str, str]:
    """One figure of a queue's tile."""
    return _shown(
        driver.find_element("css selector", f'[data-queue="{queue}"] [data-field="{name}"]')
    )


def header(driver: Any, name: str) -> tuple[str, str]:
    """One figure of the header (the centre's, or a team's on a team's wall)."""
    return _shown(driver.find_element("css selector", f'header [data-field="centre-{name}"]'))


def seconds(text: str) -> int:
    minutes, secs = (int(x) for x in text.split(":"))
    return minutes * 60 + secs


def pct(rate: float) -> str:
    return f"{rate * 100:.1f}".replace(".", ",") + "\u202f%"


def busy_day(feed: Feed, now: datetime) -> None:
    """Figures as long as they get: an answer rate of 100,0 %, a caller waiting 75 minutes,
    double-digit agents, a queue nobody has called yet."""
    staff(feed)
    for n in range(12):
        feed.login("sygedagpenge", f"s{n}", f"Agent {n}")
    for n in range(3):
        call = f"a{n}"
        feed.now = now - timedelta(minutes=30 - n)
        feed.arrive(call)
        feed.join(call, "dagpenge")
        feed.at(40 + 30 * n).ring(call, "dagpenge", "agent1")
        feed.answer(call, "dagpenge", "agent1")
        feed.at(120).complete(call, "dagpenge", "agent1")
        feed.hangup(call)
    feed.now = now - timedelta(minutes=75)
    feed.arrive("long")
    feed.join("long", "kontanthjaelp")
    feed.now = now


# Every figure's box inside its card, every number inside its box, nothing wider than
# the window: what a person sees as "nothing cut, no sideways scroll bar".
LAYOUT = """
const doc = document.documentElement;
const out = {scroll: doc.scrollWidth, client: doc.clientWidth, cut: [], cards: 0, figures: 0};
const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5
  && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
for (const value of document.querySelectorAll('.value[data-field]')) {
  const box = value.parentElement;
  const card = value.closest('.queue') || value.closest('header');
  const where = value.closest('[data-queue]')?.dataset.queue || 'header';
  const name = where + '/' + value.dataset.field + ' ' + value.textContent;
  const own = value.getBoundingClientRect(), rect = box.getBoundingClientRect();
  out.figures += 1;
  if (value.scrollWidth > value.clientWidth + 0.5) out.cut.push(name + ' overflows');
  if (!inside(own, rect)) out.cut.push(name + ' leaves its box');
  if (!inside(rect, card.getBoundingClientRect())) out.cut.push(name + ' leaves its card');
  if (rect.right > doc.clientWidth + 0.5) out.cut.push(name + ' off screen');
}
out.cards = document.querySelectorAll('[data-queue]').length;
return out;
"""


@pytest.mark.slow
async def test_the_wallboard_fits_every_wall_screen(sqlite_url: str) -> None:
    from selenium.webdriver.common.by import By

    app = live_app(sqlite_url, live_interval=0.2)
    async with serving(app) as url:
        now = datetime.now(UTC)
        busy_day(Feed(app.state.rt.emit, now=now), now)
        key = (await viewer_headers(app))["X-API-Key"]
        for width, height in [*SIZES, (1280, 1024)]:
            with headless_chromium(width, height) as chrome:
                await asyncio.to_thread(chrome.get, url + f"/wallboard#key={key}")
                await until(lambda c=chrome: field(c, "dagpenge", "answer-rate")[0] == pct(1.0))
                await until(
                    lambda c=chrome: seconds(field(c, "kontanthjaelp", "longest")[0]) >= 75 * 60
                )
                assert field(chrome, "sygedagpenge", "free")[0] == "12/12"
                layout = await asyncio.to_thread(chrome.execute_script, LAYOUT)
                assert layout["cards"] == 11 and layout["figures"] == 11 * 6 + 5
                assert layout["scroll"] == layout["client"] == width, (width, layout)
                assert layout["cut"] == [], (width, layout["cut"])
                # The numbers stay readable: at least 1/40 of the screen's height high.
                size = chrome.execute_script(
                    "return parseFloat(getComputedStyle(document.querySelector("
                    '\'[data-queue="dagpenge"] [data-field="waiting"]\')).fontSize)'
                )
                assert size >= height / 40, (width, size)
                # On a 16:9 screen every queue is on screen at once, no scrolling at all.
                if width / height > 1.7:
                    bottom = chrome.execute_script(
                        "return Math.max(...[...document.querySelectorAll('[data-queue]')]"
                        ".map(e => e.getBoundingClientRect().bottom))"
                    )
                    assert bottom <= height, (width, bottom)
                assert chrome.find_elements(By.CSS_SELECTOR, "[data-queue].bad") == []


@pytest.mark.slow
async def test_the_wallboard_renders_follows_a_caller_and_colours_each_figure(
    sqlite_url: str,
) -> None:
    from selenium.webdriver.common.by import By

    app = live_app(sqlite_url, live_interval=0.2)
    async with serving(app) as url:
        rt: Any = app.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        key = (await viewer_headers(app))["X-API-Key"]
        with headless_chromium() as chromium:
            await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
            tiles = await until(
                lambda: (
                    len(chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")) >= 11
                    and chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")
                )
            )
            names = [t.get_attribute("data-queue") for t in tiles]
            assert names[:3] == ["kontanthjaelp", "dagpenge", "sygeopfoelgning"]
            assert tiles[1].find_element(By.TAG_NAME, "h2").text == "Dagpenge"
            # Nobody waits: a count has no goal, and no wait is a breach.
            assert field(chromium, "dagpenge", "waiting") == ("0", "")
            assert field(chromium, "dagpenge", "longest")[1] == ""
            assert field(chromium, "dagpenge", "free")[0] == "1/2"  # agent2 is at lunch
            assert "#key" not in chromium.current_url  # the key is taken off the address bar
            version = int(chromium.find_element(By.TAG_NAME, "body").get_attribute("data-version"))

            # A caller joins dagpenge: the tile and the header follow, without a reload.
            feed.now = datetime.now(UTC)
            feed.arrive("c1")
            feed.join("c1", "dagpenge")
            await until(lambda: field(chromium, "dagpenge", "waiting")[0] == "1")
            assert header(chromium, "waiting")[0] == "1"
            body = chromium.find_element(By.TAG_NAME, "body")
            assert int(body.get_attribute("data-version")) > version
            assert chromium.execute_script("return performance.navigation.type") == 0

            # A caller who has waited past the average-wait goal: that figure is red, the
            # others keep their own colours and the card is not coloured as a whole.
            feed.now = datetime.now(UTC) - timedelta(seconds=GOALS.avg_wait_seconds + 50)
            feed.arrive("c0")
            feed.join("c0", "kontanthjaelp")
            text, _ = await until(
                lambda: (
                    field(chromium, "kontanthjaelp", "longest")[1] == "bad"
                    and field(chromium, "kontanthjaelp", "longest")
                )
            )
            assert seconds(text) >= GOALS.avg_wait_seconds + 50
            assert field(chromium, "kontanthjaelp", "waiting")[1] == ""
            assert field(chromium, "kontanthjaelp", "answer-rate") == ("–", "")
            tile = chromium.find_element(By.CSS_SELECTOR, '[data-queue="kontanthjaelp"]')
            assert not {"ok", "warn", "bad"} & set(tile.get_attribute("class").split())
            colour = chromium.execute_script(
                "return getComputedStyle(arguments[0]).color",
                chromium.find_element(
                    By.CSS_SELECTOR, '[data-queue="kontanthjaelp"] [data-field="answer-rate"]'
                ),
            )
            assert colour == "rgb(230, 237, 243)"  # plain text, not red

            # The caller leaves: the expected wait for the next caller may be long, but with
            # nobody waiting it is not shown as a breach.
            feed.now = datetime.now(UTC)
            feed.abandon("c0", "kontanthjaelp")
            feed.hangup("c0")
            await until(lambda: field(chromium, "kontanthjaelp", "waiting")[0] == "0")
            assert field(chromium, "kontanthjaelp", "ewt")[1] == ""
            assert field(chromium, "kontanthjaelp", "longest")[1] == ""


@pytest.mark.slow
async def test_the_colours_follow_the_goals_the_api_gives(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not numbers of the page's own: against stricter goals a good day turns red."""
    from selenium.webdriver.common.by import By

    strict = dataclasses.replace(GOALS, answer_rate=0.999, answer_rate_warning=0.9995,
                                 avg_wait_seconds=5.0, avg_wait_warning_seconds=2.0)  # fmt: skip
    app = live_app(sqlite_url, live_interval=0.2)
    monkeypatch.setattr(app.state.rt.hub, "goals", lambda _day: strict)
    async with serving(app) as url:
        now = datetime.now(UTC)
        feed = Feed(app.state.rt.emit, now=now)
        staff(feed)
        feed.now = now - timedelta(seconds=60)
        feed.arrive("x1")
        feed.join("x1", "dagpenge")
        feed.at(30).ring("x1", "dagpenge", "agent1")
        feed.answer("x1", "dagpenge", "agent1")
        feed.now = now - timedelta(seconds=20)
        feed.arrive("x2")
        feed.join("x2", "dagpenge")
        feed.at(3).abandon("x2", "dagpenge")
        key = (await viewer_headers(app))["X-API-Key"]
        with headless_chromium() as chromium:
            await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
            await until(lambda: field(chromium, "dagpenge", "answer-rate")[0] == pct(1.0))
            # 100 % of the one counted call (the 3 s abandon is short), 30 s average wait.
            assert field(chromium, "dagpenge", "answer-rate")[1] == "ok"
            assert field(chromium, "dagpenge", "avg-wait") == ("0:17", "bad")
            label = chromium.find_element(By.CSS_SELECTOR, '[data-goal="wait"]').text
            assert "(mål 0:05)" in label


@pytest.mark.slow
async def test_a_team_wall_shows_its_queues_and_their_totals(sqlite_url: str) -> None:
    from selenium.webdriver.common.by import By

    app = live_app(sqlite_url, live_interval=0.2)
    async with serving(app) as url:
        now = datetime.now(UTC)
        busy_day(Feed(app.state.rt.emit, now=now), now)
        feed = Feed(app.state.rt.emit, now=now - timedelta(seconds=400))
        feed.arrive("t1")
        feed.join("t1", "a_kasse")
        feed.at(200).abandon("t1", "a_kasse")
        feed.hangup("t1")
        feed.now = now - timedelta(seconds=10)
        feed.arrive("t2")
        feed.join("t2", "a_kasse")
        headers = await viewer_headers(app)
        with headless_chromium(1920, 1080) as chromium:
            await asyncio.to_thread(
                chromium.get, url + f"/wallboard?queues=dagpenge,a_kasse#key={headers['X-API-Key']}"
            )
            await until(
                lambda: (
                    [
                        t.get_attribute("data-queue")
                        for t in chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")
                    ]
                    == ["dagpenge", "a_kasse"]
                )
            )
            await until(lambda: header(chromium, "waiting")[0] == "1")
            scope = chromium.find_element(By.ID, "scope").text
            assert scope == "Team: Dagpenge, A-kasse"
            async with httpx.AsyncClient() as client:
                doc = (await client.get(url + "/v1/queues", headers=headers)).json()
            team = [q for q in doc["queues"] if q["name"] in ("dagpenge", "a_kasse")]
            offered = sum(q["today"]["offered"] for q in team)
            answered = sum(q["today"]["answered"] for q in team)
            net = offered - sum(q["today"]["short_abandoned"] for q in team)
            waits = sum(q["today"]["avg_wait_seconds"] * q["today"]["offered"] for q in team)
            # The team's, not the centre's: the centre has a caller waiting 75 minutes.
            assert doc["centre"]["waiting"] == 2
            assert header(chromium, "answer-rate")[0] == pct(answered / net)
            assert answered / net == 3 / 4 and header(chromium, "answer-rate")[1] == "bad"
            wait = int(waits / offered + 0.5)  # as the page rounds: half up
            assert header(chromium, "avg-wait")[0] == f"{wait // 60}:{wait % 60:02d}"
            assert seconds(header(chromium, "longest")[0]) < 60
            within = sum(q["today"]["answered_within_sl"] for q in team)
            assert header(chromium, "service-level")[0] == pct(within / answered)


@pytest.mark.slow
async def test_a_centre_of_two_pbxs_on_the_wall_and_one_pbx_alone(
    sqlite_url: str, redis_url: str
) -> None:
    """An API replica of a centre with two PBXs (ACD_PBXS): it follows both owners'
    pictures from Redis. The wall shows their sum, ``?pbx=`` one of them, and says which
    PBX is missing when its picture goes."""
    from redis.asyncio import Redis
    from selenium.webdriver.common.by import By

    from app.live.mirror import snapshot_key
    from tests.live_support import pbx_morning

    now = datetime.now(UTC)
    boards = {
        "pbx1": pbx_morning("pbx1", "a", busy=True, start=now - timedelta(minutes=10))[0],
        "pbx2": pbx_morning("pbx2", "b", busy=False, start=now - timedelta(minutes=8))[0],
    }
    boards["pbx2"]["centre"]["waiting"] = 3  # as if two more waited there
    client = Redis.from_url(redis_url)
    try:
        for pbx, board in boards.items():
            await client.set(snapshot_key(pbx), json.dumps(board), ex=120)
        app = live_app(sqlite_url, live_interval=0.2, redis_url=redis_url, pbxs="pbx1,pbx2")
        async with serving(app) as url:
            key = (await viewer_headers(app))["X-API-Key"]
            with headless_chromium(1920, 1080) as chromium:
                await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
                await until(lambda: header(chromium, "waiting")[0] == "4")
                assert (
                    chromium.find_element(By.ID, "scope").text == "Jobcenter København · kø-tavle"
                )
                offered = sum(b["centre"]["today"]["offered"] for b in boards.values())
                answered = sum(b["centre"]["today"]["answered"] for b in boards.values())
                short = sum(b["centre"]["today"]["short_abandoned"] for b in boards.values())
                assert header(chromium, "answer-rate")[0] == pct(answered / (offered - short))

                await asyncio.to_thread(chromium.get, url + f"/wallboard?pbx=pbx2#key={key}")
                await until(lambda: header(chromium, "waiting")[0] == "3")
                scope = chromium.find_element(By.ID, "scope").text
                assert scope == "Jobcenter København · telefonanlæg pbx2"
                t2 = boards["pbx2"]["centre"]["today"]
                assert header(chromium, "answer-rate")[0] == pct(t2["answer_rate"])

                # pbx2's owner is gone (its mirror expired): the centre's wall says so and
                # shows pbx1's figures only.
                await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
                await until(lambda: header(chromium, "waiting")[0] == "4")
                await client.delete(snapshot_key("pbx2"))
                await until(
                    lambda: "mangler data fra pbx2" in chromium.find_element(By.ID, "scope").text,
                    within=20,
                )
                assert header(chromium, "waiting")[0] == "1"
    finally:
        await client.aclose()
