"""Domain errors to HTTP, in one place, and the one error body every endpoint documents.

Use cases (``app/services``) and the pure core raise what went wrong in their own words;
this table says which status code each is. Every error answer is ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.acd.agents import WrongState
from app.ami.agent_actions import PbxUnavailable
from app.ami.confirm import TooManyPending
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


def install(app: FastAPI) -> None:
    for kind in (DomainError, WrongState, PbxUnavailable, TooManyPending):
        app.add_exception_handler(kind, _domain_error)
