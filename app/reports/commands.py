"""The reports' operator commands: ``acd report`` (a report to a file, for a cron job) and
``acd recompute`` (calls and visits of a period rebuilt from the event log). Each takes
parsed arguments and returns an exit code (0 ok, 1 failed, 2 could not run); ``app/cli.py``
wires them in."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime
from pathlib import Path

from app.acd.kpi import KpiConfig
from app.acd.queues import QueueCatalogue
from app.clock import PbxClock
from app.config.errors import ConfigInvalid
from app.config.kinds import GOALS
from app.config.loader import load_config
from app.reports import render
from app.reports.goals import GOALS_FILE
from app.reports.model import BY_VALUES
from app.reports.periods import Period, PeriodError, parse_period, span
from app.reports.rollup import Context
from app.settings import Settings
from app.tools.shell import command_settings


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def report_context(settings: Settings) -> tuple[Context, QueueCatalogue | None]:
    """The report context from the configuration folder, read by the one loader the
    service uses (raises ``ConfigInvalid``; ``ValueError`` without a goals file)."""
    from datetime import timedelta

    snapshot = load_config(settings.ivr_flows)
    goals = snapshot[GOALS]
    if goals is None:
        raise ValueError(f"no {settings.ivr_flows / GOALS_FILE}: no goals to report against")
    catalogue = snapshot.queues
    ctx = Context(
        tz=settings.tz,
        config=KpiConfig(settings.short_abandon_seconds, settings.service_level_seconds),
        goals=goals,
        catalogue=catalogue,
        repeat_days=settings.repeat_call_working_days,
        settle=timedelta(minutes=settings.disposition_window_minutes),
    )
    return ctx, catalogue


def _period(args: argparse.Namespace) -> Period:
    if args.period is not None:
        if args.first is not None or args.last is not None:
            raise PeriodError("give either --period or --from and --to, not both")
        return parse_period(args.period)
    if args.first is None or args.last is None:
        raise PeriodError("give --period (2014-W45, 2014-11, 2014-Q4, 2014) or --from and --to")
    return span(args.first, args.last)


def _as_of(text: str | None) -> datetime:
    if text is None:
        # Outside the service there is no PBX to learn the skew from: the host's time.
        return PbxClock().now()
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"--as-of {text!r}: give a time zone (e.g. 2015-01-01T00:00+01:00)")
    return at


# ---- acd report ----------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    settings = command_settings()
    try:
        period = _period(args)
        as_of = _as_of(args.as_of)
        ctx, _ = report_context(settings)
    except (PeriodError, ValueError, ConfigInvalid) as exc:
        _err(f"acd report: {exc}")
        return 2
    if args.format not in render.available():
        have = ", ".join(render.available())
        _err(f"acd report: format {args.format!r} is not installed here (there are: {have})")
        return 2
    return asyncio.run(_report(settings, ctx, period, args, as_of))


async def _report(
    settings: Settings, ctx: Context, period: Period, args: argparse.Namespace, as_of: datetime
) -> int:
    from app.reports.build import build_report
    from app.store.db import create_engine, session_factory

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            report = await build_report(session, period=period, by=args.by, ctx=ctx, now=as_of)
    finally:
        await engine.dispose()
    body, _ = render.render(report, args.format)
    if args.out == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(body)
        tmp.replace(out)  # whole or not at all: a cron job's reader never sees half a file
        _err(f"{out}: {report.title}, by {report.by}, {len(body)} bytes")
    return 0


def report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", help="2014-W45 (ISO week), 2014-11, 2014-Q4 or 2014")
    p.add_argument("--from", dest="first", type=date.fromisoformat, help="first local day")
    p.add_argument("--to", dest="last", type=date.fromisoformat, help="last local day")
    p.add_argument("--by", choices=BY_VALUES, default="centre", help="the cut (default centre)")
    p.add_argument("--format", choices=render.FORMATS, default="json", help="default json")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write it ('-': stdout)")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        help="measure 'now' figures (overdue tasks) at this ISO time (default: now); a "
        "fixed time gives the same bytes for the same data",
    )


# ---- acd recompute -------------------------------------------------------------------


def cmd_recompute(args: argparse.Namespace) -> int:
    settings = command_settings()
    if args.last < args.first:
        _err("acd recompute: --to is before --from")
        return 2
    try:
        ctx, catalogue = report_context(settings)
    except (ValueError, ConfigInvalid) as exc:
        _err(f"acd recompute: {exc}")
        return 2
    return asyncio.run(_recompute(settings, ctx, catalogue, args))


async def _recompute(
    settings: Settings, ctx: Context, catalogue: QueueCatalogue | None, args: argparse.Namespace
) -> int:
    from app.reports.recompute import recompute
    from app.store.db import create_engine, session_factory
    from app.store.writer import Backend, PostgresBackend, SqliteBackend

    engine = create_engine(settings.database_url)
    backend: Backend = (
        SqliteBackend(engine) if settings.is_sqlite else PostgresBackend(settings.database_url)
    )
    try:
        result = await recompute(
            session_factory(engine),
            backend,
            first=args.first,
            last=args.last,
            tz=settings.tz,
            catalogue=catalogue,
            ctx=ctx,
            now=PbxClock(settings.tz).now(),
            dry_run=args.dry_run,
        )
    finally:
        await backend.close()
        await engine.dispose()
    for line in result.lines():
        print(line)
    return 0


def recompute_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    p.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    p.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
