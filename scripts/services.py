"""Probes used by scripts/test.sh: is a PostgreSQL / Redis reachable at this URL?"""

from __future__ import annotations

import asyncio
import sys
import time


async def _probe_postgres(url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    await conn.close()


async def _probe_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


def main(argv: list[str]) -> int:
    what, url = argv[0], argv[1]
    if what == "redact":
        from sqlalchemy.engine import make_url

        print(make_url(url).render_as_string(hide_password=True))
        return 0
    probe = _probe_postgres if what == "probe-postgres" else _probe_redis
    deadline = time.monotonic() + (10 if what.startswith("wait") else 0)
    while True:
        try:
            asyncio.run(probe(url))
            return 0
        except Exception as exc:
            if time.monotonic() >= deadline:
                print(f"  {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
