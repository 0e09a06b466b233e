"""Postgres restarts under a running API: no request fails with a 500, the widget reconnects.

The API runs on an embedded Postgres of its own (a data directory under ``.data/`` made for
this module), so restarting it (``pg_ctl restart -m fast``: every session is ended with
``AdminShutdown``, as in a real restart) does not disturb the session database other tests
use. Every pooled connection is stale afterwards; the pools check connections before handing
them out (:func:`helpdesk.db.make_pool`), the event listener reconnects
(:class:`helpdesk.notify.EventHub`), and the widget resubscribes to ``/events``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from api.app import create_app
from helpdesk import db, keys
from helpdesk.tenants import create_tenant
from tests.support.live_api import bearer, serve_app, start_conversation
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

expect.set_options(timeout=30_000)


@dataclass
class Restartable:
    """A Postgres of this module's own."""

    url: str
    server: Any

    def restart(self) -> None:
        """``pg_ctl restart`` in fast mode: sessions are ended, the server is back on return."""
        from pgserver._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
            timeout=120,
        )


@dataclass
class Desk:
    """The module's tenant: the served API and its keys."""

    url: str
    widget_key: str
    agent_key: str


@pytest.fixture(scope="module")
def postgres() -> Iterator[Restartable]:
    import pgserver

    pgdata = ROOT / ".data" / f"pg-restart-{uuid.uuid4().hex[:8]}"
    pgdata.mkdir(parents=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    url = db.with_database(str(server.get_uri()), "deskgraph")
    db.ensure_database(url)
    try:
        yield Restartable(url, server)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="module")
def desk(settings: Any, offline_models: Any, postgres: Restartable) -> Iterator[Desk]:
    made: dict[str, str] = {}

    async def on_ready(services: Any) -> None:
        tenant = await create_tenant(services.pool, "restart", "Restart Plumbing")
        made["widget"], _ = await keys.create_key(services.pool, tenant.id, "widget")
        made["agent"], _ = await keys.create_key(services.pool, tenant.id, "agent")

    app = create_app(settings, models=offline_models, database_url=postgres.url, on_ready=on_ready)
    with serve_app(app) as port:
        yield Desk(f"http://127.0.0.1:{port}", made["widget"], made["agent"])


def _listening(client: httpx.Client) -> bool:
    return bool(client.get("/healthz").json()["events"] == "listening")


def test_requests_after_a_postgres_restart_do_not_fail(desk: Desk, postgres: Restartable):
    with httpx.Client(base_url=desk.url, timeout=120) as client:
        agent = bearer(desk.agent_key)
        # Fill the pools: every one of these connections is stale after the restart.
        convs = [start_conversation(client, desk.widget_key) for _ in range(3)]
        for conv in convs:
            r = client.post(
                f"/v1/conversations/{conv['id']}/messages",
                json={"text": "I want to talk to a person"},
                headers=bearer(conv["customer_token"]),
            )
            assert r.status_code == 200, r.text
        assert client.get("/v1/agent/queue", headers=agent).status_code == 200

        postgres.restart()

        statuses = []
        for _ in range(4):
            r = client.post("/v1/conversations", json={}, headers={"X-Widget-Key": desk.widget_key})
            statuses.append(("create", r.status_code, r.text))
        for conv in convs:
            r = client.post(
                f"/v1/conversations/{conv['id']}/messages",
                json={"text": "Are you still there?"},
                headers=bearer(conv["customer_token"]),
            )
            statuses.append(("message", r.status_code, r.text))
        r = client.get("/v1/agent/queue", headers=agent)
        statuses.append(("queue", r.status_code, r.text))
        r = client.get(
            f"/v1/conversations/{convs[0]['id']}/messages",
            headers=bearer(convs[0]["customer_token"]),
        )
        statuses.append(("transcript", r.status_code, r.text))
        assert [s for _, s, _ in statuses] == [201] * 4 + [200] * 5, statuses

        # The listener is back: events cross processes again.
        deadline = time.monotonic() + 30
        while not _listening(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _listening(client), "the event listener did not reconnect"


async def test_the_widget_gets_an_agent_reply_sent_after_a_postgres_restart(
    customer: Page,
    desk: Desk,
    postgres: Restartable,
) -> None:
    await customer.goto(f"{desk.url}/demo?key={desk.widget_key}")
    await customer.get_by_role("button", name=re.compile("Open chat")).click()
    box = customer.get_by_label("Your message")
    await box.fill("I want to talk to a person")
    await box.press("Enter")
    await expect(customer.locator(".banner")).to_contain_text("Connecting you to a person")
    raw = await customer.evaluate("k => localStorage.getItem('deskgraph:' + k)", desk.widget_key)
    conversation_id = json.loads(raw)["id"]

    await asyncio.to_thread(postgres.restart)  # cuts the widget's /events stream

    reply = "Hello! Sam here, back after a database restart."
    async with httpx.AsyncClient(base_url=desk.url, timeout=60) as client:
        r = await client.post(
            f"/v1/agent/conversations/{conversation_id}/reply",
            json={"text": reply},
            headers=bearer(desk.agent_key),
        )
        assert r.status_code == 200, r.text
    await expect(customer.locator("li.msg.agent .text")).to_have_text([reply])
