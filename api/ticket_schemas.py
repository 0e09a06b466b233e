"""Bodies of the ticket routes (``/v1/tickets``) and of the customer's CSAT
(``/v1/conversations/{id}/csat``). The lifecycle and its rules: ``helpdesk/tickets.py`` and
``docs/tickets.md``."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from api.schemas import _In
from helpdesk.profile import BusinessProfile
from helpdesk.sla import SlaState
from helpdesk.tickets import Impact, Priority, ResolutionType, TicketChannel, TicketStatus

_ID = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
_WHEN = "2025-06-01T09:30:00Z"


def _finite_json(value: dict[str, Any]) -> dict[str, Any]:
    """JSON numbers only: Python's parser takes ``NaN`` and ``1e400`` (infinity), which JSONB
    cannot store."""

    def walk(v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("custom_fields holds a number JSON cannot carry (NaN or infinity)")
        if isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return value


CustomFields = Annotated[dict[str, JsonValue], AfterValidator(_finite_json)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]

_TICKET_EXAMPLE: JsonDict = {
    "id": _ID,
    "number": 42,
    "key": "T-42",
    "conversation_id": None,
    "status": "new",
    "priority": "high",
    "impact": "several_users",
    "channel": "agent",
    "subject": "API timeout in production",
    "description": "Calls to /orders time out since 9:00.",
    "category": "outage",
    "sub_category": None,
    "tags": ["api"],
    "custom_fields": {},
    "contact_id": None,
    "organization_id": None,
    "assignee_id": None,
    "team_id": None,
    "first_response_at": None,
    "ai_first_response": None,
    "ai_confidence": None,
    "suggested_category": "outage",
    "suggested_priority": "urgent",
    "suggestion_confidence": 0.8,
    "resolved_at": None,
    "closed_at": None,
    "reopen_count": 0,
    "parent_ticket_id": None,
    "resolution_id": None,
    "reason": "",
    "summary": "",
    "created_by": "ann@example.com",
    "created_at": _WHEN,
    "updated_at": _WHEN,
}


class TicketCreate(_In):
    """A ticket opened by hand (or by an integration), with or without a conversation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": "API timeout in production",
                    "description": "Calls to /orders time out since 9:00.",
                    "priority": "high",
                    "category": "outage",
                }
            ]
        },
    )
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    priority: Priority = "normal"
    impact: Impact = "none"
    channel: TicketChannel | None = Field(
        default=None,
        description="Where the request came from (agent: typed in by staff). Default: the"
        " conversation's channel, else agent.",
    )
    category: Name | None = Field(
        default=None, description="One of the business's ticket_categories when it has a list."
    )
    sub_category: Name | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom_fields: CustomFields = Field(default_factory=dict, max_length=50)
    contact_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = Field(
        default=None, description="A conversation of this tenant without an open ticket."
    )
    parent_ticket_id: uuid.UUID | None = None


class TicketPatch(_In):
    """Fields to change; a field left out stays as it is, ``null`` clears a nullable one.
    Status moves go through ``POST /v1/tickets/{id}/transition``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"priority": "urgent", "tags": ["vip"]}]},
    )
    subject: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    priority: Priority | None = None
    impact: Impact | None = None
    channel: TicketChannel | None = None
    category: Name | None = None
    sub_category: Name | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    custom_fields: CustomFields | None = Field(default=None, max_length=50)
    contact_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    parent_ticket_id: uuid.UUID | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent (``null`` included), as the service takes them."""
        out = {name: getattr(self, name) for name in self.model_fields_set}
        for name in ("subject", "description", "priority", "impact", "channel", "tags"):
            if name in out and out[name] is None:
                del out[name]  # not nullable: null is "leave it"
        if out.get("custom_fields") is None:
            out.pop("custom_fields", None)
        return out


class Reference(_In):
    """Something the resolution used: a knowledge-base article or a web page."""

    kind: Literal["article", "url"]
    ref: str = Field(min_length=1, max_length=2000, description="Article source id, or a URL.")
    title: str = Field(default="", max_length=300)


