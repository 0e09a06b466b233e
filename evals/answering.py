"""Run the whole support graph on questions and read back what the customer would get.

The runner behind ``deskgraph answer``, the ``answers`` and ``escalation`` eval suites and
``evals/benchmarks/escalation.py``. Each item runs as a fresh conversation (channel ``api``) of the
tenant through the real graph: guard, classify, retrieve, draft, judge and the routing between
them, with the tenant's own policy.

An item is a question (a string) or ``{"turns": [{"speaker": "user"|"agent", "text"}, ...]}``.
The last user turn is answered; the turns before it are the conversation so far and anything
after it is ignored. The history is given to the graph as the thread's transcript: the run's
input carries the earlier turns as customer / AI messages followed by the question, so the graph
runs once, on the last turn, and sees the history in ``state["messages"]`` exactly as it would
after those turns had happened (the classifier's repeat check, the hand-off transcript and the
retrieval query read it from there). The earlier turns are not re-run and not stored as messages
of the conversation; the per-turn counters (low-confidence and no-progress streaks) start at
zero, so a history alone never triggers a hand-off.

Reading the outcome (from the run's events and state, :mod:`desk.probe`, not the reply text):

* ``handoff``: the run stopped at the hand-off interrupt (any trigger: an explicit request, an
  always-human intent, a keyword, a blocked input, the judge failing twice, low confidence
  twice). ``answer`` is then the hand-off message the customer sees, with no citations.
* ``declined``: the reply is marked ``declined`` by the graph: the drafter found the knowledge
  base does not answer it (or the off-topic redirect, or a blocked input that is not handed off).
* otherwise the draft is an answer. A draft held for a human's approval (confidence between the
  tenant's ``escalate_below`` and ``auto_send_above``) counts as answered: ``answer`` is the draft
  a reviewer would approve, with its citations.

The conversations are real rows of the tenant; a probe is meant for evaluation tenants or a
staging database, since a handed-off item opens a ticket like any other hand-off.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph.state import CompiledStateGraph

from desk.probe import probe
from graph.services import Services
from helpdesk.tenants import Tenant

Item = str | Mapping[str, Any]
SPEAKERS = ("user", "agent")


@dataclass
class AnswerResult:
    """What one item got from the graph."""

    input: str
    """The answered (last user) turn."""
    answer: str
    """The text the customer gets (a held draft's text; the hand-off message on hand-off)."""
    citations: list[str]
    """Source ids the answer cites."""
    handoff: bool
    """The conversation was handed to a person."""
    declined: bool
    """The assistant said the knowledge base does not answer it."""
    confidence: float | None
    """The drafter's confidence (retrieval relevance), None when nothing was drafted."""
    contexts: list[dict[str, str]]
    """The retrieved chunks, ``{"source_id", "title", "text"}``."""
    intent: str | None
    """The classified intent of the turn."""
    latency_s: float
    """Wall time of the run."""
    handoff_reason: str | None = None
    """Why the conversation was handed off, when it was."""
    held_for_review: bool = False
    """The draft waits for a human's approval (it still counts as answered)."""

    def to_json(self) -> dict[str, Any]:
        """The probe's output object: answer, citations, handoff, declined, confidence."""
        return {
            "answer": self.answer,
            "citations": self.citations,
            "handoff": self.handoff,
            "declined": self.declined,
            "confidence": self.confidence,
        }

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-serialisable."""
        return asdict(self)


def parse_item(item: Item) -> tuple[str, list[dict[str, str]]]:
    """Split an item into (question, earlier turns).

    Args:
        item: a question, ``{"turns": [...]}`` or ``{"question": ...}``.

    Raises:
        ValueError: the item is not one of those shapes, or has no user turn with text.
    """
    if isinstance(item, str):
        if not item.strip():
            raise ValueError("the question is empty")
        return item, []
    if not isinstance(item, Mapping):
        raise ValueError(
            f"expected a question or an object with 'turns', got {type(item).__name__}"
        )
    if "turns" not in item:
        if isinstance(item.get("question"), str):
            return parse_item(item["question"])
        raise ValueError("expected an object with 'turns' (or 'question')")
    turns = item["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError("'turns' must be a non-empty list")
    clean: list[dict[str, str]] = []
    for i, t in enumerate(turns):
        if not isinstance(t, Mapping) or t.get("speaker") not in SPEAKERS:
            raise ValueError(f"turn {i}: expected {{'speaker': 'user'|'agent', 'text': ...}}")
        if not isinstance(t.get("text"), str):
            raise ValueError(f"turn {i}: 'text' must be a string")
        clean.append({"speaker": t["speaker"], "text": t["text"]})
    last_user = max((i for i, t in enumerate(clean) if t["speaker"] == "user"), default=None)
    if last_user is None or not clean[last_user]["text"].strip():
        raise ValueError("'turns' has no user turn with text to answer")
    return clean[last_user]["text"], clean[:last_user]


def history_messages(turns: Sequence[Mapping[str, str]]) -> list[AnyMessage]:
    """Earlier turns as transcript messages, shaped like the ones the graph writes itself."""
    out: list[AnyMessage] = []
    for i, t in enumerate(turns):
        if t["speaker"] == "user":
            out.append(HumanMessage(content=t["text"], id=f"history-{i}"))
        else:
            out.append(
                AIMessage(
                    content=t["text"],
                    id=f"history-{i}",
                    name="ai",
                    additional_kwargs={"sender": "ai", "citations": [], "confidence": None},
                )
            )
    return out


def _contexts(retrieved: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"source_id": str(c["source_id"]), "title": str(c["title"]), "text": str(c["text"])}
        for c in retrieved
    ]


async def answer_one(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    services: Services,
    tenant: Tenant | str,
    item: Item,
) -> AnswerResult:
    """Run one item through the graph in a fresh conversation and read the outcome.

    Args:
        graph: the compiled support graph, with a checkpointer (hand-off and approval are
            interrupts, which need one).
        services: the services the graph was built on.
        tenant: the tenant (or its slug) whose knowledge base and policy apply.
        item: a question or ``{"turns": [...]}`` (see the module docstring).

    Raises:
        ValueError: the item is malformed.
        helpdesk.errors.NotFound: no such tenant.
    """
    question, history = parse_item(item)
    if isinstance(tenant, str):
        tenant = await services.tenant(tenant)
    messages = [*history_messages(history), HumanMessage(content=question, id=str(uuid.uuid4()))]
    run = await probe(graph, services, tenant, messages)
    seen, latency = run.values, run.latency_s

    draft: Mapping[str, Any] | None = seen.get("draft")
    reply: Mapping[str, Any] | None = seen.get("reply")
    handoff = run.has("handoff")
    held = run.has("approval.pending") and not handoff
    confidence = float(draft["confidence"]) if draft else None
    if handoff:
        message = next((d.get("message") for n, d in run.events if n == "handoff"), None)
        answer, citations, declined = message or "", [], False
    elif held and draft is not None:
        answer = draft["text"]
        citations = [c["source_id"] for c in draft["citations"]]
        declined = bool(draft["declined"])
    elif reply is not None:
        answer = reply["text"]
        citations = [c["source_id"] for c in reply["citations"]]
        declined = bool(reply["declined"])
        if reply.get("confidence") is not None and confidence is None:
            confidence = float(reply["confidence"])
    else:  # pragma: no cover - every path of the graph ends in a reply or an interrupt
        raise RuntimeError(f"the graph ended without a reply or an interrupt for {question!r}")
    handoff_reason = (seen.get("handoff") or {}).get("reason") if handoff else None
    return AnswerResult(
        input=question,
        answer=answer,
        citations=citations,
        handoff=handoff,
        declined=declined,
        confidence=confidence,
        contexts=_contexts(seen.get("retrieved") or []),
        intent=seen.get("intent"),
        latency_s=latency,
        handoff_reason=handoff_reason or (seen.get("handoff_reason") if handoff else None),
        held_for_review=held,
    )


async def answer_many(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    services: Services,
    tenant: Tenant | str,
    items: Iterable[Item],
    *,
    concurrency: int = 1,
) -> list[AnswerResult]:
    """Answer every item (each in its own conversation); results in input order.

    Every item is validated before any runs, so a malformed one fails the batch up front.

    Raises:
        ValueError: ``concurrency`` < 1, or an item is malformed (the message names its index).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    batch = list(items)
    for i, item in enumerate(batch):
        try:
            parse_item(item)
        except ValueError as exc:
            raise ValueError(f"item {i}: {exc}") from exc
    if isinstance(tenant, str):
        tenant = await services.tenant(tenant)
    gate = asyncio.Semaphore(concurrency)
    resolved = tenant

    async def one(item: Item) -> AnswerResult:
        async with gate:
            return await answer_one(graph, services, resolved, item)

    return list(await asyncio.gather(*(one(item) for item in batch)))
