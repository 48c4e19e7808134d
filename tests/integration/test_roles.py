"""Who may do what, for every endpoint: each role allowed and denied, 401 and 403 used
right, and one audit row per request (allowed or not), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from tests.work_support import office

MEMBERS = {"agent1", "agent2", "sup_nord", "sup_syd", "admin", "bearer_admin", "integ", "integ_rw"}
NOBODY = ("anonymous", "bad_key", "expired")
ADMINS = {"admin", "bearer_admin"}
PROFILE = {
    "name": "Agent One",
    "interface": "PJSIP/agent1",
    "team": "nord",
    "skills": [{"queue": "dagpenge", "penalty": 0}],
}

# (audit action, method, path, body, who is allowed); {mine} and {task} are filled in.
CASES: list[tuple[str, str, str, Any, set[str]]] = [
    ("calls.list", "GET", "/v1/calls", None, MEMBERS),
    ("calls.get", "GET", "/v1/calls/{mine}", None, MEMBERS - {"agent2"}),
    (
        "call.disposition",
        "PUT",
        "/v1/calls/{mine}/disposition",
        {"reason": "payment", "resolved": True},
        {"agent1", "sup_nord", "integ_rw"} | ADMINS,
    ),
    (
        "call.transfer",
        "POST",
        "/v1/calls/{mine}/transfer",
        {"queue": "kontanthjaelp"},
        {"agent1", "sup_nord", "integ_rw"} | ADMINS,
    ),
    ("agent.profile", "PUT", "/v1/agents/agent1", PROFILE, {"sup_nord"} | ADMINS),
    ("agent.login", "POST", "/v1/agents/agent1/login", None, {"agent1", "sup_nord"} | ADMINS),
    ("agent.logout", "POST", "/v1/agents/agent1/logout", None, {"agent1", "sup_nord"} | ADMINS),
    (
        "agent.pause",
        "POST",
        "/v1/agents/agent1/pause",
        {"reason": "lunch"},
        {"agent1", "sup_nord"} | ADMINS,
    ),
    ("agent.unpause", "POST", "/v1/agents/agent1/unpause", None, {"agent1", "sup_nord"} | ADMINS),
    (
        "agent.scorecard",
        "GET",
        "/v1/agents/agent1/today",
        None,
        {"agent1", "sup_nord", "integ", "integ_rw"} | ADMINS,
    ),
    ("callbacks.list", "GET", "/v1/callbacks", None, MEMBERS),
    (
        "callback.create",
        "POST",
        "/v1/callbacks",
        {"queue": "dagpenge", "number": "+4520304050"},
        MEMBERS - {"integ"},
    ),
    ("callback.get", "GET", "/v1/callbacks/{task}", None, MEMBERS - {"agent2"}),
    (
        "callback.assign",
        "POST",
        "/v1/callbacks/{task}/assign",
        {"agent": "agent1"},
        MEMBERS - {"agent2", "sup_syd", "integ"},
    ),
    (
        "callback.complete",
        "POST",
        "/v1/callbacks/{task}/complete",
        {"outcome": "reached"},
        MEMBERS - {"agent2", "integ"},
    ),
    ("callback.dial", "POST", "/v1/callbacks/{task}/dial", None, {"agent1"}),
    # A voice message: team leaders any, an agent its queues' (none kept here: 404).
    (
        "callback.message",
        "GET",
        "/v1/callbacks/{task}/message",
        None,
        {"agent1", "sup_nord", "sup_syd"} | ADMINS,
    ),
    # A citizen's request and the purge: admins only (or an integration granted it).
    (
        "privacy.export",
        "POST",
        "/v1/privacy/export",
        {"caller": "20304050", "reason": "sag 1"},
        ADMINS,
    ),
    (
        "privacy.erase",
        "POST",
        "/v1/privacy/erase",
        {"caller": "20999999", "reason": "sag 2"},
        ADMINS,
    ),
    ("privacy.purge", "POST", "/v1/privacy/purge", {"dry_run": True}, ADMINS),
    ("surveys.list", "GET", "/v1/surveys", None, MEMBERS),
    ("surveys.summary", "GET", "/v1/surveys/summary", None, MEMBERS),
    ("work.read", "GET", "/v1/work", None, MEMBERS),
    # Reports: the centre's figures for everyone who works here (agents' own as the roles
    # allow, tests/integration/test_reports_api.py); every read audited.
    ("reports.read", "GET", "/v1/reports?period=2014-W45", None, MEMBERS),
    ("ivr.reload", "POST", "/v1/ivr/reload", None, ADMINS),
    # Planning: team leaders, admins and integrations (no date given: 422 when let in)
    ("forecast.get", "GET", "/v1/forecast", None, MEMBERS - {"agent1", "agent2"}),
    ("staffing.get", "GET", "/v1/staffing", None, MEMBERS - {"agent1", "agent2"}),
    # The live picture: everyone who works here may look; looking is not audited (a
    # wallboard looks every second), a refusal is.
    ("queues.list", "GET", "/v1/queues", None, MEMBERS),
    ("queues.get", "GET", "/v1/queues/dagpenge", None, MEMBERS),
    ("agents.list", "GET", "/v1/agents", None, MEMBERS),
    ("calls.live", "GET", "/v1/calls/live", None, MEMBERS),
    ("stream.open", "GET", "/v1/stream", None, MEMBERS),
]
QUIET = {"queues.list", "queues.get", "agents.list", "calls.live", "stream.open"}


async def send(o: Any, method: str, url: str, headers: dict[str, str], body: Any) -> Any:
    """One request; a stream that was let in is ended from the server side (the in-memory
    transport returns a response only once its body is complete)."""
    if not url.startswith("/v1/stream"):
        return await o.http.request(method, url, headers=headers, json=body)
    task = asyncio.ensure_future(o.http.request(method, url, headers=headers, json=body))
    while not task.done():
        await asyncio.sleep(0.02)
        o.app.state.rt.live.close_streams()
    return task.result()


async def test_every_endpoint_allows_and_denies_by_role(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        made = await o.http.post(
            "/v1/callbacks",
            headers=o.who["admin"],
            json={"queue": "dagpenge", "number": "20304050"},
        )
        assert made.status_code == 201
        task = made.json()["id"]
        before = len(await o.audit())
        expected_audit: list[tuple[str, str, int]] = []
        for action, method, path, body, allowed in CASES:
            url = path.format(mine=o.calls["mine"], task=task)
            for name in [*sorted(MEMBERS), *NOBODY]:
                r = await send(o, method, url, o.who[name], body)
                if name in NOBODY:
                    assert r.status_code == 401, (action, name, r.text)
                    assert "WWW-Authenticate" in r.headers
                elif name in allowed:
                    assert r.status_code not in (401, 403), (action, name, r.text)
                    assert r.status_code < 500 or r.status_code == 503, (action, name, r.text)
                else:
                    assert r.status_code == 403, (action, name, r.status_code, r.text)
                if r.status_code >= 400:
                    assert "detail" in r.json(), (action, name, r.text)
                if action not in QUIET or r.status_code in (401, 403):
                    expected_audit.append((action, name, r.status_code))
        rows = (await o.audit())[before:]
        got = [(a.action, a.actor, a.status_code) for a in rows]
        actor = {"bearer_admin": "bearer-admin", "expired": "anonymous", "bad_key": "anonymous"}
        want = [(a, actor.get(n, n), s) for a, n, s in expected_audit]
        assert got == want
        assert all(a.role != "-" for a in rows if a.actor != "anonymous")
        assert "20304050" not in str([(a.target, a.detail) for a in rows])


async def test_every_v1_route_is_guarded(db_url: str, tmp_path: Path) -> None:
    """A new /v1 route without ``access(...)`` fails here (the token endpoint is open)."""
    async with office(db_url, tmp_path) as o:
        guarded = {(m, p) for _, m, p, _, _ in CASES}
        for route in o.app.routes:
            if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
                continue
            if route.path == "/v1/auth/token":
                continue
            for method in route.methods:
                pattern = route.path.replace("{call_id}", "{mine}").replace(
                    "{callback_id}", "{task}"
                )
                pattern = pattern.replace("{agent_id}", "agent1").replace("{name}", "dagpenge")
                assert (method, pattern) in guarded, f"{method} {route.path} has no role test"
                r = await send(o, method, route.path.replace("{", "").replace("}", ""), {}, None)
                assert r.status_code in (401, 422), (method, route.path, r.status_code)


async def test_open_and_metrics_endpoints(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path, metrics_token="scrape-token-0123456789") as o:
        assert (await o.http.get("/health")).status_code == 200
        assert (await o.http.get("/ready")).status_code in (200, 503)
        assert (await o.http.get("/metrics")).status_code == 401
        wrong = await o.http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await o.http.get(
            "/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}
        )
        assert ok.status_code == 200 and "acd_callbacks_overdue" in ok.text