class ResolutionIn(_In):
    """How the ticket was resolved (required to move it to ``resolved``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "permanent_fix",
                    "summary": "Load balancer timeout raised to 60 s.",
                    "root_cause": "The timeout was 5 s since Tuesday's deploy.",
                }
            ]
        },
    )
    type: ResolutionType
    summary: str = Field(min_length=1, max_length=5000)
    steps: str = Field(default="", max_length=20000)
    root_cause: str = Field(default="", max_length=5000)
    article_id: uuid.UUID | None = Field(default=None, description="A kb_articles id.")
    references: list[Reference] = Field(default_factory=list, max_length=50)
    ai_generated: bool = Field(default=False, description="The text was drafted by the AI.")


class Transition(_In):
    """Move the ticket to another status of the lifecycle (docs/tickets.md)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": "in_progress"},
                {
                    "to": "resolved",
                    "resolution": {"type": "answered_question", "summary": "Explained the fee."},
                },
            ]
        },
    )
    to: TicketStatus
    resolution: ResolutionIn | None = Field(
        default=None, description="Required when `to` is resolved, refused otherwise."
    )


class Resolution(BaseModel):
    """A stored resolution."""

    id: uuid.UUID
    ticket_id: uuid.UUID
    type: str
    summary: str
    steps: str
    root_cause: str
    article_id: uuid.UUID | None
    references: list[dict[str, Any]] = Field(validation_alias="refs")
    resolved_by: Literal["user", "ai"]
    resolved_by_user_id: uuid.UUID | None
    resolved_by_name: str
    ai_generated: bool
    created_at: datetime


class SlaTarget(BaseModel):
    """One SLA target of a ticket (first response or resolution)."""

    target_minutes: int = Field(description="The target, in business minutes.")
    due_at: datetime | None = Field(description="When it falls due (None: never open).")
    warn_at: datetime | None
    state: SlaState
    remaining_minutes: float | None = Field(
        description="Business minutes to the due time, negative past it; frozen while the"
        " clock is stopped; None once answered / resolved."
    )
    breached: bool


class TicketSla(BaseModel):
    """The ticket's SLA (docs/sla.md): ``state`` is breached if a target is, else paused
    (waiting on the customer), else warning, else met when both are, else ok."""

    state: SlaState
    paused: bool
    policy: dict[str, Any] = Field(description="The rule that applies: priority, category, source.")
    first_response: SlaTarget
    resolution: SlaTarget


class Ticket(BaseModel):
    """A ticket."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TICKET_EXAMPLE]})

    id: uuid.UUID
    number: int
    key: str = Field(description="How people name it: T-<number>.")
    conversation_id: uuid.UUID | None
    status: str
    priority: str
    impact: str
    channel: str
    subject: str
    description: str
    category: str | None
    sub_category: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    contact_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None
    first_response_at: datetime | None
    ai_first_response: bool | None
    ai_confidence: float | None
    suggested_category: str | None = Field(
        default=None, description="The AI's category for it (one of the business's list)."
    )
    suggested_priority: str | None = Field(
        default=None, description="The AI's priority for it; applied only by an agent or a rule."
    )
    suggestion_confidence: float | None = Field(
        default=None, description="How sure the AI is of its suggestion, 0-1."
    )
    resolved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    parent_ticket_id: uuid.UUID | None
    resolution_id: uuid.UUID | None
    reason: str = Field(description="Why a hand-off opened it ('' for other tickets).")
    summary: str = Field(description="The hand-off summary for the agent.")
    created_by: str
    created_at: datetime
    updated_at: datetime
    allowed_moves: list[str] = Field(description="The statuses it may move to now.")
    sla: TicketSla | None = Field(
        default=None, description="Its SLA now; null when no SLA applies to it."
    )

    @classmethod
    def of(
        cls,
        row: dict[str, Any],
        profile: BusinessProfile | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """From a ``tickets`` row; with the business's ``profile``, its SLA as of ``now``."""
        from helpdesk.sla import ticket_state
        from helpdesk.tickets import allowed_moves, display_number

        state = None
        if profile is not None:
            state = ticket_state(row, now or datetime.now(UTC), profile)
        return cls.model_validate(
            {
                **row,
                "key": display_number(row["number"]),
                "allowed_moves": list(allowed_moves(row["status"])),
                "sla": state,
            }
        )


class TicketDetail(Ticket):
    """A ticket with its current resolution."""

    resolution: Resolution | None = None


