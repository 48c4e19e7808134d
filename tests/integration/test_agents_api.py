"""The agents' endpoints on the stored record, on SQLite and PostgreSQL: credentials and
OAuth2 tokens, call registration, call-back tasks, surveys, profiles, and bad input that
changes nothing. (Actions on the PBX: tests/e2e/test_agents_with_simulator.py.)"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.acd.callbacks import callback_due
from app.store.models import ApiToken, AuditLog, Callback, Disposition
from tests.work_support import office

# ---- credentials ----------------------------------------------------------------------


async def test_oauth2_client_credentials_give_a_bearer_token(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path, token_ttl_minutes=30) as o:
        api_key = o.who["sup_nord"]["X-API-Key"]
        form = {
            "grant_type": "client_credentials",
            "client_id": "sup_nord",
            "client_secret": api_key,
        }
        r = await o.http.post("/v1/auth/token", data=form)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 1800
        token = body["access_token"]
        assert token.startswith("acdt_") and r.headers["Cache-Control"] == "no-store"
        ok = await o.http.get("/v1/calls", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        # Each kind only where it belongs: a key is no bearer token and vice versa.
        as_bearer = await o.http.get("/v1/calls", headers={"Authorization": f"Bearer {api_key}"})
        assert as_bearer.status_code == 401
        assert (await o.http.get("/v1/calls", headers={"X-API-Key": token})).status_code == 401
        basic = base64.b64encode(f"sup_nord:{api_key}".encode()).decode()
        r2 = await o.http.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert r2.status_code == 200
        wrong = await o.http.post("/v1/auth/token", data={**form, "client_id": "admin"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        grant = await o.http.post("/v1/auth/token", data={**form, "grant_type": "password"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        # Only hashes at rest.
        tokens = await o.rows(ApiToken)
        stored = " ".join(t.secret_hash + t.id for t in tokens)
        assert api_key not in stored and token not in stored
        assert all(len(t.secret_hash) == 64 for t in tokens)
        # Revoking the user ends its key and its tokens at once.
        async with o.rt.sessions.begin() as s:
            from app.store import auth

            await auth.revoke(s, "sup_nord", datetime.now(UTC))
        for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": api_key}):
            assert (await o.http.get("/v1/calls", headers=headers)).status_code == 401
        audit = await o.rows(AuditLog, AuditLog.action == "auth.token")
        assert [(a.actor, a.status_code) for a in audit][:2] == [("sup_nord", 200)] * 2
        assert api_key not in str([(a.detail, a.target) for a in audit])


# ---- call registration ---------------------------------------------------------------


async def test_registration_by_the_agent_who_took_the_call(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        a1 = o.who["agent1"]
        mine = o.calls["mine"]
        url = f"/v1/calls/{mine}/disposition"
        first = await o.http.put(url, headers=a1, json={"reason": "payment", "resolved": True})
        assert first.status_code == 201, first.text
        assert first.json()["agent_id"] == "agent1" and first.json()["queue"] == "dagpenge"
        # The queue's own reasons and the common ones; a named unit as the target.
        again = await o.http.put(
            url, headers=a1, json={"reason": "availability", "transferred_to": "jka"}
        )
        assert again.status_code == 200
        assert again.json()["resolved"] is False and again.json()["transferred_to"] == "jka"
        assert again.json()["created_at"] == first.json()["created_at"]
        rows = await o.rows(Disposition, Disposition.call_id == mine)
        assert len(rows) == 1 and rows[0].reason == "availability"

        # Bad input: a 4xx saying what is wrong, and nothing changes.
        bad = {
            "other queue's reason": ({"reason": "activation", "resolved": True}, 422),
            "both shapes": ({"reason": "payment", "resolved": True, "transferred_to": "jka"}, 422),
            "neither": ({"reason": "payment"}, 422),
            "unknown target": ({"reason": "payment", "transferred_to": "nowhere"}, 422),
            "unknown field": ({"reason": "payment", "resolved": True, "x": 1}, 422),
            "NUL": ({"reason": "pay\x00ment", "resolved": True}, 422),
        }
        for what, (body, status) in bad.items():
            r = await o.http.put(url, headers=a1, json=body)
            assert r.status_code == status, (what, r.text)
            assert "detail" in r.json()
        wrong = await o.http.put(url, headers=a1, json={"reason": "activation", "resolved": True})
        assert "case_status" in wrong.json()["detail"]  # says what would be right
        old = await o.http.put(
            f"/v1/calls/{o.calls['old']}/disposition", headers=a1,
            json={"reason": "payment", "resolved": True},
        )  # fmt: skip
        assert old.status_code == 409 and "closed 60 min after" in old.json()["detail"]
        lost = await o.http.put(
            f"/v1/calls/{o.calls['lost']}/disposition", headers=o.who["admin"],
            json={"reason": "payment", "resolved": True},
        )  # fmt: skip
        assert lost.status_code == 409 and "not answered" in lost.json()["detail"]
        stale = await o.http.put(
            "/v1/calls/999999/disposition", headers=a1, json={"reason": "payment", "resolved": True}
        )
        assert stale.status_code == 404
        after = await o.rows(Disposition)
        assert [(d.call_id, d.reason) for d in after] == [(mine, "availability")]

        # A call two agents took: each registers its own part; others must say whose.
        both = f"/v1/calls/{o.calls['both']}/disposition"
        whose = await o.http.put(
            both, headers=o.who["admin"], json={"reason": "payment", "resolved": True}
        )
        assert whose.status_code == 422 and "agent1, agent2" in whose.json()["detail"]
        r1 = await o.http.put(both, headers=a1, json={"reason": "payment", "resolved": True})
        r2 = await o.http.put(
            both,
            headers=o.who["admin"],
            json={"reason": "benefit_level", "resolved": True, "agent": "agent2"},
        )
        assert (r1.status_code, r2.status_code) == (201, 201)
        assert (r1.json()["queue"], r2.json()["queue"]) == ("dagpenge", "kontanthjaelp")
        # An agent's list: the calls it answered, also one it transferred on.
        for name, wanted in (("agent1", {"mine", "old", "both"}), ("agent2", {"theirs", "both"})):
            listed = (await o.http.get("/v1/calls", headers=o.who[name])).json()["items"]
            assert {i["id"] for i in listed} == {o.calls[c] for c in wanted}, name
        detail = (await o.http.get(f"/v1/calls/{o.calls['both']}", headers=a1)).json()
        assert [(r["agent_id"], r["reason"]) for r in detail["registrations"]] == [
            ("agent1", "payment"),
            ("agent2", "benefit_level"),
        ]


async def test_the_registration_window_is_a_setting(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path, disposition_window_minutes=5) as o:
        r = await o.http.put(
            f"/v1/calls/{o.calls['mine']}/disposition",
            headers=o.who["agent1"],
            json={"reason": "payment", "resolved": True},
        )
        assert r.status_code == 409 and "5 min" in r.json()["detail"]


# ---- call-back tasks -----------------------------------------------------------------


async def test_call_back_tasks_create_list_assign_complete(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        admin, a1, a2 = o.who["admin"], o.who["agent1"], o.who["agent2"]
        made = await o.http.post(
            "/v1/callbacks",
            headers=a1,
            json={"queue": "dagpenge", "number": "+45 20 30 40 50", "note": "om sagen"},
        )
        assert made.status_code == 201, made.text
        task = made.json()
        assert task["caller"] == "+45 ••••••50" and "20304050" not in made.text
        assert task["status"] == "open" and not task["from_menu"] and not task["overdue"]
        (row,) = await o.rows(Callback, Callback.id == task["id"])
        assert row.number_sealed and "20304050" not in row.number_sealed
        assert o.rt.privacy.unseal(row.number_sealed) == "+4520304050"
        assert row.caller_hash == o.rt.privacy.hash("20304050")
        assert row.due_at == callback_due(row.requested_at, o.rt.settings.tz)
        assert row.created_by == "agent1"

        other = await o.http.post(
            "/v1/callbacks", headers=admin, json={"queue": "kontanthjaelp", "number": "20304051"}
        )
        late = Callback(
            kind="message", pbx="pbx1", linkedid="seed.late", queue="dagpenge",
            caller_hash="x" * 32, caller_display="+45 ••••••99",
            requested_at=datetime.now(UTC) - timedelta(days=5),
            due_at=datetime.now(UTC) - timedelta(days=1), status="open", attempts=0,
        )  # fmt: skip
        async with o.rt.sessions.begin() as s:
            s.add(late)
        listed = (await o.http.get("/v1/callbacks", headers=admin)).json()["items"]
        assert [t["id"] for t in listed] == [late.id, task["id"], other.json()["id"]]  # in line
        overdue = (await o.http.get("/v1/callbacks?overdue=true", headers=admin)).json()
        assert [t["id"] for t in overdue["items"]] == [late.id]
        assert overdue["items"][0]["from_menu"] and overdue["items"][0]["overdue"]
        page = (await o.http.get("/v1/callbacks?limit=2", headers=admin)).json()
        rest = (
            await o.http.get(f"/v1/callbacks?limit=2&cursor={page['next_cursor']}", headers=admin)
        ).json()
        assert [t["id"] for t in page["items"] + rest["items"]] == [t["id"] for t in listed]
        # An agent sees the tasks of its queues (and those given to it).
        seen = (await o.http.get("/v1/callbacks", headers=a2)).json()["items"]
        assert [t["queue"] for t in seen] == ["kontanthjaelp"]

        await o.rt.dialer.refresh_gauges()
        metrics = (await o.http.get("/metrics")).text
        assert 'acd_callbacks_overdue{queue="dagpenge"} 1.0' in metrics
        assert 'acd_callbacks_open{queue="dagpenge"} 2.0' in metrics

        tid = task["id"]
        assert (
            await o.http.post(f"/v1/callbacks/{tid}/assign", headers=a1, json={"agent": "agent2"})
        ).status_code == 403
        nobody = await o.http.post(
            f"/v1/callbacks/{tid}/assign", headers=admin, json={"agent": "ghost"}
        )
        assert nobody.status_code == 404
        mine = await o.http.post(f"/v1/callbacks/{tid}/assign", headers=a1, json={})
        assert mine.status_code == 200 and mine.json()["assigned_to"] == "agent1"
        assert (
            await o.http.post(
                f"/v1/callbacks/{tid}/complete", headers=a2, json={"outcome": "reached"}
            )
        ).status_code == 403
        bad = await o.http.post(
            f"/v1/callbacks/{tid}/complete", headers=a1, json={"outcome": "meh"}
        )
        assert bad.status_code == 422
        done = await o.http.post(
            f"/v1/callbacks/{tid}/complete", headers=a1, json={"outcome": "reached"}
        )
        assert done.status_code == 200
        assert (done.json()["status"], done.json()["outcome"]) == ("done", "reached")
        twice = await o.http.post(
            f"/v1/callbacks/{tid}/complete", headers=a1, json={"outcome": "reached"}
        )
        assert twice.status_code == 409 and "done already" in twice.json()["detail"]
        again = await o.http.post(
            f"/v1/callbacks/{tid}/assign", headers=admin, json={"agent": "agent1"}
        )
        assert again.status_code == 409
        assert (await o.http.get("/v1/callbacks/999999", headers=admin)).status_code == 404
        for body in ({"queue": "nosuch", "number": "20304050"}, {"queue": "dagpenge"}):
            r = await o.http.post("/v1/callbacks", headers=admin, json=body)
            assert r.status_code in (404, 422)
        n = (await o.rows(Callback)).__len__()
        assert n == 3


# ---- surveys -------------------------------------------------------------------------


async def test_surveys_list_and_summary(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path) as o:
        listed = (await o.http.get("/v1/surveys", headers=o.who["integ"])).json()
        assert [(s["agent"], s["overall"], s["call_id"]) for s in listed["items"]] == [
            ("agent1", 7, o.calls["mine"])
        ]
        none = (await o.http.get("/v1/surveys?queue=kontanthjaelp", headers=o.who["admin"])).json()
        assert none["items"] == []
        own = await o.http.get("/v1/surveys", headers=o.who["agent2"])
        assert own.status_code == 200 and own.json()["items"] == []
        spy = await o.http.get("/v1/surveys?agent=agent1", headers=o.who["agent2"])
        assert spy.status_code == 403
        summary = (await o.http.get("/v1/surveys/summary", headers=o.who["admin"])).json()
        total = summary["total"]
        assert (total["responses"], total["flagged_calls"], total["response_rate"]) == (1, 1, 1.0)
        assert (total["friendliness"], total["wait"], total["overall"]) == (8.0, 5.0, 7.0)
        assert [a["key"] for a in summary["by_agent"]] == ["agent1"]
        assert summary["by_queue"][0]["key"] == "dagpenge"
        since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        empty = (
            await o.http.get("/v1/surveys/summary", params={"since": since}, headers=o.who["admin"])
        ).json()
        assert empty["total"]["responses"] == 0 and empty["total"]["response_rate"] is None
        for params in ({"since": "0001-01-01T00:00:00+01:00"}, {"since": "2014-11-04T10:00"}):
            r = await o.http.get("/v1/surveys", params=params, headers=o.who["admin"])
            assert r.status_code == 422


# ---- profiles, the work catalogue and bad input --------------------------------------


async def test_profiles_and_bad_input(db_url: str, tmp_path: Path) -> None:
    async with office(db_url, tmp_path, max_body_bytes=2048) as o:
        admin = o.who["admin"]
        body = {
            "name": "Carl Ærø",
            "interface": "PJSIP/carl",
            "team": "nord",
            "skills": [{"queue": "dagpenge", "penalty": 2}, {"queue": "virksomhed"}],
        }
        r = await o.http.put("/v1/agents/carl", headers=admin, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["skills"] == [
            {"queue": "dagpenge", "penalty": 2},
            {"queue": "virksomhed", "penalty": 0},
        ]
        assert o.rt.roster.agent_of("PJSIP/carl") == "carl"
        taken = await o.http.put(
            "/v1/agents/carl", headers=admin, json={**body, "interface": "PJSIP/agent2"}
        )
        assert taken.status_code == 409 and "agent2" in taken.json()["detail"]
        for bad_body, status in (
            ({**body, "skills": [{"queue": "nosuch"}]}, 404),
            ({**body, "skills": [{"queue": "dagpenge"}, {"queue": "dagpenge"}]}, 422),
            ({**body, "interface": "agent1"}, 422),
            ({**body, "name": "x\x00y"}, 422),
        ):
            r = await o.http.put("/v1/agents/carl", headers=admin, json=bad_body)
            assert r.status_code == status, (bad_body, r.text)
        # A supervisor cannot move an agent out of its teams.
        moved = await o.http.put(
            "/v1/agents/carl", headers=o.who["sup_nord"], json={**body, "team": "syd"}
        )
        assert moved.status_code == 403
        assert (await o.http.put("/v1/agents/bad id", headers=admin, json=body)).status_code == 422

        huge = await o.http.put("/v1/agents/carl", headers=admin, json={**body, "name": "x" * 4000})
        assert huge.status_code == 413 and "2048 bytes" in huge.json()["detail"]
        broken = await o.http.put(
            "/v1/agents/carl",
            headers={**admin, "Content-Type": "application/json"},
            content=b'{"name": ',
        )
        assert broken.status_code == 422
        assert (
            await o.http.post("/v1/agents/agent1/pause", headers=admin, json={})
        ).status_code == 422

        work = (await o.http.get("/v1/work", headers=o.who["agent1"])).json()
        assert {c["code"] for c in work["pause_reasons"]} >= {"lunch", "meeting", "training"}
        assert "availability" in {c["code"] for c in work["dispositions"]["dagpenge"]}
        assert "availability" not in {c["code"] for c in work["dispositions"]["kontanthjaelp"]}
        assert work["goals"]["first_contact_resolution"] == 0.6
        async with o.rt.sessions() as s:
            n = (await s.execute(select(func.count()).select_from(AuditLog))).scalar_one()
        assert n > 0


async def test_tasks_left_dialling_by_a_stop_are_reopened(db_url: str, tmp_path: Path) -> None:
    from app.store import callbacks as store

    async with office(db_url, tmp_path) as o:
        made = await o.http.post(
            "/v1/callbacks",
            headers=o.who["admin"],
            json={"queue": "dagpenge", "number": "20304050"},
        )
        tid = made.json()["id"]
        async with o.rt.sessions.begin() as s:
            assert await store.claim(s, tid, datetime.now(UTC))
            assert not await store.claim(s, tid, datetime.now(UTC))  # one claim wins
        busy = await o.http.post(
            f"/v1/callbacks/{tid}/complete", headers=o.who["admin"], json={"outcome": "reached"}
        )
        assert busy.status_code == 409 and "being dialled" in busy.json()["detail"]
        async with o.rt.sessions.begin() as s:
            assert await store.release_interrupted(s) == 1
        (row,) = await o.rows(Callback, Callback.id == tid)
        assert (row.status, row.outcome, row.attempts) == ("open", "interrupted", 1)
