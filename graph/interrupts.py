"""Typed interrupt payloads and the resume values they accept.

Three nodes interrupt: ``handoff`` and ``human_turn`` wait for an agent (reply, release, close),
``approve`` waits for a reviewer (approve, edit, reject). Every resume value is validated with
these models before it changes anything; callers can validate first with the same models
(``parse_agent_action`` / ``parse_review``) to answer bad input with a 4xx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from graph.state import Citation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Request(_Strict):
    error: str | None = Field(
        default=None, description="Why the previous resume value was refused, if it was."
    )


class TranscriptLine(_Strict):
    """One message of the transcript shown to the agent."""

    speaker: Literal["customer", "ai", "agent", "system"]
    text: str


class KbSnippet(_Strict):
    """A knowledge-base passage that may help the agent (internal articles included)."""

    source_id: str
    title: str
    text: str


class HandoffRequest(_Request):
    """Payload of the hand-off interrupt: everything an agent needs to take over."""

    kind: Literal["handoff"] = "handoff"
    reason: str = Field(description="Why the AI handed off (explicit_request, keyword, ...).")
    summary: str = Field(description="What the customer wants, for the agent.")
    intents: list[str]
    kb_snippets: list[KbSnippet]
    suggested_next_steps: list[str]
    transcript: list[TranscriptLine]
    ticket_id: str
    ticket_number: int
    message: str = Field(
        default="", description="What the customer was told (the tenant's hand-off text)."
    )


class HumanTurnRequest(_Request):
    """Payload of the human-turn interrupt: the customer wrote while an agent owns the chat."""

    kind: Literal["human_turn"] = "human_turn"
    message: str
    transcript: list[TranscriptLine]


class ApprovalRequest(_Request):
    """Payload of the approval interrupt: a draft a human must approve before it is sent."""

    kind: Literal["approval"] = "approval"
    question: str
    draft: str
    citations: list[Citation]
    confidence: float
    review_reasons: list[str]


class AgentReply(_Strict):
    """The agent answers the customer (and owns the conversation from now on)."""

    action: Literal["reply"]
    text: str = Field(min_length=1, max_length=8000)
    agent: str = Field(default="agent", max_length=200)


class Release(_Strict):
    """The agent hands the conversation back to the AI."""

    action: Literal["release"]
    text: str | None = Field(default=None, max_length=8000)
    agent: str = Field(default="agent", max_length=200)


class Close(_Strict):
    """The agent closes the conversation."""

    action: Literal["close"]
    text: str | None = Field(default=None, max_length=8000)
    agent: str = Field(default="agent", max_length=200)


AgentAction = Annotated[AgentReply | Release | Close, Field(discriminator="action")]


class Approve(_Strict):
    """Send the draft as it is."""

    action: Literal["approve"]
    reviewer: str = Field(default="agent", max_length=200)


class Edit(_Strict):
    """Send this edited text instead; the (draft, edit) pair is kept as labelled data."""

    action: Literal["edit"]
    text: str = Field(min_length=1, max_length=8000)
    reviewer: str = Field(default="agent", max_length=200)


class Reject(_Strict):
    """Do not send the draft: redraft with the reason as feedback, or hand off."""

    action: Literal["reject"]
    reason: str = Field(min_length=1, max_length=2000)
    then: Literal["redraft", "handoff"] = "redraft"
    reviewer: str = Field(default="agent", max_length=200)


Review = Annotated[Approve | Edit | Reject, Field(discriminator="action")]

_agent_action: TypeAdapter[AgentReply | Release | Close] = TypeAdapter(AgentAction)
_review: TypeAdapter[Approve | Edit | Reject] = TypeAdapter(Review)


def parse_agent_action(value: Any) -> AgentReply | Release | Close:
    """Validate a resume value for ``handoff`` / ``human_turn`` (raises ValidationError)."""
    return _agent_action.validate_python(value)


def parse_review(value: Any) -> Approve | Edit | Reject:
    """Validate a resume value for ``approve`` (raises ValidationError)."""
    return _review.validate_python(value)


T = TypeVar("T")


def ask_human(request: BaseModel, parse: Callable[[Any], T]) -> T:
    """Interrupt with ``request`` until a resume value passes ``parse``.

    LangGraph keeps a resume value once given, so a bad one cannot simply be retried at the same
    interrupt: instead the node interrupts again, with the validation error in the payload, and
    the thread keeps waiting for a valid value. Nothing is applied until one arrives.
    """
    payload = request.model_dump(mode="json")
    value = interrupt(payload)
    while True:
        try:
            return parse(value)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            value = interrupt({**payload, "error": errors})
