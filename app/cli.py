"""The ``acd`` command: ``serve``, ``migrate``, ``demo`` and the operators' tools.

Each subcommand is a function taking its parsed arguments and returning an exit code;
``COMMANDS`` is the one table that wires names, help and arguments to them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from app import plan_cli
from app.settings import Settings, SettingsError
from app.tools import commands as ivr_commands
from app.tools.shell import command_settings as _settings
from app.tools.shell import safe_url as _safe_url

log = logging.getLogger("app.cli")


# --------------------------------------------------------------------------------------
# serve / migrate / demo
# --------------------------------------------------------------------------------------


async def _migrate(settings: Settings, downgrade: str | None = None) -> None:
    from app.store import migrate

    if downgrade:
        await migrate.downgrade(settings.database_url, downgrade)
    else:
        await migrate.upgrade(settings.database_url)


async def _serve(settings: Settings, banner: Callable[[Settings], None] | None = None) -> int:
    import uvicorn

    from app.main import create_app
    from app.runtime import build_runtime, settle_heap

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, turning a clean
        # stop into "killed by signal"; a service that stopped cleanly exits 0.
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()
            # Live streams never end by themselves; uvicorn waits for open responses.
            store = rt.live
            if store is not None:
                with contextlib.suppress(RuntimeError):  # no loop running: nothing is open
                    asyncio.get_running_loop().call_soon_threadsafe(store.close_streams)

    rt = build_runtime(settings)
    app = create_app(settings, rt)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=10,  # a backstop for responses that hold the shutdown
    )
    server = Server(config)
    task = asyncio.create_task(server.serve())
    # uvicorn sets ``started`` once the socket is bound but offers no event to await.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if server.started:
        settle_heap()
        if banner is not None:
            banner(settings)
    await task
    return 0 if server.started else 1


def _base_url(settings: Settings) -> str:
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


def _print_serving(settings: Settings) -> None:
    base = _base_url(settings)
    print(f"ACD service listening on {base}  (API docs: {base}/docs)", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(http_host=args.host, http_port=args.port)
    if args.migrate:
        asyncio.run(_migrate(settings))
    return asyncio.run(_serve(settings, _print_serving))


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(_migrate(settings, args.downgrade))
    target = f"revision {args.downgrade}" if args.downgrade else "head"
    print(f"database migrated to {target}: {_safe_url(settings.database_url)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    """The service on embedded defaults (its own SQLite file, in-process live state) with
    a simulated PBX and agents playing a working day at a realistic pace."""
    from datetime import UTC, datetime

    from app.sim.harness import demo_day, simulator, wait_logged_in

    base = _settings()  # only for the time zone and the flows folder
    flows = Path(base.ivr_flows)
    agi_port = args.agi_port or _free_port()
    traffic, start = demo_day(datetime.now(UTC), base.timezone, args.seed, args.scale)
    async with simulator(
        flows, agi_port, traffic, mode="real", speed=args.speed, backpressure=False, start=start
    ) as simulation:
        # Embedded defaults whatever the environment says: own SQLite file, no Redis,
        # the simulated PBX instead of a real one.
        settings = _settings(
            database_url=f"sqlite+aiosqlite:///{args.db}",
            redis_url="",
            ami_host="127.0.0.1",
            ami_port=simulation.ami_port,
            ami_username="acd",
            ami_secret="acdsecret",
            agi_host="127.0.0.1",
            agi_port=agi_port,
            http_host=args.host,
            http_port=args.port,
            dialer_enabled=True,  # call-backs the simulated callers asked for are placed
        )
        await _migrate(settings)
        api_key = await _demo_key(settings)

        async def play() -> None:
            await wait_logged_in(simulation.sim, within=60)
            result = await simulation.sim.run_day(simulation.plan, simulation.keys)
            log.info("simulated day over: %s", result.summary())

        day = asyncio.create_task(play(), name="acd-demo-day")

        def banner(s: Settings) -> None:
            _print_demo(
                s, traffic.date.isoformat(), args.speed, simulation.ami_port, agi_port, api_key
            )

        try:
            return await _serve(settings, banner)
        finally:
            day.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await day


async def _demo_key(settings: Settings) -> str:
    """An admin API key for the demo's own database (older demo keys revoked)."""
    from app.store.auth import demo_admin_key
    from app.store.db import create_engine, session_factory

    engine = create_engine(settings.database_url)
    try:
        return await demo_admin_key(session_factory(engine))
    finally:
        await engine.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _print_demo(
    settings: Settings, day: str, speed: float, ami_port: int, agi_port: int, api_key: str
) -> None:
    base = _base_url(settings)
    print(
        "\n"
        "  ACD demo is running: the service on embedded defaults (SQLite, in-process live\n"
        f"  state) and a simulated PBX playing {day} at x{speed:g} (AMI :{ami_port},\n"
        f"  FastAGI :{agi_port}).\n"
        f"  Open:          {base}/docs\n"
        f"  Wallboard:     {base}/wallboard#key={api_key}\n"
        f"  Recent calls:  {base}/v1/calls\n"
        f"  Readiness:     {base}/ready\n"
        f"  Metrics:       {base}/metrics\n"
        f"  API key:       {api_key}\n"
        '                 (header X-API-Key, or "Authorize" in /docs; admin role, this\n'
        "                 demo database only)\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.sim.simulate import prepare, run_simulate

    settings = _settings()
    return asyncio.run(run_simulate(args, prepare(args, settings)))


# --------------------------------------------------------------------------------------
# users: who may call the API
# --------------------------------------------------------------------------------------


async def _users(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta

    from app.store import auth
    from app.store.db import create_engine, session_factory

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    try:
        if args.users_command == "add":
            hours = args.expires_hours
            if hours is None and args.expires_days is not None:
                hours = args.expires_days * 24
            if args.bearer and hours is None:
                hours = 12
            expires = now + timedelta(hours=hours) if hours else None
            async with sessions.begin() as session:
                await auth.add_user(
                    session,
                    args.name,
                    args.role,
                    agent_id=args.agent,
                    teams=args.team or (),
                    grants=args.grant or (),
                )
                token_id, secret = await auth.issue(
                    session, args.name, "bearer" if args.bearer else "key", expires
                )
            header = "Authorization: Bearer <secret>" if args.bearer else "X-API-Key: <secret>"
            until = f"expires {expires.isoformat()}" if expires else "does not expire"
            # Everything but the secret goes to stderr: KEY=$(acd users add ...) works.
            print(
                f"user {args.name!r} ({args.role}) created; credential {token_id} {until}.\n"
                f"Send it as '{header}'. It is shown this once; only a hash is stored.",
                file=sys.stderr,
            )
            print(secret)
            return 0
        if args.users_command == "list":
            async with sessions() as session:
                rows = await auth.list_users(session, now)
            for u in rows:
                extra = [f"agent={u.agent_id}"] if u.agent_id else []
                extra += [f"teams={','.join(u.teams)}"] if u.teams else []
                extra += [f"grants={','.join(u.grants)}"] if u.grants else []
                state = "active" if u.active else "revoked"
                print(f"{u.name:<24} {u.role:<12} {state:<8} {' '.join(extra)}")
                for t in u.tokens:
                    until = t["expires_at"].isoformat() if t["expires_at"] else "never"
                    print(f"    {t['id']} {t['kind']:<6} {t['state']:<8} expires {until}")
            return 0
        if args.users_command == "revoke":
            async with sessions.begin() as session:
                n = await auth.revoke(session, args.name, now)
            print(f"user {args.name!r} deactivated; {n} live credential(s) revoked")
            return 0
    except auth.UserError as exc:
        print(f"acd users: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 2


def cmd_users(args: argparse.Namespace) -> int:
    settings = _settings()
    return asyncio.run(_users(args, settings))


def _users_args(p: argparse.ArgumentParser) -> None:
    from app.acd.access import ROLES, WRITE_SCOPES

    sub = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="create a user and print its secret once (API key, or --bearer token)",
        description="Create an API user with one role and print its secret once (stdout; "
        "a hint with the header to use goes to stderr). Only a hash is stored.",
    )
    add.add_argument("name", help="user name, e.g. anne.agent or crm-integration")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", help="agent role: the agent id this user is")
    add.add_argument(
        "--team", action="append", help="supervisor role: a team it leads (repeatable)"
    )
    add.add_argument(
        "--grant",
        action="append",
        choices=sorted(WRITE_SCOPES),
        help="integration role: a write scope beyond reading (repeatable)",
    )
    add.add_argument("--expires-days", type=int, help="the key expires after N days")
    add.add_argument("--expires-hours", type=int, help="expires after N hours")
    add.add_argument(
        "--bearer",
        action="store_true",
        help="issue a bearer token (Authorization: Bearer; default 12 h) instead of an API key",
    )
    sub.add_parser("list", help="users, roles and their credentials (never the secrets)")
    revoke = sub.add_parser("revoke", help="deactivate a user and revoke all its credentials")
    revoke.add_argument("name")


# --------------------------------------------------------------------------------------
# The command table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (default: ACD_HTTP_HOST)")
    p.add_argument("--port", type=int, help="listen port (default: ACD_HTTP_PORT)")
    p.add_argument("--migrate", action="store_true", help="upgrade the database first")


def _migrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--downgrade", metavar="REV", help="downgrade to REV (e.g. base) instead")


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    p.add_argument("--db", default="acd-demo.db", help="SQLite file (default acd-demo.db)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (default 1: real pace)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="traffic relative to Copenhagen's volume (default 1.0)",
    )
    p.add_argument("--seed", type=int, default=7, help="traffic seed (default 7)")
    p.add_argument("--agi-port", type=int, default=0, help="FastAGI port (default: a free one)")


def _simulate_args(p: argparse.ArgumentParser) -> None:
    from app.sim.simulate import add_arguments

    add_arguments(p)


COMMANDS: list[Command] = [
    Command("serve", "run the service (REST, metrics, AMI link, FastAGI)", cmd_serve, _serve_args),
    Command(
        "migrate",
        "upgrade the database (ACD_DATABASE_URL) to the newest schema",
        cmd_migrate,
        _migrate_args,
    ),
    Command(
        "demo", "run the service with a simulated PBX on embedded defaults", cmd_demo, _demo_args
    ),
    Command(
        "ivr",
        "IVR flow tools: `acd ivr validate FILE` checks menu files",
        ivr_commands.cmd_ivr,
        ivr_commands.ivr_args,
    ),
    Command(
        "asterisk-config",
        "render asterisk_config/queues.conf and extensions.conf from ivr_flows/ (or --check)",
        ivr_commands.cmd_asterisk_config,
        ivr_commands.asterisk_config_args,
    ),
    Command(
        "prompts",
        "render the flows' Danish prompts to 8 kHz mono WAV (espeak-ng + sox)",
        ivr_commands.cmd_prompts,
        ivr_commands.prompts_args,
    ),
    Command(
        "users",
        "API users: `acd users add NAME --role ROLE` (prints the secret once), list, revoke",
        cmd_users,
        _users_args,
    ),
    Command(
        "simulate",
        "run a simulated day: an AMI server for the service, every call through its FastAGI",
        cmd_simulate,
        _simulate_args,
    ),
    Command(
        "plan",
        "forecast and staff coming days from the log (Erlang C and A); --check plays them "
        "in the simulator",
        plan_cli.cmd_plan,
        plan_cli.plan_args,
    ),
    Command(
        "staffing",
        "Erlang calculator: agents for --calls in --interval with --aht to a service level",
        plan_cli.cmd_staffing,
        plan_cli.staffing_args,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acd",
        description="ACD/IVR service for Jobcenter København's 82 56 56 82. "
        "Configuration comes from ACD_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"acd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
