"""retrieve: hybrid search of the tenant's knowledge base for this turn's question."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.services import Services
from graph.state import Retrieved, SupportState

TOP_K = 4
MAX_PER_ARTICLE = 2
"""The drafter sees up to four chunks, at most two from one article."""


def make(svc: Services) -> Any:
    """Build the node."""

    async def retrieve(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        tenant = await svc.tenant(state["tenant"])
        hits = await svc.kb.search(
            tenant.id,
            state.get("question", ""),
            k=TOP_K,
            audience=state.get("audience", "customer"),
            max_per_article=MAX_PER_ARTICLE,
        )
        return {
            "retrieved": [
                Retrieved(
                    chunk_id=h.chunk_id,
                    article_id=h.article_id,
                    source_id=h.source_id,
                    title=h.title,
                    section=h.section,
                    text=h.text,
                    score=h.score,
                )
                for h in hits
            ]
        }

    return retrieve
