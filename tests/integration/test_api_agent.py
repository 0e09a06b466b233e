"""The agent API over HTTP: the queue, hand-off and review flows, exactly-once actions."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.agent_api import (
    Subscription,
    act,
    agent_headers,
    conversation_detail,
    queue_item,
)
from tests.support.live_api import bearer, json_turn, sse_turn, start_conversation

pytestmark = pytest.mark.integration

ANSWERABLE = "How much is the call-out fee?"


def test_handoff_queue_reply_human_turn_and_release(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        cid = conv["id"]
        events = dict(sse_turn(client, conv, "I want to talk to a person about my bill"))
        assert "handoff" in events

        item = queue_item(client, live_api, cid)
        assert item is not None and item["kind"] == "handoff"
        assert item["reason"] and item["summary"] and item["ticket_number"] >= 1
        assert item["waiting_since"]

        # The customer keeps writing while waiting: kept for the agent, no AI answer.
        waiting = dict(sse_turn(client, conv, "hello? anyone there?"))
        assert waiting["message.created"]["queued_for_agent"] is True
        assert "message.completed" not in waiting and "token" not in waiting

        detail = conversation_detail(client, live_api, cid)
        assert detail["pending"]["kind"] == "handoff"
        assert detail["conversation"]["waiting_on"] == "handoff"
        own_view = client.get(
            f"/v1/conversations/{cid}/messages", headers=bearer(conv["customer_token"])
        ).json()
        assert own_view["conversation"]["waiting_on"] == "handoff"
        assert detail["handoff"]["summary"] and detail["handoff"]["transcript"]
        assert detail["ticket"]["number"] == item["ticket_number"]
        assert [m["text"] for m in detail["messages"] if m["sender"] == "customer"] == [
            "I want to talk to a person about my bill",
            "hello? anyone there?",
        ]

        alex = live_api.demo.agent_named("alex")
        sub = Subscription(live_api, conv)
        try:
            r = act(
                client,
                live_api,
                cid,
                "reply",
                {
                    "text": "Hi, Alex here. Let me look.",
                    "interrupt_id": detail["pending"]["interrupt_id"],
                },
                key=alex,
            )
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["conversation"]["status"] == "active"
            assert out["conversation"]["owner_agent"] == "alex"
            assert [e["event"] for e in out["events"]].count("agent.message") == 1
            seen = sub.wait_for(lambda evs: any(t == "agent.message" for _, t, _ in evs))
            reply = next(d for _, t, d in seen if t == "agent.message")
            assert reply["text"] == "Hi, Alex here. Let me look." and reply["sender"] == "agent"
            assert reply["agent"] == "alex"
            assert any(t == "status" and d["owner_agent"] == "alex" for _, t, d in seen)
        finally:
            sub.close()
        assert queue_item(client, live_api, cid) is None

        # The agent owns the conversation: the AI never answers the customer now.
        turn = dict(sse_turn(client, conv, ANSWERABLE))
        assert "message.completed" not in turn and "token" not in turn
        item = queue_item(client, live_api, cid)
        assert item["kind"] == "human_turn" and item["owner"] == "alex"
        assert (
            conversation_detail(client, live_api, cid)["conversation"]["waiting_on"] == "human_turn"
        )
        r = act(client, live_api, cid, "reply", {"text": "It is $89."}, key=alex)
        assert r.status_code == 200
        transcript = client.get(
            f"/v1/conversations/{cid}/messages", headers=bearer(conv["customer_token"])
        ).json()["messages"]
        assert [m["agent"] for m in transcript if m["sender"] == "agent"] == ["alex", "alex"]

        # Another agent cannot take it from alex.
        r = act(client, live_api, cid, "takeover", key=live_api.demo.agent_named("sam"))
        assert r.status_code == 409 and r.json()["code"] == "conversation_owned"

        r = act(client, live_api, cid, "release", key=alex)
        assert r.status_code == 200, r.text
        assert r.json()["conversation"]["owner_agent"] is None
        assert r.json()["events"][-1]["data"]["sender"] == "system"
        ticket = conversation_detail(client, live_api, cid)["ticket"]
        assert ticket["status"] == "resolved"

        # Released: the AI answers again.
        back = dict(sse_turn(client, conv, ANSWERABLE))
        assert "message.completed" in back or "approval.pending" in back
        # Nothing to release twice.
        r = act(client, live_api, cid, "release")
        assert r.status_code == 409 and r.json()["code"] == "interrupt_conflict"


def test_take_over_an_active_conversation_then_close_it(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        cid = conv["id"]
        json_turn(client, conv, "hi")
        kim = live_api.demo.agent_named("kim")
        r = act(client, live_api, cid, "takeover", key=kim)
        assert r.status_code == 200, r.text
        assert r.json()["conversation"]["owner_agent"] == "kim"
        assert r.json()["pending"] is None
        # Taking over again is harmless for the owner.
        assert act(client, live_api, cid, "takeover", key=kim).status_code == 200

        body = json_turn(client, conv, ANSWERABLE).json()
        assert body["reply"] is None, "the AI must not answer a conversation an agent owns"
        assert conversation_detail(client, live_api, cid)["pending"]["kind"] == "human_turn"

        r = act(client, live_api, cid, "close", {"text": "Bye!"}, key=kim)
        assert r.status_code == 200, r.text
        assert r.json()["conversation"]["status"] == "closed"
        r = json_turn(client, conv, "one more thing")
        assert r.status_code == 409 and r.json()["code"] == "conversation_closed"
        r = act(client, live_api, cid, "reply", {"text": "hello?"})
        assert r.status_code == 409 and r.json()["code"] == "conversation_closed"


def _held_draft(client, live_api) -> tuple[dict, dict]:
    """A conversation on the email channel, where policy holds answers for review."""
    conv = start_conversation(client, live_api.demo.widget_key, channel="email")
    events = dict(sse_turn(client, conv, ANSWERABLE))
    assert "approval.pending" in events, events
    assert "message.completed" not in events and "token" not in events
    detail = conversation_detail(client, live_api, conv["id"])
    assert detail["pending"]["kind"] == "approval"
    assert detail["conversation"]["waiting_on"] == "approval"
    return conv, detail


def test_fifty_concurrent_approves_apply_exactly_once(live_api):
    with live_api.client() as client:
        conv, detail = _held_draft(client, live_api)
        cid = conv["id"]
        item = queue_item(client, live_api, cid)
        assert item["kind"] == "approval" and item["reason"]
        draft = detail["pending"]["payload"]["draft"]

    def approve(i: int) -> httpx.Response:
        with live_api.client() as c:
            return act(c, live_api, cid, "approve")

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(approve, range(50)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    losers = [r.json()["code"] for r in responses if r.status_code != 200]
    assert len(losers) == 49
    assert set(losers) <= {"interrupt_conflict", "conversation_busy"}, losers
    winner = next(r for r in responses if r.status_code == 200).json()
    sent = [e for e in winner["events"] if e["event"] == "message.completed"]
    assert len(sent) == 1 and sent[0]["data"]["text"] == draft

    with live_api.client() as client:
        messages = conversation_detail(client, live_api, cid)["messages"]
        assert [m["sender"] for m in messages] == ["customer", "ai"]
        assert messages[1]["text"] == draft
        assert queue_item(client, live_api, cid) is None


def test_edit_sends_the_edit_and_reject_can_hand_off(live_api):
    with live_api.client() as client:
        conv, detail = _held_draft(client, live_api)
        stale = detail["pending"]["interrupt_id"]
        r = act(
            client, live_api, conv["id"], "edit", {"text": "It is $89, waived if we do the job."}
        )
        assert r.status_code == 200, r.text
        sent = [e for e in r.json()["events"] if e["event"] == "message.completed"]
        assert sent[0]["data"]["text"] == "It is $89, waived if we do the job."
        # Acting on the interrupt that was just resolved is a conflict, not a second send.
        r = act(client, live_api, conv["id"], "approve", {"interrupt_id": stale})
        assert r.status_code == 409 and r.json()["code"] == "interrupt_conflict"

        conv, _ = _held_draft(client, live_api)
        r = act(client, live_api, conv["id"], "reply", {"text": "not how drafts work"})
        assert r.status_code == 409 and r.json()["code"] == "interrupt_conflict"
        r = act(
            client, live_api, conv["id"], "reject", {"reason": "needs a person", "then": "handoff"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["pending"]["kind"] == "handoff"
        assert "handoff" in [e["event"] for e in r.json()["events"]]
        assert queue_item(client, live_api, conv["id"])["kind"] == "handoff"


def test_agent_action_bodies_are_validated(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        cid = conv["id"]
        for action, body in [
            ("reply", {}),
            ("reply", {"text": ""}),
            ("reply", {"text": "x" * 8001}),
            ("reject", {"reason": "x", "then": "explode"}),
            ("edit", {"text": 3}),
            ("takeover", {"agent": "alex"}),
            ("approve", {"reviewer": "ceo@company"}),
            ("approve", {"unknown": 1}),
        ]:
            r = act(client, live_api, cid, action, body)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request", (action, body)
        r = act(client, live_api, cid, "approve")
        assert r.status_code == 409 and r.json()["code"] == "interrupt_conflict"
        r = client.get(
            "/v1/agent/conversations/00000000-0000-0000-0000-000000000000",
            headers=agent_headers(live_api),
        )
        assert r.status_code == 404


def test_tickets_list_get_and_update(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, "I want to speak to a manager")
        ticket = conversation_detail(client, live_api, conv["id"])["ticket"]
        r = client.get(
            "/v1/agent/tickets",
            params={"status": ticket["status"]},
            headers=agent_headers(live_api),
        )
        assert ticket["id"] in [t["id"] for t in r.json()["items"]]
        r = client.patch(
            f"/v1/agent/tickets/{ticket['id']}",
            json={"status": "triage", "priority": "high"},
            headers=agent_headers(live_api),
        )
        assert r.status_code == 200 and r.json()["status"] == "triage"
        got = client.get(
            f"/v1/agent/tickets/{ticket['id']}", headers=agent_headers(live_api)
        ).json()
        assert (got["status"], got["priority"]) == ("triage", "high")
        r = client.patch(
            f"/v1/agent/tickets/{ticket['id']}",
            json={"status": "lost"},
            headers=agent_headers(live_api),
        )
        assert r.status_code == 422


def test_console_stream_announces_queue_changes(live_api):
    seen: list[tuple[str, dict]] = []
    ready = threading.Event()

    def listen():
        with (
            live_api.client(timeout=httpx.Timeout(60, read=30)) as c,
            connect_sse(c, "GET", "/v1/agent/events", headers=agent_headers(live_api)) as src,
        ):
            for e in src.iter_sse():
                seen.append((e.event, json.loads(e.data)))
                if e.event == "ready":
                    ready.set()
                if e.event == "conversation.event" and seen[-1][1]["type"] == "handoff":
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(30)
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
    thread.join(30)
    mine = [d for name, d in seen if d.get("conversation_id") == conv["id"]]
    assert any(
        name == "queue.changed" for name, d in seen if d.get("conversation_id") == conv["id"]
    )
    assert {"handoff", "message.created"} <= {d.get("type") for d in mine}


def test_take_over_before_the_customer_wrote(live_api):
    with live_api.client() as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        lee = live_api.demo.agent_named("lee")
        r = act(client, live_api, conv["id"], "takeover", key=lee)
        assert r.status_code == 200, r.text
        body = json_turn(client, conv, ANSWERABLE).json()
        assert body["reply"] is None, "the agent owns it from the start"
        detail = conversation_detail(client, live_api, conv["id"])
        assert detail["pending"]["kind"] == "human_turn"
        assert detail["pending"]["payload"]["message"] == ANSWERABLE
        r = act(client, live_api, conv["id"], "reply", {"text": "Lee here: $89."}, key=lee)
        assert r.status_code == 200
        assert [
            e["data"]["agent"] for e in r.json()["events"] if e["event"] == "agent.message"
        ] == ["lee"]
