"""Domain errors to HTTP, in one place, and the one error body every endpoint documents.

Use cases (``app/services``) and the pure core raise what went wrong in their own words;
this table says which status code each is. Every error answer is ``{"detail": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError

from app.acd.agents import WrongState
from app.ami.agent_actions import PbxUnavailable
from app.ami.confirm import TooManyPending
from app.logbudget import LogBudget
from app.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    PbxRefused,
    PbxUnconfirmed,
    Unavailable,
)

log = logging.getLogger(__name__)
_away_log = LogBudget(log, "requests while the database is away", lines=5, interval=60.0)
# The errors of a database that cannot be reached (connection refused, lost, timed out);
# a refused value or a bug is not one of these.
DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError, ConnectionError)


class ErrorOut(BaseModel):
    detail: str | dict[str, Any] | list[Any]


STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    WrongState: 409,
    Invalid: 422,
    Unavailable: 503,
    PbxUnavailable: 503,
    TooManyPending: 503,
    PbxUnconfirmed: 504,
}


def status_of(exc: Exception) -> int:
    if isinstance(exc, PbxRefused):
        return 409 if exc.about_state else 502
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    detail = exc.detail if isinstance(exc, DomainError) else str(exc)
    return JSONResponse({"detail": detail}, status_code=status_of(exc))


async def _database_away(request: Request, exc: Exception) -> JSONResponse:
    # A connection that cannot be made or was lost (the database stopped, the network
    # cut): not a bug of the request, and not the service's to log at length per request.
    _away_log.warning("unreachable", "database unreachable on %s: %s", request.url.path,
                      type(exc).__name__)  # fmt: skip
    return JSONResponse({"detail": "the database is unreachable; try again"}, status_code=503)


def install(app: FastAPI) -> None:
    for kind in (DomainError, WrongState, PbxUnavailable, TooManyPending):
        app.add_exception_handler(kind, _domain_error)
    for away in DATABASE_AWAY:
        app.add_exception_handler(away, _database_away)
