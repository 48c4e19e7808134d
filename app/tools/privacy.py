"""``acd privacy``: the purge of data past its retention, and a citizen's request to see
or erase their data, from the operator's shell. Each prints JSON on stdout and writes an
audit row (who, why, counts; never the number). The same use cases serve the service's
purge job and the admin API (app/services/privacy.py)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import timedelta
from typing import Any

from app.clock import PbxClock
from app.config.errors import ConfigInvalid
from app.config.kinds import GOALS, RETENTION
from app.config.loader import load_config
from app.config.snapshot import ConfigSnapshot
from app.messages import MessageFiles
from app.privacy import CallerPrivacy
from app.reports.rollup import Context
from app.retention import DEFAULTS
from app.services import privacy as use
from app.services.errors import DomainError
from app.settings import Settings
from app.tools.shell import command_settings


def _err(message: str) -> None:
    print(f"acd privacy: {message}", file=sys.stderr)


def caller_privacy(settings: Settings) -> CallerPrivacy:
    if settings.caller_hash_key is None:
        raise ValueError(
            "ACD_CALLER_HASH_KEY is not set: without the service's key no caller can be found"
        )
    previous = settings.caller_hash_key_previous
    return CallerPrivacy(
        settings.caller_hash_key.get_secret_value().encode("utf-8"),
        previous.get_secret_value().encode("utf-8") if previous is not None else None,
    )


def message_files(settings: Settings, snapshot: ConfigSnapshot) -> MessageFiles:
    dirs = [f.callback.message_dir for f in snapshot.flows.values()]
    return MessageFiles(settings.message_dir, lambda: dirs)


def report_context(settings: Settings, snapshot: ConfigSnapshot) -> Context | None:
    goals = snapshot[GOALS]
    if goals is None:
        return None
    from app.acd.kpi import KpiConfig

    return Context(
        tz=settings.tz,
        config=KpiConfig(settings.short_abandon_seconds, settings.service_level_seconds),
        goals=goals,
        catalogue=snapshot.queues,
        repeat_days=settings.repeat_call_working_days,
        settle=timedelta(minutes=settings.disposition_window_minutes),
    )


def cmd_privacy(args: argparse.Namespace) -> int:
    settings = command_settings()
    try:
        snapshot = load_config(settings.ivr_flows)
    except ConfigInvalid as exc:
        _err(f"the configuration files are not valid:\n{exc}")
        return 2
    who = use.Requester(args.actor or getpass.getuser(), "operator", getattr(args, "reason", ""))
    try:
        out = asyncio.run(_run(args, settings, snapshot, who))
    except (ValueError, DomainError) as exc:
        _err(str(exc))
        return 2
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


async def _run(
    args: argparse.Namespace, settings: Settings, snapshot: ConfigSnapshot, who: use.Requester
) -> dict[str, Any]:
    from app.store.db import create_engine, session_factory

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    files = message_files(settings, snapshot)
    now = PbxClock(settings.tz).now()
    try:
        if args.privacy_command == "purge":
            result = await use.purge(
                sessions,
                retention=snapshot[RETENTION] or DEFAULTS,
                now=now,
                tz=settings.tz,
                files=files,
                spill_dir=settings.spill_dir,
                ctx=report_context(settings, snapshot),
                dry_run=args.dry_run,
            )
            out = result.as_dict()
            if not args.dry_run:
                await use.audit(sessions, who, "privacy.purge", out, now)
            return out
        privacy = caller_privacy(settings)
        if args.privacy_command == "export":
            exported = await use.export(sessions, privacy, args.caller, files)
            await use.audit(
                sessions,
                who,
                "privacy.export",
                {
                    k: len(v) if isinstance(v, list) else v
                    for k, v in exported.items()
                    if k != "caller"
                },
                now,
            )
            return exported
        counts = await use.erase(
            sessions, privacy, args.caller, now=now, files=files, spill_dir=settings.spill_dir
        )
        await use.audit(sessions, who, "privacy.erase", {"counts": counts}, now)
        return counts
    finally:
        await engine.dispose()


def privacy_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    purge = sub.add_parser(
        "purge",
        help="delete what is past its retention (retention.yaml); counts as JSON",
        description="Delete what is past its retention period (retention.yaml), in small "
        "batches; report detail only where the day's report tallies are final.",
    )
    purge.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    for name, what in (
        ("export", "print every call, visit, answer, message and task of a caller as JSON"),
        ("erase", "remove or anonymise all data of a caller; counts per table as JSON"),
    ):
        one = sub.add_parser(name, help=what, description=what + ".")
        one.add_argument("--caller", required=True, metavar="NUMBER", help="the citizen's number")
        one.add_argument(
            "--reason", required=True, help="why (the request's case number): kept in the audit"
        )
    for one in (purge, *(sub.choices[n] for n in ("export", "erase"))):
        one.add_argument("--as", dest="actor", help="who asks (default: the login name)")
