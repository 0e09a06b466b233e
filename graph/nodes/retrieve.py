"""retrieve: hybrid search of the tenant's knowledge base for this turn's question.

The query is the question in the context of the conversation: follow-ups are often elliptical
("how does it work?", "what about the second one?") and the offline tier has no model to
rewrite them. So when the customer asked something before, the query vector is the question's
embedding plus the previous customer message's at ``CONTEXT_WEIGHT`` (the question dominates;
a topic switch still retrieves the new topic), and the keyword half of the search gets both
texts. The drafter scores sentences against the same vector (:func:`query_vector`).
How the context weight was measured: docs/decisions/follow-up-context.md.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.runtime import Runtime

from graph import facts
from graph.context import Context
from graph.services import Services
from graph.state import SupportState
from kb_pipeline.index import Retrieved
from nlp.text import content_words

TOP_K = 4
MAX_PER_ARTICLE = 2
"""The drafter sees up to four chunks, at most two from one article."""
CONTEXT_WEIGHT = 0.5
"""Weight of the previous customer message in the query vector (the question's is 1)."""


def previous_question(messages: Sequence[AnyMessage]) -> str:
    """The customer's message before this turn's, or "" when there is none worth using.

    ``messages[-1]`` is this turn's question (``guard_input`` reads it from there). A previous
    message without content words ("hi", "ok thanks") carries no topic and is not used.
    """
    asked = [m.text for m in messages if isinstance(m, HumanMessage)]
    if len(asked) < 2:
        return ""
    previous = asked[-2].strip()
    return previous if content_words(previous) else ""


async def query_vector(svc: Services, question: str, previous: str) -> np.ndarray:
    """Unit query embedding: the question, plus the previous question at ``CONTEXT_WEIGHT``."""
    if not previous:
        return (await svc.sentence_cache.embed([question]))[0]
    vecs = await svc.sentence_cache.embed([question, previous])
    mixed = vecs[0] + CONTEXT_WEIGHT * vecs[1]
    return mixed / (float(np.linalg.norm(mixed)) or 1.0)


async def search(
    svc: Services,
    tenant_id: uuid.UUID,
    question: str,
    previous: str,
    audience: Literal["customer", "agent"] = "customer",
) -> list[Retrieved]:
    """The chunks this turn's draft reads (also what the answerability fit measures on)."""
    return await svc.kb.search(
        tenant_id,
        f"{question} {previous}".strip(),
        k=TOP_K,
        audience=audience,
        max_per_article=MAX_PER_ARTICLE,
        # Through the turn's embedding cache: the guard and the classifier embedded this
        # question already, and the drafter scores sentences against the same vector.
        query_vector=(
            (await query_vector(svc, question, previous)).tolist() if question.strip() else None
        ),
    )


def make(svc: Services) -> Any:
    """Build the node."""

    async def retrieve(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        tenant = (await svc.scope(state, runtime)).tenant
        question = state.get("question", "")
        previous = previous_question(state.get("messages") or [])
        hits = await search(svc, tenant.id, question, previous, state.get("audience", "customer"))
        asked = facts.recognise(question)
        if asked is not None:
            titles = {h["source_id"]: h["title"] for h in hits}
            # in a thread: the first use of a time zone reads the tz database from disk
            fact = await asyncio.to_thread(
                facts.answer, asked, tenant.business, svc.clock(), titles
            )
            if fact is not None:  # the profile's answer first: the drafter sends it
                hits = [fact, *hits]
        return {"retrieved": hits}

    return retrieve
