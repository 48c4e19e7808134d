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
from types import FrameType

from app.ivr import commands as ivr_commands
from app.settings import Settings, SettingsError, load_settings

log = logging.getLogger("app.cli")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings(**overrides: object) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level)
    return settings


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

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, turning a clean
        # stop into "killed by signal"; a service that stopped cleanly exits 0.
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()
            # Live streams never end by themselves; uvicorn waits for open responses.
            store = app.state.rt.live
            if store is not None:
                with contextlib.suppress(RuntimeError):  # no loop running: nothing is open
                    asyncio.get_running_loop().call_soon_threadsafe(store.close_streams)

    app = create_app(settings)
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
    if server.started and banner is not None:
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


def _print_demo(settings: Settings) -> None:
    base = _base_url(settings)
    print(
        "\n"
        "  ACD demo is running (SQLite, in-process live state).\n"
        f"  Open:        {base}/docs\n"
        f"  Wallboard:   {base}/wallboard\n"
        f"  Health:      {base}/ready\n"
        f"  Metrics:     {base}/metrics\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    # The demo runs on embedded defaults whatever the environment says: its own SQLite
    # file, no Redis, no real PBX.
    settings = _settings(
        database_url=f"sqlite+aiosqlite:///{args.db}",
        redis_url="",
        ami_host="",
        http_host=args.host,
        http_port=args.port,
    )
    asyncio.run(_migrate(settings))
    return asyncio.run(_serve(settings, _print_demo))


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.sim.simulate import prepare, run_simulate

    settings = _settings()
    return asyncio.run(run_simulate(args, prepare(args, settings)))


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


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
        "simulate",
        "run a simulated day: an AMI server for the service, every call through its FastAGI",
        cmd_simulate,
        _simulate_args,
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