class TicketPage(BaseModel):
    """Tickets, newest first; ``next_cursor`` fetches the next page (None: no more)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_TICKET_EXAMPLE], "next_cursor": "41"}]}
    )
    items: list[Ticket]
    next_cursor: str | None


class NoteIn(_In):
    """An internal note: staff see it, the customer and the AI never do."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"body": "Customer is on the legacy plan; check first."}]},
    )
    body: str = Field(min_length=1, max_length=10000)


class Note(BaseModel):
    """A stored internal note."""

    id: uuid.UUID
    ticket_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    body: str
    author_user_id: uuid.UUID | None
    author_name: str
    created_at: datetime


class NoteList(BaseModel):
    """Internal notes, oldest first."""

    items: list[Note]


class TimelineItem(BaseModel):
    """One thing that happened: a message, a note, or a ticket event (created, status,
    updated, resolved, reopened, follow_up, csat, first_response, sla.warning, sla.breach,
    triage: a rule's changes, assigned: from, to, by, mode; assignment_skipped:
    auto-assignment found nobody online)."""

    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]


class Timeline(BaseModel):
    """The ticket's history, oldest first."""

    items: list[TimelineItem]


class CsatIn(_In):
    """The customer's satisfaction with the resolution of their ticket, 1 (bad) to 5 (great)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"score": 5, "comment": "Fixed the same day"}]},
    )
    score: int = Field(ge=1, le=5, strict=True, description='An integer: not "5", 5.0 or true.')
    comment: str = Field(default="", max_length=2000)


class CsatOut(BaseModel):
    """The stored CSAT of one resolution."""

    resolution_id: uuid.UUID
    ticket_number: str
    score: int
    comment: str
    created_at: datetime


class WarnBefore(_In):
    """When a target warns: ``percent`` of it elapsed, or ``minutes`` before it (one of them)."""

    percent: int | None = Field(default=None, ge=1, le=99, strict=True)
    minutes: int | None = Field(default=None, ge=1, le=525600, strict=True)

    @model_validator(mode="after")
    def _one(self) -> WarnBefore:
        if (self.percent is None) == (self.minutes is None):
            raise ValueError("give percent or minutes, one of them")
        return self


class SlaRuleIn(_In):
    """The targets of one priority (and category: the more specific rule wins)."""

    priority: Priority
    category: Name | None = Field(default=None, description="None: every category.")
    first_response_minutes: int = Field(ge=1, le=525600, strict=True)
    resolution_minutes: int = Field(ge=1, le=525600, strict=True)
    warn_before: WarnBefore | None = Field(default=None, description="None: the tenant's.")


class SlaConfigIn(_In):
    """The tenant's SLA configuration, replaced whole (``policies: []`` with ``enabled``:
    SLAs on for no priority; ``enabled: false``: no SLA at all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "warn_before": {"percent": 80},
                    "policies": [
                        {
                            "priority": "urgent",
                            "first_response_minutes": 30,
                            "resolution_minutes": 240,
                        },
                        {
                            "priority": "high",
                            "category": "outage",
                            "first_response_minutes": 15,
                            "resolution_minutes": 120,
                            "warn_before": {"minutes": 5},
                        },
                    ],
                }
            ]
        },
    )
    enabled: bool = True
    warn_before: WarnBefore | None = None
    policies: list[SlaRuleIn] = Field(default_factory=list, max_length=500)


class SlaRuleOut(BaseModel):
    """A rule as stored."""

    priority: str
    category: str | None
    first_response_minutes: int
    resolution_minutes: int
    warn_before: dict[str, int] | None


class SlaConfigOut(BaseModel):
    """The SLA configuration in force: ``source`` default (never saved: the documented
    defaults) or tenant."""

    enabled: bool
    warn_before: dict[str, int]
    policies: list[SlaRuleOut]
    source: Literal["default", "tenant"]
    updated_at: datetime | None
    updated_by: str


class TicketCommandIn(_In):
    """A ticket command in words; ``confirm`` applies it (without: only the plan)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "close T-42, T-43: fixed load balancer config", "confirm": True}]
        },
    )
    text: str = Field(min_length=1, max_length=2000)
    confirm: bool = False


class TicketCommandOut(BaseModel):
    """The compact answer: ``ok`` applied or shown, ``nf`` a ticket not found, ``er`` a change
    refused, ``up`` not applied (``data.question``: say more; ``data.plan``: confirm)."""

    status: Literal["ok", "nf", "er", "up"]
    action: str | None
    data: dict[str, Any]
    plan: str | None = None
