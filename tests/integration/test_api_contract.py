"""What the API answers for the mistakes an integrator makes, on SQLite and PostgreSQL:
a query parameter the operation does not take, a time without a time zone, a call named
by what the live views show (its linkedid). One error body throughout (docs/api.md,
"Errors")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.store.models import Disposition
from tests.work_support import office


def _names_it(r: httpx.Response, name: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and name in body["detail"], body
    assert ["query", name] in [e["loc"] for e in body["errors"]], body
    assert any(e["type"] == "unknown_parameter" for e in body["errors"]), body


async def test_an_unknown_query_parameter_is_a_422_naming_it(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        admin = o.who["admin"]
        mine = o.calls["mine"]
        # The issue's own case, and one per kind of endpoint: live, record, tasks,
        # surveys, reports, work data, a path with a call in it, the wallboard page.
        cases = {
            "/v1/agents": {"team": "nord"},
            "/v1/queues": {"queue": "dagpenge"},
            "/v1/calls": {"caller": "4520001", "limit": "5"},
            f"/v1/calls/{mine}": {"verbose": "1"},
            "/v1/callbacks": {"agent": "agent1"},
            "/v1/surveys": {"limt": "5"},
            "/v1/reports": {"period": "2014-W45", "group_by": "queue"},
            "/v1/work": {"queue": "dagpenge"},
            "/wallboard": {"queue": "dagpenge"},  # it is ?queues=
        }
        for path, params in cases.items():
            r = await o.http.get(path, params=params, headers=admin)
            unknown = next(k for k in params if k not in ("limit", "period"))
            _names_it(r, unknown)
        # Several at once: each is named.
        r = await o.http.get("/v1/calls", params={"a": "1", "b": "2"}, headers=admin)
        assert [e["loc"] for e in r.json()["errors"]] == [["query", "a"], ["query", "b"]]
        # What an operation takes is still taken, its dependencies' parameters included.
        assert (
            await o.http.get("/v1/calls", params={"limit": 5}, headers=admin)
        ).status_code == 200
        wall = await o.http.get("/wallboard", params={"queues": "dagpenge, a_kasse"})
        assert wall.status_code == 200 and "<html" in wall.text.lower()
        # Nothing was done for the refused request: no registration from a PUT with one.
        r = await o.http.put(
            f"/v1/calls/{mine}/disposition",
            params={"dry_run": "1"},
            headers=o.who["agent1"],
            json={"reason": "payment", "resolved": True},
        )
        _names_it(r, "dry_run")
        assert await o.rows(Disposition, Disposition.call_id == mine) == []


async def test_a_time_without_a_zone_is_the_same_422_everywhere(
    db_url: str, tmp_path: Path
) -> None:
    async with office(db_url, tmp_path) as o:
        naive = "2026-11-22T10:00:00"
        for path in ("/v1/calls", "/v1/surveys", "/v1/surveys/summary"):
            for name in ("since", "until"):
                r = await o.http.get(path, params={name: naive}, headers=o.who["admin"])
                assert r.status_code == 422, (path, name, r.text)
                (error,) = r.json()["errors"]
                assert error["loc"] == ["query", name] and error["type"] == "timezone_aware"
                aware = await o.http.get(
                    path, params={name: naive + "+01:00"}, headers=o.who["admin"]
                )
                assert aware.status_code == 200, (path, name, aware.text)


async def test_every_422_has_the_one_error_body(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        url = f"/v1/calls/{o.calls['mine']}/disposition"
        a1 = o.who["agent1"]
        answers: dict[str, httpx.Response] = {
            # found by the framework: a field missing, a body field the model does not take
            "missing field": await o.http.put(url, headers=a1, json={"resolved": True}),
            "unknown field": await o.http.put(
                url, headers=a1, json={"reason": "payment", "resolved": True, "x": 1}
            ),
            # found by the use case: a reason the queue does not have
            "configuration": await o.http.put(
                url, headers=a1, json={"reason": "activation", "resolved": True}
            ),
            "bad cursor": await o.http.get("/v1/calls", params={"cursor": "!!!"}, headers=a1),
            "bad period": await o.http.get(
                "/v1/reports", params={"period": "2014-W99"}, headers=o.who["admin"]
            ),
        }
        where = {
            "missing field": ["body", "reason"],
            "unknown field": ["body", "x"],
            "configuration": ["body", "reason"],
            "bad cursor": ["query", "cursor"],
            "bad period": ["query", "period"],
        }
        for what, r in answers.items():
            assert r.status_code == 422, (what, r.text)
            body: dict[str, Any] = r.json()
            assert set(body) == {"detail", "errors"}, (what, body)
            assert isinstance(body["detail"], str) and body["detail"], (what, body)
            assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"]), (what, body)
            assert where[what] in [e["loc"] for e in body["errors"]], (what, body)


async def test_a_call_is_registered_by_its_linkedid(pg_url: str, tmp_path: Path) -> None:
    async with office(pg_url, tmp_path) as o:
        a1, mine = o.who["agent1"], o.calls["mine"]
        # The seed's call "mine" has the linkedid "seed.mine" (an Asterisk one looks like
        # 1415088000.123; both are the same to the API: anything not all digits).
        r = await o.http.put(
            "/v1/calls/seed.mine/disposition",
            headers=a1,
            json={"reason": "payment", "resolved": True},
        )
        assert r.status_code == 201, r.text
        assert r.json()["call_id"] == mine
        (row,) = await o.rows(Disposition, Disposition.call_id == mine)
        assert row.agent_id == "agent1" and row.reason == "payment"
        # The numeric id names the same call: the second PUT replaces the first.
        again = await o.http.put(
            f"/v1/calls/{mine}/disposition",
            headers=a1,
            json={"reason": "payment", "resolved": False},
        )
        assert again.status_code == 200 and again.json()["resolved"] is False
        detail = await o.http.get("/v1/calls/seed.mine", headers=a1)
        assert detail.status_code == 200 and detail.json()["id"] == mine
        assert detail.json()["registrations"][0]["resolved"] is False
        # The same rules by either name: another agent's call, an unknown linkedid, a
        # malformed one.
        theirs = await o.http.put(
            "/v1/calls/seed.theirs/disposition", headers=a1, json={"reason": "x", "resolved": True}
        )
        assert theirs.status_code == 403, theirs.text
        unknown = await o.http.put(
            "/v1/calls/1415088000.999/disposition",
            headers=a1,
            json={"reason": "payment", "resolved": True},
        )
        assert unknown.status_code == 404 and "1415088000.999" in unknown.json()["detail"]
        bad = await o.http.get("/v1/calls/seed mine", headers=a1)
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["path", "call_id"]
        assert (await o.http.get("/v1/calls/0", headers=a1)).status_code == 422
        # A transfer by linkedid finds the call too (it has ended: a 409, not a 404).
        ended = await o.http.post(
            "/v1/calls/seed.mine/transfer", headers=a1, json={"queue": "kontanthjaelp"}
        )
        assert ended.status_code == 409, ended.text
        assert len(await o.rows(Disposition, Disposition.call_id == mine)) == 1
