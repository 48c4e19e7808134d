"""IVR operations: reload the configuration files without a restart.

Thin on purpose: the use case is ``ConfigRegistry.reload()`` (app/config/registry.py): every
file (menu flows, queues, work data) is read and checked, and swapped in whole or not at
all. Admins only (scope ``ivr:admin``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.acd.access import Principal
from app.api.auth import access
from app.api.common import ERRORS
from app.api.deps import Registry

router = APIRouter(prefix="/v1/ivr", tags=["ivr"])


class FlowProblem(BaseModel):
    file: str = Field(description="The configuration file.")
    line: int | None = Field(description="The line in it, when known.")
    path: str = Field(description="Where in the file's structure (e.g. `menus.main.keys.1`).")
    message: str = Field(description="What is wrong.")
    text: str = Field(description="All of it on one line: `<file>:<line>: <path>: <message>`.")


class ReloadOutcome(BaseModel):
    status: Literal["reloaded", "rejected"] = Field(
        description="`reloaded`, or `rejected` (the running configuration is kept).",
    )
    version: str = Field(description="The version of the configuration running now.")
    flows: list[str] = Field(description="The menus (flows) running now.")
    errors: list[FlowProblem] = Field(
        description="Why the reload was rejected (empty when reloaded).",
    )


@router.post(
    "/reload",
    operation_id="reloadConfiguration",
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
    """Reads every configuration file again (menu, queues, work data, goals), as SIGHUP does. A
    set with any error is rejected whole and the running configuration stays; the answer
    lists each problem with its file and line."""
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
