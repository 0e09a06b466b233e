"""Request and response bodies of the HTTP API (the OpenAPI schema is built from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from graph.graph import ENTRY
from helpdesk.text_policy import find_bad_text, text_problem
from helpdesk.tickets import TicketStatus

_UUID = "0b6c5d1e-8f7a-4e2b-9c3d-5a1f2e3d4c5b"
_MSG = "6f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c"
_TICKET = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
_WHEN = "2025-06-01T09:30:00Z"
_SUMMARY: JsonDict = {
    "id": _UUID,
    "status": "waiting_human",
    "waiting_on": "handoff",
    "channel": "web",
    "owner_agent": None,
    "created_at": _WHEN,
    "updated_at": _WHEN,
}
_MESSAGES: list[JsonValue] = [
    {
        "id": _MSG,
        "sender": "customer",
        "text": "My boiler is leaking, can I talk to a person?",
        "intent": "emergency",
        "confidence": None,
        "citations": [],
        "agent": None,
        "created_at": _WHEN,
    }
]
_TICKET_EXAMPLE: JsonDict = {
    "id": _TICKET,
    "number": 42,
    "conversation_id": _UUID,
    "status": "new",
    "priority": "urgent",
    "subject": "My boiler is leaking, can I talk to a person?",
    "reason": "explicit_request",
    "summary": "Customer reports a leaking boiler and asks for a person.",
    "intents": ["emergency"],
    "handoff_count": 1,
    "created_at": _WHEN,
    "updated_at": _WHEN,
}


def _accepted_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_input", problem)
    return value


DeskText = Annotated[str, AfterValidator(_accepted_text)]
"""A string the desk accepts (:mod:`helpdesk.text_policy`), for query and form parameters;
refused ones are 422 ``invalid_input`` (request bodies are checked whole by ``_In``)."""


class _In(BaseModel):
    """A request body: unknown fields are refused, and so is any string in it (values and
    keys, at any depth) that the desk does not accept (:mod:`helpdesk.text_policy`), as 422
    ``invalid_input`` naming the field. Checked on the raw input, before the fields, so no body
    model can forget it."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _accepted_text(cls, data: Any) -> Any:
        bad = find_bad_text(data)
        if bad is not None:
            where, problem = bad
            raise PydanticCustomError(
                "invalid_input", "{where}: {problem}", {"where": where, "problem": problem}
            )
        return data


# ---------------------------------------------------------------------------- customer


class Identity(_In):
    """A customer's identity as the business's server signed it (:mod:`helpdesk.identity`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user": {"email": "ann@example.com", "name": "Ann Lee", "iat": 1764755000},
                    "signature": "3f1c...64 hex digits",
                }
            ]
        },
    )
    user: dict[str, Any] = Field(
        description="A flat object: string values (email or phone required; name, user_id"
        " optional) and `iat`, the signing time in unix seconds.",
    )
    signature: str = Field(
        max_length=200,
        description="Hex HMAC-SHA256 of the canonical JSON of `user`, keyed with the tenant's"
        " identity secret.",
    )


class NewConversation(_In):
    """Start a conversation with the tenant's assistant (the tenant is the widget key's)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"channel": "web"}, {}]}
    )
    channel: Literal["web", "email", "api"] = "web"
    customer: dict[str, str] = Field(
        default_factory=dict,
        max_length=20,
        description="Optional details about the customer (name, email...), shown to agents.",
    )
    identity: Identity | None = Field(
        default=None,
        description="A signed-in customer, vouched for by the business's server (docs/"
        "contacts.md): the conversation is linked to their contact, verified. A forged one is"
        " 401 `invalid_identity`, a stale one 401 `identity_expired`; then nothing is created.",
    )


class ConversationCreated(BaseModel):
    """A new conversation and the token that acts on it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _UUID,
                    "tenant": "demo",
                    "channel": "web",
                    "status": "active",
                    "customer_token": "ct_eyJjIjoiMGI2YyIsInQiOiI...Zx8",
                    "token_expires_at": "2025-06-08T12:00:00Z",
                }
            ]
        }
    )
    id: uuid.UUID
    tenant: str
    channel: str
    status: str
    customer_token: str = Field(description="Bearer token for this conversation only.")
    token_expires_at: datetime


class NewMessage(_In):
    """A customer message."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "When are you open on Saturday?"}]}
    )
    text: str = Field(min_length=1, max_length=4000)


