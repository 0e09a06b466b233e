"""One customer turn, or one agent action, as a stream of named events (the SSE vocabulary).

``message.created`` -> ``status`` (per node) -> ``token``* -> ``message.completed`` |
``handoff`` | ``approval.pending`` -> ``done``; ``error`` replaces the rest on failure. An agent
action that resumes the thread streams the same way, with ``agent.message`` for an agent's
reply. The same generators feed the SSE and JSON routes and ``deskgraph chat``.

These functions assume the caller holds the conversation's lease (:mod:`helpdesk.leases`):
two runs of one thread at once would interleave its checkpoints.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from graph.context import Context
from graph.nodes.guard_input import message_uuid
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant

log = logging.getLogger(__name__)
Event = tuple[str, dict[str, Any]]
Graph = CompiledStateGraph[Any, Any, Any, Any]


def thread_config(conversation_id: uuid.UUID) -> RunnableConfig:
    """LangGraph config of a conversation's thread (thread id = conversation id)."""
    return {"configurable": {"thread_id": str(conversation_id)}}


async def pending_interrupts(graph: Graph, conversation_id: uuid.UUID) -> list[Any]:
    """The interrupts the conversation's thread waits on (empty when it does not wait)."""
    snapshot = await graph.aget_state(thread_config(conversation_id))
    return list(snapshot.interrupts)


async def store_while_waiting(
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    text: str,
    *,
    message_id: str | None = None,
) -> Event:
    """Keep a customer message for the agent without waking the AI.

    ``message_id`` (from an Idempotency-Key) makes a retried store write nothing twice. While
    a draft is held for review the message also waits for its own AI turn after the review
    (``after_review`` in the event; :mod:`api.after_review` runs it); during a hand-off it is
    the person's to answer.
    """
    key = message_id or str(uuid.uuid4())
    msg_id = message_uuid(conversation_id, key, 0)
    conv = await conversations.get_conversation(services.pool, tenant.id, conversation_id)
    after_review = conversations.waiting_on(conv["status"], conv["escalation"]) == "approval"
    await conversations.add_message(
        services.pool,
        tenant.id,
        conversation_id,
        message_id=msg_id,
        sender="customer",
        text=text,
        pending_turn_key=key if after_review else None,
    )
    data = {
        "message_id": str(msg_id),
        "sender": "customer",
        "text": text,
        "queued_for_agent": True,
        "after_review": after_review,
    }
    await conversations.append_event(
        services.pool,
        tenant.id,
        conversation_id,
        "message.created",
        data,
        dedupe_key=f"customer:{msg_id}",
    )
    return "message.created", data


def waiting_status(stored: Event) -> Event:
    """The ``status`` event after a message kept by :func:`store_while_waiting`: says what the
    conversation waits on, so a client can tell the customer the truth."""
    if stored[1].get("after_review"):
        return "status", {"status": "waiting_human", "waiting_on": "approval"}
    return "status", {"status": "waiting_human"}


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


async def _stream(
    graph: Graph,
    services: Services,
    conversation_id: uuid.UUID,
    graph_input: Any,
    *,
    context: Context | None,
    customer_text: str | None = None,
    customer_message_id: str | None = None,
) -> AsyncIterator[Event]:
    # A list stream_mode makes astream yield (mode, chunk) pairs, which its return type
    # (a union with dict) does not express: declare the chunk's type up front.
    chunk: Any
    kwargs: dict[str, Any] = {"context": context} if context is not None else {}
    async for mode, chunk in graph.astream(
        graph_input,
        thread_config(conversation_id),
        stream_mode=["updates", "custom"],
        **kwargs,
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
            if node == "guard_input" and customer_text is not None:
                msg_id = message_uuid(conversation_id, customer_message_id, update.get("turn", 0))
                yield (
                    "message.created",
                    {"message_id": str(msg_id), "sender": "customer", "text": customer_text},
                )
            if node == "respond" and update.get("reply"):
                reply = update["reply"]
                name = "agent.message" if reply["sender"] == "agent" else "message.completed"
                yield (
                    name,
                    {
                        "message_id": update["messages"][0].id,
                        "sender": reply["sender"],
                        "text": reply["text"],
                        "citations": reply["citations"],
                        "confidence": reply["confidence"],
                        "declined": reply["declined"],
                        "in_reply_to": reply.get("in_reply_to"),
                    },
                )


def _failed(conversation_id: uuid.UUID, what: str) -> Event:
    log.exception("%s failed for conversation %s", what, conversation_id)
    return (
        "error",
        {
            "code": "turn_failed",
            "message": "The assistant failed on this message; "
            "it was saved and a person can pick it up.",
        },
    )


async def run_turn(
    graph: Graph,
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    text: str,
    *,
    channel: str = "web",
    message_id: str | None = None,
) -> AsyncIterator[Event]:
    """Run one customer turn and yield its events.

    ``message_id`` names the customer's message (the API derives it from an Idempotency-Key so
    a turn re-run after a crash replaces the message instead of adding a second one).
    """
    if await pending_interrupts(graph, conversation_id):
        stored = await store_while_waiting(
            services, tenant, conversation_id, text, message_id=message_id
        )
        yield stored
        yield waiting_status(stored)
        yield "done", {}
        return
    context = Context(tenant=tenant.slug, channel=channel)  # type: ignore[arg-type]
    message = HumanMessage(content=text, id=message_id or str(uuid.uuid4()))
    try:
        async for event in _stream(
            graph,
            services,
            conversation_id,
            {"messages": [message]},
            context=context,
            customer_text=text,
            customer_message_id=message.id,
        ):
            yield event
    except Exception:
        yield _failed(conversation_id, "turn")
    yield "done", {}


async def resume_turn(
    graph: Graph,
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    value: dict[str, Any],
    *,
    channel: str = "web",
) -> AsyncIterator[Event]:
    """Resume the thread's pending interrupt with a validated value and yield the events."""
    # The context matters when the resume drafts again (a rejected draft): same tenant view.
    context = Context(tenant=tenant.slug, channel=channel)  # type: ignore[arg-type]
    try:
        async for event in _stream(
            graph, services, conversation_id, Command(resume=value), context=context
        ):
            yield event
    except Exception:
        yield _failed(conversation_id, "resume")
    yield "done", {}
