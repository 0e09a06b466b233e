"""The LLM tier runs the same paths, with langchain-core fake chat models (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage

from desk.stream import thread_config
from graph.graph import build_graph
from graph.runtime import open_checkpointer, open_services
from helpdesk import conversations
from nlp.models import Models
from tests.support.fake_llm import ToolCallingFake
from tests.support.turns import new_conversation, resume, turn

pytestmark = pytest.mark.integration


def verdict(**args: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": "LlmJudgement", "args": args, "id": "call-1"}]
    )


@pytest.fixture
async def llm_setup(settings, offline_models, database_url, demo):
    scripts: dict[str, list[AIMessage]] = {"chat": [], "judge": []}

    def feed(name: str):
        def gen():
            while scripts[name]:
                yield scripts[name].pop(0)
            raise AssertionError(f"the {name} model was called more often than scripted")

        return gen()

    models = Models(
        embeddings=offline_models.embeddings,
        embedding_key=offline_models.embedding_key,
        embedding_dim=offline_models.embedding_dim,
        chat=ToolCallingFake(messages=feed("chat")),
        judge=ToolCallingFake(messages=feed("judge")),
    )
    async with open_services(settings, models, database_url=database_url) as svc:
        graph = build_graph(svc, await open_checkpointer(svc))
        yield graph, svc, scripts


async def test_llm_answer_is_streamed_judged_and_cited(llm_setup, demo):
    graph, svc, scripts = llm_setup
    scripts["chat"].append(
        AIMessage(content="Our call-out fee is $89 during regular hours. [pricing-overview]")
    )
    scripts["judge"].append(verdict(grounded=True, policy_ok=True, problems=[], feedback=""))
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "How much is your call-out fee?")
    done = events["message.completed"][0]
    assert done["text"] == "Our call-out fee is $89 during regular hours. [pricing-overview]"
    assert [c["source_id"] for c in done["citations"]] == ["pricing-overview"]
    assert not scripts["chat"] and not scripts["judge"], "each model was asked exactly once"


async def test_llm_judge_failure_redrafts_once_then_hands_off(llm_setup, demo):
    graph, svc, scripts = llm_setup
    bad = AIMessage(content="We will give you 50% off your first visit! [pricing-overview]")
    scripts["chat"] += [bad, bad, AIMessage(content="Summary: customer wants a discount.")]
    scripts["judge"] += [
        verdict(grounded=False, policy_ok=False, problems=["50% off"], feedback="no discounts"),
        verdict(grounded=False, policy_ok=False, problems=["50% off"], feedback="no discounts"),
    ]
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "How much is your call-out fee?")
    assert events["handoff"][0]["reason"] == "judge_failed"
    assert "token" not in events, "nothing the judge failed is streamed"
    payload = (await graph.aget_state(thread_config(cid))).interrupts[0].value
    assert payload["summary"] == "Summary: customer wants a discount."
    msgs = await conversations.list_messages(svc.pool, demo.id, cid)
    assert [m["sender"] for m in msgs] == ["customer"]


async def test_llm_no_answer_declines(llm_setup, demo):
    graph, svc, scripts = llm_setup
    scripts["chat"].append(AIMessage(content="NO_ANSWER"))
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "What are your call-out fees on public holidays?")
    done = events["message.completed"][0]
    assert done["declined"] is True and done["citations"] == []


async def test_llm_tier_handoff_and_resume(llm_setup, demo):
    graph, svc, scripts = llm_setup
    scripts["chat"].append(AIMessage(content="Customer asked for a person."))
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "I want to talk to a person")
    assert events["handoff"][0]["reason"] == "explicit_request"
    values = await resume(graph, cid, {"action": "reply", "text": "Hello, this is Sam."})
    reply = dict(values["reply"])
    assert reply.pop("in_reply_to")  # the customer message it answers
    assert reply == {
        "text": "Hello, this is Sam.",
        "sender": "agent",
        "citations": [],
        "confidence": None,
        "declined": False,
    }


async def test_llm_tier_never_drafts_for_a_customer_in_danger(llm_setup, demo):
    graph, svc, _scripts = llm_setup
    # Nothing is scripted: a call to either model would fail the turn.
    for text in ("I smell gas in my kitchen", "the carbon monoxide alarm is going off"):
        cid = await new_conversation(svc, demo)
        events = await turn(graph, svc, demo, cid, text)
        assert "error" not in events, events
        done = events["message.completed"][0]
        assert done["citations"][0]["source_id"] == "gas-leak-safety"
        assert "911" in done["text"]
        assert events["handoff"][0]["reason"].startswith("safety:")
        payload = (await graph.aget_state(thread_config(cid))).interrupts[0].value
        assert payload["summary"].startswith("Hand-off (safety:")


async def test_llm_prompt_asks_for_the_latest_question_and_carries_the_rejection(
    llm_setup,
):
    """Issue 19 items 7, 8, 11: the drafter's prompt says which question to answer (the
    previous one is context only), yes/no first, and a redraft after a rejection carries the
    rejected draft and the reviewer's reason; the same text again hands off."""
    import uuid as _uuid

    from helpdesk.policy import TenantPolicy
    from helpdesk.tenants import create_tenant
    from kb_pipeline.loaders import demo_kb_path, load_directory

    graph, svc, scripts = llm_setup
    tenant = await create_tenant(
        svc.pool, f"llmrev-{_uuid.uuid4().hex[:8]}", "Reviewed Co", TenantPolicy(review_all=True)
    )
    await svc.kb.ingest(tenant.id, load_directory(demo_kb_path()))
    seen: list[list[Any]] = []
    chat = svc.models.chat
    original = chat.astream

    def recording(messages: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(list(messages))
        return original(messages, *args, **kwargs)

    object.__setattr__(chat, "astream", recording)
    first = "Our call-out fee is $89 during regular hours. [pricing-overview]"
    scripts["chat"] += [AIMessage(content=first) for _ in range(3)]
    scripts["chat"].append(AIMessage(content="Summary: fee question."))
    ok = verdict(grounded=True, policy_ok=True, problems=[], feedback="")
    scripts["judge"] += [ok, ok]
    cid = await new_conversation(svc, tenant)
    await turn(graph, svc, tenant, cid, "Do you charge a call-out fee?")
    await resume(graph, cid, {"action": "approve"})
    await turn(graph, svc, tenant, cid, "How much is your call-out fee?")
    system, user = seen[-1][0].content, seen[-1][1].content
    assert "latest question" in system and '"Yes" or "No"' in system
    assert "latest question, the one to answer:\nHow much is your call-out fee?" in user
    assert "previous message, for context only: Do you charge a call-out fee?" in user
    await resume(graph, cid, {"action": "reject", "reason": "mention the after-hours fee too"})
    redraft = seen[-1][1].content
    assert f"rejected this draft answer; do not send it again: {first}" in redraft
    assert "mention the after-hours fee too" in redraft
    # the model offered the rejected text again: a person takes over, nothing is sent
    state = await graph.aget_state(thread_config(cid))
    assert state.interrupts[0].value["kind"] == "handoff"
    assert state.interrupts[0].value["reason"] == "draft_rejected"
