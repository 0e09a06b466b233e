"""A customer in danger while a person owns the conversation, or while a draft waits for
review, over real HTTP and SSE: the safety steps go out at once (the AI does not otherwise
answer then), the ticket becomes urgent, and a retried message sends nothing twice."""

from __future__ import annotations

import httpx
import pytest

from tests.support.agent_api import queue_item
from tests.support.live_api import bearer, sse_turn, start_conversation
from tests.support.safety import GAS_STEPS

pytestmark = pytest.mark.integration

GAS = "I smell gas in my kitchen"


def _transcript(client: httpx.Client, conv: dict) -> list[dict]:
    r = client.get(
        f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
    )
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def _gets_the_steps_at_once(events: list[tuple[str, dict]]) -> dict:
    names = [name for name, _ in events]
    assert names.index("message.created") < names.index("message.completed") < names.index("done")
    created, sent = dict(events)["message.created"], dict(events)["message.completed"]
    assert created["queued_for_agent"] is True
    assert GAS_STEPS[0] in sent["text"] and "911" in sent["text"]
    assert sent["sender"] == "ai" and sent["in_reply_to"] == created["message_id"]
    return sent


def test_a_customer_in_danger_waiting_for_a_person_gets_the_steps_and_an_urgent_ticket(
    live_api,
):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        before = queue_item(client, live_api, conv["id"])
        assert before is not None and before["priority"] != "urgent"

        sent = _gets_the_steps_at_once(sse_turn(client, conv, GAS, **{"Idempotency-Key": "g1"}))
        # A retry of the same message (a dropped connection) stores and sends nothing twice.
        again = sse_turn(client, conv, GAS, **{"Idempotency-Key": "g1"})
        assert dict(again)["message.completed"]["message_id"] == sent["message_id"]

        texts = [(m["sender"], m["text"]) for m in _transcript(client, conv)]
        assert texts.count(("customer", GAS)) == 1
        assert sum(sender == "ai" and GAS_STEPS[0] in text for sender, text in texts) == 1
        item = queue_item(client, live_api, conv["id"])
        assert item is not None and item["priority"] == "urgent"


def test_a_customer_in_danger_during_a_review_gets_the_steps_without_waiting_for_it(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        held = "How much does an electric water heater installation cost?"
        assert "approval.pending" in dict(sse_turn(client, conv, held))
        _gets_the_steps_at_once(sse_turn(client, conv, GAS))
        assert queue_item(client, live_api, conv["id"]) is not None


def test_an_ordinary_message_while_waiting_gets_no_reply(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        events = sse_turn(client, conv, "how much is a gas line repair?")
        assert "message.completed" not in dict(events)
