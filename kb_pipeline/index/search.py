"""Retrieval: hybrid search over one tenant's chunks, at most a few chunks per article.

The dense side (:mod:`~kb_pipeline.index.dense`) and the sparse side
(:mod:`~kb_pipeline.index.bm25`) run at the same time, their scores are fused
(:mod:`~kb_pipeline.index.fusion`), and results are de-duplicated at article level (one chunk
per article unless the caller asks for more).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired

from langchain_core.embeddings import Embeddings
from typing_extensions import TypedDict

from kb_pipeline.index.bm25 import bm25_scores
from kb_pipeline.index.dense import TenantSizes, dense_scores
from kb_pipeline.index.filters import Filters
from kb_pipeline.index.fusion import FUSION_DEPTH, fuse
from kb_pipeline.loaders import Visibility

if TYPE_CHECKING:
    from helpdesk.db import DictPool

Audience = Literal["customer", "agent"]
SearchMode = Literal["hybrid", "vector", "fulltext"]


class Retrieved(TypedDict):
    """A chunk retrieved for a query (the best of its article, or one of its best few).

    A plain dict, so that the support graph keeps a turn's chunks in its checkpointed state
    (``SupportState.retrieved``) as search returned them, and loads older checkpoints as they
    are: the keys that came later are optional.
    """

    chunk_id: str
    article_id: str
    source_id: str
    title: str
    section: str
    text: str
    """The chunk's text, without the section path it was embedded with."""
    score: float
    visibility: NotRequired[str]
    """external or internal (search always sets it; absent in turns checkpointed before it
    was kept, and in chunks the evals make up)."""
    url: NotRequired[str | None]
    """The article's web page (absolute http(s)) when its source names one, else None (absent
    in turns checkpointed before urls)."""


class ChunkSearch:
    """Searching the chunks, a part of :class:`~kb_pipeline.index.KnowledgeBase`."""

    _pool: DictPool
    embeddings: Embeddings
    table: str
    _sizes: TenantSizes

    async def search(
        self,
        tenant_id: uuid.UUID,
        query: str,
        *,
        k: int = 4,
        audience: Audience = "customer",
        mode: SearchMode = "hybrid",
        tags: Sequence[str] | None = None,
        updated_after: datetime | None = None,
        vote_weight: float = 0.0,
        query_vector: Sequence[float] | None = None,
        max_per_article: int = 1,
        only_visibility: Visibility | None = None,
    ) -> list[Retrieved]:
        """Return the ``k`` best chunks for ``query``, at most ``max_per_article`` per article.

        With the default of one chunk per article the results are article-level (what a search
        page or a recall@k over articles wants); the drafting step asks for two, since the
        answer to a question often sits in the second-best section of the best article.

        The tenant filter is always applied. Customers see external articles only; agents see
        internal ones too. ``tags`` keeps articles with any of the tags; ``updated_after`` keeps
        articles updated since. ``vote_weight`` > 0 moves articles with helpful votes up and
        not-helpful ones down (off by default: see docs/retrieval.md). ``query_vector`` lets a
        caller that already embedded the query skip a second embedding. ``only_visibility``
        narrows what the audience may see to one visibility (in the query, so ``k`` results
        still come back when there are that many).
        """
        if k < 1 or max_per_article < 1:
            raise ValueError(
                f"k and max_per_article must be at least 1, got {k}, {max_per_article}"
            )
        if not query.strip():
            return []
        visibility = ["external"] if audience == "customer" else ["external", "internal"]
        if only_visibility is not None:
            visibility = [v for v in visibility if v == only_visibility]
            if not visibility:
                return []
        filters = Filters(tenant_id, visibility, list(tags) if tags else None, updated_after)
        depth = max(FUSION_DEPTH, 4 * k)

        async def dense_side() -> dict[str, float]:
            if mode not in ("hybrid", "vector"):
                return {}
            vector = query_vector
            if vector is None:
                vector = await self.embeddings.aembed_query(query)
            async with self._pool.connection() as conn:
                return await dense_scores(conn, self.table, self._sizes, filters, vector, depth)

        async def sparse_side() -> dict[str, float]:
            if mode not in ("hybrid", "fulltext"):
                return {}
            async with self._pool.connection() as conn:
                return await bm25_scores(conn, self.table, filters, query, depth)

        # The full-text query runs while the query is being embedded (two connections; the
        # model call runs in a worker thread).
        dense, sparse = await asyncio.gather(dense_side(), sparse_side())
        scores = fuse(dense, sparse) if mode == "hybrid" else dense or sparse
        if not scores:
            return []
        async with self._pool.connection() as conn:
            rows = await self._rows(conn, tenant_id, list(scores))
            if vote_weight > 0:
                await self._apply_votes(conn, tenant_id, rows, scores, vote_weight)
        ranked: list[tuple[float, dict[str, Any]]] = []
        per_article: dict[str, int] = {}
        for chunk_id in sorted(scores, key=lambda c: -scores[c]):
            row = rows.get(chunk_id)
            if row is None:
                continue
            article = str(row["article_id"])
            if per_article.get(article, 0) >= max_per_article:
                continue
            per_article[article] = per_article.get(article, 0) + 1
            ranked.append((scores[chunk_id], row))
            if len(ranked) == k:
                break
        return [self._retrieved(row, score) for score, row in ranked]

    async def _rows(
        self, conn: Any, tenant_id: uuid.UUID, chunk_ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        # The url comes from the article's row (one primary-key probe per result), not from a
        # chunk column: a changed url is then one row to update, never chunks to rewrite.
        cur = await conn.execute(
            f"""SELECT c.langchain_id::text AS id, c.content, c.article_id, c.source_id, c.title,
                       c.section, c.visibility, a.url
                FROM "{self.table}" c
                LEFT JOIN kb_articles a ON a.tenant_id = c.tenant_id AND a.id = c.article_id
                WHERE c.tenant_id = %s AND c.langchain_id = ANY(%s::uuid[])""",
            (tenant_id, chunk_ids),
        )
        return {r["id"]: r for r in await cur.fetchall()}

    @staticmethod
    async def _apply_votes(
        conn: Any,
        tenant_id: uuid.UUID,
        rows: dict[str, dict[str, Any]],
        scores: dict[str, float],
        weight: float,
    ) -> None:
        articles = list({r["article_id"] for r in rows.values()})
        cur = await conn.execute(
            "SELECT id, helpful, not_helpful FROM kb_articles WHERE tenant_id = %s"
            " AND id = ANY(%s)",
            (tenant_id, articles),
        )
        # Smoothed net helpfulness in [-1, 1]; five pseudo-votes keep one vote from dominating.
        net = {
            r["id"]: (r["helpful"] - r["not_helpful"]) / (r["helpful"] + r["not_helpful"] + 5)
            for r in await cur.fetchall()
        }
        for chunk_id, row in rows.items():
            if chunk_id in scores:
                scores[chunk_id] *= 1 + weight * net.get(row["article_id"], 0.0)

    @staticmethod
    def _retrieved(row: dict[str, Any], score: float) -> Retrieved:
        return Retrieved(
            chunk_id=str(row["id"]),
            article_id=str(row["article_id"]),
            source_id=str(row["source_id"]),
            title=str(row["title"]),
            section=str(row["section"]),
            text=str(row["content"]).split("\n\n", 1)[-1],
            visibility=str(row["visibility"]),
            score=float(score),
            url=row.get("url"),
        )
