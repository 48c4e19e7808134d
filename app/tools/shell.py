"""What every ``acd`` command shares: its settings (from the environment, with the
command's own overrides), its logging, URLs fit to print. Here, not in app/cli.py, so
that the commands it wires (app/plan_cli.py, app/tools/commands.py) need not import it
back."""

from __future__ import annotations

import logging
import sys

from app.settings import Settings, load_settings


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic lists each of its plugins at INFO on every start: noise for an operator.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def command_settings(**overrides: object) -> Settings:
    """The settings a command runs with (``None`` overrides are left out); logging set."""
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level)
    return settings


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
