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
