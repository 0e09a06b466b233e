"""The one reader of a graph run: its stream as the events of :mod:`graph.events`.

Every run of a conversation's thread (a customer turn, a resumed interrupt, an eval probe) is
read here and nowhere else, so the HTTP stream, ``deskgraph chat``, the evals and the stored
event log see the same events in the same order:

* ``token`` events pass through as they come (the reply is being typed);
* every other event a node emits waits for that node's ``status``, so a node's status comes
  before what it produced (``status guard_input`` -> ``message.created``; ``token``* ->
  ``status respond`` -> ``message.completed``), the order the HTTP contract documents;
* the interrupt a run stops at becomes ``handoff``, ``approval.pending`` or a ``status`` that
  says the conversation waits on a person.

The caller holds the conversation (:class:`desk.gate.ConversationGate`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from graph import events
from graph.context import Context
from graph.events import Event
from graph.services import Services

Graph = CompiledStateGraph[Any, Any, Any, Any]
INTERRUPT = "__interrupt__"
"""The key LangGraph's ``updates`` stream gives the interrupts a run stopped at."""


def thread_config(conversation_id: uuid.UUID) -> RunnableConfig:
    """LangGraph config of a conversation's thread (thread id = conversation id)."""
    return {"configurable": {"thread_id": str(conversation_id)}}


async def pending_interrupts(graph: Graph, conversation_id: uuid.UUID) -> list[Any]:
    """The interrupts the conversation's thread waits on (empty when it does not wait)."""
    snapshot = await graph.aget_state(thread_config(conversation_id))
    return list(snapshot.interrupts)


def cut_off(snapshot: Any) -> bool:
    """Whether the thread's last run stopped between steps with nothing to wait for: no
    interrupt, no failed step. Only a process that died mid-turn leaves a thread so."""
    return (
        bool(snapshot.next)
        and not snapshot.interrupts
        and not any(task.error for task in snapshot.tasks)
    )


def interrupt_event(value: dict[str, Any], services: Services) -> Event:
    """The event of a pending interrupt (for a run that stopped at it, or a replay)."""
    # The hand-off node stores the message the customer was shown, in the tenant's words; a
    # thread checkpointed before it did falls back to the shared text (it names no business).
    return events.from_interrupt(value, value.get("message") or services.prompts.replies["handoff"])


async def read_run(
    graph: Graph,
    services: Services,
    conversation_id: uuid.UUID,
    graph_input: Any,
    *,
    context: Context,
    values: dict[str, Any] | None = None,
) -> AsyncIterator[Event]:
    """Run the thread with ``graph_input`` (a new message, ``None`` to finish a cut-off run, or
    a ``Command(resume=...)``) and yield its events.

    ``values``, when given, collects every state update of the run (what an eval reads besides
    the events: the draft, the retrieved chunks, the intent).
    """
    held: list[Event] = []
    # A list stream_mode makes astream yield (mode, chunk) pairs, which its return type
    # (a union with dict) does not express: declare the chunk's type up front.
    chunk: Any
    async for mode, chunk in graph.astream(
        graph_input,
        thread_config(conversation_id),
        stream_mode=["updates", "custom"],
        context=context,
    ):
        if mode == "custom":
            event = events.from_custom(chunk)
            if event is None:
                continue
            if event[0] == "token":
                yield event
            else:
                held.append(event)
            continue
        for node, update in chunk.items():
            if node == INTERRUPT:
                for intr in update:
                    yield interrupt_event(intr.value, services)
                continue
            if values is not None and isinstance(update, dict):
                values.update({k: v for k, v in update.items() if k != "messages"})
            yield events.status(node)
            for event in held:
                yield event
            held.clear()
    for event in held:
        yield event
