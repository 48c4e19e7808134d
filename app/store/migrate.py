"""Run Alembic migrations from the service (``acd migrate``) on either database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from app.store.db import create_engine


def migrations_dir() -> Path:
    """The ``migrations/`` folder: beside the package in a checkout, else in the cwd."""
    for candidate in (Path(__file__).resolve().parents[2] / "migrations", Path("migrations")):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("cannot find the migrations/ folder (run from the project root)")


def alembic_config(url: str) -> Config:
    where = migrations_dir()
    cfg = Config(str(where / "alembic.ini"))
    cfg.set_main_option("script_location", str(where))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def _run(url: str, action: str, revision: str) -> None:
    cfg = alembic_config(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def work(sync_conn: Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                if action == "upgrade":
                    command.upgrade(cfg, revision)
                else:
                    command.downgrade(cfg, revision)

            await conn.run_sync(work)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, "upgrade", revision)


async def downgrade(url: str, revision: str) -> None:
    await _run(url, "downgrade", revision)


def _missing_sqlite_file(url: str) -> bool:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).is_file()


class NotMigrated(RuntimeError):
    """The database is reachable but its schema is not the one this version needs; the
    message says so in one line, with the command that fixes it."""


async def require_current(url: str) -> None:
    """Raise ``NotMigrated`` unless the database at ``url`` is at the newest revision.

    A SQLite file that does not exist is not created here (opening it would leave an
    empty file behind). Connection errors pass through: a database that is away is a
    different problem, and the service rides it out (its parts retry).
    """
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect, text
    from sqlalchemy.engine import make_url

    where = make_url(url).render_as_string(hide_password=True)
    fix = f"run `ACD_DATABASE_URL={where} acd migrate`"
    if _missing_sqlite_file(url):
        raise NotMigrated(f"the database {where} does not exist: {fix}")
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    known = {r.revision for r in script.walk_revisions()}

    def revisions(sync_conn: Connection) -> set[str]:
        # What Alembic's MigrationContext reads, without its log lines on every command.
        if not inspect(sync_conn).has_table("alembic_version"):
            return set()
        return set(sync_conn.execute(text("SELECT version_num FROM alembic_version")).scalars())

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(revisions)
    finally:
        await engine.dispose()
    if current == heads:
        return
    if not current:
        raise NotMigrated(f"the database {where} is not migrated (it has no schema): {fix}")
    if current - known:
        raise NotMigrated(
            f"the database {where} is at revision {', '.join(sorted(current))}, newer than this "
            f"version of the service knows ({', '.join(sorted(heads))}): upgrade the service"
        )
    raise NotMigrated(
        f"the database {where} is at revision {', '.join(sorted(current))}, this version "
        f"needs {', '.join(sorted(heads))}: {fix}"
    )
