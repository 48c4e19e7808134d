"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from app.api.auth import metrics_allowed
from app.api.deps import MetricsDep, Rt
from app.api.errors import Error
from app.components import checked

router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    status: str = Field(description="`ok` while the process answers.")


class PartState(BaseModel):
    ok: bool = Field(description="The part works as it should now.")
    state: str = Field(description="The part's state in a word (e.g. `up`, `connecting`, `down`).")
    required: bool = Field(description="The service is not ready without it.")
    detail: dict[str, Any] = Field(
        {},
        description="What the part reports about itself (backend, last error, ...).",
    )


class Readiness(BaseModel):
    status: str = Field(description="`ready`, or `not_ready` when a required part is not ok.")
    parts: dict[str, PartState] = Field(
        description="Each part of the service by name (database, ami, agi, live, ...).",
    )
    roles: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Per PBX: this process's role. owner = it holds the PBX's lease and runs its "
            "AMI link, state, writer and dialer; standby = another process does, this one "
            "serves the API, stream, wallboard and FastAGI and takes over if the owner "
            "dies; deposed = it lost the lease and stops; replica = an API replica "
            "without a PBX link"
        ),
    )


@router.get("/health", response_model=Liveness, summary="Liveness: the process answers")
async def health() -> Liveness:
    """Answers 200 while the process runs, whatever its parts do: for a liveness probe. No
    credentials."""
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a required part is not reachable"}},
    summary="Readiness: database, Redis (if configured) and AMI (if configured) reachable",
)
async def ready(rt: Rt) -> JSONResponse:
    """200 when every required part (the database; Redis and the AMI link when configured)
    works, else 503 with the same body saying which does not: for a readiness probe and a
    load balancer. No credentials."""
    components = rt.parts()
    results = await asyncio.gather(*(checked(c) for c in components))
    parts = {
        c.name: PartState(ok=h.ok, state=h.state, required=c.required, detail=h.detail)
        for c, h in zip(components, results, strict=True)
    }
    ok = all(p.ok for p in parts.values() if p.required)
    body = Readiness(status="ready" if ok else "not_ready", parts=parts, roles=rt.roles())
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (a bearer token when ACD_METRICS_TOKEN is set)",
    response_class=Response,
    responses={401: {"model": Error, "description": "ACD_METRICS_TOKEN is set and was not given"}},
)
async def metrics(request: Request, metrics: MetricsDep) -> Response:
    """The service's figures in Prometheus' text format: queues, agents, today's figures, the
    AMI link, the writer, the API. Open unless ACD_METRICS_TOKEN is set; then that bearer
    token is needed."""
    if not metrics_allowed(request):
        return JSONResponse(
            {"detail": "metrics need the bearer token of ACD_METRICS_TOKEN"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
