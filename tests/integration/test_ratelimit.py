"""Rate limits on the widget and customer endpoints (``api/ratelimit.py``), over real HTTP.

The session's other tests run with the limits off (they all share 127.0.0.1); this module
serves an app of its own with small limits.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_api import LiveApi, bearer, json_turn, serve, start_conversation

pytestmark = pytest.mark.integration


LIMIT = 3  # per minute: a token every 20 s, so nothing refills during a test


@pytest.fixture(scope="module")
def limited_api(settings, offline_models, database_url, demo) -> Iterator[LiveApi]:
    limited = settings.model_copy(
        update={
            "rate_conversations_per_minute": LIMIT,
            "rate_messages_per_minute": LIMIT,
            "rate_searches_per_minute": LIMIT,
        }
    )
    yield from serve(limited, offline_models, database_url)


def _assert_limited(r, what: str) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited"
    assert r.json()["message"].startswith(f"too many {what} from this address")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 / LIMIT


def test_starting_conversations_is_limited_per_address_and_tenant(limited_api: LiveApi) -> None:
    with limited_api.client() as client:
        for _ in range(LIMIT):
            start_conversation(client, limited_api.demo.widget_key)
        r = client.post(
            "/v1/conversations", json={}, headers={"X-Widget-Key": limited_api.demo.widget_key}
        )
        _assert_limited(r, "new conversations")
        # another business's widget on the same address has its own allowance
        start_conversation(client, limited_api.other.widget_key)


def test_messages_over_the_limit_are_refused_before_anything_is_stored(
    limited_api: LiveApi,
) -> None:
    with limited_api.client() as client:
        conv = start_conversation(client, limited_api.other.widget_key)
        for i in range(LIMIT):
            r = json_turn(client, conv, f"Hello number {i}?")
            assert r.status_code == 200, r.text
        refused = json_turn(client, conv, "One too many?")
        _assert_limited(refused, "messages")
        stored = client.get(
            f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
        )
        assert stored.status_code == 200, stored.text
        texts = [m["text"] for m in stored.json()["messages"] if m["sender"] == "customer"]
        assert texts == [f"Hello number {i}?" for i in range(LIMIT)]


def test_widget_searches_are_limited_and_staff_searches_are_not(limited_api: LiveApi) -> None:
    with limited_api.client() as client:
        widget = {"X-Widget-Key": limited_api.demo.widget_key}
        for _ in range(LIMIT):
            assert client.get("/v1/kb/search", params={"q": "prices"}, headers=widget).is_success
        _assert_limited(
            client.get("/v1/kb/search", params={"q": "prices"}, headers=widget), "searches"
        )
        staff = bearer(limited_api.demo.agent_key)
        for _ in range(LIMIT + 2):
            r = client.get("/v1/kb/search", params={"q": "prices"}, headers=staff)
            assert r.status_code == 200, r.text
