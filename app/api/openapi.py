"""What the API promises an integrator, in one place: stable operation ids, unknown query
parameters refused, and the OpenAPI document's shared parts (the ``Error`` body on every
422, the OAuth2 scopes).

- **Operation ids** are the endpoint function's name in camelCase (``list_calls`` ->
  ``listCalls``), or the ``operation_id`` a route names; never FastAPI's path-based ones
  (``list_calls_v1_calls_get``), which change whenever a path does.
  ``tests/unit/test_openapi_contract.py`` holds every operation to this.
- **Unknown query parameters** are a 422 naming each (``/v1/agents?team=nord`` would
  otherwise answer every agent, as if the filter had been applied): the dependency
  ``reject_unknown_query`` is installed on the whole app and reads what the matched route
  declares, its dependencies' parameters included, so a new endpoint is covered by
  declaring its parameters, nothing more.
- **422** answers have the ``Error`` body (app/api/errors.py) on every operation, not
  FastAPI's ``HTTPValidationError``; one shape for every error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.acd.access import SCOPES

UNPROCESSABLE = {
    "description": "The request's parameters or body are not valid (a value that does not "
    "parse, is out of range, is not one the configuration allows, or a query parameter the "
    "operation does not take); `errors` names each.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def operation_id(route: APIRoute) -> str:
    """``list_calls`` -> ``listCalls``: the endpoint's own name, stable across paths."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# Kept on the route object itself (the routers' own APIRoute, which FastAPI puts in the
# scope as ``route``): it lives and goes with the route.
_DECLARED = "_acd_query_names"


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies declare (router-level
    dependencies included; ``include_router(dependencies=...)`` and the app's own are not
    in the route's dependant, so they must not declare query parameters: none does)."""
    names: frozenset[str] | None = getattr(route, _DECLARED, None)
    if names is None:
        found: set[str] = set()
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            found.update(f.alias for f in dependant.query_params)
            stack.extend(dependant.dependencies)
        names = frozenset(found)
        setattr(route, _DECLARED, names)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not declare, naming it and the ones it
    takes. Routes outside the documented API (``include_in_schema=False``: the docs pages,
    whose OAuth2 redirect carries its own parameters) are left alone."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    known = _query_names(route)
    unknown = sorted({k for k in request.query_params if k not in known})
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter {name!r}; this operation takes: {takes}",
                    "type": "unknown_parameter",
                }
                for name in unknown
            ]
        )


def _shared(spec: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with this API's shared parts (idempotent)."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            # Every operation may answer 422: at least for a query parameter it does not
            # take (reject_unknown_query), whether or not it has parameters.
            operation.setdefault("responses", {})["422"] = {**UNPROCESSABLE}
    components = spec.setdefault("components", {})
    schemas = components.get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    oauth2 = components.get("securitySchemes", {}).get("OAuth2")
    if oauth2 is not None:
        oauth2["flows"]["clientCredentials"]["scopes"] = dict(SCOPES)
    return spec


def _schema(app: FastAPI) -> Callable[[], dict[str, Any]]:
    made = app.openapi  # FastAPI's own: made once, again when the routes change

    def openapi() -> dict[str, Any]:
        return _shared(made())

    return openapi


def install(app: FastAPI) -> None:
    """Serve the document above. Create ``app`` with
    ``generate_unique_id_function=operation_id`` and ``dependencies=APP_DEPENDENCIES``
    (app-wide dependencies reach only routes included after them)."""
    app.openapi = _schema(app)  # type: ignore[method-assign]


APP_DEPENDENCIES = [Depends(reject_unknown_query)]
