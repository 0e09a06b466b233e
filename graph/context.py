"""Per-run context, passed to the graph as ``context_schema``.

The API fills it from the authenticated tenant and the channel of the request; LangGraph Studio
and ``langgraph dev`` use the defaults (the demo tenant on the web channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Context:
    """Who the run is for and through what channel."""

    tenant: str = "demo"
    """Slug of the tenant whose knowledge base and policy apply."""
    channel: Literal["web", "email", "api"] = "web"
    """Channel of the conversation; the approval policy may depend on it."""
    audience: Literal["customer", "agent"] = "customer"
    """Customers retrieve external articles only; agents see internal ones too."""
