"""Notifications to staff and signed webhooks, on the real desk: an urgent ticket tells the
desk, an assignment its assignee, a mention the person named, a hand-off everyone; each
person sees their own and the desk's, not another's, minus what they turned off; a webhook on
a real HTTP server on loopback gets each one signed, a refusal is retried with backoff and
then delivered (the same event id), a replay sends it again, an internal address is refused
unless allowed; another business cannot read or replay the log."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from desk import webhooks
from helpdesk import conversations, tickets
from tests.support.live_api import bearer
from tests.support.staff import make_staff, token_of

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on loopback that answers the statuses it is told, in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.got = statuses, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.got.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _kinds(client, token) -> list[str]:
    r = client.get("/v1/agent/notifications", headers=bearer(token))
    assert r.status_code == 200, r.text
    return [n["kind"] for n in r.json()]


async def test_who_is_told_what_and_the_webhook_gets_it_signed_once_delivered(live_api, services):
    staff = await make_staff(services.pool, prefix="notify")
    tid = staff.tenant.id
    receiver = Receiver([500])  # the first delivery is refused, then all accepted
    try:
        with live_api.client() as client:
            admin = bearer(token_of(client, staff, "admin"))
            r = client.post(
                "/v1/admin/webhooks", json={"url": receiver.url, "events": []}, headers=admin
            )
            assert r.status_code == 201, r.text
            hook = r.json()
            secret = hook["secret"]
            assert secret.startswith("whsec_")
            listed = client.get("/v1/admin/webhooks", headers=admin).json()
            assert [w["id"] for w in listed] == [hook["id"]] and listed[0]["secret"] is None

            manager = bearer(token_of(client, staff, "manager"))
            r = client.post(
                "/v1/tickets", json={"subject": "No heat", "priority": "urgent"}, headers=manager
            )
            ticket = r.json()
            r = client.patch(
                f"/v1/tickets/{ticket['id']}",
                json={"assignee_id": str(staff.ids["alice"])},
                headers=manager,
            )
            assert r.status_code == 200, r.text
            alice, bob = token_of(client, staff, "alice"), token_of(client, staff, "bob")
            r = client.post(
                f"/v1/tickets/{ticket['id']}/notes",
                json={"body": "@bob can you check the boiler model?"},
                headers=bearer(alice),
            )
            assert r.status_code == 201, r.text

        conv = await conversations.create_conversation(services.pool, tid)
        await tickets.open_or_update_ticket(
            services.pool, tid, conv, handoff_key="h1", subject="Wants a person",
            reason="explicit_request", summary="", intents=[],
        )  # fmt: skip

        with live_api.client() as client:
            # the desk's for everyone, each person's own for them only, newest first
            assert _kinds(client, alice) == ["handoff", "assigned", "urgent"]
            assert _kinds(client, bob) == ["handoff", "mention", "urgent"]
            assert _kinds(client, token_of(client, staff, "manager")) == ["handoff", "urgent"]
            r = client.put(
                "/v1/agent/me/notification-preferences",
                json={"preferences": {"urgent": {"in_app": False, "email": False}}},
                headers=bearer(bob),
            )
            assert r.status_code == 200 and r.json()["urgent"] == {"in_app": False, "email": False}
            assert _kinds(client, bob) == ["handoff", "mention"]
            r = client.put(
                "/v1/agent/me/notification-preferences",
                json={"preferences": {"gossip": {"in_app": True}}},
                headers=bearer(bob),
            )
            assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
            assert client.post(
                "/v1/agent/notifications/read", json={}, headers=bearer(alice)
            ).json() == {"marked": 3}
            r = client.get(
                "/v1/agent/notifications", params={"unread": "true"}, headers=bearer(alice)
            )
            assert r.json() == []

        # the webhook: four notifications, the first refused once and retried later
        first = await webhooks.deliver_due(services.pool, allow_private=True, tenant_id=tid)
        assert first == {"delivered": 3, "retry": 1, "failed": 0}
        assert await webhooks.deliver_due(services.pool, allow_private=True, tenant_id=tid) == {
            "delivered": 0,
            "retry": 0,
            "failed": 0,
        }  # fmt: skip  (the retry waits its backoff)
        later = datetime.now(UTC) + timedelta(seconds=31)
        again = await webhooks.deliver_due(
            services.pool, allow_private=True, now=later, tenant_id=tid
        )
        assert again == {"delivered": 1, "retry": 0, "failed": 0}
        assert len(receiver.got) == 5
        ids = [json.loads(body)["id"] for _, body in receiver.got]
        assert len(set(ids)) == 4 and ids[0] == ids[4]  # the retry is the same event
        for headers, body in receiver.got:
            assert webhooks.verify(secret, body, headers["X-Deskgraph-Signature"])
            assert not webhooks.verify("whsec_wrong", body, headers["X-Deskgraph-Signature"])
            assert headers["X-Deskgraph-Event"] == json.loads(body)["type"]
        assert {json.loads(b)["type"] for _, b in receiver.got} == {
            "urgent", "assigned", "mention", "handoff",
        }  # fmt: skip

        with live_api.client() as client:
            admin = bearer(token_of(client, staff, "admin"))
            log = client.get(f"/v1/admin/webhooks/{hook['id']}/deliveries", headers=admin).json()
            assert sorted(d["status"] for d in log) == ["delivered"] * 4
            retried = next(d for d in log if d["attempts"] == 2)
            assert retried["last_status"] == 200
            r = client.post(f"/v1/admin/webhooks/deliveries/{retried['id']}/replay", headers=admin)
            assert r.status_code == 202
            other = bearer(live_api.other.admin_key)
            r = client.get(f"/v1/admin/webhooks/{hook['id']}/deliveries", headers=other)
            assert r.status_code == 404
            r = client.post(f"/v1/admin/webhooks/deliveries/{retried['id']}/replay", headers=other)
            assert r.status_code == 404
            r = client.post("/v1/admin/webhooks", json={"url": receiver.url}, headers=bearer(alice))
            assert r.status_code == 403  # an agent may not add webhooks
            for bad in (
                "ftp://example.com/x",
                "http://user:pw@example.com/x",
                "http://\U000be337/",
            ):
                r = client.post("/v1/admin/webhooks", json={"url": bad}, headers=admin)
                assert r.status_code == 422, (bad, r.text)
        assert (await webhooks.deliver_due(services.pool, allow_private=True, tenant_id=tid))[
            "delivered"
        ] == 1
        assert len(receiver.got) == 6 and json.loads(receiver.got[5][1])["id"] == ids[0]

        # without the setting, a webhook on an internal address is refused, not called
        async with services.pool.connection() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now()"
                " WHERE id = %s",
                (retried["id"],),
            )
        assert (await webhooks.deliver_due(services.pool, tenant_id=tid))["retry"] == 1
        assert len(receiver.got) == 6
        async with services.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT last_error FROM webhook_deliveries WHERE id = %s", (retried["id"],)
            )
            assert "internal address" in (await cur.fetchone())["last_error"]
    finally:
        receiver.close()


def test_signatures_expire_and_backoff_grows() -> None:
    body = '{"id": "x"}'
    header = webhooks.sign("s", body, 1_000_000)
    assert webhooks.verify("s", body, header, now=1_000_100)
    assert not webhooks.verify("s", body, header, now=1_000_000 + 301)
    assert not webhooks.verify("s", body + " ", header, now=1_000_000)
    assert not webhooks.verify("s", body, "garbage", now=1_000_000)
    waits = [webhooks.backoff(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
