"""Shared fixtures: real PostgreSQL and Redis, a fresh state for every test.

PostgreSQL: one scratch database per test session (created on the server of
``ACD_TEST_DATABASE_URL``, migrated to head once, dropped at the end); every test that
asks for it starts from empty tables. SQLite: a migrated template file copied per test.
Redis: the database of ``ACD_TEST_REDIS_URL`` (one below it per further pytest-xdist
worker), flushed before each test.

An unreachable server FAILS the tests that need it, with a message; nothing is skipped.
The tests that need a server carry its marker, set here from the fixtures they use
(``pytest -m "not postgres and not redis"`` runs the rest without either).

Hypothesis runs under one profile for the whole run (``HYPOTHESIS_PROFILE``, default
``dev``): no deadline (the machine is shared, a slow example is not a failing one);
``ci`` also derandomizes, so a CI failure replays the same examples. Tests keep only their
own example counts, where one example costs far more or less than usual.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from app.settings import normalise_database_url

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
FIXTURES = Path(__file__).parent / "fixtures"

TABLES_IN_DELETE_ORDER = None  # filled lazily from the models' metadata

settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# fixture -> the marker of the server it needs
_SERVER_FIXTURES = {
    "pg_database": "postgres",
    "own_postgres": "postgres",
    "redis_url": "redis",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the servers its fixtures need (``db_url`` by its parameter)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        marks = {mark for name, mark in _SERVER_FIXTURES.items() if name in names}
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            marks.add("postgres")
        for mark in sorted(marks):
            item.add_marker(mark)


def _pg_server_url() -> str:
    return normalise_database_url(os.environ.get("ACD_TEST_DATABASE_URL", DEFAULT_PG))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _unreachable(what: str, url: str, exc: BaseException) -> None:
    safe = make_url(url).render_as_string(hide_password=True)
    pytest.fail(
        f"{what} at {safe} is not reachable ({type(exc).__name__}: {exc}). "
        "Run the suite with `bash scripts/test.sh`, which starts throwaway servers, "
        f"or point ACD_TEST_{'DATABASE' if what == 'PostgreSQL' else 'REDIS'}_URL at one.",
        pytrace=False,
    )


async def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a scratch PostgreSQL database for this session, migrated to head."""
    from app.store import migrate

    server = _pg_server_url()
    name = f"acd_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(server, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _unreachable("PostgreSQL", server, exc)
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(migrate.upgrade(url))
    yield url
    asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _truncate_sql() -> str:
    from app.store.models import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    return f"TRUNCATE {names} RESTART IDENTITY CASCADE"


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    asyncio.run(_pg_admin(pg_database, _truncate_sql()))
    return pg_database


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.store import migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for this test."""
    path = tmp_path / "acd.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


def _worker_redis(url: str) -> str:
    """Each pytest-xdist worker its own Redis database (the flush before every test must
    not empty another worker's): worker ``gwN`` counts N down from the URL's database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or worker == "gw0":
        return url
    parts = urlsplit(url)
    db = (int(parts.path.strip("/") or 0) - int(worker[2:])) % 16
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture
def redis_url() -> str:
    """The test Redis database, flushed."""
    from redis.asyncio import Redis

    url = _worker_redis(os.environ.get("ACD_TEST_REDIS_URL", DEFAULT_REDIS))

    async def flush() -> None:
        client = Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        try:
            await client.flushdb()
        finally:
            await client.aclose()

    try:
        asyncio.run(flush())
    except Exception as exc:
        _unreachable("Redis", url, exc)
    return url


@pytest.fixture(autouse=True)
def _own_agi_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app a test builds from the environment listens for FastAGI on a free port,
    never on the shared default 4573 (tests that set ACD_AGI_PORT themselves win)."""
    if "ACD_AGI_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            monkeypatch.setenv("ACD_AGI_PORT", str(s.getsockname()[1]))


@pytest.fixture
def hash_key() -> str:
    return "test-caller-hash-key-0123456789"


# --------------------------------------------------------------------------------------
# A PostgreSQL of the test's own, to stop and start (fault tests)
# --------------------------------------------------------------------------------------


class OwnPostgres:
    """A throwaway PostgreSQL server (initdb + pg_ctl) that a test may stop and restart."""

    def __init__(self) -> None:
        import glob
        import pwd
        import socket
        import tempfile

        found = shutil.which("initdb") or next(
            iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None
        )
        if found is None:
            pytest.fail(
                "fault tests need PostgreSQL's initdb/pg_ctl (Debian: apt-get install postgresql)",
                pytrace=False,
            )
        self.bin = Path(found).parent
        self.user: str | None = None
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root.
            self.user = "postgres"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                pytest.fail("running as root needs a 'postgres' user for initdb", pytrace=False)
        # Not under pytest's tmp tree: that is private to root and postgres must reach it.
        root = Path(tempfile.mkdtemp(prefix="acd-own-pg-"))
        self.root = root
        self.data = root / "data"
        root.chmod(0o755)
        if self.user:
            shutil.chown(root, user=self.user)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        try:
            server = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            asyncio.run(_pg_admin(server, "CREATE DATABASE acd"))
        except BaseException:
            self.close()
            raise
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/acd"

    def _run(self, tool: str, *args: str) -> None:
        import subprocess

        cmd = [str(self.bin / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.root / "log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        import contextlib
        import subprocess

        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    from app.store import migrate

    server = OwnPostgres()
    try:
        asyncio.run(migrate.upgrade(server.url))
        yield server
    finally:
        server.close()
