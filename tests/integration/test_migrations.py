"""Migrations: empty -> head -> base -> head on both databases, and no drift from models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from app.store import migrate
from app.store.db import create_engine
from app.store.models import Base
from tests.conftest import _pg_admin, _pg_server_url


@pytest.fixture
def empty_pg() -> Iterator[str]:
    server = _pg_server_url()
    name = f"acd_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(server, f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def empty_db(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "empty_pg" if request.param == "postgres" else "empty_sqlite"
    )
    return url


async def _inspect(url: str) -> tuple[set[str], list[Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def work(sync: Connection) -> tuple[set[str], list[Any]]:
                tables = set(inspect(sync).get_table_names()) - {"alembic_version"}
                ctx = MigrationContext.configure(sync, opts={"compare_type": True})
                return tables, compare_metadata(ctx, Base.metadata)

            return await conn.run_sync(work)
    finally:
        await engine.dispose()


async def test_up_down_up_without_drift(empty_db: str) -> None:
    url = empty_db
    model_tables = set(Base.metadata.tables)

    await migrate.upgrade(url)
    tables, diff = await _inspect(url)
    assert tables == model_tables
    assert diff == [], f"models and migrations differ: {diff}"

    await migrate.downgrade(url, "base")
    tables, _ = await _inspect(url)
    assert tables == set()

    await migrate.upgrade(url)
    tables, diff = await _inspect(url)
    assert tables == model_tables
    assert diff == []
