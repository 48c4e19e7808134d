"""IVR operations: reload the menu files without a restart.

Thin on purpose: the use case is ``AgiServer.reload()``. Admins only (scope ``ivr:admin``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.acd.access import Principal
from app.agi.server import AgiServer
from app.api.auth import access
from app.api.common import ERRORS

router = APIRouter(prefix="/v1/ivr", tags=["ivr"])


class FlowProblem(BaseModel):
    file: str
    line: int | None
    path: str
    message: str
    text: str  # "<file>:<line>: <path>: <message>"


class ReloadOutcome(BaseModel):
    status: Literal["reloaded", "rejected"]
    version: str  # of the flow set running now
    flows: list[str]
    errors: list[FlowProblem]


def agi_server(request: Request) -> AgiServer:
    for component in request.app.state.rt.components:
        if isinstance(component, AgiServer):
            return component
    raise HTTPException(status_code=503, detail="the FastAGI server is not part of this service")


@router.post(
    "/reload",
    response_model=ReloadOutcome,
    responses={
        **ERRORS,
        422: {"model": ReloadOutcome, "description": "rejected: the running flows stay"},
        503: {"description": "no FastAGI server in this process"},
    },
    summary="Reload the IVR flow files (as SIGHUP does); a broken set is rejected",
)
async def reload_flows(
    who: Annotated[Principal, Security(access("ivr:admin", "ivr.reload"))],
    server: AgiServer = Depends(agi_server),  # noqa: B008
) -> JSONResponse:
    result = await server.reload()
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
