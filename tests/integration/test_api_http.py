"""The customer API over a real socket: uvicorn serving the app, SSE read with httpx-sse."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import httpx
import pytest
from httpx_sse import connect_sse

from helpdesk import conversations, leases
from helpdesk.auth import issue_customer_token
from tests.support.live_api import (
    TEST_SECRET,
    bearer,
    json_turn,
    sse_turn,
    start_conversation,
)

pytestmark = pytest.mark.integration


def test_message_streams_tokens_then_completed_with_citations(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert conv["tenant"] == "demo" and conv["status"] == "active"
        assert conv["customer_token"].startswith("ct_")
        events = sse_turn(client, conv, "How much is the call-out fee?")
        names = [n for n, _ in events]
        assert names[0] == "status" and names[-1] == "done"
        assert "message.created" in names
        first_token = names.index("token")
        completed = names.index("message.completed")
        assert first_token < completed
        data = events[completed][1]
        # Which article wins is the retrieval's business (evals measure it); the API's is that
        # the answer carries its sources.
        assert data["citations"] and all(c["source_id"] and c["title"] for c in data["citations"])
        assert "".join(d["text"] for n, d in events if n == "token") == data["text"]
        history = client.get(
            f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
        ).json()
        assert [m["sender"] for m in history["messages"]] == ["customer", "ai"]
        assert history["conversation"]["status"] == "active"


def test_handoff_is_streamed_as_an_event(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        events = dict(sse_turn(client, conv, "I want to talk to a person"))
        assert events["handoff"]["reason"] == "explicit_request"
        assert events["handoff"]["ticket_number"] >= 1
        assert "message.completed" not in events


def test_json_mode_returns_the_reply(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        r = json_turn(client, conv, "hello")
        assert r.status_code == 200
        body = r.json()
        assert body["reply"]["sender"] == "ai" and body["reply"]["text"]
        assert body["events"][-1] == {"event": "done", "data": {}}
        assert "Idempotent-Replayed" not in r.headers


def test_customer_token_is_scoped_to_its_conversation(live_api):
    with live_api.client() as client:
        mine = start_conversation(client, live_api.demo.widget_key)
        theirs = start_conversation(client, live_api.demo.widget_key)
        r = client.get(
            f"/v1/conversations/{theirs['id']}/messages", headers=bearer(mine["customer_token"])
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = client.post(
            f"/v1/conversations/{theirs['id']}/messages",
            json={"text": "hi"},
            headers=bearer(mine["customer_token"]),
        )
        assert r.status_code == 403
        # The token works as a query parameter too (EventSource cannot send headers).
        r = client.get(
            f"/v1/conversations/{mine['id']}/messages", params={"token": mine["customer_token"]}
        )
        assert r.status_code == 200


def test_expired_and_forged_tokens_are_refused(live_api, demo):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        path = f"/v1/conversations/{conv['id']}/messages"
        tenant_id = demo.id
        expired, _ = issue_customer_token(
            TEST_SECRET.encode(), tenant_id, uuid.UUID(conv["id"]), 60, now=time.time() - 3600
        )
        r = client.get(path, headers=bearer(expired))
        assert r.status_code == 401 and r.json()["code"] == "token_expired"
        forged, _ = issue_customer_token(
            b"not-the-server-secret", tenant_id, uuid.UUID(conv["id"]), 60
        )
        r = client.get(path, headers=bearer(forged))
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        tampered = conv["customer_token"][:-3] + (
            "AAA" if not conv["customer_token"].endswith("AAA") else "BBB"
        )
        r = client.get(path, headers=bearer(tampered))
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        r = client.get(path)
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({}, {}, 401, "unauthenticated"),
        ({}, {"X-Widget-Key": "wk_not-a-real-key"}, 401, "invalid_key"),
        ({"channel": "fax"}, None, 422, "invalid_request"),
        ({"tenant": "demo"}, None, 422, "invalid_request"),
        ({"channel": 7}, None, 422, "invalid_request"),
        ([1, 2], None, 422, "invalid_request"),
    ],
)
def test_bad_conversation_requests_get_a_4xx_with_a_stable_code(
    live_api, body, headers, status, code
):
    with live_api.client() as client:
        sent = headers if headers is not None else {"X-Widget-Key": live_api.demo.widget_key}
        r = client.post("/v1/conversations", json=body, headers=sent)
        assert r.status_code == status, r.text
        assert r.json()["code"] == code and r.json()["message"]


def test_staff_keys_cannot_start_conversations_as_a_widget(live_api):
    with live_api.client() as client:
        r = client.post(
            "/v1/conversations", json={}, headers={"X-Widget-Key": live_api.demo.agent_key}
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_malformed_messages_are_rejected(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        auth = bearer(conv["customer_token"])
        path = f"/v1/conversations/{conv['id']}/messages"
        for text in ("", "x" * 4001):
            r = client.post(path, json={"text": text}, headers=auth)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.post(path, json={"text": 5}, headers=auth)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.post(path, json={"text": "hi", "extra": 1}, headers=auth)
        assert r.status_code == 422
        r = client.post(
            path, content=b"{not json", headers={**auth, "content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_json"
        r = client.post("/v1/conversations/not-a-uuid/messages", json={"text": "hi"}, headers=auth)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.post(path, json={"text": "hi"}, headers={**auth, "Idempotency-Key": "x" * 300})
        assert r.status_code == 422


def test_oversized_bodies_get_413_with_or_without_content_length(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        auth = bearer(conv["customer_token"])
        path = f"/v1/conversations/{conv['id']}/messages"
        big = json.dumps({"text": "x" * 100_000}).encode()
        r = client.post(path, content=big, headers={**auth, "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "body_too_large"

        def chunks():
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        r = client.post(
            path, content=chunks(), headers={**auth, "content-type": "application/json"}
        )
        assert "content-length" not in r.request.headers
        assert r.status_code == 413 and r.json()["code"] == "body_too_large"
        # Nothing of the refused bodies reached the conversation.
        history = client.get(f"/v1/conversations/{conv['id']}/messages", headers=auth).json()
        assert history["messages"] == []


def test_unknown_routes_and_methods_get_json_errors(live_api):
    with live_api.client() as client:
        r = client.get("/v1/nothing-here")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = client.delete("/v1/conversations")
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_idempotency_key_replays_the_first_result_without_a_second_turn(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        auth = bearer(conv["customer_token"])
        key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
        first = sse_turn(client, conv, "What are your opening hours?", **key)
        with connect_sse(
            client,
            "POST",
            f"/v1/conversations/{conv['id']}/messages",
            json={"text": "What are your opening hours?"},
            headers={**auth, **key},
        ) as source:
            assert source.response.headers["idempotent-replayed"] == "true"
            again = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
        assert again == first
        # A JSON retry gets the same turn as JSON.
        r = client.post(
            f"/v1/conversations/{conv['id']}/messages",
            json={"text": "What are your opening hours?"},
            headers={**auth, **key},
        )
        assert r.headers["idempotent-replayed"] == "true"
        assert r.json()["events"] == [{"event": n, "data": d} for n, d in first]
        history = client.get(f"/v1/conversations/{conv['id']}/messages", headers=auth).json()
        senders = [m["sender"] for m in history["messages"]]
        assert senders.count("customer") == 1 and senders.count("ai") <= 1
        # The same key with another body is a client bug, not a retry.
        r = client.post(
            f"/v1/conversations/{conv['id']}/messages",
            json={"text": "Something else"},
            headers={**auth, **key},
        )
        assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"


def test_concurrent_retries_with_one_key_run_one_turn(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
    auth = bearer(conv["customer_token"])
    key = f"burst-{uuid.uuid4()}"
    results: list[httpx.Response] = []

    def send() -> None:
        with live_api.client() as c:
            results.append(
                c.post(
                    f"/v1/conversations/{conv['id']}/messages",
                    json={"text": "Do you offer financing?"},
                    headers={**auth, "Idempotency-Key": key},
                )
            )

    threads = [threading.Thread(target=send) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 5
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 4
    assert len({r.json()["reply"]["message_id"] for r in results}) == 1
    with live_api.client() as client:
        history = client.get(f"/v1/conversations/{conv['id']}/messages", headers=auth).json()
    assert [m["sender"] for m in history["messages"]] == ["customer", "ai"]


async def test_a_turn_waits_for_the_conversation_then_gets_409(live_api, services, demo):
    """A turn held elsewhere (another process holds the lease) makes a new one wait, then 409."""
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
    cid = uuid.UUID(conv["id"])
    lease = await leases.try_acquire(services.pool, demo.id, cid, ttl_s=30)
    assert lease is not None
    try:
        started = time.monotonic()
        r = await asyncio.to_thread(_post_json, live_api, conv, "hi")
        assert r.status_code == 409 and r.json()["code"] == "turn_in_progress"
        assert time.monotonic() - started >= 2.5, "it waited for the holder before refusing"
    finally:
        await lease.release()
    r = await asyncio.to_thread(_post_json, live_api, conv, "hi")
    assert r.status_code == 200
    # The refused message was not stored: only the accepted turn is in the transcript.
    rows = await conversations.list_messages(services.pool, demo.id, cid)
    assert [m["sender"] for m in rows] == ["customer", "ai"]


def _post_json(live_api, conv, text):
    with live_api.client() as client:
        return json_turn(client, conv, text)


async def test_client_disconnect_does_not_lose_the_answer(live_api, services, demo):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        with connect_sse(
            client,
            "POST",
            f"/v1/conversations/{conv['id']}/messages",
            json={"text": "How do I prevent frozen pipes?"},
            headers=bearer(conv["customer_token"]),
        ) as source:
            first = next(source.iter_sse())
            assert first.event == "status"
    # The client is gone; the turn still runs to its end, and its outcome is logged.
    cid = uuid.UUID(conv["id"])
    outcomes = {"message.completed", "handoff", "approval.pending"}
    deadline = time.monotonic() + 30
    types: list[str] = []
    while time.monotonic() < deadline and not outcomes & set(types):
        await asyncio.sleep(0.1)
        types = [e["type"] for e in await conversations.list_events(services.pool, demo.id, cid)]
    assert outcomes & set(types), types
    rows = await conversations.list_messages(services.pool, demo.id, cid)
    assert rows[0]["sender"] == "customer"
    if "message.completed" in types:
        assert [m["sender"] for m in rows] == ["customer", "ai"]


def test_feedback_thumbs_and_csat(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        auth = bearer(conv["customer_token"])
        path = f"/v1/conversations/{conv['id']}/feedback"
        reply = json_turn(client, conv, "Are your technicians licensed?").json()["reply"]
        r = client.post(
            path, json={"message_id": reply["message_id"], "rating": "up"}, headers=auth
        )
        assert r.status_code == 200 and r.json()["rating"] == "up"
        # Changing one's mind replaces the vote.
        r = client.post(
            path,
            json={"message_id": reply["message_id"], "rating": "down", "comment": "vague"},
            headers=auth,
        )
        assert r.status_code == 200 and r.json()["rating"] == "down"
        first_id = r.json()["id"]
        history = client.get(f"/v1/conversations/{conv['id']}/messages", headers=auth).json()
        own = history["messages"][0]["id"]
        r = client.post(path, json={"message_id": own, "rating": "up"}, headers=auth)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        r = client.post(path, json={"message_id": str(uuid.uuid4()), "rating": "up"}, headers=auth)
        assert r.status_code == 404
        r = client.post(
            path, json={"message_id": reply["message_id"], "rating": "meh"}, headers=auth
        )
        assert r.status_code == 422
        for bad in (0, 6, "five"):
            r = client.post(path, json={"csat": bad}, headers=auth)
            assert r.status_code == 422, bad
        r = client.post(path, json={"csat": 4}, headers=auth)
        assert r.status_code == 200 and r.json()["csat"] == 4
        r = client.post(path, json={"csat": 5, "comment": "great"}, headers=auth)
        assert r.json()["csat"] == 5
        again = client.post(
            path, json={"message_id": reply["message_id"], "rating": "up"}, headers=auth
        ).json()
        assert again["id"] == first_id


def test_events_replay_and_resume_without_gaps_or_duplicates(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        auth = bearer(conv["customer_token"])
        json_turn(client, conv, "hi")
        json_turn(client, conv, "What areas do you serve?")
        path = f"/v1/conversations/{conv['id']}/events"
        everything = _read_events(
            client, path, auth, until=lambda evs: sum(e[1] == "message.completed" for e in evs) == 2
        )
        ids = [int(i) for i, _, _ in everything]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert [t for _, t, _ in everything].count("message.created") == 2
        middle = ids[len(ids) // 2]
        resumed = _read_events(
            client,
            path,
            {**auth, "Last-Event-ID": str(middle)},
            until=lambda evs: int(evs[-1][0]) == ids[-1] if evs else False,
        )
        assert [int(i) for i, _, _ in resumed] == [i for i in ids if i > middle]
        by_query = _read_events(
            client,
            path + f"?last_event_id={middle}&token={conv['customer_token']}",
            {},
            until=lambda evs: int(evs[-1][0]) == ids[-1] if evs else False,
        )
        assert [i for i, _, _ in by_query] == [i for i, _, _ in resumed]


def _read_events(client, path, headers, until, timeout=20.0):
    got: list[tuple[str, str, dict]] = []
    deadline = time.monotonic() + timeout
    with connect_sse(client, "GET", path, headers=headers) as source:
        assert source.response.status_code == 200, source.response.read()
        for e in source.iter_sse():
            got.append((e.id, e.event, json.loads(e.data)))
            if until(got) or time.monotonic() > deadline:
                break
    return got
