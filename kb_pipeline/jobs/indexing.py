"""Putting a job's articles into the index, so that a failure leaves nothing half-indexed.

Articles are indexed in batches through :meth:`KnowledgeBase.ingest`, which writes each article
(chunks and ``kb_articles`` row) in one transaction. When a batch fails, its articles are
retried one by one, so a transient error costs a retry and a persistent one is pinned on one
article, reported as ``index_failed``; the others are written. A failed article keeps its
previous version (or stays absent); chunks that no article row owns are removed (see
:func:`_settle_failed`). Also here: ``force`` (:func:`invalidate`) and ``cleanup``."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from kb_pipeline.index import IngestStats
from kb_pipeline.loaders import Article

if TYPE_CHECKING:
    from helpdesk.db import DictPool
    from kb_pipeline.index import KnowledgeBase

log = logging.getLogger(__name__)

JOB_ERROR_CODES: dict[str, str] = {
    "index_failed": "an article could not be indexed (embedding or database error); it was "
    "rolled back and the next run retries it",
}
"""Error codes a job adds to the loaders' (:data:`kb_pipeline.loaders.ERROR_CODES`)."""


async def index_batch(
    kb: KnowledgeBase,
    pool: DictPool,
    tenant_id: uuid.UUID,
    batch: list[Article],
    max_tokens: int,
    overlap: int,
) -> tuple[IngestStats, list[str]]:
    """Index a batch; on failure isolate the failing articles and roll them back."""
    before = await _stored_hashes(pool, tenant_id, [a.source_id for a in batch])
    try:
        return await kb.ingest(tenant_id, batch, max_tokens=max_tokens, overlap=overlap), []
    except Exception as exc:
        log.warning("batch of %d articles failed (%s); retrying one by one", len(batch), exc)
    total = IngestStats()
    failures: list[str] = []
    for article in batch:
        try:
            stats = await kb.ingest(tenant_id, [article], max_tokens=max_tokens, overlap=overlap)
        except Exception as exc:
            failures.append(await _settle_failed(kb, pool, tenant_id, article, exc))
            continue
        stored = before.get(article.source_id)
        if stats.articles_unchanged and stored != (article.content_hash, article.url):
            # It was written by the failed batch attempt, before the batch broke off (its row
            # alone when only its url had changed).
            relinked = stored is not None and stored[0] == article.content_hash
            stats = IngestStats(
                articles_seen=1,
                articles_written=1,
                chunks_written=0
                if relinked
                else await _count_chunks(kb, pool, tenant_id, article.source_id),
            )
        total.articles_seen += stats.articles_seen
        total.articles_written += stats.articles_written
        total.articles_unchanged += stats.articles_unchanged
        total.chunks_written += stats.chunks_written
    return total, failures


async def _settle_failed(
    kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, article: Article, exc: Exception
) -> str:
    """Make sure a failed article left no chunks behind its row; return the error message.

    :meth:`KnowledgeBase.ingest` writes an article's chunks and its ``kb_articles`` row in one
    transaction, so a failure leaves the previous version (or nothing) exactly as it was: still
    whole, still searchable. Chunks under this source id that no article row owns can only come
    from a write that was not atomic; they are removed through
    :meth:`KnowledgeBase.delete_article`, which keeps the index's own bookkeeping right.
    """
    # Database errors carry a multi-line CONTEXT; the first line is the error itself.
    reason = (str(exc).strip().splitlines() or [""])[0]
    message = f"article {article.source_id!r} could not be indexed: {type(exc).__name__}: {reason}"
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"""
                SELECT DISTINCT c.article_id FROM "{kb.table}" c
                WHERE c.tenant_id = %s AND c.source_id = %s AND NOT EXISTS (
                    SELECT 1 FROM kb_articles a
                    WHERE a.tenant_id = c.tenant_id AND a.id = c.article_id)
                """,
                (tenant_id, article.source_id),
            )
            orphans = [r["article_id"] for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT 1 FROM kb_articles WHERE tenant_id = %s AND source_id = %s",
                (tenant_id, article.source_id),
            )
            existed = await cur.fetchone() is not None
        for article_id in orphans:
            await kb.delete_article(tenant_id, article_id)
    except Exception as cleanup_exc:
        log.exception("checking failed article %s for leftovers failed", article.source_id)
        return f"{message} (its leftovers could not be checked: {cleanup_exc})"
    if existed:
        return message + "; the version indexed before stays as it was, the next run retries"
    return message + "; nothing of it was indexed, the next run retries"


async def _stored_hashes(
    pool: DictPool, tenant_id: uuid.UUID, source_ids: list[str]
) -> dict[str, tuple[str, str | None]]:
    """Source id -> (content hash, url) as stored: what decides that an article is unchanged."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT source_id, content_hash, url FROM kb_articles"
            " WHERE tenant_id = %s AND source_id = ANY(%s)",
            (tenant_id, source_ids),
        )
        return {r["source_id"]: (r["content_hash"], r["url"]) for r in await cur.fetchall()}


async def _count_chunks(
    kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, source_id: str
) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT count(*) AS n FROM "{kb.table}" WHERE tenant_id = %s AND source_id = %s',
            (tenant_id, source_id),
        )
        row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def invalidate(pool: DictPool, tenant_id: uuid.UUID, source_ids: list[str]) -> None:
    """Make the next ingestion of these articles rewrite them (``force``)."""
    # An empty hash never matches, so KnowledgeBase.ingest rewrites these articles.
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE kb_articles SET content_hash = '' WHERE tenant_id = %s AND source_id = ANY(%s)",
            (tenant_id, source_ids),
        )


async def cleanup(kb: KnowledgeBase, pool: DictPool, tenant_id: uuid.UUID, seen: set[str]) -> int:
    """Delete the tenant's articles whose source id is not in ``seen``; return how many."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, source_id FROM kb_articles WHERE tenant_id = %s", (tenant_id,)
        )
        rows = await cur.fetchall()
    gone = [r["id"] for r in rows if r["source_id"] not in seen]
    for article_id in gone:
        await kb.delete_article(tenant_id, article_id)
    return len(gone)