class Citation(BaseModel):
    """A knowledge-base article an answer relies on."""

    source_id: str
    title: str
    article_id: str | None = None
    url: str | None = Field(
        default=None,
        description="The article's web page (absolute http or https URL), when it has one.",
    )


class Reply(BaseModel):
    """An answer sent to the customer (``message.completed`` / ``agent.message`` data)."""

    message_id: str
    sender: Literal["ai", "agent", "system"]
    text: str
    citations: list[Citation] = []
    confidence: float | None = None
    declined: bool = False


class StreamEvent(BaseModel):
    """One event of a turn, as SSE would carry it."""

    event: str = Field(
        description="message.created | status | token | message.completed | agent.message |"
        " handoff | approval.pending | error | done"
    )
    data: dict[str, Any]


class TurnResult(BaseModel):
    """A turn in JSON mode: the reply (when one was sent) and every event of the turn."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reply": {
                        "message_id": _MSG,
                        "sender": "ai",
                        "text": "On Saturdays we are open 8:00 am to 2:00 pm. [opening-hours]",
                        "citations": [{"source_id": "opening-hours", "title": "Opening hours"}],
                        "confidence": 0.81,
                        "declined": False,
                    },
                    "events": [
                        {"event": "status", "data": {"node": ENTRY}},
                        {"event": "done", "data": {}},
                    ],
                }
            ]
        }
    )
    reply: Reply | None
    events: list[StreamEvent]


class TranscriptMessage(BaseModel):
    """One stored message."""

    model_config = ConfigDict(json_schema_extra={"examples": _MESSAGES})

    id: uuid.UUID
    sender: Literal["customer", "ai", "agent", "system"]
    text: str
    intent: str | None = None
    confidence: float | None = None
    citations: list[dict[str, Any]] = []
    agent: str | None = Field(
        default=None,
        validation_alias=AliasChoices("agent", "agent_name"),
        description="The agent who wrote an agent message (or acted on a system one).",
    )
    in_reply_to: uuid.UUID | None = Field(
        default=None, description="The customer message this answer answers, when it answers one."
    )
    after_review: bool = Field(
        default=False,
        description="A customer message sent while a draft was held for review: the AI answers"
        " it once that review is done.",
    )
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _owed(cls, data: Any) -> Any:
        # A messages row says "owed a turn" with the key the turn will run with.
        if isinstance(data, dict) and "pending_turn_key" in data:
            return {**data, "after_review": data["pending_turn_key"] is not None}
        return data


class ConversationSummary(BaseModel):
    """A conversation's state."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY]})

    id: uuid.UUID
    status: Literal["active", "waiting_human", "closed"]
    waiting_on: Literal["handoff", "approval", "human_turn"] | None = Field(
        default=None,
        description="While waiting_human: a hand-off, a held draft, or the owning agent.",
    )
    channel: str = "web"
    owner_agent: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    ticket_number: int | None = Field(
        default=None, description="The open ticket's number (in lists), if there is one."
    )
    last_customer_message: str | None = Field(
        default=None, description="The customer's latest message (in lists)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        # A conversations row carries the escalation JSON; the API says what it waits on.
        if isinstance(data, dict) and "waiting_on" not in data and "status" in data:
            kind = (data.get("escalation") or {}).get("kind")
            if data["status"] == "waiting_human":
                kind = kind if kind in ("approval", "human_turn") else "handoff"
                return {**data, "waiting_on": kind}
        return data


class Transcript(BaseModel):
    """A conversation and its messages, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"conversation": _SUMMARY, "messages": _MESSAGES}]}
    )

    conversation: ConversationSummary
    messages: list[TranscriptMessage]


class MessageRating(_In):
    """Thumbs up or down on one answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message_id": _MSG, "rating": "up"}]},
    )
    message_id: uuid.UUID
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=2000)


