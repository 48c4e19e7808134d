"""IVR operations: reload the configuration files without a restart.

Thin on purpose: the use case is ``ConfigRegistry.reload()`` (app/config/registry.py): every
file (menu flows, queues, work data) is read and checked, and swapped in whole or not at
all. Admins only (scope ``ivr:admin``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.acd.access import Principal
from app.api.auth import access
from app.api.common import ERRORS
from app.api.deps import Registry

router = APIRouter(prefix="/v1/ivr", tags=["ivr"])


class FlowProblem(BaseModel):
    file: str
    line: int | None
    path: str
    message: str
    text: str  # "<file>:<line>: <path>: <message>"


class ReloadOutcome(BaseModel):
    status: Literal["reloaded", "rejected"]
    version: str  # of the configuration running now
    flows: list[str]
    errors: list[FlowProblem]


@router.post(
    "/reload",
    response_model=ReloadOutcome,
    responses={
        **ERRORS,
        422: {"model": ReloadOutcome, "description": "rejected: the running files stay"},
    },
    summary="Reload the configuration files (as SIGHUP does); a set with errors is rejected",
)
async def reload_flows(
    who: Annotated[Principal, Security(access("ivr:admin", "ivr.reload"))],
    registry: Registry,
) -> JSONResponse:
    result = await registry.reload()
    body = ReloadOutcome(
        status="reloaded" if result.ok else "rejected",
        version=result.version,
        flows=list(result.flows),
        errors=[
            FlowProblem(file=e.file, line=e.line, path=e.path, message=e.message, text=str(e))
            for e in result.errors
        ],
    )
    return JSONResponse(body.model_dump(), status_code=200 if result.ok else 422)
