"""Staff accounts over real HTTP on the real database: sign-in with a cookie or a bearer
session, sign-out, idle and absolute expiry, rehashing, throttling across two API processes,
one-time reset links, the role table on the routes, and another tenant's ids answering 404.
Agent actions by two users are in ``test_staff_actions.py``."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from argon2 import PasswordHasher

from api.app import create_app
from helpdesk import audit, keys, teams, users
from helpdesk.roles import allows
from helpdesk.tenancy import tenant_scope
from tests.support.live_api import api_settings, bearer, serve_app
from tests.support.staff import PASSWORD, StaffTenant, make_staff, sign_in, token_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def staff(services) -> StaffTenant:
    return await make_staff(services.pool)


@pytest.fixture(scope="module")
async def other_staff(services) -> StaffTenant:
    other = await make_staff(services.pool, prefix="elsewhere")
    team = await teams.create_team(services.pool, other.tenant.id, "Their plumbers")
    other.ids["team"] = team.id
    return other


def _sql(database_url: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(query, args)
        return cur.fetchall() if cur.description else []


def _session_cookie(response) -> str:
    header = response.headers["set-cookie"]
    assert "httponly" in header.lower() and "samesite=strict" in header.lower(), header
    return re.search(r"deskgraph_session=(us_[^;]+)", header).group(1)


# ------------------------------------------------------------------ sessions


def test_a_cookie_session_signs_in_acts_and_signs_out(live_api, staff):
    with live_api.client() as client:
        # The email is matched in any case; the console's mode answers with a cookie only.
        r = sign_in(client, staff.slug, staff.emails["alice"].upper(), session="cookie")
        assert r.status_code == 200, r.text
        assert r.json()["token"] is None and r.json()["user"]["role"] == "agent"
        cookie = {"Cookie": f"deskgraph_session={_session_cookie(r)}"}

        me = client.get("/v1/agent/me", headers=cookie).json()
        assert me["name"] == staff.emails["alice"] and me["kind"] == "user"
        assert me["role"] == "agent" and me["presence"] == "online"
        assert "conversation.reply" in me["permissions"] and "users.manage" not in me["permissions"]

        # A state change with the cookie from another site's page is refused.
        r = client.put(
            "/v1/agent/me/presence",
            json={"status": "away"},
            headers={**cookie, "Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = client.put("/v1/agent/me/presence", json={"status": "away"}, headers=cookie)
        assert r.status_code == 200 and r.json()["presence"] == "away"

        r = client.post("/v1/auth/sign-out", headers=cookie)
        assert r.status_code == 204
        assert (
            'deskgraph_session=""' in r.headers["set-cookie"]
            or "Max-Age=0" in r.headers["set-cookie"]
        )
        r = client.get("/v1/agent/me", headers=cookie)
        assert r.status_code == 401 and r.json()["code"] == "invalid_session"


def test_a_bearer_session_works_for_scripts_and_ends_idle_or_at_its_absolute_expiry(
    live_api, staff, database_url
):
    with live_api.client() as client:
        r = sign_in(client, staff.slug, staff.emails["bob"])
        assert r.status_code == 200 and "set-cookie" not in r.headers
        token = r.json()["token"]
        assert token.startswith("us_")
        assert client.get("/v1/agent/queue", headers=bearer(token)).status_code == 200
        # Only the hash is stored.
        stored = _sql(
            database_url,
            "SELECT token_hash FROM user_sessions WHERE token_hash = %s",
            keys.hash_key(token),
        )
        assert stored and token not in stored[0][0]

        # Quiet for longer than session_idle_s (4 h): over.
        _sql(
            database_url,
            "UPDATE user_sessions SET last_seen_at = now() - interval '4 hours 1 minute'"
            " WHERE token_hash = %s",
            keys.hash_key(token),
        )
        r = client.get("/v1/agent/queue", headers=bearer(token))
        assert r.status_code == 401 and r.json()["code"] == "invalid_session"

        # Busy, but past its absolute expiry: over too.
        token = sign_in(client, staff.slug, staff.emails["bob"]).json()["token"]
        assert client.get("/v1/agent/me", headers=bearer(token)).status_code == 200
        _sql(
            database_url,
            "UPDATE user_sessions SET expires_at = now() - interval '1 second'"
            " WHERE token_hash = %s",
            keys.hash_key(token),
        )
        assert client.get("/v1/agent/me", headers=bearer(token)).status_code == 401


def test_wrong_passwords_unknown_people_and_disabled_accounts_get_the_same_answer(live_api, staff):
    with live_api.client() as client:
        answers = [
            sign_in(client, staff.slug, staff.emails["manager"], "not the password"),
            sign_in(client, staff.slug, "nobody@staff.example"),
            sign_in(client, "no-such-tenant", staff.emails["manager"]),
        ]
        for r in answers:
            assert r.status_code == 401 and r.json()["code"] == "invalid_credentials", r.text
        r = client.post("/v1/auth/sign-in", json={"tenant": staff.slug, "email": "x"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"


async def test_a_hash_made_with_other_parameters_is_redone_at_sign_in(live_api, services, staff):
    cheap = PasswordHasher(time_cost=1, memory_cost=8192)
    user = await users.create_user(
        services.pool,
        staff.tenant.id,
        f"old-hash-{uuid.uuid4().hex[:6]}@staff.example",
        "Old Hash",
        "agent",
        password=PASSWORD,
        hasher=cheap,
    )
    before = await users.password_hash_of(services.pool, staff.tenant.id, user.id)
    assert "m=8192,t=1" in before
    with live_api.client() as client:
        assert sign_in(client, staff.slug, user.email).status_code == 200
        after = await users.password_hash_of(services.pool, staff.tenant.id, user.id)
        assert after != before and "m=65536,t=3" in after
        assert sign_in(client, staff.slug, user.email).status_code == 200
        assert await users.password_hash_of(services.pool, staff.tenant.id, user.id) == after


# ------------------------------------------------------------------ throttling


async def test_failed_sign_ins_lock_the_account_across_two_api_processes(
    live_api, services, settings, offline_models, database_url
):
    mine = await make_staff(services.pool, prefix="throttle")
    email = mine.emails["alice"]
    second = create_app(api_settings(settings), models=offline_models, database_url=database_url)
    with serve_app(second) as port, live_api.client() as one:
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as two:
            # Five failures, split between the processes.
            for i in range(5):
                r = sign_in(one if i % 2 else two, mine.slug, email, "wrong password!")
                assert r.status_code == 401, r.text
            # Locked on both, even with the right password (it is not even checked).
            for client in (one, two):
                r = sign_in(client, mine.slug, email)
                assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
                assert 1 <= int(r.headers["Retry-After"]) <= 30
            # Someone else in the tenant is not locked out.
            assert sign_in(two, mine.slug, mine.emails["bob"]).status_code == 200

            # The lock lapses; one more failure locks it again, for twice as long.
            _sql(
                database_url,
                "UPDATE sign_in_throttle SET locked_until = now() WHERE subject = %s",
                email,
            )
            assert sign_in(one, mine.slug, email, "wrong again!!").status_code == 401
            r = sign_in(two, mine.slug, email)
            assert r.status_code == 429 and 30 < int(r.headers["Retry-After"]) <= 60

            # After the lock, the right password works and the count starts over.
            _sql(
                database_url,
                "UPDATE sign_in_throttle SET locked_until = now() WHERE subject = %s",
                email,
            )
            assert sign_in(one, mine.slug, email).status_code == 200
            assert not _sql(
                database_url, "SELECT 1 FROM sign_in_throttle WHERE subject = %s", email
            )
    failed = await audit.list_entries(
        services.pool, mine.tenant.id, action="auth.sign_in_failed", limit=50
    )
    assert len(failed) == 6 and {e.actor_name for e in failed} == {email}


async def test_one_address_guessing_many_emails_is_locked(live_api, services):
    mine = await make_staff(services.pool, prefix="spray")
    with live_api.client() as client:
        for i in range(20):  # sign_in_address_max_failures, each email only once
            r = sign_in(client, mine.slug, f"guess{i}@staff.example", "wrong password!")
            assert r.status_code == 401
        r = sign_in(client, mine.slug, mine.emails["alice"])
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"


# ------------------------------------------------------------------ reset links


def test_a_reset_link_works_once_sets_the_password_and_ends_other_sessions(
    live_api, staff, database_url
):
    with live_api.client() as client:
        admin = bearer(token_of(client, staff, "admin"))
        bob_id = staff.ids["bob"]
        old_session = sign_in(client, staff.slug, staff.emails["bob"]).json()["token"]

        r = client.post(f"/v1/admin/users/{bob_id}/reset-link", headers=admin)
        assert r.status_code == 200, r.text
        url = r.json()["url"]
        assert url.startswith("http") and f"tenant={staff.slug}" in url
        token = url.split("#reset=", 1)[1]

        r = client.post("/v1/auth/reset", json={"token": token, "password": "short"})
        assert r.status_code == 422  # refused whole: the link stays usable
        new_password = "a brand new passphrase"
        r = client.post("/v1/auth/reset", json={"token": token, "password": new_password})
        assert r.status_code == 204, r.text
        r = client.post("/v1/auth/reset", json={"token": token, "password": new_password + "!"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_reset_token"

        assert client.get("/v1/agent/me", headers=bearer(old_session)).status_code == 401
        assert sign_in(client, staff.slug, staff.emails["bob"]).status_code == 401
        assert sign_in(client, staff.slug, staff.emails["bob"], new_password).status_code == 200

        # An expired link is refused too; a newer link voids the older one.
        first = client.post(f"/v1/admin/users/{bob_id}/reset-link", headers=admin).json()["url"]
        second = client.post(f"/v1/admin/users/{bob_id}/reset-link", headers=admin).json()["url"]
        r = client.post(
            "/v1/auth/reset", json={"token": first.split("#reset=")[1], "password": PASSWORD}
        )
        assert r.status_code == 400
        _sql(
            database_url, "UPDATE password_resets SET expires_at = now() WHERE user_id = %s", bob_id
        )
        r = client.post(
            "/v1/auth/reset", json={"token": second.split("#reset=")[1], "password": PASSWORD}
        )
        assert r.status_code == 400
        # Back to the shared password for the module's other tests.
        third = client.post(f"/v1/admin/users/{bob_id}/reset-link", headers=admin).json()["url"]
        r = client.post(
            "/v1/auth/reset", json={"token": third.split("#reset=")[1], "password": PASSWORD}
        )
        assert r.status_code == 204
        staff.tokens.pop("bob", None)


# ------------------------------------------------------------------ the role table


def _role_checks(staff: StaffTenant) -> list[tuple[str, str, object, str]]:
    tag = uuid.uuid4().hex[:6]
    alice = staff.ids["alice"]
    return [
        ("GET", "/v1/admin/users", None, "users.read"),
        (
            "POST",
            "/v1/admin/users",
            {"email": f"n{tag}@staff.example", "name": "N", "role": "agent"},
            "users.manage",
        ),
        ("PATCH", f"/v1/admin/users/{alice}", {"name": "Alice"}, "users.manage"),
        ("POST", f"/v1/admin/users/{alice}/reset-link", None, "users.manage"),
        ("GET", "/v1/admin/audit", None, "audit.read"),
        ("GET", "/v1/admin/teams", None, "teams.read"),
        ("POST", "/v1/admin/teams", {"name": f"Team {tag}"}, "teams.manage"),
        ("GET", "/v1/agent/queue", None, "conversation.read"),
        ("GET", "/v1/agent/tickets", None, "conversation.read"),
        ("GET", f"/v1/kb/jobs/{uuid.uuid4()}", None, "kb.ingest"),
    ]


@pytest.mark.parametrize("who", ["admin", "manager", "alice", "agent key", "admin key"])
def test_each_role_may_do_what_the_role_table_says_and_nothing_else(live_api, staff, who):
    roles = {"admin": "admin", "manager": "manager", "alice": "agent"}
    roles.update({"agent key": "agent", "admin key": "admin"})
    with live_api.client() as client:
        if who == "agent key":
            headers = bearer(staff.agent_key)
        elif who == "admin key":
            headers = bearer(staff.admin_key)
        else:
            headers = bearer(token_of(client, staff, who))
        role = roles[who]
        for method, path, body, action in _role_checks(staff):
            r = client.request(method, path, json=body, headers=headers)
            if allows(role, action):
                assert r.status_code in (200, 201, 404), (who, method, path, r.text)
                assert r.status_code != 404 or "/kb/jobs/" in path, (who, path, r.text)
            else:
                assert r.status_code == 403, (who, method, path, r.text)
                assert r.json()["code"] == "forbidden"
                assert action in r.json()["message"] and "needs the role" in r.json()["message"]


def test_the_last_admin_cannot_be_demoted_and_a_disabled_user_is_signed_out(live_api, staff):
    with live_api.client() as client:
        admin = bearer(token_of(client, staff, "admin"))
        r = client.patch(
            f"/v1/admin/users/{staff.ids['admin']}", json={"role": "agent"}, headers=admin
        )
        assert r.status_code == 409 and r.json()["code"] == "conflict"

        r = client.post(
            "/v1/admin/users",
            json={
                "email": f"temp-{uuid.uuid4().hex[:6]}@staff.example",
                "name": "Temp",
                "role": "agent",
                "password": PASSWORD,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        temp = r.json()["user"]
        session = sign_in(client, staff.slug, temp["email"]).json()["token"]
        r = client.patch(f"/v1/admin/users/{temp['id']}", json={"active": False}, headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        assert client.get("/v1/agent/me", headers=bearer(session)).status_code == 401
        assert sign_in(client, staff.slug, temp["email"]).status_code == 401

        # Created without a password: the answer carries a link to choose one.
        r = client.post(
            "/v1/admin/users",
            json={
                "email": f"invite-{uuid.uuid4().hex[:6]}@staff.example",
                "name": "Invited",
                "role": "manager",
            },
            headers=admin,
        )
        assert r.status_code == 201 and "#reset=pr_" in r.json()["reset_url"]
        dup = client.post(
            "/v1/admin/users",
            json={"email": r.json()["user"]["email"].upper(), "name": "Again", "role": "agent"},
            headers=admin,
        )
        assert dup.status_code == 409


def test_teams_presence_and_the_audit_of_admin_work(live_api, staff):
    with live_api.client() as client:
        manager = bearer(token_of(client, staff, "manager"))
        alice = bearer(token_of(client, staff, "alice"))
        r = client.post(
            "/v1/admin/teams",
            json={"name": f"Plumbing {uuid.uuid4().hex[:4]}", "members": [str(staff.ids["alice"])]},
            headers=manager,
        )
        assert r.status_code == 201, r.text
        team = r.json()
        me = client.get("/v1/agent/me", headers=alice).json()
        assert [t["id"] for t in me["teams"]] == [team["id"]]
        r = client.post("/v1/admin/teams", json={"name": team["name"].upper()}, headers=manager)
        assert r.status_code == 409
        r = client.patch(
            f"/v1/admin/teams/{team['id']}",
            json={"members": [str(staff.ids["alice"]), str(staff.ids["bob"])]},
            headers=manager,
        )
        assert r.status_code == 200 and len(r.json()["members"]) == 2

        # Presence as others read it: offline set -> offline; no request for 5 minutes -> away.
        client.put("/v1/agent/me/presence", json={"status": "online"}, headers=alice)
        listed = {u["email"]: u for u in client.get("/v1/admin/users", headers=manager).json()}
        assert listed[staff.emails["alice"]]["presence"] == "online"
        r = client.put("/v1/agent/me/presence", json={"status": "lunch"}, headers=alice)
        assert r.status_code == 422
        r = client.put(
            "/v1/agent/me/presence", json={"status": "online"}, headers=bearer(staff.agent_key)
        )
        assert r.status_code == 403  # a key has no presence

        r = client.delete(f"/v1/admin/teams/{team['id']}", headers=manager)
        assert r.status_code == 204
        entries = client.get("/v1/admin/audit", params={"action": "team."}, headers=manager).json()[
            "items"
        ]
        assert [e["action"] for e in entries[:3]] == ["team.delete", "team.update", "team.create"]
        assert {e["actor_user_id"] for e in entries[:3]} == {str(staff.ids["manager"])}
        assert all(e["target_id"] == team["id"] for e in entries[:3])


async def test_presence_reads_away_after_a_quiet_while_and_offline_without_a_session(
    live_api, services, staff, settings, database_url
):
    with live_api.client() as client:
        token = sign_in(client, staff.slug, staff.emails["manager"]).json()["token"]
        client.put("/v1/agent/me/presence", json={"status": "online"}, headers=bearer(token))
    seen = await teams.presence_of(
        services.pool, staff.tenant.id, [staff.ids["manager"]], away_after_s=300, idle_s=14400
    )
    assert seen[staff.ids["manager"]] == "online"
    _sql(
        database_url,
        "UPDATE user_sessions SET last_seen_at = now() - interval '6 minutes' WHERE user_id = %s",
        staff.ids["manager"],
    )
    seen = await teams.presence_of(
        services.pool, staff.tenant.id, [staff.ids["manager"]], away_after_s=300, idle_s=14400
    )
    assert seen[staff.ids["manager"]] == "away"
    _sql(database_url, "DELETE FROM user_sessions WHERE user_id = %s", staff.ids["manager"])
    seen = await teams.presence_of(
        services.pool, staff.tenant.id, [staff.ids["manager"]], away_after_s=300, idle_s=14400
    )
    assert seen[staff.ids["manager"]] == "offline"
    staff.tokens.pop("manager", None)


# ------------------------------------------------------------------ tenant isolation


def test_another_tenants_users_and_teams_are_not_found(live_api, staff, other_staff):
    with live_api.client() as client:
        admin = bearer(token_of(client, staff, "admin"))
        their_user, their_team = other_staff.ids["alice"], other_staff.ids["team"]
        for method, path, body in [
            ("PATCH", f"/v1/admin/users/{their_user}", {"active": False}),
            ("POST", f"/v1/admin/users/{their_user}/reset-link", None),
            ("GET", f"/v1/admin/teams/{their_team}", None),
            ("PATCH", f"/v1/admin/teams/{their_team}", {"name": "Mine now"}),
            ("DELETE", f"/v1/admin/teams/{their_team}", None),
            ("PATCH", f"/v1/admin/users/{staff.ids['alice']}", {"teams": [str(their_team)]}),
        ]:
            r = client.request(method, path, json=body, headers=admin)
            assert r.status_code == 404 and r.json()["code"] == "not_found", (method, path, r.text)
        r = client.post(
            "/v1/admin/teams", json={"name": "Poach", "members": [str(their_user)]}, headers=admin
        )
        assert r.status_code == 404
        listed = client.get("/v1/admin/users", headers=admin).json()
        assert str(their_user) not in {u["id"] for u in listed}
        # Their account still works, untouched; ours is not in their tenant either.
        assert sign_in(client, other_staff.slug, other_staff.emails["alice"]).status_code == 200
        assert sign_in(client, other_staff.slug, staff.emails["alice"]).status_code == 401
        theirs = bearer(token_of(client, other_staff, "admin"))
        names = [t["name"] for t in client.get("/v1/admin/teams", headers=theirs).json()]
        assert names == ["Their plumbers"]


async def test_row_level_security_hides_staff_rows_and_the_audit_log_is_append_only(
    services, staff, other_staff
):
    await audit.record(services.pool, other_staff.tenant.id, audit.Actor("x"), "test.row", "t")
    async with tenant_scope(services.pool, staff.tenant.id) as conn:
        for table in ("users", "teams", "team_members", "audit_log", "user_sessions"):
            cur = await conn.execute(
                f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s",
                (other_staff.tenant.id,),
            )
            assert (await cur.fetchone())["n"] == 0, table
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(services.pool, staff.tenant.id) as conn:
            await conn.execute("UPDATE audit_log SET actor_name = 'someone else'")
    with pytest.raises(psycopg.errors.RaiseException):
        async with services.pool.connection() as conn:
            await conn.execute("UPDATE audit_log SET actor_name = 'rewritten'")
