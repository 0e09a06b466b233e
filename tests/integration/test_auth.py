"""Tenant isolation on the real database and over HTTP: row-level security, and a key of one
tenant reaching nothing of another (conversations, threads, tickets, KB, jobs). Tokens, keys and
origins on their own are in ``tests/unit/test_auth.py``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from helpdesk import conversations, keys, tickets
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import create_tenant
from tests.support.live_api import bearer, sse_turn, start_conversation

# ------------------------------------------------------------------ row-level security


@pytest.mark.integration
async def test_row_level_security_hides_other_tenants_rows(services, demo):
    other = await create_tenant(services.pool, f"rls-{uuid.uuid4().hex[:8]}", "RLS test")
    mine = await conversations.create_conversation(services.pool, demo.id)
    theirs = await conversations.create_conversation(services.pool, other.id)
    await conversations.append_event(services.pool, other.id, theirs, "note", {"x": 1})

    async with tenant_scope(services.pool, demo.id) as conn:
        # Even a query that "forgets" its tenant filter sees only this tenant's rows.
        cur = await conn.execute(
            "SELECT id FROM conversations WHERE id = ANY(%s)", ([mine, theirs],)
        )
        assert [r["id"] for r in await cur.fetchall()] == [mine]
        cur = await conn.execute(
            "SELECT count(*) AS n FROM conversation_events WHERE conversation_id = %s", (theirs,)
        )
        assert (await cur.fetchone())["n"] == 0
        cur = await conn.execute("SELECT slug FROM tenants")
        assert [r["slug"] for r in await cur.fetchall()] == ["demo"]
        cur = await conn.execute("SELECT current_user AS u")
        assert (await cur.fetchone())["u"] == "deskgraph_app"

    # Writing a row for another tenant from inside a scope is refused by the policy.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(services.pool, demo.id) as conn:
            await conn.execute(
                "INSERT INTO conversations (id, tenant_id) VALUES (%s, %s)",
                (uuid.uuid4(), other.id),
            )

    # With the role set but a wrong (or no) tenant, nothing is visible at all.
    async with services.pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE deskgraph_app")
        await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(uuid.uuid4()),))
        cur = await conn.execute("SELECT count(*) AS n FROM conversations")
        assert (await cur.fetchone())["n"] == 0
    async with services.pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE deskgraph_app")
        cur = await conn.execute("SELECT count(*) AS n FROM conversations")
        assert (await cur.fetchone())["n"] == 0

    # The scope ends with its transaction: the pooled connection is back to normal.
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_user AS u, current_setting('app.tenant_id', true) AS t"
        )
        row = await cur.fetchone()
        assert row["u"] != "deskgraph_app" and not row["t"]


# ------------------------------------------------------------------ isolation over HTTP


@pytest.mark.integration
def test_a_key_of_one_tenant_reaches_nothing_of_another(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        cid = conv["id"]
        mine = bearer(live_api.demo.agent_key)
        theirs = bearer(live_api.other.agent_key)
        ticket = client.get(f"/v1/agent/conversations/{cid}", headers=mine).json()["ticket"]

        assert client.get(f"/v1/agent/conversations/{cid}", headers=theirs).status_code == 404
        for action, body in [
            ("takeover", {}),
            ("reply", {"text": "I am from another company"}),
            ("close", {}),
            ("approve", {}),
        ]:
            r = client.post(f"/v1/agent/conversations/{cid}/{action}", json=body, headers=theirs)
            assert r.status_code == 404 and r.json()["code"] == "not_found", action
        r = client.get(f"/v1/agent/conversations/{cid}/events", headers=theirs)
        assert r.status_code == 404
        assert client.get(f"/v1/agent/tickets/{ticket['id']}", headers=theirs).status_code == 404
        r = client.patch(
            f"/v1/agent/tickets/{ticket['id']}", json={"status": "closed"}, headers=theirs
        )
        assert r.status_code == 404
        listed = client.get("/v1/agent/tickets", headers=theirs).json()["items"]
        assert ticket["id"] not in [t["id"] for t in listed]
        queue = client.get("/v1/agent/queue", headers=theirs).json()["items"]
        assert cid not in [i["conversation_id"] for i in queue]
        listed = client.get("/v1/agent/conversations", headers=theirs).json()
        assert cid not in [c["id"] for c in listed]

        # The other tenant's widget key sees none of the demo tenant's articles.
        r = client.get(
            "/v1/kb/search",
            params={"q": "call-out fee price"},
            headers={"X-Widget-Key": live_api.other.widget_key},
        )
        demo_ids = {"pricing-overview", "typical-job-prices", "emergency-service"}
        assert not demo_ids & {x["source_id"] for x in r.json()["results"]}

        # Nothing changed on the demo side.
        after = client.get(f"/v1/agent/conversations/{cid}", headers=mine).json()
        assert after["pending"]["kind"] == "handoff"
        assert after["conversation"]["owner_agent"] is None
        assert after["ticket"]["status"] == ticket["status"]


@pytest.mark.integration
def test_credentials_of_the_wrong_kind_are_refused(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        cases = [
            ("GET", "/v1/agent/queue", bearer(live_api.demo.widget_key), 403, "forbidden"),
            ("GET", "/v1/agent/queue", bearer(conv["customer_token"]), 401, "invalid_key"),
            ("GET", "/v1/agent/queue", bearer("ak_made-up"), 401, "invalid_key"),
            ("GET", "/v1/agent/queue", {}, 401, "unauthenticated"),
            (
                "GET",
                f"/v1/conversations/{conv['id']}/messages",
                bearer(live_api.demo.agent_key),
                401,
                "invalid_token",
            ),
            (
                "GET",
                f"/v1/conversations/{conv['id']}/messages",
                {"X-Widget-Key": live_api.demo.widget_key},
                401,
                "unauthenticated",
            ),
            (
                "GET",
                "/v1/kb/jobs/" + str(uuid.uuid4()),
                bearer(live_api.demo.agent_key),
                403,
                "forbidden",
            ),
        ]
        for method, path, headers, status, code in cases:
            r = client.request(method, path, headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code), (path, headers)


@pytest.mark.integration
async def test_widget_key_origins_and_revocation(live_api, services, demo):
    secret, key = await keys.create_key(
        services.pool, demo.id, "widget", name="shop", origins=["https://shop.example"]
    )
    with live_api.client() as client:

        def start(origin: str | None) -> int:
            headers = {"X-Widget-Key": secret}
            if origin:
                headers["Origin"] = origin
            return client.post("/v1/conversations", json={}, headers=headers).status_code

        assert start("https://shop.example") == 201
        assert start("https://SHOP.example/") == 201
        assert start(None) == 201  # not a browser: Origin could be forged anyway
        r = client.post(
            "/v1/conversations",
            json={},
            headers={"X-Widget-Key": secret, "Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and r.json()["code"] == "origin_not_allowed"
        # CORS preflight for the widget's cross-site call.
        r = client.options(
            "/v1/conversations",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-widget-key,content-type",
            },
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"]

        await keys.revoke_key(services.pool, demo.id, key.id)
        live_api.app.state.auth.forget()  # as after the cache's few seconds
        r = client.post("/v1/conversations", json={}, headers={"X-Widget-Key": secret})
        assert r.status_code == 401 and r.json()["code"] == "invalid_key"


@pytest.mark.integration
@pytest.mark.slow
async def test_keys_cli_creates_a_working_key(live_api, services, database_url):
    env = {**os.environ, "DATABASE_URL": database_url}

    def keys_create(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cli.main", "keys", "create", "--tenant", "demo", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    out = await asyncio.to_thread(keys_create, "--kind", "agent", "--name", "cli-agent")
    assert out.returncode == 0, out.stdout + out.stderr
    secret = out.stdout.strip().splitlines()[-1]
    assert secret.startswith("ak_")
    found = await keys.lookup_key(services.pool, secret)
    assert found is not None and found.name == "cli-agent" and found.kind == "agent"
    with live_api.client() as client:
        assert client.get("/v1/agent/queue", headers=bearer(secret)).status_code == 200
    bad = await asyncio.to_thread(keys_create, "--kind", "agent", "--origin", "https://x.example")
    assert bad.returncode == 2 and "widget keys only" in bad.stdout
    # A key's name is the agent customers see: text the desk refuses is refused here too
    # (a NUL cannot even be passed as an argument; the other controls can).
    bad = await asyncio.to_thread(keys_create, "--kind", "agent", "--name", "bob\x1b[2J")
    assert bad.returncode == 2 and "control character" in bad.stdout, bad.stdout + bad.stderr


@pytest.mark.integration
async def test_tickets_and_events_are_filtered_by_tenant_in_queries(services, demo):
    """The repository functions filter by tenant themselves (not only through RLS)."""
    other = await create_tenant(services.pool, f"iso-{uuid.uuid4().hex[:8]}", "Isolation")
    cid = await conversations.create_conversation(services.pool, demo.id)
    await conversations.append_event(services.pool, demo.id, cid, "note", {})
    assert await conversations.list_events(services.pool, other.id, cid) == []
    assert await tickets.list_tickets(services.pool, other.id, cid) == []
    with pytest.raises(Exception) as exc:
        await conversations.get_conversation(services.pool, other.id, cid)
    assert getattr(exc.value, "code", "") == "not_found"
