"""The wallboard in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against the service on a real port. It renders every queue, and
when a caller joins a queue the numbers change without a reload, coloured against the
goals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.acd.kpi import GOALS
from tests.auth_support import viewer_headers
from tests.integration.test_live_api import live_app, staff
from tests.live_support import Feed, serving

ROOT = Path(__file__).resolve().parents[2]


async def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll ``check`` (in a thread: WebDriver calls block) until it returns something true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    last: Any = None
    while loop.time() < end:
        try:
            last = await asyncio.to_thread(check)
        except Exception as exc:  # not rendered yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within} s; last: {last!r}")


def field(driver: Any, queue: str, name: str) -> tuple[str, str]:
    """(text, colour class) of one figure of a queue's tile."""
    from selenium.webdriver.common.by import By

    value = driver.find_element(By.CSS_SELECTOR, f'[data-queue="{queue}"] [data-field="{name}"]')
    cell = value.find_element(By.XPATH, "..")
    colour = next((c for c in ("ok", "warn", "bad") if c in cell.get_attribute("class")), "")
    return value.text, colour


@pytest.mark.slow
async def test_the_wallboard_renders_and_follows_a_caller_joining(
    sqlite_url: str, chromium: Any
) -> None:
    from selenium.webdriver.common.by import By

    app = live_app(sqlite_url, live_interval=0.2)
    async with serving(app) as url:
        rt: Any = app.state.rt
        feed = Feed(rt.emit, now=datetime.now(UTC))
        staff(feed)
        key = (await viewer_headers(app))["X-API-Key"]
        await asyncio.to_thread(chromium.get, url + f"/wallboard#key={key}")
        tiles = await until(
            lambda: (
                len(chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")) >= 11
                and chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")
            )
        )
        names = [t.get_attribute("data-queue") for t in tiles]
        assert names[:3] == ["kontanthjaelp", "dagpenge", "sygeopfoelgning"]
        title = tiles[1].find_element(By.TAG_NAME, "h2").text
        assert title == "Dagpenge"
        assert field(chromium, "dagpenge", "waiting") == ("0", "ok")
        assert field(chromium, "dagpenge", "free")[0] == "1/2"  # agent2 is at lunch
        # Readable on a wall: the big numbers are big.
        size = chromium.execute_script(
            "return parseFloat(getComputedStyle(document.querySelector("
            '\'[data-queue="dagpenge"] [data-field="waiting"]\')).fontSize)'
        )
        assert size >= 40, size
        assert "#key" not in chromium.current_url  # the key is taken off the address bar
        version = int(chromium.find_element(By.TAG_NAME, "body").get_attribute("data-version"))

        # A caller joins dagpenge: the tile and the header follow, without a reload.
        feed.now = datetime.now(UTC)
        feed.arrive("c1")
        feed.join("c1", "dagpenge")
        await until(lambda: field(chromium, "dagpenge", "waiting")[0] == "1")
        header = chromium.find_element(By.CSS_SELECTOR, '[data-field="centre-waiting"]')
        assert header.text == "1"
        assert int(chromium.find_element(By.TAG_NAME, "body").get_attribute("data-version")) > (
            version
        )
        assert chromium.execute_script("return performance.navigation.type") == 0  # no reload

        # A caller who has waited past the average-wait goal shows red.
        feed.now = datetime.now(UTC) - timedelta(seconds=GOALS.avg_wait_seconds + 50)
        feed.arrive("c0")
        feed.join("c0", "kontanthjaelp")
        text, _ = await until(
            lambda: (
                field(chromium, "kontanthjaelp", "longest")[1] == "bad"
                and field(chromium, "kontanthjaelp", "longest")
            )
        )
        minutes, seconds = (int(x) for x in text.split(":"))
        assert minutes * 60 + seconds >= GOALS.avg_wait_seconds + 50
        tile_class = chromium.find_element(
            By.CSS_SELECTOR, '[data-queue="kontanthjaelp"]'
        ).get_attribute("class")
        assert "bad" in tile_class

        # A team's wall: only its queues.
        # The key is kept on this screen: a second page needs no fragment.
        await asyncio.to_thread(chromium.get, url + "/wallboard?queues=dagpenge,a_kasse")
        await until(
            lambda: (
                [
                    t.get_attribute("data-queue")
                    for t in chromium.find_elements(By.CSS_SELECTOR, "[data-queue]")
                ]
                == ["dagpenge", "a_kasse"]
            )
        )
