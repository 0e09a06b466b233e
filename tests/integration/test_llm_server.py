"""The LLM tier against a real OpenAI-compatible server: llama.cpp (tests/support/
llama_fixtures.py). Run by ``make test-llm``; they assert the protocol and the graph's
behaviour, not the wisdom of the 270M base model behind it."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from desk.stream import thread_config
from graph.llm.structured import structured
from graph.nodes.judge import LlmJudgement
from graph.tools.catalog import get_business_profile
from graph.tools.loop import run_tool, tool_name
from graph.tools.run import ToolRun
from helpdesk.tenancy import tenant_scope
from tests.support.turns import new_conversation, turn

pytestmark = [pytest.mark.integration, pytest.mark.llm_server]


async def usage_nodes(svc, demo, cid) -> list[str]:
    async with tenant_scope(svc.pool, demo.id) as db:
        cur = await db.execute(
            "SELECT node FROM llm_usage WHERE conversation_id = %s ORDER BY created_at", (cid,)
        )
        return [r["node"] for r in await cur.fetchall()]


async def test_judge_gets_schema_valid_structured_output(llm_stack):
    svc, _ = llm_stack
    verdict = await structured(
        svc.models.judge,
        LlmJudgement,
        [
            SystemMessage("Rule on the draft. Answer in JSON."),
            HumanMessage("Draft answer: We open at 8. [hours]"),
        ],
        "json_object_schema",
    )
    assert isinstance(verdict, LlmJudgement)
    assert isinstance(verdict.grounded, bool) and isinstance(verdict.problems, list)


async def test_a_turn_through_the_real_server_streams_only_what_passed(llm_stack, demo):
    svc, graph = llm_stack
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "How much is your call-out fee?")
    nodes = await usage_nodes(svc, demo, cid)
    assert "draft" in nodes, "the drafter asked the real server"
    assert "error" not in events
    if "message.completed" in events:
        streamed = "".join(t["text"] for t in events["token"])
        assert streamed == events["message.completed"][0]["text"]
        assert "judge" in nodes or events["message.completed"][0]["declined"]
    else:
        # the judge turned the model's drafts down: a person, never the failed text
        assert events["handoff"][0]["ticket_number"] > 0
        assert "token" not in events
    async with tenant_scope(svc.pool, demo.id) as db:
        cur = await db.execute(
            "SELECT count(*) AS n FROM llm_usage WHERE conversation_id = %s", (cid,)
        )
        assert (await cur.fetchone())["n"] >= 1, "each answered call is recorded"


async def test_handoff_summary_is_written_by_the_model(llm_stack, demo):
    svc, graph = llm_stack
    cid = await new_conversation(svc, demo)
    events = await turn(graph, svc, demo, cid, "I want to talk to a real person please")
    assert events["handoff"][0]["reason"]
    payload = (await graph.aget_state(thread_config(cid))).interrupts[0].value
    assert "handoff" in await usage_nodes(svc, demo, cid)
    assert payload["summary"].strip()
    assert not payload["summary"].startswith("Hand-off ("), "not the offline summary"


async def test_a_tool_call_round_trips_through_the_server(llm_stack, demo):
    svc, _ = llm_stack
    cid = await new_conversation(svc, demo)
    run = ToolRun(svc, demo, cid)
    question = [HumanMessage("When are you open?")]
    # llama.cpp constrains a named tool choice with a grammar: the call is well formed
    model = svc.models.chat.bind_tools([get_business_profile], tool_choice="get_business_profile")
    asked = await model.ainvoke(question)
    call = asked.tool_calls[0]
    assert tool_name(call["name"]) == "get_business_profile"
    answer = await run_tool(run, call["name"], call["args"], call["id"])
    assert isinstance(answer, ToolMessage) and answer.status == "success"
    assert "Open now:" in answer.text
    # the assistant turn as the loop keeps it (graph.tools.loop): its tool call, no extras
    called = AIMessage(content=" ", tool_calls=[{**call, "name": tool_name(call["name"])}])
    final = await svc.models.chat.ainvoke([*question, called, answer])
    assert isinstance(final.text, str)  # the server took the tool result back
