"""One customer turn, or one resumed interrupt, as a stream of events (:mod:`graph.events`).

``message.created`` -> ``status`` (per node) -> ``token``* -> ``message.completed`` |
``handoff`` | ``approval.pending`` -> ``done``; ``error`` replaces the rest on failure. An agent
action that resumes the thread streams the same way, with ``agent.message`` for an agent's
reply. The same generators feed the SSE and JSON routes, ``deskgraph chat`` and the evals.

These functions assume the caller holds the conversation (:class:`desk.gate.ConversationGate`):
two runs of one thread at once would interleave its checkpoints.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command

from desk.stream import Graph, cut_off, interrupt_event, read_run, thread_config
from desk.waiting import danger_while_waiting, store_while_waiting, waiting_status
from graph import events
from graph.context import Context
from graph.events import Event
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant
from helpdesk.text_policy import check_text

log = logging.getLogger(__name__)


async def _owned(services: Services, tenant: Tenant, conversation_id: uuid.UUID) -> None:
    """Raise ``not_found`` unless the conversation is the tenant's, before its thread (which
    has no tenant column of its own) is read or run. One filtered read, not a row-level
    security transaction: the filter by tenant is the check, and a turn pays for it every time."""
    await conversations.get_conversation(services.pool, tenant.id, conversation_id)


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
    await _owned(services, tenant, conversation_id)
    context = Context.for_run(tenant, conversation_id, channel)  # type: ignore[arg-type]
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
        async for event in read_run(
            graph, services, conversation_id, {"messages": [message]}, context=context
        ):
            saved = saved or event[0] == "message.created"
            yield event
    except Exception:
        yield _failed(conversation_id, "turn", saved=saved)
    yield "done", {}


async def _resume_cut_off(
    graph: Graph, services: Services, conversation_id: uuid.UUID, context: Context
) -> AsyncIterator[Event]:
    """Finish a cut-off turn from its checkpoint (``None`` input: run the pending steps)."""
    try:
        async for event in read_run(graph, services, conversation_id, None, context=context):
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
            yield interrupt_event(intr.value, services)


def _answer_after(messages: list[Any], asked: int) -> Event | None:
    """The reply the thread holds to the customer message at ``asked`` (None if none)."""
    for m in messages[asked + 1 :]:
        if isinstance(m, HumanMessage):
            return None
        if isinstance(m, AIMessage):
            extra = m.additional_kwargs
            sent = {
                "sender": extra.get("sender") or m.name or "ai",
                "text": m.text,
                "citations": extra.get("citations", []),
                "confidence": extra.get("confidence"),
                "declined": bool(extra.get("declined", False)),
            }
            return events.reply_sent(str(m.id), sent)
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
    await _owned(services, tenant, conversation_id)
    # The context matters when the resume drafts again (a rejected draft): same tenant view.
    context = Context.for_run(tenant, conversation_id, channel)  # type: ignore[arg-type]
    try:
        async for event in read_run(
            graph, services, conversation_id, Command(resume=value), context=context
        ):
            yield event
    except Exception:
        yield _failed(conversation_id, "resume")
    yield "done", {}
