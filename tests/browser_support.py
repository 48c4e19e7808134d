"""Pages in a real browser: Debian's headless Chromium driven by Selenium through Debian's
chromedriver (scripts/test.sh installs both).

``headless_chromium`` opens one at a window size; with ``log_network`` Chrome's DevTools
performance log records every request the page makes, and ``requested_urls`` reads them
back, so a test can say that nothing left the host. ``hosts`` maps names to addresses
inside the browser only (``--host-resolver-rules``), to load a page under a name that is
not "localhost" (Swagger UI, for one, treats localhost specially).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest


@contextlib.contextmanager
def headless_chromium(
    width: int = 1920,
    height: int = 1080,
    *,
    hosts: Mapping[str, str] | None = None,
    log_network: bool = False,
) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.fail(
            "browser tests need Debian's chromium and chromium-driver "
            "(scripts/test.sh installs them)",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="acd-chromium-")
    options = Options()
    options.binary_location = binary
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if hosts:
        rules = ",".join(f"MAP {name} {address}" for name, address in hosts.items())
        options.add_argument(f"--host-resolver-rules={rules}")
    if log_network:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        # --window-size sets the outer window; the page must get exactly this viewport.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page sent a request for since the last call (DevTools ``Network``
    events); requests the browser itself blocked (``blocked:csp`` and the like) never left
    the page and are not listed."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [url for request, url in sent.items() if request not in blocked]


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
