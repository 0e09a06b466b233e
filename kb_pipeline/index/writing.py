"""Ingestion: articles -> chunks -> embeddings -> rows, each article in one transaction.

``PGVectorStore.aadd_embeddings`` commits one row per transaction: slow, and an article can be
seen half-written. Here an article's chunks, postings and ``kb_articles`` row change in one
transaction, and embeddings are computed in large batches across articles.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from kb_pipeline.chunking import chunk_article
from kb_pipeline.index.schema import TS_CONFIG, vector_literal
from kb_pipeline.loaders import Article

if TYPE_CHECKING:
    from helpdesk.db import DictPool

EMBED_BATCH = 128
"""Chunks embedded per call during ingestion (across articles)."""


@dataclass
class IngestStats:
    """What an ingestion run did."""

    articles_seen: int = 0
    articles_written: int = 0
    """Articles whose row was written: new or changed ones (chunks rewritten), and unchanged
    ones whose url alone changed (row only, no chunk: see :meth:`KnowledgeBase.ingest`)."""
    articles_unchanged: int = 0
    articles_deleted: int = 0
    chunks_written: int = 0


def embedding_token_budget(embeddings: Embeddings) -> int | None:
    """Chunk budget (in :func:`~kb_pipeline.chunking.count_tokens` tokens) the model can embed.

    Sentence-transformers models read at most ``max_seq_length`` word pieces (256 for MiniLM)
    and silently drop the rest. About 1.1 word pieces per counted token on support articles
    (measured on Rho-Bank), plus the section path in front of each chunk: 0.8 of the window.
    ``None`` when the model does not say (OpenAI models read 8,191 tokens).
    """
    window = getattr(embeddings, "max_seq_length", None)  # nlp.onnx_embeddings
    if window is None:  # sentence-transformers behind langchain-huggingface
        client = getattr(embeddings, "_client", None) or getattr(embeddings, "client", None)
        window = getattr(client, "max_seq_length", None)
    return int(window * 0.8) if isinstance(window, int) and window > 0 else None


class ChunkWriter:
    """Writing and deleting articles, a part of :class:`~kb_pipeline.index.KnowledgeBase`."""

    _pool: DictPool
    embeddings: Embeddings
    table: str
    _terms: str
    _stats: str
    max_chunk_tokens: int | None

    async def ingest(
        self,
        tenant_id: uuid.UUID,
        articles: Sequence[Article],
        *,
        max_tokens: int = 512,
        overlap: int = 64,
        cleanup: bool = False,
        on_article: Callable[[Article, int], Any] | None = None,
        force: bool = False,
    ) -> IngestStats:
        """Index articles for a tenant. Unchanged articles write nothing.

        A changed article has its chunks replaced, atomically. With ``cleanup``, articles of the
        tenant that are not in ``articles`` are deleted with their chunks. ``on_article`` is
        called with each written article and its chunk count (for progress reporting).

        ``max_tokens`` is capped at :attr:`max_chunk_tokens`, so no chunk has text the model
        never reads (512 stays 512 with OpenAI embeddings, becomes 204 with MiniLM). Unchanged
        articles keep the chunks they were cut into; ``force`` rewrites them too (after a change
        of chunk settings).

        An article's ``url`` is compared on its own, not through the content hash: an article
        whose url alone changed has its ``kb_articles`` row updated and keeps its chunks (the
        url is read from the row at search time, no chunk carries it), so fixing a link never
        re-embeds anything. It counts as written with no chunk written.
        """
        if self.max_chunk_tokens and max_tokens > self.max_chunk_tokens:
            max_tokens = self.max_chunk_tokens
            overlap = min(overlap, max_tokens // 4)
        stats = IngestStats(articles_seen=len(articles))
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, source_id, content_hash, url FROM kb_articles WHERE tenant_id = %s",
                (tenant_id,),
            )
            known = {
                r["source_id"]: (r["id"], r["content_hash"], r["url"]) for r in await cur.fetchall()
            }
        seen: set[str] = set()
        todo: list[tuple[uuid.UUID, Article]] = []
        relink: list[tuple[uuid.UUID, Article]] = []
        for article in articles:
            if article.source_id in seen:
                raise ValueError(f"duplicate article id {article.source_id!r} in one ingestion")
            seen.add(article.source_id)
            current = known.get(article.source_id)
            if current and current[1] == article.content_hash and not force:
                if current[2] == article.url:
                    stats.articles_unchanged += 1
                else:
                    relink.append((current[0], article))
                continue
            todo.append((current[0] if current else uuid.uuid4(), article))
        if relink:
            await self._write_urls(tenant_id, relink, stats, on_article)

        # Embed across articles in large batches (one model call per EMBED_BATCH chunks) and
        # write article by article, so each one is all-or-nothing. The next batch is embedded
        # (in a worker thread) while this one is written, so the database work hides behind the
        # model's. Articles go in order of their longest chunk: a model batch is padded to its
        # longest text, and on the Galaxy manual (short and long sections mixed) batches in file
        # order took 15.0 s against 9.0 s for the same texts length-sorted (measured).
        chunked = [
            (
                article_id,
                article,
                chunk_article(article.title, article.body, max_tokens=max_tokens, overlap=overlap),
            )
            for article_id, article in todo
        ]
        chunked.sort(key=lambda item: max((len(c.text) for c in item[2]), default=0))
        batches: list[list[tuple[uuid.UUID, Article, list[Any]]]] = [[]]
        pending = 0
        for article_id, article, chunks in chunked:
            if pending >= EMBED_BATCH:
                batches.append([])
                pending = 0
            batches[-1].append((article_id, article, chunks))
            pending += len(chunks)
        embedding = self._embed_batch(batches[0])
        try:
            for i, batch in enumerate(batches):
                vectors = await embedding
                if i + 1 < len(batches):
                    embedding = self._embed_batch(batches[i + 1])
                await self._write_batch(tenant_id, batch, vectors, stats, on_article)
        finally:
            embedding.cancel()  # a failed write leaves no orphaned embedding task behind
        if cleanup:
            for source_id, (article_id, _, _) in known.items():
                if source_id not in seen:
                    await self._delete(tenant_id, article_id)
                    stats.articles_deleted += 1
        if todo or stats.articles_deleted:  # a url-only change moves no chunk
            await self.refresh_stats(tenant_id)
        return stats

    async def _write_urls(
        self,
        tenant_id: uuid.UUID,
        relink: Sequence[tuple[uuid.UUID, Article]],
        stats: IngestStats,
        on_article: Callable[[Article, int], Any] | None,
    ) -> None:
        """Write the url of articles whose content is unchanged (one transaction, no chunk)."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "UPDATE kb_articles SET url = %s WHERE tenant_id = %s AND id = %s",
                [(article.url, tenant_id, article_id) for article_id, article in relink],
            )
        for _, article in relink:
            stats.articles_written += 1
            if on_article is not None:
                on_article(article, 0)

    def _embed_batch(
        self, batch: list[tuple[uuid.UUID, Article, list[Any]]]
    ) -> asyncio.Task[list[list[float]]]:
        texts = [f"{c.section}\n\n{c.text}" for _, _, chunks in batch for c in chunks]

        async def embed() -> list[list[float]]:
            return await self.embeddings.aembed_documents(texts) if texts else []

        return asyncio.ensure_future(embed())

    async def _write_batch(
        self,
        tenant_id: uuid.UUID,
        batch: list[tuple[uuid.UUID, Article, list[Any]]],
        vectors: list[list[float]],
        stats: IngestStats,
        on_article: Callable[[Article, int], Any] | None,
    ) -> None:
        offset = 0
        for article_id, article, chunks in batch:
            mine = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            await self._write_article(tenant_id, article_id, article, chunks, mine)
            stats.articles_written += 1
            stats.chunks_written += len(chunks)
            if on_article is not None:
                on_article(article, len(chunks))

    async def _write_article(
        self,
        tenant_id: uuid.UUID,
        article_id: uuid.UUID,
        article: Article,
        chunks: Sequence[Any],
        vectors: Sequence[Sequence[float]],
    ) -> None:
        rows = [
            (
                uuid.uuid5(article_id, f"{article.content_hash}:{c.index}"),
                f"{c.section}\n\n{c.text}",
                vector_literal(vec),
                f"{c.section}\n\n{c.text}",
                tenant_id,
                article_id,
                article.source_id,
                article.visibility,
                list(article.tags),
                article.title,
                c.section,
            )
            for c, vec in zip(chunks, vectors, strict=True)
        ]
        async with self._pool.connection() as conn, conn.transaction():
            await self._delete_chunks(conn, tenant_id, article_id)
            if rows:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        f"""INSERT INTO "{self.table}" (langchain_id, content, embedding,
                                content_tsv, tenant_id, article_id, source_id, visibility, tags,
                                title, section)
                            VALUES (%s, %s, %s::vector, to_tsvector('{TS_CONFIG}', %s), %s, %s,
                                    %s, %s, %s, %s, %s)""",
                        rows,
                    )
                await conn.execute(
                    f"""UPDATE "{self.table}" SET doc_len = (SELECT coalesce(sum(
                            coalesce(array_length(positions, 1), 1)), 0) FROM unnest(content_tsv))
                        WHERE tenant_id = %s AND article_id = %s""",
                    (tenant_id, article_id),
                )
                await conn.execute(
                    f"""INSERT INTO "{self._terms}"
                        SELECT c.tenant_id, u.lexeme, c.langchain_id, c.article_id, c.visibility,
                               coalesce(array_length(u.positions, 1), 1), c.doc_len
                        FROM "{self.table}" c, unnest(c.content_tsv) u
                        WHERE c.tenant_id = %s AND c.article_id = %s""",
                    (tenant_id, article_id),
                )
            # The article row carries the content hash that makes re-ingestion skip it; it is in
            # the same transaction as the chunks, so the two can never disagree.
            await conn.execute(
                """
                INSERT INTO kb_articles (id, tenant_id, source_id, title, visibility, tags, body,
                                         content_hash, url, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, COALESCE(%s, now()))
                ON CONFLICT (tenant_id, source_id) DO UPDATE SET
                    title = EXCLUDED.title, visibility = EXCLUDED.visibility,
                    tags = EXCLUDED.tags, body = EXCLUDED.body,
                    content_hash = EXCLUDED.content_hash, url = EXCLUDED.url,
                    updated_at = EXCLUDED.updated_at
                """,
                (
                    article_id,
                    tenant_id,
                    article.source_id,
                    article.title,
                    article.visibility,
                    list(article.tags),
                    article.body,
                    article.content_hash,
                    article.url,
                    article.updated_at,
                ),
            )

    async def _delete_chunks(self, conn: Any, tenant_id: uuid.UUID, article_id: uuid.UUID) -> None:
        await conn.execute(
            f'DELETE FROM "{self.table}" WHERE tenant_id = %s AND article_id = %s',
            (tenant_id, article_id),
        )
        await conn.execute(
            f'DELETE FROM "{self._terms}" WHERE tenant_id = %s AND article_id = %s',
            (tenant_id, article_id),
        )

    async def _delete(self, tenant_id: uuid.UUID, article_id: uuid.UUID) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await self._delete_chunks(conn, tenant_id, article_id)
            await conn.execute(
                "DELETE FROM kb_articles WHERE tenant_id = %s AND id = %s", (tenant_id, article_id)
            )

    async def delete_article(self, tenant_id: uuid.UUID, article_id: uuid.UUID) -> None:
        """Delete an article and its chunks (one transaction)."""
        await self._delete(tenant_id, article_id)
        await self.refresh_stats(tenant_id)

    async def refresh_stats(self, tenant_id: uuid.UUID) -> None:
        """Recompute the tenant's chunk count and total length (BM25 needs both)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                f"""INSERT INTO "{self._stats}" (tenant_id, n_chunks, total_len)
                    SELECT %s, count(*), coalesce(sum(doc_len), 0) FROM "{self.table}"
                    WHERE tenant_id = %s
                    ON CONFLICT (tenant_id) DO UPDATE
                    SET n_chunks = EXCLUDED.n_chunks, total_len = EXCLUDED.total_len""",
                (tenant_id, tenant_id),
            )

    async def count_chunks(self, tenant_id: uuid.UUID) -> int:
        """Number of chunks indexed for a tenant."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f'SELECT count(*) AS n FROM "{self.table}" WHERE tenant_id = %s', (tenant_id,)
            )
            row = await cur.fetchone()
        return int(row["n"]) if row else 0
