"""Per-run context, passed to the graph as ``context_schema``: who the run is for.

The conversation service (:mod:`desk`) resolves the tenant and names the conversation once per
run and passes both here (:meth:`Context.for_run`), so no node looks them up again. LangGraph
Studio and ``langgraph dev`` pass nothing (or only the slug): then the tenant is read by its slug
(the thread's bound tenant first) and the conversation is the thread's id, once per node, from a
cache (:meth:`graph.services.Services.scope`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from helpdesk.tenants import Tenant


@dataclass(frozen=True)
class Context:
    """Who the run is for and through what channel."""

    tenant: str = "demo"
    """Slug of the tenant whose knowledge base and policy apply."""
    channel: Literal["web", "email", "api"] = "web"
    """Channel of the conversation; the approval policy may depend on it."""
    audience: Literal["customer", "agent"] = "customer"
    """Customers retrieve external articles only; agents see internal ones too."""
    conversation_id: uuid.UUID | None = None
    """The conversation (= thread) the run is for; None: the thread's id (Studio)."""
    resolved: Tenant | None = None
    """The tenant itself, when the caller has it (always, from :mod:`desk`)."""

    @classmethod
    def for_run(
        cls,
        tenant: Tenant,
        conversation_id: uuid.UUID,
        channel: Literal["web", "email", "api"] = "web",
    ) -> Context:
        """The context of a run the desk starts."""
        return cls(
            tenant=tenant.slug, channel=channel, conversation_id=conversation_id, resolved=tenant
        )
