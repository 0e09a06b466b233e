"""The HTTP API over a real socket: uvicorn serving the app, SSE read with httpx-sse."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from httpx_sse import connect_sse

from api.app import create_app

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(settings, offline_models, database_url, demo) -> Iterator[str]:
    port = _free_port()
    app = create_app(settings, models=offline_models, database_url=database_url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _sse_turn(client: httpx.Client, cid: str, text: str) -> list[tuple[str, dict]]:
    with connect_sse(
        client, "POST", f"/v1/conversations/{cid}/messages", json={"text": text}
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def test_message_streams_tokens_then_completed_with_citations(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        created = client.post("/v1/conversations", json={"tenant": "demo"})
        assert created.status_code == 201
        cid = created.json()["id"]
        events = _sse_turn(client, cid, "How much is the call-out fee?")
        names = [n for n, _ in events]
        assert names[0] == "status" and names[-1] == "done"
        assert "message.created" in names
        first_token = names.index("token")
        completed = names.index("message.completed")
        assert first_token < completed
        data = events[completed][1]
        assert "pricing-overview" in [c["source_id"] for c in data["citations"]]
        tokens = "".join(d["text"] for n, d in events if n == "token")
        assert tokens == data["text"]
        history = client.get(f"/v1/conversations/{cid}/messages").json()["messages"]
        assert [m["sender"] for m in history] == ["customer", "ai"]


def test_handoff_is_streamed_as_an_event(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        cid = client.post("/v1/conversations", json={"tenant": "demo"}).json()["id"]
        events = dict(_sse_turn(client, cid, "I want to talk to a person"))
        assert events["handoff"]["reason"] == "explicit_request"
        assert events["handoff"]["ticket_number"] >= 1
        assert "message.completed" not in events


def test_json_mode_returns_the_reply(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        cid = client.post("/v1/conversations", json={"tenant": "demo"}).json()["id"]
        body = client.post(f"/v1/conversations/{cid}/messages", json={"text": "hello"}).json()
        assert body["reply"]["sender"] == "ai" and body["reply"]["text"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    [
        ("post", "/v1/conversations", {"tenant": "no-such-tenant"}, 404, "not_found"),
        ("post", "/v1/conversations", {"tenant": "demo", "channel": "fax"}, 422, "invalid_request"),
        ("post", "/v1/conversations", {}, 422, "invalid_request"),
        ("post", "/v1/conversations/not-a-uuid/messages", {"text": "hi"}, 422, "invalid_request"),
        (
            "post",
            "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
            {"text": "hi"},
            404,
            "not_found",
        ),
        (
            "get",
            "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
            None,
            404,
            "not_found",
        ),
    ],
)
def test_bad_input_gets_a_4xx_with_a_stable_code(base_url, method, path, payload, status, code):
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.request(method, path, json=payload)
        assert response.status_code == status
        assert response.json()["code"] == code and response.json()["message"]


def test_empty_and_oversized_messages_are_rejected(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as client:
        cid = client.post("/v1/conversations", json={"tenant": "demo"}).json()["id"]
        for text in ("", "x" * 4001):
            r = client.post(f"/v1/conversations/{cid}/messages", json={"text": text})
            assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.post(
            f"/v1/conversations/{cid}/messages",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422
