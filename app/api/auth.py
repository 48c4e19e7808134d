"""Authentication, authorisation and the audit log for every router.

Credentials (stored hashed, ``app.store.auth``):
- an **API key** in the header ``X-API-Key`` (``acd users add``; long-lived, optional
  expiry), for systems and for agents' desktop tools;
- an **OAuth2 bearer token** in ``Authorization: Bearer`` (client-credentials grant: POST
  an API key to ``/v1/auth/token``, get a token that expires after
  ``ACD_TOKEN_TTL_MINUTES``; ``acd users add --bearer`` issues one directly).

Using it on a router, one dependency per endpoint::

    who: Principal = Security(access("agents:write", "agent.pause"))

``access(scope, action)`` authenticates (401 with ``WWW-Authenticate`` when the
credentials are missing, unknown, expired or revoked), checks the role has ``scope`` (403
otherwise) and marks the request for the audit log: whatever the outcome, 2xx, 4xx or 5xx,
one ``audit_log`` row (who, role, action, method, path, status, target) is written after
the response by ``AuditMiddleware``. The per-resource rule (an agent acts on itself, a
supervisor on its teams) is ``Principal.reaches``; use cases raise ``forbidden`` with it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, OAuth2
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.acd.access import Principal
from app.api.deps import runtime
from app.api.errors import DATABASE_AWAY
from app.logbudget import LogBudget
from app.store import auth as store

log = logging.getLogger(__name__)

TOKEN_URL = "/v1/auth/token"
AUDIT_KEY = "acd.audit"  # where a request's audit mark lives in the ASGI scope

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `acd users add` (acdk_...)",
)
oauth2_bearer = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL)),
    auto_error=False,
    scheme_name="OAuth2",
    description="A bearer token (acdt_...) from POST /v1/auth/token",
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="acd", ApiKey header="X-API-Key"'}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=CHALLENGE)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status_code=403, detail=detail)


@dataclass
class AuditMark:
    """What the audit log says about one request; filled in as the request goes."""

    action: str
    actor: str = "anonymous"
    role: str = "-"
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False  # audited only when denied (live status reads, see ``access``)


def audit_note(request: Request, *, target: str | None = None, **detail: Any) -> None:
    """Add to this request's audit row (never caller numbers or free text from callers)."""
    mark: AuditMark | None = request.scope.get(AUDIT_KEY)
    if mark is None:
        return
    if target is not None:
        mark.target = target
    mark.detail.update(detail)


def _target(path_params: dict[str, Any]) -> str | None:
    parts = [f"{k.removesuffix('_id')}:{v}" for k, v in path_params.items()]
    return ",".join(parts)[:128] or None


# Live status views are polled (a wallboard, an integration at 200 requests/s): for those
# alone a checked credential is trusted for a short while (``CredentialMemory.fresh``), so a
# poll costs no database round trip. A revoked key can then still *look* at the live
# picture for this long; every write and every report read checks the database each time.
#
# While the database is unreachable, a read (GET/HEAD) with a credential the database
# confirmed within ACD_AUTH_OUTAGE_SECONDS is let through from that memory: the live
# views and the wallboard keep working through an outage. A write is refused (503): it
# could not be audited, and most need the database anyway. A credential never confirmed
# (or refused by the database at its last check) gets 503 as before.
_READS = frozenset({"GET", "HEAD"})
_outage_log = LogBudget(log, "credentials while the database is away", lines=5, interval=60.0)


