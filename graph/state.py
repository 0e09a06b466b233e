"""Typed state of the support graph.

``InputState`` is what one run takes (the customer's new message), ``OutputState`` what a caller
reads back, ``SupportState`` everything the nodes share. Per-turn fields are reset by
``guard_input`` at the start of each run; the counters and ``owner`` persist across turns.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from kb_pipeline.index import Retrieved
from nlp.verdicts import GuardVerdict, SafetyAlert

Owner = Literal["ai", "human"]


class Citation(TypedDict):
    """A knowledge-base article an answer relies on."""

    source_id: str
    title: str
    article_id: str
    url: NotRequired[str | None]
    """The article's web page (absolute http(s)) when its source names one, else None. Absent
    in citations made before articles had urls."""


class JudgeVerdict(TypedDict):
    """What the guardrail judge decided about a draft."""

    passed: bool
    grounded: bool
    violations: list[str]
    review_reasons: list[str]
    feedback: str


class Draft(TypedDict):
    """An answer proposed for the customer, before it is judged and sent."""

    text: str
    citations: list[Citation]
    confidence: float
    declined: bool


class Reply(TypedDict):
    """What this turn sends to the customer."""

    text: str
    sender: Literal["ai", "agent", "system"]
    citations: list[Citation]
    confidence: float | None
    declined: bool
    in_reply_to: NotRequired[str | None]
    """Database id of the customer message this reply answers (set by ``respond``)."""
    acted_by: NotRequired[str | None]
    """The agent whose action sent this system message (a release or a close)."""


class InputState(TypedDict):
    """What one run takes: the conversation's new customer message(s)."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The transcript; a run appends the customer's new message."""


class OutputState(TypedDict, total=False):
    """What a caller reads after a run."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The whole transcript, customer and AI/agent messages."""
    reply: Reply | None
    """What was sent to the customer this turn (None while waiting on a human)."""
    handoff: dict[str, Any] | None
    """The hand-off of this turn (reason, ticket), if any."""
    owner: Owner
    """Who answers the customer now: the AI or a human agent."""


class SupportState(TypedDict, total=False):
    """Everything the nodes share."""

    tenant: str
    """Slug of the tenant the thread belongs to (bound on its first run, checked after)."""
    channel: Literal["web", "email", "api"]
    """Channel of the conversation, from the run context."""
    audience: Literal["customer", "agent"]
    """Whose knowledge base view retrieval uses, from the run context."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The transcript; a run appends the customer's new message."""
    question: str
    """The customer's message this turn, as text."""
    guard: GuardVerdict | None
    """The input guard's verdict on this turn's message."""
    safety: SafetyAlert | None
    """The hazard this turn's message reports, if any: answered by ``safety``, never drafted."""
    intent: str
    """Detected intent of this turn (``out_of_scope`` when none fits)."""
    intent_confidence: float
    """Confidence of the intent classifier, 0-1."""
    intent_source: str
    """Which tier decided the intent: rules, classifier or llm."""
    retrieved: list[Retrieved]
    """Chunks retrieved for this turn's question, as the knowledge base's search returned them."""
    draft: Draft | None
    """The current draft answer."""
    verdict: JudgeVerdict | None
    """The judge's verdict on the current draft."""
    attempts: int
    """Drafts made this turn (one redraft is allowed)."""
    feedback: str
    """Judge or reviewer feedback for the redraft."""
    rejected: list[str]
    """Texts of the drafts a reviewer rejected this turn: a redraft must not repeat them."""
    handoff_reason: str | None
    """Why this turn hands off, when it does."""
    kb_only_reason: str | None
    """Set when only a grounded, confident answer may go out this turn (an always-human intent
    asked as an informational question): a declined draft hands off with this reason."""
    reply: Reply | None
    """What this turn sends to the customer."""
    handoff: dict[str, Any] | None
    """The hand-off made this turn, if any (reason, ticket id and number)."""
    handoff_request: dict[str, Any] | None
    """The payload ``await_agent`` interrupts with (a HandoffRequest, as JSON)."""
    owner: Owner
    """Who answers the customer: the AI, or a human agent after a hand-off."""
    agent_name: str | None
    """The agent who owns the conversation, while one does."""
    turn: int
    """Number of customer messages so far (1-based for the current one)."""
    low_confidence_streak: int
    """Consecutive turns the AI could not answer."""
    no_progress_streak: int
    """Consecutive turns without progress (declined or the customer repeating themself)."""
    is_repeat: bool
    """This turn repeats the previous customer message (no progress)."""
    intents_seen: list[str]
    """Intents detected over the conversation, in order."""
