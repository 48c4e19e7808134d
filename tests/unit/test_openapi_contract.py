"""The OpenAPI document an integrator reads, held to what docs/api.md promises.

These tests read ``app.openapi()`` of the whole service, so they hold every endpoint added
later too: an operation or a field without a description, a path-based operation id, an
error body under a second name, a scope the security scheme does not list, each fails
here with the names of what is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id
from pydantic import BaseModel

from app.acd.access import SCOPES
from app.main import create_app
from app.settings import load_settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# The only error bodies that are not ``Error``, and why: OAuth2 prescribes its own
# (RFC 6749 5.2); /ready's 503 is its readiness report, the same body as its 200.
OTHER_ERROR_BODIES = {("issueToken", "TokenError"), ("ready", "Readiness")}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp = tmp_path_factory.mktemp("openapi")
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp / 'acd.db'}",
        caller_hash_key="openapi-contract-test-key-0123456789",
        ivr_flows=str(Path(__file__).resolve().parents[2] / "ivr_flows"),
        spill_dir=str(tmp),
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def _bare_properties(schema: dict[str, Any], where: str) -> Iterator[str]:
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description", "").strip():
            yield f"{where}.{name}"


def bare_operations(spec: dict[str, Any]) -> list[str]:
    return [
        f"{method} {path}"
        for method, path, op in operations(spec)
        if not op.get("summary", "").strip() or not op.get("description", "").strip()
    ]


def bare_fields(spec: dict[str, Any]) -> list[str]:
    schemas = spec.get("components", {}).get("schemas", {})
    bare = [b for name, schema in schemas.items() for b in _bare_properties(schema, name)]
    # Inline schemas too (request forms written out in openapi_extra).
    for method, path, op in operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            bare += _bare_properties(media.get("schema", {}), f"{method} {path} body")
    return bare


def api_routes(app: FastAPI) -> list[Any]:
    """Every documented route as the app serves it: FastAPI keeps an included router's
    routes behind the inclusion (with the app's operation-id function applied there)."""
    found: list[Any] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "effective_route_contexts"):
            found += [
                ctx
                for ctx in route.effective_route_contexts()
                if isinstance(ctx.original_route, APIRoute)
            ]
    return [r for r in found if r.include_in_schema]


def generated_ids(app: FastAPI) -> list[str]:
    return [
        f"{sorted(route.methods)} {route.path_format}: {route.unique_id}"
        for route in api_routes(app)
        if (route.operation_id or route.unique_id) == generate_unique_id(route)
    ]


def test_every_operation_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    bare = bare_operations(spec)
    assert not bare, f"operations without a summary or a description: {bare}"


def test_every_parameter_has_a_description(spec: dict[str, Any]) -> None:
    bare = [
        f"{method} {path}: {p['in']} {p['name']}"
        for method, path, op in operations(spec)
        for p in op.get("parameters", [])
        if not p.get("description", "").strip()
    ]
    assert not bare, f"parameters without a description: {bare}"


