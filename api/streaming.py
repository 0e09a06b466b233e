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

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from graph.context import Context
from graph.nodes.guard_input import message_uuid
from graph.safety import safety_reply
from graph.services import Services
from helpdesk import conversations, tickets
from helpdesk.tenants import Tenant
from helpdesk.text_policy import check_text
from nlp.hazards import detect_hazard

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
    the person's to answer. Text the desk refuses raises
    :class:`helpdesk.text_policy.InvalidText` before any write.
    """
    check_text(text, "text")
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


async def danger_while_waiting(
    services: Services, tenant: Tenant, conversation_id: uuid.UUID, stored: Event
) -> Event | None:
    """A customer in danger gets the safety steps at once, even while a person owns the
    conversation or a draft waits for review: nobody may have to wait on a reviewer or an
    agent's next look to read "leave the house, call the gas company". The steps are the same
    fixed, never-paraphrased reply the ``safety`` node sends (:func:`graph.safety.safety_reply`),
    and the conversation's open ticket becomes urgent, so it tops the queue. Keyed by the
    customer's message, so a retried store sends nothing twice. None when no hazard is named.
    """
    data = stored[1]
    alert = detect_hazard(data["text"])
    if alert is None:
        return None
    reply = await safety_reply(services, tenant, alert)
    question = uuid.UUID(data["message_id"])
    reply_id = uuid.uuid5(conversation_id, f"safety:{question}")
    await conversations.add_message(
        services.pool,
        tenant.id,
        conversation_id,
        message_id=reply_id,
        sender="ai",
        text=reply["text"],
        intent="emergency",
        citations=[dict(c) for c in reply["citations"]],
        in_reply_to=question,
    )
    payload = {
        "message_id": str(reply_id),
        "sender": "ai",
        "text": reply["text"],
        "citations": reply["citations"],
        "confidence": None,
        "declined": False,
        "in_reply_to": str(question),
    }
    await conversations.append_event(
        services.pool,
        tenant.id,
        conversation_id,
        "message.completed",
        payload,
        dedupe_key=f"reply:{reply_id}",
    )
    ticket = await tickets.open_ticket(services.pool, tenant.id, conversation_id)
    if ticket is not None and ticket["priority"] != "urgent":
        await tickets.set_ticket_status(
            services.pool, tenant.id, ticket["id"], ticket["status"], priority="urgent"
        )
    log.warning(
        "conversation %s: %s reported while waiting on a person", conversation_id, alert["hazard"]
    )
    return "message.completed", payload


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
            # respond, or safety before its hand-off: a node that sent a reply returns it
            # together with its transcript message (a resume's reply has none yet)
            if isinstance(update, dict) and update.get("reply") and update.get("messages"):
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


def _failed(conversation_id: uuid.UUID, what: str, *, saved: bool = True) -> Event:
    log.exception("%s failed for conversation %s", what, conversation_id)
    # Only a message that was stored (``message.created`` went out) can be picked up.
    message = (
        "The assistant failed on this message; it was saved and a person can pick it up."
        if saved
        else "The assistant failed on this message and it could not be saved; please send it again."
    )
    return ("error", {"code": "turn_failed", "message": message})


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
    a turn re-run after a crash stores the message once). Text the desk refuses raises
    :class:`helpdesk.text_policy.InvalidText` before anything runs: every channel (HTTP, CLI,
    email) goes through here.

    After a crash (the process died mid-turn, see :func:`cut_off`) the thread is resumed from
    its checkpoint rather than started again on top: running the same message again would
    replace it in place in the thread, ahead of any answer already given, and the guard would
    then read that answer's position as an empty message (``blocked_input:invalid``).

    * The retried message itself (same ``message_id``): its turn is finished from the
      checkpoint, or, when it had finished, its answer (or the hand-off / review it ended in)
      is given again. Stored and answered once.
    * Another message: the cut-off turn is finished first, so the unanswered question is
      answered (its events come first in this stream), then this message is run as usual.
    """
    check_text(text, "text")
    context = Context(tenant=tenant.slug, channel=channel)  # type: ignore[arg-type]
    snapshot = await graph.aget_state(thread_config(conversation_id))
    if message_id is not None:
        retried = [e async for e in _retried(graph, services, snapshot, message_id, context)]
        if retried:
            for event in retried:
                yield event
            yield "done", {}
            return
    if cut_off(snapshot):
        log.warning("conversation %s: resuming a turn cut off mid-way", conversation_id)
        async for event in _resume_cut_off(graph, services, conversation_id, context):
            yield event
        snapshot = await graph.aget_state(thread_config(conversation_id))
    if snapshot.interrupts:
        stored = await store_while_waiting(
            services, tenant, conversation_id, text, message_id=message_id
        )
        yield stored
        if danger := await danger_while_waiting(services, tenant, conversation_id, stored):
            yield danger
        yield waiting_status(stored)
        yield "done", {}
        return
    message = HumanMessage(content=text, id=message_id or str(uuid.uuid4()))
    saved = False
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
            saved = saved or event[0] == "message.created"
            yield event
    except Exception:
        yield _failed(conversation_id, "turn", saved=saved)
    yield "done", {}


