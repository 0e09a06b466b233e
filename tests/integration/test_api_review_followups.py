"""Messages sent while a draft is held for review (issue 19, items 2, 9, 10, 12, 14) over
real HTTP and SSE: nothing vanishes, the held answer names its question, the later questions
are answered after it (or stay with a person), and the console can find the conversation."""

from __future__ import annotations

import httpx
import pytest

from tests.support.agent_api import Subscription, act, conversation_detail, queue_item
from tests.support.live_api import bearer, sse_turn, start_conversation

pytestmark = pytest.mark.integration

HELD = "How much does an electric water heater installation cost?"  # prices above the limit
LATER = ["How much is the call-out fee?", "Do you offer a warranty on repairs?"]


def _customer_view(client: httpx.Client, conv: dict) -> list[dict]:
    r = client.get(
        f"/v1/conversations/{conv['id']}/messages", headers=bearer(conv["customer_token"])
    )
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def _held_with_two_more(client: httpx.Client, live_api) -> dict:
    conv = start_conversation(client, live_api.demo.widget_key)
    assert "approval.pending" in dict(sse_turn(client, conv, HELD))
    for text in LATER:
        events = sse_turn(client, conv, text)
        created = dict(events)["message.created"]
        # Stored, shown as waiting for the review (not "passed to our team"), not answered.
        assert created["after_review"] is True and created["text"] == text
        assert ("status", {"status": "waiting_human", "waiting_on": "approval"}) in events
        assert "message.completed" not in dict(events)
    return conv


def test_questions_sent_during_a_review_are_answered_after_the_held_answer(live_api):
    with live_api.client() as client:
        conv = _held_with_two_more(client, live_api)
        cid = conv["id"]

        # The queue lists it, about the question under review, with the two new messages.
        item = queue_item(client, live_api, cid)
        assert item is not None and item["kind"] == "approval"
        assert item["question"] == HELD and HELD in item["summary"]
        assert item["new_messages"] == 2 and "2 new messages since this draft" in item["summary"]
        assert item["last_customer_message"] == LATER[-1]
        # People's words, once: six prices above the limit make one sentence, no codes.
        assert item["reason"] == "price_above_limit"
        assert item["reason_text"].count("above the $500.00 limit") == 1
        assert "price_above_limit" not in item["reason_text"]
        detail = conversation_detail(client, live_api, cid)
        assert [m["after_review"] for m in detail["messages"]] == [False, True, True]
        assert len(detail["held_because"]) == 1 and "$1,400.00" in detail["held_because"][0]

        sub = Subscription(live_api, conv)
        try:
            r = act(client, live_api, cid, "approve")
            assert r.status_code == 200, r.text
            sent = [e["data"] for e in r.json()["events"] if e["event"] == "message.completed"]
            # The held answer first, then one answer per later question, in order.
            assert len(sent) == 3, r.json()["events"]
            sub.wait_for(lambda evs: sum(t == "message.completed" for _, t, _ in evs) >= 3)
        finally:
            sub.close()

        messages = _customer_view(client, conv)
        assert [m["sender"] for m in messages] == ["customer"] * 3 + ["ai"] * 3
        questions = {m["text"]: m["id"] for m in messages if m["sender"] == "customer"}
        answers = [m for m in messages if m["sender"] == "ai"]
        # Each answer names the question it answers: the held one is tied to HELD, not LATER[-1].
        assert [a["in_reply_to"] for a in answers] == [questions[HELD]] + [
            questions[t] for t in LATER
        ]
        assert "$1,400" in answers[0]["text"] and "$89" in answers[1]["text"]
        assert not any(m["after_review"] for m in messages)
        assert queue_item(client, live_api, cid) is None
        assert conversation_detail(client, live_api, cid)["conversation"]["status"] == "active"


def test_questions_sent_during_a_review_stay_with_the_person_after_a_handoff(live_api):
    with live_api.client() as client:
        conv = _held_with_two_more(client, live_api)
        r = act(client, live_api, conv["id"], "reject", {"reason": "call them", "then": "handoff"})
        assert r.status_code == 200, r.text
        assert "message.completed" not in [e["event"] for e in r.json()["events"]]
        item = queue_item(client, live_api, conv["id"])
        assert item["kind"] == "handoff"
        detail = conversation_detail(client, live_api, conv["id"])
        customer = [m for m in detail["messages"] if m["sender"] == "customer"]
        # In the transcript the agent answers from; no longer owed an AI turn.
        assert [m["text"] for m in customer] == [HELD, *LATER]
        assert not any(m["after_review"] for m in customer)


def test_an_edited_answer_keeps_only_the_sources_it_still_uses(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, HELD)
        payload = conversation_detail(client, live_api, conv["id"])["pending"]["payload"]
        assert "typical-job-prices" in [c["source_id"] for c in payload["citations"]]
        hours = "Our office is open Monday to Friday from 8am to 6pm."
        r = act(client, live_api, conv["id"], "edit", {"text": hours})
        assert r.status_code == 200, r.text
        sent = next(e["data"] for e in r.json()["events"] if e["event"] == "message.completed")
        assert sent["text"] == hours and sent["citations"] == []

        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, HELD)
        kept = "Installed, an electric tank water heater is $1,400. [typical-job-prices]"
        r = act(client, live_api, conv["id"], "edit", {"text": kept})
        sent = next(e["data"] for e in r.json()["events"] if e["event"] == "message.completed")
        assert [c["source_id"] for c in sent["citations"]] == ["typical-job-prices"]
        stored = _customer_view(client, conv)[-1]
        assert [c["source_id"] for c in stored["citations"]] == ["typical-job-prices"]


def test_an_agents_conversations_can_be_found_after_they_leave_the_queue(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        r = act(client, live_api, conv["id"], "reply", {"text": "Hi, I can help."})
        assert r.status_code == 200, r.text
        assert queue_item(client, live_api, conv["id"]) is None
        agent = bearer(live_api.demo.agent_key)
        mine = client.get("/v1/agent/conversations?owner=me", headers=agent)
        assert mine.status_code == 200, mine.text
        row = next(c for c in mine.json() if c["id"] == conv["id"])
        assert row["owner_agent"] and row["ticket_number"] >= 1
        assert row["last_customer_message"] == "I want to talk to a person"
        assert all(c["owner_agent"] == row["owner_agent"] for c in mine.json())
        recent = client.get("/v1/agent/conversations?limit=5", headers=agent).json()
        assert recent[0]["id"] == conv["id"]
        nobody = client.get("/v1/agent/conversations?owner=nobody-at-all", headers=agent)
        assert nobody.status_code == 200 and nobody.json() == []
        bad = client.get("/v1/agent/conversations?owner=", headers=agent)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
