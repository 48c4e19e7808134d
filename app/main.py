"""The web app: ``create_app(settings)`` builds (or takes) a ``Runtime``
(app/runtime.py) and serves it: the lifespan starts its components in order and stops
them in reverse; the routers (app/api) reach its parts through typed dependencies
(app/api/deps.py); domain errors become HTTP answers in one place (app/api/errors.py).
Nothing here reads the environment: settings come in from the caller (``acd serve`` or a
test).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.api import (
    agents,
    auth,
    callbacks,
    calls,
    errors,
    health,
    ivr,
    live,
    planning,
    privacy,
    report_archive,
    reports,
    surveys,
    wallboard,
    work,
)
from app.api import docs as api_docs
from app.api import openapi as api_openapi
from app.components import Component
from app.runtime import Runtime, build_runtime
from app.settings import Settings

log = logging.getLogger(__name__)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for component in rt.components:
                await component.start()
                started.append(component)
            log.info("service started: %s", ", ".join(c.name for c in started))
            yield
        finally:
            for component in reversed(started):
                try:
                    await component.stop()
                except Exception:
                    log.exception("stopping %s failed", component.name)

    app = FastAPI(
        title="ACD/IVR service for 82 56 56 82",
        summary="Keypad menu, queues, agents and live figures for Jobcenter København",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc without a CDN: app/api/docs.py
        redoc_url=None,
        # Stable operation ids and unknown query parameters refused: app/api/openapi.py.
        generate_unique_id_function=api_openapi.operation_id,
        dependencies=api_openapi.APP_DEPENDENCIES,
    )
    api_openapi.install(app)
    app.state.rt = rt
    app.add_exception_handler(Exception, _internal_error)
    errors.install(app)
    # Outermost first: the body cap refuses before anything reads; the audit row is
    # written after the response of every request an ``access`` dependency marked.
    app.add_middleware(auth.AuditMiddleware)
    app.add_middleware(auth.BodyLimitMiddleware, limit=settings.max_body_bytes)
    api_docs.install(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    # Before calls: /v1/calls/live must not be taken for /v1/calls/{call_id}.
    app.include_router(live.router)
    app.include_router(calls.router)
    app.include_router(ivr.router)
    app.include_router(agents.router)
    app.include_router(callbacks.router)
    app.include_router(surveys.router)
    app.include_router(report_archive.router)
    app.include_router(reports.router)
    app.include_router(work.router)
    app.include_router(planning.router)
    app.include_router(privacy.router)
    app.include_router(wallboard.router)
    return app