def cut_off(snapshot: Any) -> bool:
    """Whether the thread's last run stopped between steps with nothing to wait for: no
    interrupt, no failed step. Only a process that died mid-turn leaves a thread so."""
    return (
        bool(snapshot.next)
        and not snapshot.interrupts
        and not any(task.error for task in snapshot.tasks)
    )


async def _resume_cut_off(
    graph: Graph, services: Services, conversation_id: uuid.UUID, context: Context
) -> AsyncIterator[Event]:
    """Finish a cut-off turn from its checkpoint (``None`` input: run the pending steps)."""
    try:
        async for event in _stream(graph, services, conversation_id, None, context=context):
            yield event
    except Exception:
        yield _failed(conversation_id, "resumed turn")


async def _retried(
    graph: Graph, services: Services, snapshot: Any, message_id: str, context: Context
) -> AsyncIterator[Event]:
    """The events of a message that is already in the thread (a retry after a crash): its
    turn finished from the checkpoint, or its answer / interrupt again. Nothing when the
    message is not in the thread, or its turn failed (it is then run again as usual)."""
    messages: list[Any] = list((snapshot.values or {}).get("messages") or [])
    asked = next(
        (i for i, m in enumerate(messages) if isinstance(m, HumanMessage) and m.id == message_id),
        None,
    )
    if asked is None:
        return
    last = not any(isinstance(m, HumanMessage) for m in messages[asked + 1 :])
    conversation_id = uuid.UUID(str(snapshot.config["configurable"]["thread_id"]))
    if last and cut_off(snapshot):
        log.warning("conversation %s: resuming the retried turn", conversation_id)
        async for event in _resume_cut_off(graph, services, conversation_id, context):
            yield event
        return
    answer = _answer_after(messages, asked)
    if answer is not None:
        yield answer
    elif last:
        for intr in snapshot.interrupts:
            yield _interrupt_event(intr.value, services)


def _answer_after(messages: list[Any], asked: int) -> Event | None:
    """The reply the thread holds to the customer message at ``asked`` (None if none)."""
    for m in messages[asked + 1 :]:
        if isinstance(m, HumanMessage):
            return None
        if isinstance(m, AIMessage):
            extra = m.additional_kwargs
            sender = extra.get("sender") or m.name or "ai"
            return (
                "agent.message" if sender == "agent" else "message.completed",
                {
                    "message_id": m.id,
                    "sender": sender,
                    "text": m.text,
                    "citations": extra.get("citations", []),
                    "confidence": extra.get("confidence"),
                    "declined": bool(extra.get("declined", False)),
                },
            )
    return None


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
