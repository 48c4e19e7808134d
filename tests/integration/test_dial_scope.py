"""A centre with several PBXs has one call-back dialer per PBX (each PBX's owner): each
places its own PBX's call-backs and reopens only its own after a stop, so no task is
dialled by two PBXs (a citizen called twice) and none by nobody. On PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.dialer import CallbackDialer
from app.metrics import Metrics
from app.reports.rollup import RollupJob
from app.runtime import build_runtime
from app.settings import load_settings
from app.store import callbacks as store
from app.store.db import create_engine, session_factory
from app.store.models import Callback

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2014, 11, 4, 10, 0, tzinfo=UTC)


async def _seed(url: str) -> dict[str | None, int]:
    engine = create_engine(url)
    ids: dict[str | None, int] = {}
    try:
        async with session_factory(engine).begin() as s:
            for pbx in ("pbx1", "pbx2", None, "pbx9"):
                row = Callback(
                    kind="callback", pbx=pbx, linkedid=None, queue="dagpenge",
                    caller_hash=f"{pbx}".ljust(32, "x"), caller_display="+45 ••••••12",
                    number_sealed="sealed", requested_at=NOW - timedelta(hours=1),
                    due_at=NOW + timedelta(days=1), status="open", attempts=0,
                )  # fmt: skip
                s.add(row)
                await s.flush()
                ids[pbx] = row.id
    finally:
        await engine.dispose()
    return ids


async def test_each_pbx_dials_and_reopens_its_own_call_backs(pg_url: str) -> None:
    ids = await _seed(pg_url)
    first = store.DialScope("pbx1", others=("pbx2",), primary=True)
    second = store.DialScope("pbx2", others=("pbx1",), primary=False)
    engine = create_engine(pg_url)
    try:
        sessions = session_factory(engine)

        async def candidates(scope: store.DialScope) -> set[int]:
            async with sessions() as s:
                found = await store.dial_candidates(
                    s, ["dagpenge"], NOW, 3, timedelta(minutes=30), scope=scope
                )
            return {t.candidate.task_id for t in found}

        # The first PBX also takes the tasks of no PBX and of one the centre no longer has.
        assert await candidates(first) == {ids["pbx1"], ids[None], ids["pbx9"]}
        assert await candidates(second) == {ids["pbx2"]}
        assert await candidates(store.EVERY_TASK) == set(ids.values())
        # Both are being dialled; pbx2's owner restarts: it reopens its own task only.
        async with sessions.begin() as s:
            for task in ids.values():
                assert await store.claim(s, task, NOW)
        async with sessions.begin() as s:
            assert await store.release_interrupted(s, second) == 1
        async with sessions() as s:
            rows = {r.pbx: r.status for r in (await s.execute(Callback.__table__.select())).all()}
        assert rows == {"pbx1": "dialling", "pbx2": "open", None: "dialling", "pbx9": "dialling"}
        async with sessions.begin() as s:
            assert await store.release_interrupted(s, first) == 3
    finally:
        await engine.dispose()


def test_the_centres_jobs_run_on_the_first_pbxs_owner_only(pg_url: str, redis_url: str) -> None:
    def parts(pbx_id: str) -> tuple[list[object], CallbackDialer]:
        settings = load_settings(
            database_url=pg_url,
            redis_url=redis_url,
            ami_host="127.0.0.1",
            pbx_id=pbx_id,
            pbxs="pbx1,pbx2",
            ivr_flows=str(ROOT / "ivr_flows"),
            caller_hash_key="dial-scope-test-key-0123456789",
        )
        rt = build_runtime(settings, Metrics())
        assert rt.ownership is not None and rt.dialer is not None
        return list(rt.ownership.owner_parts), rt.dialer

    first, dialer_one = parts("pbx1")
    second, dialer_two = parts("pbx2")
    assert any(isinstance(p, RollupJob) for p in first)
    assert not any(isinstance(p, RollupJob) for p in second)
    assert dialer_one.scope == store.DialScope("pbx1", ("pbx2",), primary=True)
    assert dialer_two.scope == store.DialScope("pbx2", ("pbx1",), primary=False)
