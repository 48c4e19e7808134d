"""/docs and /redoc on a server without internet: both pages render in a real browser with
every script, style and font served by the service itself, and ``/`` leads to them.

The page is loaded under a name that is not localhost (``acd.test``, mapped to 127.0.0.1
inside the browser only), as an operator would open it: Swagger UI asks an online
validator about a spec that does not come from localhost unless told not to.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser_support import headless_chromium, requested_urls, until
from tests.integration.test_live_api import live_app
from tests.live_support import serving


def _off_host(urls: list[str], port: int) -> list[str]:
    """The network requests that went anywhere but the service (``data:``, ``blob:`` and
    the browser's own ``chrome:`` pages never leave the machine)."""
    off = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss", "ftp"):
            continue
        if (parts.hostname, parts.port) != ("acd.test", port):
            off.append(url)
    return off


@pytest.mark.slow
async def test_swagger_ui_and_redoc_render_with_nothing_from_outside(sqlite_url: str) -> None:
    from selenium.webdriver.common.by import By

    app = live_app(sqlite_url)
    async with serving(app) as url:
        port = int(urlsplit(url).port or 0)
        base = f"http://acd.test:{port}"
        async with httpx.AsyncClient() as client:
            home = await client.get(url + "/", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/docs"
        with headless_chromium(hosts={"acd.test": "127.0.0.1"}, log_network=True) as chrome:
            # The front door leads to Swagger UI, which lists the API's operations.
            await asyncio.to_thread(chrome.get, base + "/")
            await until(lambda: chrome.current_url == base + "/docs")
            title = await until(
                lambda: chrome.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
            )
            assert "82 56 56 82" in title
            operations = await until(
                lambda: (
                    len(chrome.find_elements(By.CSS_SELECTOR, ".opblock")) > 20
                    and chrome.find_elements(By.CSS_SELECTOR, ".opblock")
                )
            )
            assert any("/v1/agents/{agent_id}/pause" in o.text for o in operations)
            # The "Authorize" dialog is there too (API key and OAuth2 schemes).
            assert chrome.find_elements(By.CSS_SELECTOR, ".btn.authorize")
            urls = await asyncio.to_thread(requested_urls, chrome)
            assert any(u.endswith("/openapi.json") for u in urls), urls
            assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
            assert _off_host(urls, port) == []

            # ReDoc renders the same document: its menu lists the operations.
            await asyncio.to_thread(chrome.get, base + "/redoc")
            menu: Any = await until(
                lambda: (
                    len(chrome.find_elements(By.CSS_SELECTOR, "[role=menuitem]")) > 20
                    and chrome.find_elements(By.CSS_SELECTOR, "[role=menuitem]")
                )
            )
            assert menu
            heading = await until(lambda: chrome.find_element(By.CSS_SELECTOR, "h1").text)
            assert "82 56 56 82" in heading
            urls = await asyncio.to_thread(requested_urls, chrome)
            assert any(u.endswith("redoc.standalone.js") for u in urls), urls
            assert _off_host(urls, port) == []