async def _principal(
    request: Request, api_key: str | None, authorization: str | None, cached: bool = False
) -> Principal:
    if api_key:
        secret, kind = api_key.strip(), "key"
    elif authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("Authorization must be 'Bearer <token>'")
        secret, kind = value.strip(), "bearer"
    else:
        raise unauthorized("credentials needed: an X-API-Key header or a bearer token")
    rt = runtime(request)
    memory = rt.credentials
    # Credentials expire on the host's clock (rt.clock.wall()), not the PBX's.
    now = rt.clock.wall()
    if cached:
        hit = memory.fresh(secret, now)
        if hit is not None:
            return hit
    try:
        async with rt.sessions() as session:
            found = await store.verify(session, secret, kind, now)  # type: ignore[arg-type]
    except (SQLAlchemyError, OSError) as exc:
        remembered = memory.during_outage(secret, now) if request.method in _READS else None
        if remembered is None:
            _outage_log.log(
                logging.ERROR,
                "refused",
                "cannot check credentials: %s (no recent confirmation to go on)",
                type(exc).__name__,
            )
            rt.metrics.auth_outage.labels("refused").inc()
            raise HTTPException(
                503, "cannot check credentials: the database is unreachable"
            ) from exc
        principal, age = remembered
        _outage_log.warning(
            "remembered",
            "database unreachable (%s): %s let through on a confirmation %.0f s old",
            type(exc).__name__,
            principal.name,
            age,
        )
        rt.metrics.auth_outage.labels("remembered").inc()
        return principal
    if found is None:
        memory.forget(secret)
        raise unauthorized(
            "invalid credentials (unknown, expired or revoked)"
            if kind == "key"
            else "invalid bearer token (unknown, expired or revoked)"
        )
    principal, expires_at = found
    memory.remember(secret, principal, expires_at)
    return principal


def access(scope: str, action: str, *, quiet: bool = False) -> Callable[..., Awaitable[Principal]]:
    """The dependency an endpoint needs: authenticated, holding ``scope``, audited.

    ``quiet``: for live status reads (the picture a wallboard polls every second): not a
    write and not a report, so only a refusal is audited, not every look.
    """

    async def dependency(
        request: Request,
        api_key: str | None = Security(api_key_header),
        authorization: str | None = Security(oauth2_bearer, scopes=[scope]),
    ) -> Principal:
        mark = AuditMark(action=action, target=_target(request.path_params), quiet=quiet)
        request.scope[AUDIT_KEY] = mark
        principal = await _principal(request, api_key, authorization, cached=quiet)
        mark.actor, mark.role = principal.name, principal.role
        request.state.principal = principal
        if not principal.has(scope):
            raise forbidden(f"the {principal.role} role may not {scope.replace(':', ' ')}")
        return principal

    dependency.__name__ = f"access_{scope.replace(':', '_')}"
    return dependency


# --------------------------------------------------------------------------------------
# Middleware: the audit row after each marked request; a cap on request bodies
# --------------------------------------------------------------------------------------