class Csat(_In):
    """Customer satisfaction with the whole conversation, 1 (bad) to 5 (great)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"csat": 5, "comment": "Quick and clear"}]}
    )
    csat: int = Field(ge=1, le=5, strict=True, description='An integer: not "5", 5.0 or true.')
    comment: str = Field(default="", max_length=2000)


class FeedbackOut(BaseModel):
    """Stored feedback."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _TICKET,
                    "kind": "rating",
                    "message_id": _MSG,
                    "rating": "up",
                    "csat": None,
                    "comment": "",
                }
            ]
        }
    )

    id: uuid.UUID
    kind: Literal["rating", "csat"]
    message_id: uuid.UUID | None = None
    rating: Literal["up", "down"] | None = None
    csat: int | None = None
    comment: str = ""


# ---------------------------------------------------------------------------- agent


class QueueItem(BaseModel):
    """A conversation waiting on a person."""

    conversation_id: uuid.UUID
    kind: Literal["handoff", "approval", "human_turn"] = Field(
        description="handoff: the AI handed off; approval: a draft waits for review;"
        " human_turn: the customer wrote in a conversation an agent owns."
    )
    reason: str = Field(
        description="Why, as codes: a hand-off reason, or a held draft's distinct review codes."
    )
    reason_text: str = Field(default="", description="Why, in words for people, each reason once.")
    summary: str
    question: str | None = Field(
        default=None, description="A held draft: the customer question the draft answers."
    )
    new_messages: int = Field(
        default=0,
        description="A held draft: customer messages sent since it, answered after the review.",
    )
    waiting_since: datetime | None
    channel: str
    owner: str | None
    ticket_id: uuid.UUID | None = None
    ticket_number: int | None = None
    priority: str | None = None
    last_customer_message: str | None = None
    last_customer_at: datetime | None = None


class Queue(BaseModel):
    """The queue, oldest wait first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "conversation_id": _UUID,
                            "kind": "handoff",
                            "reason": "explicit_request",
                            "summary": "Customer asks for a person about a leaking boiler.",
                            "waiting_since": "2025-06-01T09:30:00Z",
                            "channel": "web",
                            "owner": None,
                            "ticket_number": 42,
                            "priority": "normal",
                            "last_customer_message": "can I talk to a person",
                        }
                    ]
                }
            ]
        }
    )
    items: list[QueueItem]
    people_online: int = Field(
        default=0,
        description="Staff online now (of the team, when filtered): whether a hand-off can"
        " expect a person soon.",
    )


class PendingInterrupt(BaseModel):
    """What the conversation's thread waits on."""

    interrupt_id: str = Field(description="Pass it back to act on exactly this interrupt.")
    kind: Literal["handoff", "approval", "human_turn"]
    payload: dict[str, Any] = Field(
        description="HandoffRequest | ApprovalRequest | HumanTurnRequest (graph/interrupts.py)."
    )


class Ticket(BaseModel):
    """A ticket left by a hand-off."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TICKET_EXAMPLE]})

    id: uuid.UUID
    number: int
    conversation_id: uuid.UUID | None
    status: str
    priority: str
    subject: str
    reason: str
    summary: str
    intents: list[str]
    handoff_count: int
    created_at: datetime
    updated_at: datetime
    contact_id: uuid.UUID | None = Field(
        default=None, description="The customer's contact (GET /v1/agent/contacts/{id})."
    )


class ContactCard(BaseModel):
    """The contact beside a conversation, for the agent."""

    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    organization_id: uuid.UUID | None = None
    organization_name: str | None = None
    verified: bool = Field(
        description="The business's site vouched for this contact in this conversation."
    )
    earlier_conversations: int = Field(description="Their conversations before this one.")


class ConversationDetail(BaseModel):
    """Everything an agent needs about one conversation."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation": _SUMMARY,
                    "messages": _MESSAGES,
                    "pending": {
                        "interrupt_id": "6c1b0e2f9a8d4c3b",
                        "kind": "handoff",
                        "payload": {
                            "kind": "handoff",
                            "reason": "explicit_request",
                            "summary": "Customer reports a leaking boiler and asks for a person.",
                            "intents": ["emergency"],
                            "kb_snippets": [],
                            "suggested_next_steps": ["Call the customer back"],
                            "transcript": [{"speaker": "customer", "text": "My boiler..."}],
                            "ticket_id": _TICKET,
                            "ticket_number": 42,
                            "error": None,
                        },
                    },
                    "handoff": None,
                    "ticket": _TICKET_EXAMPLE,
                }
            ]
        }
    )

    conversation: ConversationSummary
    messages: list[TranscriptMessage]
    pending: PendingInterrupt | None
    handoff: dict[str, Any] | None = Field(
        description="The last hand-off's payload (summary, KB snippets, next steps), if any."
    )
    ticket: Ticket | None
    held_because: list[str] = Field(
        default=[], description="A held draft: why it is held, in words for people."
    )
    contact: ContactCard | None = Field(
        default=None, description="Who the customer is, when the conversation has a contact."
    )


