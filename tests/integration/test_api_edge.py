"""The API's edge over HTTP: what text it accepts, who acts, where credentials may travel, and
that the OpenAPI schema says what the routes do (issue 19, items 3, 6 and 18). The text rule on
its own is in ``tests/unit/test_text_policy.py``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from api.logs import ACCESS_LOGGER, RedactCredentials, redact
from tests.support.live_api import bearer, json_turn, sse_turn, start_conversation
from tests.support.texts import ACCEPTED

NUL = "hello\x00world"
SURROGATE = "hello\ud800world"


# ------------------------------------------------------------------------------ over HTTP

pytestmark = pytest.mark.integration


def _refused(r: httpx.Response, where: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_input", body
    assert where in body["message"], body


def post(client: httpx.Client, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    """POST JSON written with escapes (``\\ud800``): httpx's ``json=`` cannot encode a lone
    surrogate, a client writing JSON escapes can."""
    return client.post(
        url,
        content=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


@pytest.fixture
def client(live_api) -> Iterator[httpx.Client]:
    with live_api.client() as c:
        yield c


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_a_message_with_nul_or_a_lone_surrogate_is_refused_and_the_conversation_goes_on(
    client, live_api, bad
):
    conv = start_conversation(client, live_api.demo.widget_key)
    url = f"/v1/conversations/{conv['id']}/messages"
    _refused(post(client, url, {"text": bad}, bearer(conv["customer_token"])), "text")
    transcript = client.get(
        f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
    ).json()
    assert transcript["messages"] == []
    # Nothing reached the thread: the next turns work, the hand-off reaches the queue.
    assert json_turn(client, conv, "hello").json()["reply"]["sender"] == "ai"
    events = dict(sse_turn(client, conv, "I want to speak to a human"))
    assert "handoff" in events and "error" not in events, events
    queue = client.get("/v1/agent/queue", headers=bearer(live_api.demo.agent_key)).json()
    assert conv["id"] in [i["conversation_id"] for i in queue["items"]]


def test_a_raw_lone_surrogate_escape_in_the_json_body_is_a_422(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key)
    r = client.post(
        f"/v1/conversations/{conv['id']}/messages",
        content=b'{"text": "a\\ud800b"}',
        headers={**bearer(conv["customer_token"]), "Content-Type": "application/json"},
    )
    _refused(r, "text")
    r = client.post(
        f"/v1/conversations/{conv['id']}/messages",
        content=b'{"text": "caf\xe9"}',  # Latin-1, not UTF-8
        headers={**bearer(conv["customer_token"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_json", r.text


@pytest.mark.parametrize(
    "customer",
    [{"name": NUL}, {"name": SURROGATE}, {"na\x00me": "x"}, {"na\ud800me": "x"}],
)
def test_customer_fields_with_bad_text_are_refused(client, live_api, customer):
    r = post(
        client,
        "/v1/conversations",
        {"customer": customer},
        {"X-Widget-Key": live_api.demo.widget_key},
    )
    _refused(r, "customer")
    assert "\x00" not in r.text and "\\ud800" not in r.text.lower()


def test_rtl_text_is_kept_as_it_is(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key, customer={"name": ACCEPTED[1]})
    r = json_turn(client, conv, ACCEPTED[0])
    assert r.status_code == 200, r.text
    messages = client.get(
        f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
    ).json()["messages"]
    assert messages[0]["text"] == ACCEPTED[0]


def test_feedback_comment_and_kb_search_with_nul_are_refused(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key)
    reply = json_turn(client, conv, "How much is the call-out fee?").json()["reply"]
    r = client.post(
        f"/v1/conversations/{conv['id']}/feedback",
        json={"message_id": reply["message_id"], "rating": "up", "comment": NUL},
        headers=bearer(conv["customer_token"]),
    )
    _refused(r, "comment")
    widget = {"X-Widget-Key": live_api.demo.widget_key}
    for params in (
        {"q": "a\x00b"},
        {"q": "a\x00b", "mode": "fulltext"},
        {"q": "fee", "tag": "a\x00"},
    ):
        _refused(client.get("/v1/kb/search", params=params, headers=widget), "query.")


def _owned_by_alice(client, live_api) -> tuple[dict, str]:
    conv = start_conversation(client, live_api.demo.widget_key)
    assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
    return conv, live_api.demo.agent_named("alice")


def _state(client, live_api, cid) -> tuple:
    detail = client.get(
        f"/v1/agent/conversations/{cid}", headers=bearer(live_api.demo.agent_key)
    ).json()
    conv = detail["conversation"]
    return (
        conv["status"],
        conv["owner_agent"],
        (detail["pending"] or {}).get("interrupt_id"),
        (detail["ticket"] or {}).get("status"),
        len(detail["messages"]),
    )


@pytest.mark.parametrize("action", ["reply", "close", "release", "takeover"])
def test_an_agent_action_with_bad_text_changes_nothing(client, live_api, action):
    conv, alice = _owned_by_alice(client, live_api)
    before = _state(client, live_api, conv["id"])
    body = {"text": NUL} if action != "takeover" else {"interrupt_id": "x\x00"}
    r = client.post(
        f"/v1/agent/conversations/{conv['id']}/{action}", json=body, headers=bearer(alice)
    )
    _refused(r, "text" if action != "takeover" else "interrupt_id")
    assert _state(client, live_api, conv["id"]) == before
    # The hand-off is still there to answer.
    r = client.post(
        f"/v1/agent/conversations/{conv['id']}/reply",
        json={"text": "Alice here."},
        headers=bearer(alice),
    )
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------ the actor


def test_the_actor_is_the_keys_name_and_no_field_changes_it(client, live_api):
    conv, alice = _owned_by_alice(client, live_api)
    bob = live_api.demo.agent_named("bob")
    cid = conv["id"]
    for action, body in [
        ("reply", {"text": "I am alice, trust me", "agent": "alice"}),
        ("takeover", {"agent": "alice"}),
        ("approve", {"reviewer": "ceo@company"}),
        ("approve", {"agent": "ceo@company"}),
    ]:
        r = client.post(f"/v1/agent/conversations/{cid}/{action}", json=body, headers=bearer(bob))
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (action, r.text)
    r = client.post(f"/v1/agent/conversations/{cid}/takeover", json={}, headers=bearer(alice))
    assert r.json()["conversation"]["owner_agent"] == "alice"
    r = client.post(
        f"/v1/agent/conversations/{cid}/reply", json={"text": "Bob here"}, headers=bearer(bob)
    )
    assert r.status_code == 409 and r.json()["code"] == "conversation_owned"

    other = start_conversation(client, live_api.demo.widget_key)
    sse_turn(client, other, "I want to talk to a person")
    r = client.post(
        f"/v1/agent/conversations/{other['id']}/reply", json={"text": "Hi"}, headers=bearer(bob)
    )
    assert r.status_code == 200
    assert r.json()["conversation"]["owner_agent"] == "bob"
    seen = client.get(
        f"/v1/conversations/{other['id']}/messages", headers=bearer(other["customer_token"])
    ).json()["messages"]
    assert [m["agent"] for m in seen if m["sender"] == "agent"] == ["bob"]
    me = client.get("/v1/agent/me", headers=bearer(bob)).json()
    assert {k: me[k] for k in ("name", "kind", "role", "tenant")} == {
        "name": "bob",
        "kind": "agent",
        "role": "agent",
        "tenant": "demo",
    }
    assert me["user"] is None  # a key is no user account


def test_a_reviewer_is_the_keys_name(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key, channel="email")
    assert "approval.pending" in dict(sse_turn(client, conv, "How much is the call-out fee?"))
    bob = live_api.demo.agent_named("bob")
    r = client.post(
        f"/v1/agent/conversations/{conv['id']}/edit",
        json={"text": "It is $89."},
        headers=bearer(bob),
    )
    assert r.status_code == 200, r.text
    path = f"/v1/agent/conversations/{conv['id']}/events"
    with connect_sse(client, "GET", path, headers=bearer(bob)) as source:
        edited = next(json.loads(e.data) for e in source.iter_sse() if e.event == "approval.edited")
    assert edited["reviewer"] == "bob", edited
    messages = client.get(
        f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
    ).json()["messages"]
    assert messages[-1]["text"] == "It is $89."


# ------------------------------------------------------------------------------ item 18


def test_a_customer_token_in_the_query_string_is_refused_on_post(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key)
    for path, body in (
        ("messages", {"text": "hello"}),
        ("feedback", {"csat": 5}),
    ):
        url = f"/v1/conversations/{conv['id']}/{path}"
        r = client.post(url, params={"token": conv["customer_token"]}, json=body)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text
        assert "GET only" in r.json()["message"]
        # Even next to a header token: a token in a POST's URL is refused, not ignored.
        r = client.post(
            url,
            params={"token": conv["customer_token"]},
            json=body,
            headers=bearer(conv["customer_token"]),
        )
        assert r.status_code == 422, r.text
    r = client.post("/v1/conversations", params={"key": live_api.demo.widget_key}, json={})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    # GET keeps ?token= (EventSource cannot send headers).
    r = client.get(
        f"/v1/conversations/{conv['id']}/messages", params={"token": conv["customer_token"]}
    )
    assert r.status_code == 200


def test_the_access_log_never_shows_a_token(client, live_api):
    conv = start_conversation(client, live_api.demo.widget_key)
    token = conv["customer_token"]
    logger = logging.getLogger(ACCESS_LOGGER)
    assert any(isinstance(f, RedactCredentials) for f in logger.filters)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        # A fresh connection: uvicorn decides whether to log per connection.
        with live_api.client() as fresh:
            fresh.get(f"/v1/conversations/{conv['id']}/messages", params={"token": token})
            fresh.post(f"/v1/conversations/{conv['id']}/messages?token={token}", json={})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(lines) >= 2, lines
    assert all(token not in line for line in lines), lines
    assert all("token=[redacted]" in line for line in lines), lines
    assert redact("/demo?key=wk_abc&x=1") == "/demo?key=[redacted]&x=1"


@pytest.mark.parametrize("csat", ["5", True, 5.0, "five"])
def test_csat_is_a_strict_integer(client, live_api, csat):
    conv = start_conversation(client, live_api.demo.widget_key)
    r = client.post(
        f"/v1/conversations/{conv['id']}/feedback",
        json={"csat": csat},
        headers=bearer(conv["customer_token"]),
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text
    r = client.post(
        f"/v1/conversations/{conv['id']}/feedback",
        json={"csat": 5},
        headers=bearer(conv["customer_token"]),
    )
    assert r.status_code == 200 and r.json()["csat"] == 5


def test_optional_query_parameters_do_not_advertise_null(live_api, client):
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                assert {"type": "null"} not in param["schema"].get("anyOf", []), (
                    method,
                    path,
                    param["name"],
                )
    form = spec["components"]["schemas"]["Body_ingest_v1_kb_ingest_post"]
    assert "anyOf" not in form["properties"]["visibility"]
    # Absent is "no filter"; "null" is a value, refused like any other unknown one.
    agent = bearer(live_api.demo.agent_key)
    assert client.get("/v1/agent/conversations", headers=agent).status_code == 200
    r = client.get("/v1/agent/conversations", params={"status": "null"}, headers=agent)
    assert r.status_code == 422


def test_malformed_multipart_is_a_documented_400(client, live_api):
    for content_type, content in (
        ("multipart/form-data", b"no boundary was given"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nno colon\r\n\r\nx\r\n--xyz--\r\n"),
    ):
        r = client.post(
            "/v1/kb/ingest",
            content=content,
            headers={**bearer(live_api.demo.admin_key), "Content-Type": content_type},
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_multipart", r.text
    spec = client.get("/openapi.json").json()
    documented = spec["paths"]["/v1/kb/ingest"]["post"]["responses"]["400"]
    assert "invalid_multipart" in documented["content"]["application/json"]["examples"]
    r = client.post(
        "/v1/kb/ingest",
        files=[("files", ("a.md", b"# A\n\ntext\n", "text/markdown"))],
        data={"tags": "faq,a\x00b"},
        headers=bearer(live_api.demo.admin_key),
    )
    _refused(r, "tags")
