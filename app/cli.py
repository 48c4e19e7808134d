"""The ``acd`` command: ``serve``, ``migrate``, ``demo`` and the operators' tools.

Each subcommand is a function taking its parsed arguments and returning an exit code;
``COMMANDS`` is the one table that wires names, help and arguments to them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from app import plan_cli
from app.reports import commands as report_commands
from app.settings import Settings, SettingsError
from app.tools import commands as tool_commands
from app.tools import privacy as privacy_commands
from app.tools.shell import command_settings as _settings
from app.tools.shell import safe_url as _safe_url

if TYPE_CHECKING:
    from app.sim.harness import DemoDay
    from app.store.demo import DemoKeys

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
    if rt.ownership is not None:
        # A deposed owner exits (code 3) so that its supervisor starts it afresh as a
        # standby: its state is not trusted again (app/ha/ownership.py).
        rt.ownership.on_lost = lambda cause: signal.raise_signal(signal.SIGTERM)
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
    if rt.ownership is not None and rt.ownership.role == "deposed":
        return 3
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
    _require_free_ports(settings)
    if args.migrate:
        asyncio.run(_migrate(settings))
    else:
        asyncio.run(_require_schema(settings))
    if settings.caller_hash_key is None:
        # A random key per process would make every stored hash unfindable after a
        # restart: no repeat calls, no citizen's request answered. Only the demo may.
        raise CommandError(
            "ACD_CALLER_HASH_KEY is not set: set a secret of at least 16 characters "
            "(only `acd demo` runs without one)"
        )
    return asyncio.run(_serve(settings, _print_serving))


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    with _database_errors(settings):
        asyncio.run(_migrate(settings, args.downgrade))
    target = f"revision {args.downgrade}" if args.downgrade else "head"
    print(f"database migrated to {target}: {_safe_url(settings.database_url)}")
    return 0


class CommandError(Exception):
    """A command cannot go on; the message (one line) says why and what to do."""


@contextlib.contextmanager
def _database_errors(settings: Settings) -> Iterator[None]:
    """A database that does not answer, said in one line instead of a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except (DBAPIError, OSError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = _safe_url(settings.database_url)
        raise CommandError(f"cannot reach the database {where}: {first}") from exc


async def _require_schema(settings: Settings) -> None:
    """``acd serve`` on a database that is reachable but not migrated stops at once (the
    parts would fail on every write); one that is away is ridden out as always."""
    from sqlalchemy.exc import DBAPIError

    from app.store.migrate import NotMigrated, require_current

    try:
        await require_current(settings.database_url)
    except NotMigrated as exc:
        raise CommandError(f"{exc} (or start with `acd serve --migrate`)") from exc
    except (DBAPIError, OSError) as exc:
        log.warning("database not reachable at start (%s); its parts will retry", exc)


def _require_free_ports(settings: Settings, agi: bool = True) -> None:
    """Before anything starts: the ports this process will listen on are free, else one
    line that says which and how to choose another."""
    import errno
    import socket

    ports = [(settings.http_host, settings.http_port, "use --port (or ACD_HTTP_PORT)")]
    if agi:
        ports.append((settings.agi_host, settings.agi_port, "set ACD_AGI_PORT"))
    for host, port, fix in ports:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )[0]
            with socket.socket(family, kind, proto) as probe:
                # As the servers bind: a port in TIME_WAIT is free to take.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"port {port} is in use; {fix}") from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc}; {fix}") from None


