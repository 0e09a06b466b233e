"""What a tool call acts for, injected by the loop: never an argument the model chooses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from graph.services import Services
from helpdesk.tenants import Tenant
from kb_pipeline.index import Retrieved


@dataclass
class ToolRun:
    """The run a tool call belongs to, and what the calls of one turn leave behind."""

    svc: Services
    tenant: Tenant
    conversation_id: uuid.UUID
    audience: Literal["customer", "agent"] = "customer"
    found: list[Retrieved] = field(default_factory=list)
    """Knowledge-base chunks the tools read: the draft may cite them and the judge checks
    the answer against them, as against the retrieved ones."""
    handoff_reason: str | None = None
    """Set by ``request_handoff`` (or a quote over the limit): the turn goes to a person."""
