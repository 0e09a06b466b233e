"""Bodies of the triage-rule and assignment routes (``/v1/admin/triage-rules``,
``/v1/tickets/{id}/assign``, ``/v1/admin/teams/{id}/assignment``). The rules' meaning:
``helpdesk/triage.py``, ``helpdesk/assignment.py`` and docs/tickets.md."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas import _In
from helpdesk.tickets import Impact, Priority, TicketChannel

Value = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]

_RULE_EXAMPLE: dict[str, Any] = {
    "name": "Site down",
    "enabled": True,
    "conditions": {"impact": ["site_down"], "category": ["outage"]},
    "actions": {
        "priority": "urgent",
        "team_id": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
        "add_tags": ["outage"],
    },
}


class RuleConditions(_In):
    """All the conditions given must hold; a list holds when any of its values does. None
    given: the rule matches every new ticket."""

    category: list[Value] | None = Field(default=None, min_length=1, max_length=50)
    impact: list[Impact] | None = Field(default=None, min_length=1, max_length=50)
    priority: list[Priority] | None = Field(default=None, min_length=1, max_length=50)
    channel: list[TicketChannel] | None = Field(default=None, min_length=1, max_length=50)
    intent: list[Value] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Intents of the ticket's hand-off or its conversation.",
    )
    keywords: list[Value] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Words or phrases of the subject or description (whole words, any case).",
    )
    contact_id: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=50)
    organization_id: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=50)


class RuleActions(_In):
    """What a matching rule does (at least one)."""

    priority: Priority | None = None
    team_id: uuid.UUID | None = Field(default=None, description="A team of this tenant.")
    assignee_id: uuid.UUID | None = Field(default=None, description="A user of this tenant.")
    add_tags: list[Tag] | None = Field(default=None, min_length=1, max_length=20)
    apply_suggestion: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Take the AI's suggested category and priority when its confidence is at"
        " least this.",
    )


class RuleIn(_In):
    """One triage rule. ``id`` keeps a stored rule's id (else a new one is made)."""

    id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    actions: RuleActions


class RulesIn(_In):
    """The tenant's triage rules, in the order they apply (the whole list is replaced)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"rules": [_RULE_EXAMPLE]}]}
    )
    rules: list[RuleIn] = Field(max_length=100)


class Rule(BaseModel):
    """A stored triage rule."""

    id: uuid.UUID
    position: int
    name: str
    enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    """The tenant's triage rules in order."""

    rules: list[Rule]


class AssignIn(_In):
    """Assign the ticket to a member of a team who is online."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"mode": "round_robin"}]}
    )
    mode: Literal["round_robin", "least_loaded"]
    team_id: uuid.UUID | None = Field(
        default=None, description="The team to assign from (default: the ticket's team)."
    )


class TeamAssignmentIn(_In):
    """A team's automatic assignment of tickets that get the team."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"auto_assign": "round_robin"}]}
    )
    auto_assign: Literal["off", "round_robin", "least_loaded"]


class TeamAssignment(BaseModel):
    """A team's assignment settings and its round-robin cursor."""

    team_id: uuid.UUID
    auto_assign: str
    last_user_id: uuid.UUID | None = Field(description="The member assigned last.")