class AuditMiddleware:
    """Writes the audit row of a marked request once its response is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            mark: AuditMark | None = scope.get(AUDIT_KEY)
            if mark is not None and (not mark.quiet or status in (401, 403)):
                await self._write(scope, mark, status)

    async def _write(self, scope: Scope, mark: AuditMark, status: int) -> None:
        rt = scope["app"].state.rt
        entry = store.AuditEntry(
            actor=mark.actor,
            role=mark.role,
            action=mark.action,
            method=scope["method"],
            path=scope["path"],
            status_code=status,
            target=mark.target,
            detail=mark.detail or None,
        )
        try:
            await store.write_audit(rt.sessions, entry)
        except DATABASE_AWAY as exc:  # an outage: counted, and a few lines a minute
            rt.metrics.audit_errors.inc()
            _outage_log.log(
                logging.ERROR,
                "audit",
                "audit log: the database is unreachable (%s); %s %s not audited",
                type(exc).__name__,
                entry.action,
                entry.path,
            )
        except Exception:  # the response is gone; say it loudly, count it
            rt.metrics.audit_errors.inc()
            log.exception("audit log: could not write %s %s", entry.action, entry.path)


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit`` bytes with a JSON 413, before any handler
    reads them (declared Content-Length or counted while streaming), whatever the method:
    a GET with a 20 MB body is refused like a POST (no endpoint reads a GET's body, but
    the server would take it in all the same)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            # No body (HTTP/1.1: neither header means none); a stream (/v1/stream) too.
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, 400, "Content-Length is not a number")
                    return
                if declared > self.limit:
                    await self._refuse(send, 413, self._too_big())
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._refuse(send, 413, self._too_big())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self) -> str:
        return f"request body larger than {self.limit} bytes"

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------------------
# POST /v1/auth/token: OAuth2 client credentials (RFC 6749 4.4)
# --------------------------------------------------------------------------------------

router = APIRouter(tags=["auth"])

_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": ["client_credentials"],
                            "description": "Always `client_credentials`.",
                        },
                        "client_id": {
                            "type": "string",
                            "maxLength": 64,
                            "description": "The user's name (`acd users add NAME`); or "
                            "send both as HTTP Basic.",
                        },
                        "client_secret": {
                            "type": "string",
                            "maxLength": 128,
                            "description": "One of the user's API keys (acdk_...).",
                        },
                    },
                }
            }
        },
    }
}


class TokenOut(BaseModel):
    """A bearer token (RFC 6749 5.1): send it as ``Authorization: Bearer <access_token>``."""

    access_token: str = Field(description="The token (acdt_...); a secret, like the key.")
    token_type: Literal["bearer"] = Field(description="Always `bearer`.")
    expires_in: int = Field(description="Seconds until it expires (ACD_TOKEN_TTL_MINUTES).")
    expires_at: datetime = Field(description="When it expires (the host's clock).")


class TokenError(BaseModel):
    """The token endpoint's errors, in OAuth2's own shape (RFC 6749 5.2)."""

    error: Literal[
        "invalid_request", "unsupported_grant_type", "invalid_client", "temporarily_unavailable"
    ] = Field(description="OAuth2's error code.")
    detail: str = Field(description="What went wrong, in one sentence (English).")


def _oauth_error(status: int, error: str, detail: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="acd"'
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


@router.post(
    TOKEN_URL,
    operation_id="issueToken",
    summary="OAuth2 client credentials: an API key (client_secret) for a bearer token",
    openapi_extra=_TOKEN_FORM,
    responses={
        200: {"model": TokenOut, "description": "A bearer token"},
        400: {"model": TokenError, "description": "Malformed request or unsupported grant_type"},
        401: {"model": TokenError, "description": "Unknown client or wrong secret"},
        503: {"model": TokenError, "description": "The database is unreachable"},
    },
)
async def token(request: Request) -> JSONResponse:
    """OAuth2 client-credentials grant (RFC 6749 4.4): POST `grant_type=client_credentials`
    with the user's name as `client_id` and an API key as `client_secret` (in the form or as
    HTTP Basic), get a bearer token valid for ACD_TOKEN_TTL_MINUTES. Errors here have
    OAuth2's own body (`error`, `detail`)."""
    mark = AuditMark(action="auth.token")
    request.scope[AUDIT_KEY] = mark
    body = await request.body()
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _oauth_error(400, "invalid_request", "the body must be a url-encoded form")
    values = {k: v[0] for k, v in form.items() if v}
    if values.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    client_id, secret = values.get("client_id"), values.get("client_secret")
    basic = request.headers.get("Authorization", "")
    if basic.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(basic[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(400, "invalid_request", "malformed Basic credentials")
        client_id, _, secret = decoded.partition(":")
    if not client_id or not secret:
        return _oauth_error(401, "invalid_client", "client_id and client_secret are needed")
    mark.actor = client_id[:64]
    rt = runtime(request)
    ttl = timedelta(minutes=rt.settings.token_ttl_minutes)
    try:
        async with rt.sessions.begin() as session:
            issued = await store.exchange(session, client_id, secret, ttl, rt.clock.wall())
    except (SQLAlchemyError, OSError) as exc:
        log.error("token endpoint: %s", type(exc).__name__)
        return _oauth_error(503, "temporarily_unavailable", "the database is unreachable")
    if issued is None:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    access_token, expires = issued
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": int(ttl.total_seconds()),
            "expires_at": expires.isoformat(),
        },
        headers={"Cache-Control": "no-store"},
    )


def metrics_allowed(request: Request) -> bool:
    """``/metrics``: open unless ``ACD_METRICS_TOKEN`` is set, then that bearer token."""
    wanted = runtime(request).settings.metrics_token
    if wanted is None:
        return True
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), wanted.get_secret_value().encode()
    )
