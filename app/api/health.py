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
from app.components import checked

router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    status: str


class PartState(BaseModel):
    ok: bool
    state: str
    required: bool
    detail: dict[str, Any] = {}


class Readiness(BaseModel):
    status: str  # ready | not_ready
    parts: dict[str, PartState]
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
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a required part is not reachable"}},
    summary="Readiness: database, Redis (if configured) and AMI (if configured) reachable",
)
async def ready(rt: Rt) -> JSONResponse:
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
    responses={401: {"description": "ACD_METRICS_TOKEN is set and was not given"}},
)
async def metrics(request: Request, metrics: MetricsDep) -> Response:
    if not metrics_allowed(request):
        return JSONResponse(
            {"detail": "metrics need the bearer token of ACD_METRICS_TOKEN"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