class _Action(_In):
    interrupt_id: str | None = Field(
        default=None,
        max_length=200,
        description="The interrupt the agent saw; 409 interrupt_conflict if it is gone.",
    )
    # No "agent" (or "reviewer") field: the actor is always the key's name, so a request can
    # never act under another agent's name (an unknown field is a 422).


class TakeoverBody(_Action):
    """Take the conversation over (the AI stops answering it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class ReplyBody(_Action):
    """Answer the customer as the agent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Hi, I'm Alex. Let me check that for you."}]},
    )
    text: str = Field(min_length=1, max_length=8000)


class ApproveBody(_Action):
    """Send the held draft as it is."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class EditBody(_Action):
    """Send this text instead of the held draft."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Our call-out fee is $89, waived if we do the job."}]
        },
    )
    text: str = Field(min_length=1, max_length=8000)


class RejectBody(_Action):
    """Do not send the held draft: redraft with the reason as feedback, or hand off."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Quote the member price", "then": "redraft"}]},
    )
    reason: str = Field(min_length=1, max_length=2000)
    then: Literal["redraft", "handoff"] = "redraft"


class ReleaseBody(_Action):
    """Hand the conversation back to the AI (with an optional message to the customer)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})
    text: str | None = Field(default=None, min_length=1, max_length=8000)


class CloseBody(_Action):
    """Close the conversation (with an optional goodbye)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Glad we could help!"}]}
    )
    text: str | None = Field(default=None, min_length=1, max_length=8000)


class ActionResult(BaseModel):
    """What an agent action did."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "reply",
                    "conversation": {"id": _UUID, "status": "active", "owner_agent": "alex"},
                    "pending": None,
                    "events": [
                        {
                            "event": "agent.message",
                            "data": {"message_id": _MSG, "sender": "agent", "text": "Hi!"},
                        }
                    ],
                }
            ]
        }
    )
    action: str
    conversation: ConversationSummary
    pending: PendingInterrupt | None
    events: list[StreamEvent]


class TicketList(BaseModel):
    """Tickets, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_TICKET_EXAMPLE]}]})

    items: list[Ticket]


class TicketUpdate(_In):
    """Change a ticket's status or priority."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "waiting_internal"}]}
    )
    status: TicketStatus | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None


# ---------------------------------------------------------------------------- knowledge base


class IngestAccepted(BaseModel):
    """An ingestion job was queued."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"job_id": _UUID}]})
    job_id: uuid.UUID


class Health(BaseModel):
    """Liveness of one API process."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "events": "listening"}]}
    )
    status: Literal["ok"]
    events: Literal["listening", "reconnecting"] = Field(
        description="Whether this process receives the events other processes commit."
    )


class SearchResult(BaseModel):
    """One matching article passage."""

    source_id: str
    title: str
    section: str
    snippet: str
    score: float
    visibility: Literal["external", "internal"]
    tags: list[str]
    updated_at: datetime | None
    url: str | None = Field(
        default=None,
        description="The article's web page (absolute http or https URL), when it has one.",
    )


class SearchResults(BaseModel):
    """Knowledge-base search results, best first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "source_id": "opening-hours",
                            "title": "Opening hours",
                            "section": "Weekends",
                            "snippet": "On Saturdays the office is open from 8:00 am...",
                            "score": 0.42,
                            "visibility": "external",
                            "tags": ["hours"],
                            "updated_at": "2025-05-01T00:00:00Z",
                            "url": "https://example.com/help/opening-hours",
                        }
                    ]
                }
            ]
        }
    )
    results: list[SearchResult]
