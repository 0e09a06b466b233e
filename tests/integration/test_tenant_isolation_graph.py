"""The AI path writes under row-level security: a run for tenant A on tenant B's conversation
reads and writes nothing of B (issue 12, item 4)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from desk.stream import thread_config
from desk.turns import resume_turn, run_turn
from graph.context import Context
from graph.graph import build_graph
from graph.services import Services
from helpdesk import conversations
from helpdesk.errors import NotFound
from helpdesk.tenants import Tenant, create_tenant
from tests.support.turns import turn

pytestmark = pytest.mark.integration


async def _rows_of(services: Services, cid: uuid.UUID) -> dict[str, Any]:
    """Everything the database holds for the conversation, whoever's rows they are."""
    async with services.pool.connection() as conn:
        out: dict[str, Any] = {}
        for table in ("conversations", "messages", "conversation_events", "tickets"):
            column = "id" if table == "conversations" else "conversation_id"
            cur = await conn.execute(
                f"SELECT to_jsonb(t) AS row FROM {table} t WHERE {column} = %s ORDER BY 1::text",
                (cid,),
            )
            out[table] = sorted(str(r["row"]) for r in await cur.fetchall())
    return out


@pytest.fixture
async def other(services: Services) -> tuple[Tenant, uuid.UUID]:
    """Tenant B with a conversation handed to a person (messages, events, a ticket)."""
    b = await create_tenant(services.pool, f"b-{uuid.uuid4().hex[:8]}", "Other Co")
    cid = await conversations.create_conversation(services.pool, b.id)
    return b, cid


async def test_a_run_for_another_tenant_reads_and_writes_nothing_of_it(
    graph: Any, services: Services, demo: Tenant, other: tuple[Tenant, uuid.UUID]
) -> None:
    b, cid = other
    events = await turn(graph, services, b, cid, "I want to talk to a person")
    assert "handoff" in events
    before = await _rows_of(services, cid)
    thread_before = (await graph.aget_state(thread_config(cid))).values
    assert before["tickets"] and before["messages"], "B's conversation has rows to protect"

    # Through the desk: refused before the thread is read or run.
    with pytest.raises(NotFound):
        [e async for e in run_turn(graph, services, demo, cid, "What are your opening hours?")]
    with pytest.raises(NotFound):
        value = {"action": "reply", "text": "hi", "agent": "mallory"}
        [e async for e in resume_turn(graph, services, demo, cid, value)]
    assert (await graph.aget_state(thread_config(cid))).values == thread_before

    # The graph itself (without a checkpointer, so B's thread is not touched either), run for
    # A with B's conversation id, as a bug would: its writes run as A under row-level
    # security, so B's row stays invisible (not_found) and nothing is written beside it.
    with pytest.raises(NotFound):
        await build_graph(services).ainvoke(
            {"messages": [HumanMessage("I want to talk to a person", id="x")]},
            context=Context.for_run(demo, cid),
        )
    assert await _rows_of(services, cid) == before