def test_every_field_of_every_schema_has_a_description(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    bare = bare_fields(spec)
    total = sum(len(s.get("properties", {})) for s in schemas.values())
    assert total > 300  # the whole service's schemas, not an empty document
    assert not bare, f"{len(bare)} of {total} properties have no description: {bare}"


def test_operation_ids_are_stable_names_not_paths(app: FastAPI, spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    not_camel = [i for i in ids if not re.fullmatch(r"[a-z][a-zA-Z0-9]*", i)]
    assert not not_camel, f"operation ids not in camelCase: {not_camel}"
    # Every operation was looked at (not a vacuous pass), and none is FastAPI's own id.
    assert sum(len(r.methods) for r in api_routes(app)) == len(ids)
    generated = generated_ids(app)
    assert not generated, f"path-based (auto-generated) operation ids: {generated}"


def _shape(schema: Any) -> Any:
    """A schema without its words: what a client can tell apart."""
    if isinstance(schema, dict):
        return {
            k: _shape(v)
            for k, v in schema.items()
            if k not in ("title", "description", "examples", "example")
        }
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


def test_no_schema_is_another_under_a_second_name(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    qualified = [name for name in schemas if "__" in name]
    assert not qualified, f"module-qualified schema names (one model, two names): {qualified}"
    seen: dict[str, str] = {}
    twins = []
    for name, schema in schemas.items():
        key = json.dumps(_shape(schema), sort_keys=True)
        if key in seen:
            twins.append((seen[key], name))
        seen[key] = name
    assert not twins, f"the same shape under two names: {twins}"
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas


def test_every_error_answer_is_the_one_error_schema(spec: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in operations(spec):
        for code, response in op["responses"].items():
            if code[0] not in "45":
                continue
            content = response.get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if name != "Error" and (op["operationId"], name) not in OTHER_ERROR_BODIES:
                wrong.append(f"{method} {path} {code}: {name or 'no schema'}")
        # every operation can answer 422 (an unknown query parameter at least)
        assert "422" in op["responses"], f"{method} {path}"
    assert not wrong, wrong
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert error["properties"]["detail"]["type"] == "string"


def test_the_token_endpoint_documents_its_answers(spec: dict[str, Any]) -> None:
    token = spec["paths"]["/v1/auth/token"]["post"]
    ok = token["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/TokenOut")
    out = spec["components"]["schemas"]["TokenOut"]
    assert set(out["required"]) >= {"access_token", "token_type", "expires_in"}
    for code in ("400", "401"):
        ref = token["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/TokenError")


def test_the_security_scheme_lists_every_scope(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    flow = schemes["OAuth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/auth/token"
    assert flow["scopes"] == SCOPES
    assert all(text.strip() for text in flow["scopes"].values())
    unlisted = []
    for method, path, op in operations(spec):
        for requirement in op.get("security", []):
            for scheme, scopes in requirement.items():
                assert scheme in schemes, (method, path, scheme)
                unlisted += [f"{method} {path}: {s}" for s in scopes if s not in SCOPES]
    assert not unlisted, unlisted


def test_each_protected_operation_names_its_scope(spec: dict[str, Any]) -> None:
    nameless = [
        f"{method} {path}"
        for method, path, op in operations(spec)
        if op.get("security")
        and not any(req.get("OAuth2") for req in op["security"] if "OAuth2" in req)
    ]
    assert not nameless, f"protected operations that name no OAuth2 scope: {nameless}"
    protected = [op for _, path, op in operations(spec) if path.startswith("/v1/calls")]
    assert protected and all(op.get("security") for op in protected)


class Thing(BaseModel):
    name: str


def test_the_checks_catch_an_endpoint_added_bare() -> None:
    """What these tests would say of an endpoint written the quick way."""
    bare = FastAPI()

    @bare.get("/v1/things")
    async def list_things() -> list[Thing]:
        return []

    spec = bare.openapi()
    assert bare_operations(spec) == ["GET /v1/things"]
    assert bare_fields(spec) == ["Thing.name"]
    assert generated_ids(bare) == ["['GET'] /v1/things: list_things_v1_things_get"]


def _page_size(limit: Annotated[int, Query(ge=1, description="page size")] = 10) -> int:
    return limit


async def test_unknown_query_parameters_are_judged_by_what_the_route_declares() -> None:
    """Parameters a route takes through its dependencies count as its own; an alias is the
    name on the wire; a route outside the document (the docs pages) is left alone."""
    from app.api import errors
    from app.api.openapi import APP_DEPENDENCIES, operation_id

    small = FastAPI(dependencies=APP_DEPENDENCIES, generate_unique_id_function=operation_id)
    errors.install(small)

    @small.get("/things")
    async def list_things(
        size: Annotated[int, Depends(_page_size)],
        day: Annotated[str | None, Query(alias="date", description="a day")] = None,
    ) -> dict[str, Any]:
        return {"size": size, "day": day}

    @small.get("/hidden", include_in_schema=False)
    async def hidden() -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=small)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await _judged(client)


async def _judged(client: httpx.AsyncClient) -> None:
    ok = await client.get("/things", params={"limit": 3, "date": "2014-11-04"})
    assert ok.status_code == 200 and ok.json() == {"size": 3, "day": "2014-11-04"}
    for wrong in ("day", "size", "Limit"):
        r = await client.get("/things", params={wrong: "1"})
        assert r.status_code == 422, (wrong, r.text)
        assert r.json()["errors"] == [
            {
                "loc": ["query", wrong],
                "msg": f"unknown query parameter {wrong!r}; this operation takes: date, limit",
                "type": "unknown_parameter",
            }
        ]
    hidden = await client.get("/hidden", params={"code": "x", "state": "y"})
    assert hidden.status_code == 200
