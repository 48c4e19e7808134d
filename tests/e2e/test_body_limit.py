"""The request body limit holds for every method (issue 14 §3: a GET with a 20 MB body
was read), over real HTTP: a declared length over the limit is refused before the body is
read, a chunked one as soon as it passes the limit, and requests without a body (a live
stream among them) are untouched."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.main import create_app
from app.settings import load_settings
from tests.auth_support import viewer_headers
from tests.live_support import serving

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 4096
TWENTY_MB = 20 * 1024 * 1024


def app_on(db: str) -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        agi_port = s.getsockname()[1]
    return create_app(
        load_settings(
            database_url=db,
            agi_port=agi_port,
            ivr_flows=str(ROOT / "ivr_flows"),
            max_body_bytes=LIMIT,
            caller_hash_key="body-limit-test-key-0123456789",
        )
    )


async def send_big(base: str, head: str, *, chunked: bool) -> tuple[str, int]:
    """Send ``head`` and then up to 20 MB of body (as fast as the server takes it), while
    reading the answer; stop sending as soon as it comes. (status line, bytes sent)."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head.encode())
    sent = 0
    answer = asyncio.create_task(reader.readline())
    piece = b"x" * 16384
    try:
        while sent < TWENTY_MB and not answer.done():
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            writer.write(data)
            sent += len(piece)
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except (ConnectionError, TimeoutError):
                break
            await asyncio.sleep(0)
        status = (await asyncio.wait_for(answer, 10)).decode().strip()
    finally:
        writer.close()
    return status, sent


async def test_a_get_with_a_20_mb_body_is_refused_and_bodiless_requests_are_untouched(
    sqlite_url: str,
) -> None:
    app = app_on(sqlite_url)
    async with serving(app) as base:
        headers = await viewer_headers(app)
        auth = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        declared, declared_sent = await send_big(
            base,
            f"GET /v1/queues HTTP/1.1\r\nHost: acd\r\n{auth}Content-Length: {TWENTY_MB}\r\n\r\n",
            chunked=False,
        )
        chunked, chunked_sent = await send_big(
            base,
            f"GET /v1/agents HTTP/1.1\r\nHost: acd\r\n{auth}Transfer-Encoding: chunked\r\n\r\n",
            chunked=True,
        )
        deleted, _ = await send_big(
            base,
            f"DELETE /v1/callbacks/1 HTTP/1.1\r\nHost: acd\r\n{auth}"
            f"Content-Length: {TWENTY_MB}\r\n\r\n",
            chunked=False,
        )
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            small = await client.request("GET", "/v1/queues", content=b"{}")
            plain = await client.get("/v1/queues")
            health = await client.get("/health")
            refused = await client.request("GET", "/v1/queues", content=b"y" * (LIMIT + 1))
            async with client.stream("GET", "/v1/stream") as stream:
                first = await anext(stream.aiter_lines())
                stream_status = stream.status_code
    assert declared.startswith("HTTP/1.1 413"), declared
    assert chunked.startswith("HTTP/1.1 413"), chunked
    assert deleted.startswith("HTTP/1.1 413"), deleted
    # Refused long before the 20 MB were all taken (what the kernel buffers aside).
    assert declared_sent < TWENTY_MB // 4 and chunked_sent < TWENTY_MB // 4
    assert refused.status_code == 413 and f"{LIMIT} bytes" in refused.json()["detail"]
    assert small.status_code == plain.status_code == health.status_code == 200
    assert stream_status == 200 and first.startswith(("event:", "id:", "retry:", ":"))
