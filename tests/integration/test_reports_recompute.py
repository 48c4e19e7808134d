"""``acd recompute`` and ``acd report`` on the known week (tests/integration/
test_reports_week.py) in PostgreSQL: stored rows spoilt on purpose are rebuilt from the
event log, exactly those, and a second run changes nothing; the report afterwards is the
report before; the command line writes a report file a cron job can take."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app import cli
from app.reports.model import Report
from app.reports.recompute import recompute
from app.store.db import create_engine, session_factory
from app.store.writer import PostgresBackend
from tests.integration.test_reports_week import AS_OF, MON, ROOT, Week, load_week, report_of

SUN = MON + timedelta(days=6)


async def spoil(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE calls SET outcome = 'abandoned', wait_seconds = 999 "
                    "WHERE linkedid = 'm1'"
                )
            )
            await conn.execute(text("DELETE FROM queue_visits WHERE linkedid = 'm3' AND seq = 2"))
            await conn.execute(
                text("UPDATE queue_visits SET wait_seconds = 1 WHERE linkedid = 'w3' AND seq = 1")
            )
            await conn.execute(text("DELETE FROM calls WHERE linkedid = 'f1'"))
    finally:
        await engine.dispose()


async def run(w: Week, dry_run: bool = False) -> list[str]:
    engine = create_engine(w.url)
    backend = PostgresBackend(w.url)
    try:
        result = await recompute(
            session_factory(engine), backend, first=MON, last=SUN, tz=w.ctx.tz,
            catalogue=w.ctx.catalogue, ctx=w.ctx, now=AS_OF, dry_run=dry_run,
        )  # fmt: skip
    finally:
        await backend.close()
        await engine.dispose()
    return result.lines()


def strip(r: Report) -> dict[str, object]:
    return r.model_dump(exclude={"data_quality"})


async def test_recompute_rebuilds_what_differs_from_the_log_and_only_that(pg_url: str) -> None:
    w = await load_week(pg_url)
    before = await report_of(w, "queue")
    await spoil(pg_url)

    dry = await run(w, dry_run=True)
    assert "would rebuild (dry run): 1 added, 3 changed, 12 unchanged" in dry[1], dry
    assert (await run(w, dry_run=True)) == dry  # nothing was written

    lines = await run(w)
    assert lines[0].startswith("2014-11-03..2014-11-09: ") and "events replayed" in lines[0]
    # 17 calls that week; w1's end was lost in the AMI gap (the stored row knows more).
    assert lines[1] == (
        "calls: 16 in the log, 16 stored; rebuilt: 1 added, 3 changed, 12 unchanged"
    ), lines
    assert lines[2] == (
        "  left alone: 1 whose end the log does not have (data gap or still up), "
        "0 stored without events"
    )
    assert lines[3] == (
        "visits: 1 added, 1 changed; fields changed: calls.outcome 1, calls.wait_seconds 1, "
        "queue_visits.wait_seconds 1"
    ), lines
    assert lines[4].startswith("report tallies: ") and "0 days" not in lines[4]

    again = await run(w)
    assert again[1] == "calls: 16 in the log, 17 stored; rebuilt: 0 added, 0 changed, 16 unchanged"
    assert again[3] == "visits: 0 added, 0 changed"
    after = await report_of(w, "queue")
    assert strip(after) == strip(before)


def test_the_command_line_writes_reports_and_recomputes(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(load_week(pg_url))
    monkeypatch.setenv("ACD_DATABASE_URL", pg_url)
    monkeypatch.setenv("ACD_IVR_FLOWS", str(ROOT / "ivr_flows"))
    out = tmp_path / "uge45.csv"
    assert cli.main(
        ["report", "--period", "2014-W45", "--by", "queue", "--format", "csv", "--out", str(out),
         "--as-of", "2014-11-10T12:00+01:00"]
    ) == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[-1]["key"] == "centre" and rows[-1]["offered"] == "13"
    assert {r["key"]: r["offered"] for r in rows}["dagpenge"] == "6"
    first = out.read_bytes()
    assert cli.main(
        ["report", "--period", "2014-W45", "--by", "queue", "--format", "csv", "--out", str(out),
         "--as-of", "2014-11-10T12:00+01:00"]
    ) == 0  # fmt: skip
    assert out.read_bytes() == first  # the same bytes for the same data

    as_json = tmp_path / "uge45.json"
    assert cli.main(
        ["report", "--from", "2014-11-03", "--to", "2014-11-09", "--by", "department",
         "--out", str(as_json), "--as-of", "2014-11-10T12:00+01:00"]
    ) == 0  # fmt: skip
    report = Report.model_validate_json(as_json.read_bytes())
    assert report.by == "department" and report.centre.offered == 13

    capsys.readouterr()
    assert cli.main(["report", "--period", "2014-W99", "--out", str(out)]) == 2
    assert "2014 has no ISO week 99" in capsys.readouterr().err
    assert cli.main(["report", "--period", "2014-Q4", "--from", "2014-10-01", "--out", "-"]) == 2
    assert "not both" in capsys.readouterr().err

    assert cli.main(["recompute", "--from", "2014-11-03", "--to", "2014-11-09", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "would rebuild (dry run): 0 added, 0 changed, 16 unchanged" in said, said
