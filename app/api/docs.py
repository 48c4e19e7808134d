"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, and ``/``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN; a municipality's servers often
have no internet, and there the pages stay blank. Here the assets come from the
``fastapi_offline`` package (which ships them; pinned in constraints.txt) and are served
by the service, and the pages carry a Content-Security-Policy that keeps every request
on this host (ReDoc's side menu would otherwise fetch its maker's logo from a CDN).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# Inline scripts and styles: the pages' own bootstrap code; blob: ReDoc's search worker.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'self'"
)

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the documentation pages and their assets; create ``app`` with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there."""
    static = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
    app.include_router(router)


def _root(request: Request) -> str:
    # Behind a proxy that strips a prefix (root_path) every link keeps that prefix.
    return str(request.scope.get("root_path", ""))


def _own(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{_root(request)}/docs", status_code=307)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return _own(
        get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # No online validator badge: it would send the spec's address out.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return _own(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return _own(
        get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
    )
