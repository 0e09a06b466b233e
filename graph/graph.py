"""Assemble the support graph.

    START -> guard_input -> route_after_guard: safety | classify
    safety (the safety steps, sent at once) -> route_after_safety: handoff | human_turn
    classify -> route_after_classify
        human_turn (interrupt) | handoff -> await_agent (interrupt) | respond
        | retrieve -> draft -> judge
    judge -> route_after_judge: respond | approve (interrupt) | draft (once) | handoff
    approve / await_agent / human_turn -> respond (or draft / handoff after a rejection)
    respond -> END

``build_graph`` is what the API, the CLI and the tests call with their own services and
checkpointer. ``make_graph`` is the factory ``langgraph.json`` names for LangGraph Studio /
``langgraph dev``: it connects to the configured database when the server starts, not at import
time, and leaves checkpointing to the LangGraph server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.nodes import (
    approve,
    classify,
    draft,
    guard_input,
    handoff,
    judge,
    respond,
    retrieve,
    safety,
)
from graph.routing import (
    route_after_classify,
    route_after_guard,
    route_after_judge,
    route_after_safety,
)
from graph.services import Services
from graph.state import InputState, OutputState, SupportState

ENTRY = "guard_input"
"""The first node of every run: its ``status`` opens a turn's stream."""


def build_graph(
    services: Services, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the support graph over ``services``."""
    g = StateGraph(
        SupportState, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    g.add_node(ENTRY, guard_input.make(services))
    g.add_node("safety", safety.make(services))
    g.add_node("classify", classify.make(services))
    g.add_node("retrieve", retrieve.make(services))
    g.add_node("draft", draft.make(services))
    g.add_node("judge", judge.make(services))
    g.add_node("approve", approve.make(services))
    g.add_node("handoff", handoff.make_handoff(services))
    g.add_node("await_agent", handoff.make_await_agent(services))
    g.add_node("human_turn", handoff.make_human_turn(services))
    g.add_node("respond", respond.make(services))

    g.add_edge(START, ENTRY)
    g.add_conditional_edges(ENTRY, route_after_guard)
    g.add_conditional_edges("safety", route_after_safety)
    g.add_conditional_edges("classify", route_after_classify)
    g.add_edge("retrieve", "draft")
    g.add_edge("draft", "judge")
    g.add_conditional_edges("judge", route_after_judge)
    g.add_edge("handoff", "await_agent")
    g.add_edge("respond", END)
    return g.compile(checkpointer=checkpointer, name="support")


@contextlib.asynccontextmanager
async def make_graph(config: Any = None) -> AsyncIterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """Graph factory for ``langgraph dev`` / Studio (see ``langgraph.json``)."""
    from graph.runtime import open_services

    async with open_services() as services:
        yield build_graph(services)
