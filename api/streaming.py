"""One customer turn as a stream of named events (the SSE vocabulary of the design).

``message.created`` -> ``status`` (per node) -> ``token``* -> ``message.completed`` |
``handoff`` | ``approval.pending`` -> ``done``; ``error`` replaces the rest on failure.
The same generator feeds the SSE route, the JSON route and ``deskgraph chat``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.nodes.guard_input import message_uuid
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant

log = logging.getLogger(__name__)
Event = tuple[str, dict[str, Any]]


def thread_config(conversation_id: uuid.UUID) -> RunnableConfig:
    """LangGraph config of a conversation's thread (thread id = conversation id)."""
    return {"configurable": {"thread_id": str(conversation_id)}}


async def pending_interrupts(
    graph: CompiledStateGraph[Any, Any, Any, Any], conversation_id: uuid.UUID
) -> list[Any]:
    """The interrupts the conversation's thread waits on (empty when it does not wait)."""
    snapshot = await graph.aget_state(thread_config(conversation_id))
    return list(snapshot.interrupts)


async def _store_while_waiting(
    services: Services, tenant: Tenant, conversation_id: uuid.UUID, text: str
) -> Event:
    # The thread waits on a human: the message is kept for the agent and does not wake the AI.
    msg_id = message_uuid(conversation_id, str(uuid.uuid4()), 0)
    await conversations.add_message(
        services.pool, tenant.id, conversation_id, message_id=msg_id, sender="customer", text=text
    )
    data = {"message_id": str(msg_id), "sender": "customer", "text": text, "queued_for_agent": True}
    await conversations.append_event(
        services.pool, tenant.id, conversation_id, "message.created", data
    )
    return "message.created", data


def _interrupt_event(value: dict[str, Any], services: Services) -> Event:
    kind = value.get("kind")
    if kind == "approval":
        return "approval.pending", {
            "message": "An answer is being reviewed by our team.",
            "review_reasons": value.get("review_reasons", []),
        }
    if kind == "handoff":
        return "handoff", {
            "reason": value.get("reason"),
            "ticket_id": value.get("ticket_id"),
            "ticket_number": value.get("ticket_number"),
            "message": services.prompts.reply("handoff"),
        }
    return "status", {"status": "waiting_human"}


async def run_turn(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    text: str,
    *,
    channel: str = "web",
) -> AsyncIterator[Event]:
    """Run one customer turn and yield its events."""
    config = thread_config(conversation_id)
    if await pending_interrupts(graph, conversation_id):
        yield await _store_while_waiting(services, tenant, conversation_id, text)
        yield "status", {"status": "waiting_human"}
        yield "done", {}
        return
    context = Context(tenant=tenant.slug, channel=channel)  # type: ignore[arg-type]
    message = HumanMessage(content=text, id=str(uuid.uuid4()))
    # A list stream_mode makes astream yield (mode, chunk) pairs, which its return type
    # (a union with dict) does not express: declare the chunk's type up front.
    chunk: Any
    try:
        async for mode, chunk in graph.astream(
            {"messages": [message]}, config, context=context, stream_mode=["updates", "custom"]
        ):
            if mode == "custom":
                if chunk.get("type") == "token":
                    yield "token", {"text": chunk["text"], "message_id": chunk["message_id"]}
                continue
            for node, update in chunk.items():
                if node == "__interrupt__":
                    for intr in update:
                        yield _interrupt_event(intr.value, services)
                    continue
                yield "status", {"node": node}
                if node == "guard_input":
                    msg_id = message_uuid(conversation_id, message.id, update.get("turn", 0))
                    yield (
                        "message.created",
                        {"message_id": str(msg_id), "sender": "customer", "text": text},
                    )
                if node == "respond" and update.get("reply"):
                    reply = update["reply"]
                    yield (
                        "message.completed",
                        {
                            "message_id": update["messages"][0].id,
                            "sender": reply["sender"],
                            "text": reply["text"],
                            "citations": reply["citations"],
                            "confidence": reply["confidence"],
                            "declined": reply["declined"],
                        },
                    )
    except Exception:
        log.exception("turn failed for conversation %s", conversation_id)
        yield (
            "error",
            {
                "code": "turn_failed",
                "message": "The assistant failed on this message; "
                "it was saved and a person can pick it up.",
            },
        )
    yield "done", {}
