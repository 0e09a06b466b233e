"""A question answered in a fresh conversation, read back whole: for evals and probes.

The conversation is a real one of the tenant (channel ``api``); the run is read by
:func:`desk.stream.read_run` like any turn, and the state updates are kept beside the events,
since an eval also scores what the customer never sees (the draft, the retrieved chunks, the
intent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AnyMessage

from desk.stream import Graph, read_run
from graph.context import Context
from graph.events import Event
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant


@dataclass
class Probe:
    """What one run produced."""

    events: list[Event]
    values: dict[str, Any] = field(default_factory=dict)
    """Every state update of the run, last value per key (``messages`` left out)."""
    latency_s: float = 0.0

    def has(self, name: str) -> bool:
        """Whether the run produced an event of that name."""
        return any(n == name for n, _ in self.events)


async def probe(
    graph: Graph, services: Services, tenant: Tenant, messages: Sequence[AnyMessage]
) -> Probe:
    """Run ``messages`` (the transcript so far, the question last) as one turn of a new
    conversation and return its events and state updates."""
    cid = await conversations.create_conversation(services.pool, tenant.id, channel="api")
    context = Context.for_run(tenant, cid, "api")
    values: dict[str, Any] = {}
    started = time.perf_counter()
    produced = [
        event
        async for event in read_run(
            graph, services, cid, {"messages": list(messages)}, context=context, values=values
        )
    ]
    return Probe(produced, values, time.perf_counter() - started)