def cmd_demo(args: argparse.Namespace) -> int:
    args.db = Path(args.db).resolve()
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    """The service on embedded defaults (its own SQLite file, in-process live state) with
    a simulated PBX and agents playing a working day: the morning so far at once, then
    at the asked pace, so a centre at work is on screen within seconds at any hour."""
    from datetime import UTC

    from app.config.kinds import QUEUES
    from app.config.loader import parse_kind, read_file
    from app.sim.harness import demo_day, demo_roster, simulator, wait_logged_in
    from app.store import demo
    from app.store.db import create_engine, session_factory

    # The listen address as `acd serve` takes it: --host/--port, else ACD_HTTP_*.
    base = _settings(http_host=args.host, http_port=args.port)
    db: Path = args.db
    spill = db.parent / f"{db.name}.spill"
    messages = db.parent / f"{db.name}.messages"  # the demo's voice messages' folder
    agi_port = args.agi_port or _free_port()

    def settings_for(ami_port: int) -> Settings:
        # Embedded defaults whatever the environment says: own SQLite file, no Redis,
        # the simulated PBX instead of a real one.
        return _settings(
            database_url=f"sqlite+aiosqlite:///{db}",
            redis_url="",
            ami_host="127.0.0.1",
            ami_port=ami_port,
            ami_username="acd",
            ami_secret="acdsecret",
            agi_host="127.0.0.1",
            agi_port=agi_port,
            http_host=base.http_host,
            http_port=base.http_port,
            spill_dir=str(spill),
            message_dir=str(messages),
            dialer_enabled=True,  # call-backs the simulated callers asked for are placed
        )

    _require_free_ports(settings_for(base.ami_port), agi=bool(args.agi_port))
    if not args.continue_:
        demo.wipe(db, spill)
        shutil.rmtree(messages, ignore_errors=True)
    messages.mkdir(exist_ok=True)
    await _migrate(settings_for(base.ami_port))
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    sessions = session_factory(engine)
    try:
        resume = await demo.last_moment(sessions) if args.continue_ else None
        day = demo_day(datetime.now(UTC), base.timezone, args.seed, args.scale, resume)
        flows = Path(base.ivr_flows)
        queues = flows / QUEUES.file
        catalogue = (
            parse_kind(QUEUES, read_file(queues), str(queues), {}) if queues.is_file() else None
        )
        async with simulator(
            flows,
            agi_port,
            day.traffic,
            mode="real",
            speed=args.speed,
            backpressure=True,  # the fast start goes as fast as the service reads
            start=day.start,
            fast_until=day.live_from,
        ) as simulation:
            keys = await demo.seed(sessions, catalogue, demo_roster(simulation.plan))
            await engine.dispose()
            settings = settings_for(simulation.ami_port)

            async def play() -> None:
                await wait_logged_in(simulation.sim, within=60)
                kernel = simulation.sim.kernel
                began = time.monotonic()
                whole = asyncio.create_task(
                    simulation.sim.run_day(simulation.plan, simulation.keys)
                )
                try:
                    while kernel.fast_forwarding and not whole.done():  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                    log.info(
                        "demo: the day up to %s played in %.0f s; on at the asked pace",
                        datetime.fromtimestamp(kernel.now(), base.tz).strftime("%H:%M"),
                        time.monotonic() - began,
                    )
                    result = await whole
                    log.info("simulated day over: %s", result.summary())
                finally:
                    whole.cancel()  # a stop ends the day too (not left to the loop's end)

            played = asyncio.create_task(play(), name="acd-demo-day")

            def banner(s: Settings) -> None:
                _print_demo(s, args, day, keys, db)

            try:
                return await _serve(settings, banner)
            finally:
                played.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await played
    finally:
        await engine.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _print_demo(
    settings: Settings, args: argparse.Namespace, day: DemoDay, keys: DemoKeys, db: Path
) -> None:
    base = _base_url(settings)
    live = datetime.fromtimestamp(day.live_from, settings.tz)
    pace = "real pace" if args.speed == 1 else f"x{args.speed:g}"
    if day.start is not None:
        played = f"{day.traffic.date.isoformat()} from {live:%H:%M} at {pace}"
    else:
        played = (
            f"{day.traffic.date.isoformat()}: the morning up to {live:%H:%M} at once,\n"
            f"  then {pace}"
        )
    # The acd beside this Python: demo.sh's .venv is not on the user's PATH.
    acd = Path(sys.executable).with_name("acd")
    cli = f"ACD_DATABASE_URL=sqlite:///{db} {acd if acd.exists() else 'acd'}"
    agent = keys.agent_id
    print(
        "\n"
        "  ACD demo is running: the service on embedded defaults (SQLite, in-process live\n"
        f"  state) and a simulated PBX playing {played}.\n"
        f'  API docs:   {base}/docs   ("Authorize" takes a key)\n'
        f"  Wallboard:  {base}/wallboard#key={keys.admin}\n"
        f"  Admin key:  {keys.admin}\n"
        f"  Agent key:  {keys.agent}  ({agent})\n"
        "              (header X-API-Key; this demo's database only)\n"
        "  As the agent, take a break:\n"
        f"    curl -H 'X-API-Key: {keys.agent}' -H 'Content-Type: application/json' \\\n"
        f'         -d \'{{"reason": "break"}}\' {base}/v1/agents/{agent}/pause\n'
        "  The CLI on the demo's database, e.g. a user for another agent:\n"
        f"    {cli} users add anne --role agent --agent agent102\n"
        "  Stop with Ctrl-C. The next start is clean; --continue goes on with this run.\n",
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
    from datetime import UTC

    from app.store import auth
    from app.store.db import create_engine, session_factory
    from app.store.migrate import NotMigrated, require_current

    try:
        await require_current(settings.database_url)
    except NotMigrated as exc:
        raise CommandError(f"{exc}{_demo_hint(settings)}") from None
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    try:
        if args.users_command == "add":
            return await _users_add(args, settings, sessions, now)
        if args.users_command == "list":
            return await _users_list(sessions, now)
        if args.users_command == "revoke":
            async with sessions.begin() as session:
                n = await auth.revoke(session, args.name, now)
            print(f"user {args.name!r} deactivated; {n} live credential(s) revoked")
            return 0
        # rotate | reactivate: a new credential, every older one revoked
        expires = _expiry(args, settings, now)
        async with sessions.begin() as session:
            token_id, secret, n = await auth.rotate(
                session,
                args.name,
                "bearer" if args.bearer else "key",
                expires,
                now,
                reactivate=args.users_command == "reactivate",
            )
        done = "reactivated" if args.users_command == "reactivate" else "re-keyed"
        _print_secret(f"user {args.name!r} {done}; {n} older credential(s) revoked", args,
                      token_id, secret, expires)  # fmt: skip
        return 0
    except auth.UserError as exc:
        print(f"acd users: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def _demo_hint(settings: Settings) -> str:
    """Where ``acd demo`` keeps its users, when its database is here and another is used
    (the README's ``acd users add`` next to a running demo)."""
    here = Path("acd-demo.db").resolve()
    if not here.is_file() or str(here) in settings.database_url:
        return ""
    return f"; a demo's database is here: ACD_DATABASE_URL=sqlite:///{here} acd users ..."


async def _users_add(
    args: argparse.Namespace, settings: Settings, sessions: Any, now: datetime
) -> int:
    from app.store import auth
    from app.store.agents import get_profile

    expires = _expiry(args, settings, now)
    async with sessions.begin() as session:
        # An agent user acts as that agent: a typo would make a user that reaches nobody.
        known = args.agent is None or args.role != "agent"
        if not known and await get_profile(session, args.agent) is None:
            raise auth.UserError(
                f"no agent {args.agent!r} in the roster (make its profile first: "
                f"PUT /v1/agents/{args.agent})"
            )
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
    _print_secret(f"user {args.name!r} ({args.role}) created", args, token_id, secret, expires)
    return 0


async def _users_list(sessions: Any, now: datetime) -> int:
    from app.store import auth

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


def _expiry(args: argparse.Namespace, settings: Settings, now: datetime) -> datetime | None:
    """When a new credential expires: as asked; a bearer token as long as the ones
    ``POST /v1/auth/token`` gives (ACD_TOKEN_TTL_MINUTES) and never longer."""
    from datetime import timedelta

    from app.store.auth import UserError

    minutes = None
    if args.expires_hours is not None:
        minutes = args.expires_hours * 60
    elif args.expires_days is not None:
        minutes = args.expires_days * 24 * 60
    if minutes is not None and minutes <= 0:
        raise UserError("the expiry must be a positive number of hours or days")
    if args.bearer:
        ttl = settings.token_ttl_minutes
        if minutes is not None and minutes > ttl:
            raise UserError(
                f"a bearer token lives at most ACD_TOKEN_TTL_MINUTES ({ttl} min); "
                "give an API key (without --bearer) for longer"
            )
        minutes = minutes or ttl
    return now + timedelta(minutes=minutes) if minutes else None


def _print_secret(
    what: str, args: argparse.Namespace, token_id: str, secret: str, expires: datetime | None
) -> None:
    header = "Authorization: Bearer <secret>" if args.bearer else "X-API-Key: <secret>"
    until = f"expires {expires.isoformat(timespec='seconds')}" if expires else "does not expire"
    # Everything but the secret goes to stderr: KEY=$(acd users add ...) works.
    print(
        f"{what}; credential {token_id} {until}.\n"
        f"Send it as '{header}'. It is shown this once; only a hash is stored.",
        file=sys.stderr,
    )
    print(secret)


def cmd_users(args: argparse.Namespace) -> int:
    settings = _settings()
    with _database_errors(settings):
        return asyncio.run(_users(args, settings))


def _credential_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--expires-days", type=int, help="the key expires after N days")
    p.add_argument("--expires-hours", type=int, help="expires after N hours")
    p.add_argument(
        "--bearer",
        action="store_true",
        help="issue a bearer token (Authorization: Bearer) instead of an API key; it lives "
        "ACD_TOKEN_TTL_MINUTES (480) unless --expires-hours asks for less",
    )


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
    add.add_argument("--agent", help="agent role: the agent id this user is (in the roster)")
    add.add_argument(
        "--team", action="append", help="supervisor role: a team it leads (repeatable)"
    )
    add.add_argument(
        "--grant",
        action="append",
        choices=sorted(WRITE_SCOPES),
        help="integration role: a write scope beyond reading (repeatable)",
    )
    _credential_args(add)
    sub.add_parser("list", help="users, roles and their credentials (never the secrets)")
    revoke = sub.add_parser("revoke", help="deactivate a user and revoke all its credentials")
    revoke.add_argument("name")
    for action, what in (
        ("rotate", "give an active user a new secret; every older one is revoked"),
        ("reactivate", "give a deactivated (revoked) user a new secret and let it in again"),
    ):
        one = sub.add_parser(action, help=what, description=what + ".")
        one.add_argument("name")
        _credential_args(one)


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
    p.add_argument("--host", help="listen address (default: ACD_HTTP_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: ACD_HTTP_PORT, 8000)")
    p.add_argument(
        "--db",
        default="acd-demo.db",
        help="the demo's SQLite file (default acd-demo.db); emptied at each start",
    )
    p.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="keep the last run's data and go on with its day where it stopped",
    )
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
        tool_commands.cmd_ivr,
        tool_commands.ivr_args,
    ),
    Command(
        "asterisk-config",
        "render asterisk_config/queues.conf and extensions.conf from ivr_flows/ (or --check)",
        tool_commands.cmd_asterisk_config,
        tool_commands.asterisk_config_args,
    ),
    Command(
        "prompts",
        "render the flows' Danish prompts to 8 kHz mono WAV (espeak-ng + sox)",
        tool_commands.cmd_prompts,
        tool_commands.prompts_args,
    ),
    Command(
        "users",
        "API users: `acd users add NAME --role ROLE` (prints the secret once), list, revoke",
        cmd_users,
        _users_args,
    ),
    Command(
        "report",
        "a report against the service goals to a file: --period 2014-Q4 --by department "
        "--format pdf --out FILE",
        report_commands.cmd_report,
        report_commands.report_args,
    ),
    Command(
        "recompute",
        "rebuild the calls and queue visits of --from..--to from the event log, saying what "
        "changed (idempotent)",
        report_commands.cmd_recompute,
        report_commands.recompute_args,
    ),
    Command(
        "privacy",
        "personal data: `acd privacy purge [--dry-run]`, `export --caller NUMBER --reason "
        "WHY`, `erase --caller NUMBER --reason WHY` (JSON, audited)",
        privacy_commands.cmd_privacy,
        privacy_commands.privacy_args,
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
    except (SettingsError, CommandError) as exc:
        print(f"acd: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # The demo's and the database's own refusals: one line, not a traceback.
        from app.store.demo import DemoDatabaseError
        from app.store.migrate import NotMigrated

        if isinstance(exc, NotMigrated | DemoDatabaseError):
            print(f"acd: {exc}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
