"""Customers in danger (issue 19, item 1) on the real graph: the safety steps word for word or
the emergency line, an urgent hand-off, never a paraphrase or a held draft. Detection and
sentence splitting on their own are in ``tests/unit/test_safety.py``."""

from __future__ import annotations

import uuid

import pytest

from desk.stream import thread_config
from helpdesk import conversations, tickets
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import create_tenant
from kb_pipeline.loaders import demo_kb_path, load_directory
from tests.support.safety import GAS_STEPS, SAFETY_PHRASINGS
from tests.support.turns import new_conversation, resume, turn

# --- the graph, offline tier ----------------------------------------------------------------


async def _ticket(services, tenant, cid):
    conv = await conversations.get_conversation(services.pool, tenant.id, cid)
    assert conv["status"] == "waiting_human"
    return await tickets.get_ticket(
        services.pool, tenant.id, uuid.UUID(conv["escalation"]["ticket_id"])
    )


@pytest.mark.integration
async def test_gas_smell_gets_the_article_steps_word_for_word_then_an_urgent_person(
    graph, services, demo
):
    cid = await new_conversation(services, demo)
    events = await turn(graph, services, demo, cid, "I smell gas in my kitchen")
    done = events["message.completed"][0]
    for step in GAS_STEPS:
        assert step in done["text"], done["text"]
    assert (
        "Emergency line: Tri-County Gas's 24-hour emergency line, 555-0160, or 911"
        in (done["text"])
    )
    assert [c["source_id"] for c in done["citations"]] == ["gas-leak-safety"]
    assert "".join(t["text"] for t in events["token"]) == done["text"], "streamed at once"
    assert "approval.pending" not in events
    assert events["handoff"][0]["reason"] == "safety:gas"
    assert [e["node"] for e in events["status"] if "node" in e][:2] == ["guard_input", "safety"]
    ticket = await _ticket(services, demo, cid)
    assert ticket["priority"] == "urgent" and ticket["reason"] == "safety:gas"
    stored = await conversations.list_messages(services.pool, demo.id, cid)
    assert [m["sender"] for m in stored] == ["customer", "ai"]
    assert stored[1]["text"] == done["text"]
    state = await graph.aget_state(thread_config(cid))
    assert state.next == ("await_agent",)
    assert state.values["intent"] == "emergency" and state.values["intent_source"] == "safety"


@pytest.mark.integration
@pytest.mark.parametrize(("text", "hazard"), SAFETY_PHRASINGS)
async def test_every_hazard_reaches_a_person_with_an_emergency_number(
    graph, services, demo, text, hazard
):
    cid = await new_conversation(services, demo)
    events = await turn(graph, services, demo, cid, text)
    done = events["message.completed"][0]
    assert "911" in done["text"] or "555-0142" in done["text"], done["text"]
    assert events["handoff"][0]["reason"] == f"safety:{hazard}"
    assert (await _ticket(services, demo, cid))["priority"] == "urgent"


@pytest.fixture
async def handoff_tenant(services):
    policy = TenantPolicy(
        safety_mode="handoff",
        emergency_line="999",
        safety_lines={"gas": "the National Gas Emergency line, 0800 111 999"},
        review_all=True,  # a safety message is never held, whatever the review policy
    )
    return await create_tenant(services.pool, f"safe-{uuid.uuid4().hex[:8]}", "Handoff Co", policy)


@pytest.mark.integration
async def test_handoff_mode_shows_the_emergency_line_and_hands_off_at_once(
    graph, services, handoff_tenant
):
    cid = await new_conversation(services, handoff_tenant)
    events = await turn(graph, services, handoff_tenant, cid, "I think there's a gas leak")
    text = events["message.completed"][0]["text"]
    assert "Call the National Gas Emergency line, 0800 111 999 now." in text
    assert "get everyone out of the building" in text
    assert "approval.pending" not in events
    assert events["handoff"][0]["reason"] == "safety:gas"
    events = await turn(
        graph,
        services,
        handoff_tenant,
        await new_conversation(services, handoff_tenant),
        "my CO alarm is beeping",
    )
    assert "Call 999 now." in events["message.completed"][0]["text"]


@pytest.mark.integration
async def test_a_missing_safety_article_falls_back_to_the_emergency_message(graph, services):
    policy = TenantPolicy(
        emergency_line="112",
        safety_articles={
            "gas": ["gas-leak-safety#No such heading"],
            "flooding": ["water-leak-first-steps"],
        },
        review_all=True,
    )
    tenant = await create_tenant(services.pool, f"art-{uuid.uuid4().hex[:8]}", "Art Co", policy)
    articles = [a for a in load_directory(demo_kb_path()) if a.source_id == "gas-leak-safety"]
    await services.kb.ingest(tenant.id, articles)
    cid = await new_conversation(services, tenant)
    events = await turn(graph, services, tenant, cid, "I smell gas")
    text = events["message.completed"][0]["text"]
    assert "Call 112 now." in text and events["message.completed"][0]["citations"] == []
    cid = await new_conversation(services, tenant)
    events = await turn(graph, services, tenant, cid, "the basement is flooding")
    assert "Call 112 now." in events["message.completed"][0]["text"]  # article not ingested
    assert "approval.pending" not in events and events["handoff"]


@pytest.mark.integration
async def test_a_hazard_in_a_conversation_an_agent_owns_still_gets_the_steps(graph, services, demo):
    cid = await new_conversation(services, demo)
    await turn(graph, services, demo, cid, "I want to talk to a person")
    await resume(graph, cid, {"action": "reply", "text": "Hi, this is Sam.", "agent": "sam"})
    events = await turn(graph, services, demo, cid, "wait, now I smell gas!")
    assert GAS_STEPS[0] in events["message.completed"][0]["text"]
    state = await graph.aget_state(thread_config(cid))
    assert state.next == ("human_turn",), "and the agent who owns it is asked next"


@pytest.mark.integration
async def test_the_queue_lists_a_customer_in_danger_before_older_waits(
    graph, services, handoff_tenant
):
    first = await new_conversation(services, handoff_tenant)
    await turn(graph, services, handoff_tenant, first, "I want to talk to a person")
    second = await new_conversation(services, handoff_tenant)
    await turn(graph, services, handoff_tenant, second, "there's smoke pouring out of the dryer")
    rows = await conversations.waiting_queue(services.pool, handoff_tenant.id)
    assert [r["id"] for r in rows] == [second, first]
