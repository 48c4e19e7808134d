"""Domain errors to HTTP, in one place, and the one error body every endpoint documents.

Use cases (``app/services``) and the pure core raise what went wrong in their own words;
this table says which status code each is. Every error answer, whatever its status, is
one shape, the ``Error`` schema: ``{"detail": "<one sentence>"}``, plus ``errors`` (each
wrong parameter or field, on 422) or ``pbx`` (what the PBX did, on its refusals).

The rule for status codes (docs/api.md, "Errors"): a parameter, field or path value that
does not parse, is out of range or is not one the operation takes is **422**, always,
whether the framework or a use case finds it; 400 is only the token endpoint's (OAuth2
says so) and a malformed ``Content-Length``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
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


class FieldError(BaseModel):
    """One thing wrong with a request (a 422 lists each)."""

    loc: list[str | int] = Field(
        description="Where: `query`, `path`, `header` or `body`, then the parameter or "
        'field name (and list indexes), e.g. `["query", "team"]`.'
    )
    msg: str = Field(description="What is wrong with it, in English.")
    type: str = Field(
        description="A stable code for the kind of mistake: `unknown_parameter`, "
        "`missing`, `timezone_aware`, `string_pattern_mismatch`, `invalid` (refused by "
        "the configuration), ... (pydantic's error types and these)."
    )


class PbxOutcome(BaseModel):
    """What the PBX did with the steps of an action it refused or did not confirm."""

    confirmed: list[str] = Field(description="The steps the PBX confirmed (they happened).")
    refused: dict[str, str] = Field(description="Step -> the PBX's refusal message.")
    unconfirmed: list[str] = Field(
        description="The steps the PBX neither confirmed nor refused in time."
    )


class Error(BaseModel):
    """The body of every error answer (4xx and 5xx) of the API."""

    detail: str = Field(description="What went wrong, in one sentence (English).")
    errors: list[FieldError] | None = Field(
        None,
        description="Only on 422: every wrong parameter or field of the request, each "
        "naming where it is (`loc`).",
    )
    pbx: PbxOutcome | None = Field(
        None,
        description="Only when the PBX refused (409, 502) or did not confirm (504) an "
        "action: which steps it did and did not do.",
    )


ErrorOut = Error  # the name the routers import

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


def bad_parameter(
    where: str, name: str, message: str, kind: str = "invalid"
) -> RequestValidationError:
    """A 422 naming one parameter (``where``: query, path, header or body), in the same
    shape the framework's own validation answers."""
    return RequestValidationError([{"loc": (where, name), "msg": message, "type": kind}])


def body_of(exc: Exception) -> dict[str, Any]:
    """The ``Error`` body for a domain error."""
    detail = exc.detail if isinstance(exc, DomainError) else str(exc)
    if isinstance(detail, str):
        body: dict[str, Any] = {"detail": detail}
    else:
        rest = {k: v for k, v in detail.items() if k != "message"}
        body = {"detail": str(detail.get("message") or "the request could not be done")}
        if isinstance(exc, PbxRefused | PbxUnconfirmed):
            body["pbx"] = {
                "confirmed": list(rest.get("confirmed", [])),
                "refused": dict(rest.get("refused", {})),
                "unconfirmed": list(rest.get("unconfirmed", [])),
            }
    if isinstance(exc, Invalid):
        body["errors"] = [{"loc": list(exc.loc), "msg": body["detail"], "type": "invalid"}]
    return body


def _problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def _where(loc: list[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "request"


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(body_of(exc), status_code=status_of(exc))


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _problems(exc.errors())
    said = "; ".join(f"{_where(p['loc'])}: {p['msg']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return JSONResponse(
        {"detail": f"invalid request: {said}{more}", "errors": problems}, status_code=422
    )


async def _database_away(request: Request, exc: Exception) -> JSONResponse:
    # A connection that cannot be made or was lost (the database stopped, the network
    # cut): not a bug of the request, and not the service's to log at length per request.
    _away_log.warning("unreachable", "database unreachable on %s: %s", request.url.path,
                      type(exc).__name__)  # fmt: skip
    return JSONResponse({"detail": "the database is unreachable; try again"}, status_code=503)


def install(app: FastAPI) -> None:
    for kind in (DomainError, WrongState, PbxUnavailable, TooManyPending):
        app.add_exception_handler(kind, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for away in DATABASE_AWAY:
        app.add_exception_handler(away, _database_away)
