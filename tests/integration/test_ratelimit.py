"""Rate limits on the widget and customer endpoints (``api/ratelimit.py``), over real HTTP.

The session's other tests run with the limits off (they all share 127.0.0.1); this module
serves an app of its own with small limits.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.ratelimit import TokenBucket
from tests.support.live_api import LiveApi, bearer, json_turn, serve, start_conversation

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_minutes_burst_then_the_rate_and_a_refusal_costs_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(6, clock=clock)  # one token every 10 s, six at once
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    assert bucket.take("a") == pytest.approx(10.0)
    clock.now += 4
    assert bucket.take("a") == pytest.approx(6.0)  # the refusal above took nothing
    assert bucket.take("b") == 0.0  # other keys have their own bucket
    clock.now += 6
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0
    clock.now += 3600  # idle: full again, never more than a minute's worth
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    assert bucket.take("a") > 0


def test_a_bucket_keeps_at_most_max_keys_dropping_the_least_recently_used() -> None:
    clock = Clock()
    bucket = TokenBucket(1, max_keys=2, clock=clock)
    assert bucket.take("a") == 0.0
    assert bucket.take("b") == 0.0
    assert bucket.take("a") > 0  # touches "a": "b" is now the least recently used
    assert bucket.take("c") == 0.0  # evicts "b"
    assert bucket.take("a") > 0  # "a" was kept, still empty
    assert bucket.take("b") == 0.0  # "b" starts over


def test_a_bucket_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)


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
