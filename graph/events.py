"""What a turn produces, defined once: the events of the SSE stream, the CLI, the evals and the
stored event log.

``message.created`` -> ``status`` (per node) -> ``token``* -> ``message.completed`` |
``agent.message`` | ``handoff`` | ``approval.pending`` -> ``done``; ``error`` replaces the rest
on failure.

Nodes emit what they produce through the run's stream writer (:func:`emit`) and log the same
payload (:func:`helpdesk.conversations.append_event`), so a client that streams a turn and one
that reads the log later see the same shapes. ``handoff`` and ``approval.pending`` are read from
the interrupt the run stops at (:func:`from_interrupt`): an interrupting node runs again on
resume, and would otherwise announce the interrupt twice. The one reader of a run's stream is
:mod:`desk.stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from langgraph.types import StreamWriter

from graph.state import Citation, Reply

EventName = Literal[
    "status",
    "message.created",
    "token",
    "message.completed",
    "agent.message",
    "handoff",
    "approval.pending",
    "done",
    "error",
]
Event = tuple[str, dict[str, Any]]
"""``(name, data)``: an SSE event's name and its JSON data."""

REVIEW_MESSAGE = "An answer is being reviewed by our team."


class MessageCreated(TypedDict):
    """A customer message was stored."""

    message_id: str
    sender: Literal["customer"]
    text: str
    queued_for_agent: NotRequired[bool]
    """Stored while a person owns the conversation (no graph run)."""
    after_review: NotRequired[bool]
    """Stored during a draft review: answered by its own turn after the review."""


class MessageCompleted(TypedDict):
    """A reply was sent (``message.completed`` for the AI or the system, ``agent.message`` for
    an agent)."""

    message_id: str
    sender: Literal["ai", "agent", "system"]
    text: str
    citations: list[Citation]
    confidence: float | None
    declined: bool
    in_reply_to: NotRequired[str | None]
    agent: NotRequired[str]


class HandoffData(TypedDict):
    """The conversation was handed to a person."""

    reason: str | None
    ticket_id: str | None
    ticket_number: int | None
    message: str


class ApprovalPending(TypedDict):
    """A draft waits for a reviewer."""

    message: str
    review_reasons: list[str]


def status(node: str) -> Event:
    """A node finished."""
    return "status", {"node": node}


def message_created(message_id: str, text: str, **flags: bool) -> Event:
    """The customer's message, stored."""
    data = MessageCreated(message_id=message_id, sender="customer", text=text)
    data.update(flags)  # type: ignore[typeddict-item]
    return "message.created", dict(data)


def reply_sent(
    message_id: str, reply: Reply | Mapping[str, Any], agent: str | None = None
) -> Event:
    """A reply that went out: ``agent.message`` when an agent wrote it."""
    data = MessageCompleted(
        message_id=message_id,
        sender=reply["sender"],
        text=reply["text"],
        citations=list(reply.get("citations") or []),
        confidence=reply.get("confidence"),
        declined=bool(reply.get("declined", False)),
        in_reply_to=reply.get("in_reply_to"),
    )
    if agent:
        data["agent"] = agent
    return ("agent.message" if reply["sender"] == "agent" else "message.completed"), dict(data)


def handoff(
    reason: str | None, ticket_id: str | None, ticket_number: int | None, message: str
) -> Event:
    """The hand-off, as the customer's client and the log see it."""
    data = HandoffData(
        reason=reason, ticket_id=ticket_id, ticket_number=ticket_number, message=message
    )
    return "handoff", dict(data)


def approval_pending(review_reasons: list[str]) -> Event:
    """A draft held for review (the customer is told, not shown the draft)."""
    return "approval.pending", dict(
        ApprovalPending(message=REVIEW_MESSAGE, review_reasons=list(review_reasons))
    )


def waiting_human(**extra: Any) -> Event:
    """The conversation waits on a person."""
    return "status", {"status": "waiting_human", **extra}


def from_interrupt(value: Mapping[str, Any], handoff_message: str) -> Event:
    """The event of the interrupt a run stopped at (:mod:`graph.interrupts` payloads)."""
    kind = value.get("kind")
    if kind == "approval":
        return approval_pending(value.get("review_reasons", []))
    if kind == "handoff":
        return handoff(
            value.get("reason"), value.get("ticket_id"), value.get("ticket_number"), handoff_message
        )
    return waiting_human()


def emit(writer: StreamWriter, event: Event) -> None:
    """Send an event through the run's stream writer (read by :func:`from_custom`)."""
    writer({"event": event[0], "data": event[1]})


def token(writer: StreamWriter, text: str, message_id: str) -> None:
    """Stream a piece of the reply being sent."""
    emit(writer, ("token", {"text": text, "message_id": message_id}))


def from_custom(chunk: Mapping[str, Any]) -> Event | None:
    """The event a node emitted (None for a custom chunk that is not one, e.g. a model's)."""
    name, data = chunk.get("event"), chunk.get("data")
    if isinstance(name, str) and isinstance(data, dict):
        return name, data
    return None
