"""Small helpers for driving a turn in tests."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.types import Command

from desk.stream import thread_config
from desk.turns import run_turn
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant


async def new_conversation(services: Services, tenant: Tenant, channel: str = "web") -> uuid.UUID:
    return await conversations.create_conversation(services.pool, tenant.id, channel=channel)


async def turn(
    graph: Any, services: Services, tenant: Tenant, cid: uuid.UUID, text: str, channel: str = "web"
) -> dict[str, list[dict[str, Any]]]:
    """Run one customer turn; return its events grouped by name."""
    out: dict[str, list[dict[str, Any]]] = {}
    async for name, data in run_turn(graph, services, tenant, cid, text, channel=channel):
        out.setdefault(name, []).append(data)
    return out


async def resume(graph: Any, cid: uuid.UUID, value: dict[str, Any]) -> dict[str, Any]:
    """Resume the thread's interrupt with ``value``; return the final state values."""
    await graph.ainvoke(Command(resume=value), thread_config(cid))
    return (await graph.aget_state(thread_config(cid))).values
