"""The chunk index (langchain-postgres ``PGVectorStore`` table) and hybrid retrieval over it.

Storage
    Chunks live in one table per embedding model, ``kb_chunks_<model key>_<dim>``, created by
    ``PGEngine.ainit_vectorstore_table`` with metadata columns (tenant_id, article_id, source_id,
    visibility, tags, title, section, doc_len), an HNSW index on the embedding and a stored
    ``tsvector`` with a GIN index. Changing the model means a fresh table filled by re-ingesting,
    never vectors of two models in one column. Beside it, ``<table>_terms`` holds one posting per
    (chunk, lexeme) with its term frequency, and ``<table>_stats`` the per-tenant chunk count and
    total length: together an inverted index in Postgres, which is what Okapi BM25 needs.

Why the hot paths are SQL of our own rather than ``PGVectorStore``'s methods (measured on the
Galaxy S10 manual, ``bench/retrieval.py``):
    * its sparse half is ``plainto_tsquery`` (every query word must match) ranked by
      ``ts_rank_cd``, which has no IDF; natural-language questions rarely match all their words.
      BM25 over the same Postgres lexemes is what reaches the targets;
    * ``aadd_embeddings`` commits one row per transaction: slow, and an article can be seen
      half-written. Here an article's chunks, postings and ``kb_articles`` row change in one
      transaction, and embeddings are computed in large batches across articles;
    * a filtered HNSW scan in pgvector 0.6 filters *after* the index returns ``ef_search``
      candidates, so in a table shared by many tenants a small tenant can get fewer results than
      it should. A tenant with up to ``EXACT_SEARCH_MAX_CHUNKS`` chunks is searched exactly (its
      rows through the tenant index, distances computed for all of them: a few milliseconds);
      a larger one uses HNSW with ``ef_search`` raised by the tenant's share of the table.

The store is still the library's: ``KnowledgeBase.vectorstore`` is a ``PGVectorStore`` on the
same table (its ``HybridSearchConfig`` uses :func:`convex_fusion`), for LangChain interop.

Fusion
    Hybrid search takes the best ``FUSION_DEPTH`` chunks of each side, min-max normalises each
    list and adds them with weight ``HYBRID_ALPHA`` on the dense side (a convex combination).
    On Galaxy S10 and the demo set this beat reciprocal-rank fusion at every k tried (RRF throws
    away how far apart scores are). Results are de-duplicated at article level (one chunk per
    article unless the caller asks for more).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_postgres import Column, PGEngine, PGVectorStore
from langchain_postgres.v2.hybrid_search_config import HybridSearchConfig
from sqlalchemy.ext.asyncio import create_async_engine

from kb_pipeline.chunking import chunk_article
from kb_pipeline.loaders import Article, Visibility

if TYPE_CHECKING:
    from helpdesk.db import DictPool

Audience = Literal["customer", "agent"]
SearchMode = Literal["hybrid", "vector", "fulltext"]

TS_CONFIG = "pg_catalog.english"
HYBRID_ALPHA = 0.5
"""Weight of the dense (vector) side in the convex fusion; the sparse side gets 1 - alpha."""
FUSION_DEPTH = 40
"""How many chunks each side contributes to the fusion."""
BM25_K1 = 1.2
BM25_B = 0.75
EXACT_SEARCH_MAX_CHUNKS = 20_000
"""Tenants up to this size are searched exactly; larger ones through HNSW."""
SIZES_TTL_S = 5.0
EMBED_BATCH = 128
"""Chunks embedded per call during ingestion (across articles)."""

_METADATA_COLUMNS = [
    "tenant_id",
    "article_id",
    "source_id",
    "visibility",
    "tags",
    "title",
    "section",
    "doc_len",
]
_TABLE_LOCK = 7_201_912


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk (the best one of its article)."""

    chunk_id: str
    article_id: str
    source_id: str
    title: str
    section: str
    text: str
    visibility: str
    score: float
    url: str | None = None
    """The article's web page (absolute http(s)), when its source names one."""


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


def table_for(model_key: str, dim: int) -> str:
    """Name of the chunk table for an embedding model."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_key.lower()).strip("_")[:40]
    return f"kb_chunks_{slug}_{dim}"


def embedding_token_budget(embeddings: Embeddings) -> int | None:
    """Chunk budget (in :func:`~kb_pipeline.chunking.count_tokens` tokens) the model can embed.

    Sentence-transformers models read at most ``max_seq_length`` word pieces (256 for MiniLM)
    and silently drop the rest. About 1.1 word pieces per counted token on support articles
    (measured on Rho-Bank), plus the section path in front of each chunk: 0.8 of the window.
    ``None`` when the model does not say (OpenAI models read 8,191 tokens).
    """
    window = getattr(embeddings, "max_seq_length", None)  # graph.onnx_embeddings
    if window is None:  # sentence-transformers behind langchain-huggingface
        client = getattr(embeddings, "_client", None) or getattr(embeddings, "client", None)
        window = getattr(client, "max_seq_length", None)
    return int(window * 0.8) if isinstance(window, int) and window > 0 else None


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {key: 1.0 for key in scores}
    return {key: (v - lo) / (hi - lo) for key, v in scores.items()}


def fuse(
    dense: dict[str, float], sparse: dict[str, float], *, alpha: float = HYBRID_ALPHA
) -> dict[str, float]:
    """Convex combination of min-max normalised dense and sparse scores (missing = 0)."""
    nd, ns = _minmax(dense), _minmax(sparse)
    return {key: alpha * nd.get(key, 0.0) + (1 - alpha) * ns.get(key, 0.0) for key in nd | ns}


def convex_fusion(
    primary_search_results: Sequence[Any],
    secondary_search_results: Sequence[Any],
    alpha: float = HYBRID_ALPHA,
    fetch_top_k: int = 4,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`fuse` with the signature ``HybridSearchConfig.fusion_function`` expects.

    ``PGVectorStore`` hands over rows whose first value is the id and whose ``distance`` is a
    cosine distance (dense) or a ``ts_rank_cd`` (sparse).
    """
    rows: dict[str, dict[str, Any]] = {}
    dense: dict[str, float] = {}
    sparse: dict[str, float] = {}
    for row in primary_search_results:
        key = str(next(iter(row.values())))
        rows.setdefault(key, dict(row))
        dense[key] = 1.0 - float(row["distance"])
    for row in secondary_search_results:
        key = str(next(iter(row.values())))
        rows.setdefault(key, dict(row))
        sparse[key] = float(row["distance"])
    fused = fuse(dense, sparse, alpha=alpha)
    out = []
    for key in sorted(fused, key=lambda k: -fused[k])[:fetch_top_k]:
        row = rows[key]
        row["distance"] = fused[key]
        out.append(row)
    return out


def _hybrid_config(fetch_k: int) -> HybridSearchConfig:
    # A fresh config per use: PGVectorStore writes the query text and fetch_top_k into the
    # config object it is given, so a shared one would leak one query into the next.
    return HybridSearchConfig(
        tsv_column="content_tsv",
        tsv_lang=TS_CONFIG,
        fusion_function=convex_fusion,
        fusion_function_parameters={"alpha": HYBRID_ALPHA},
        primary_top_k=fetch_k,
        secondary_top_k=fetch_k,
        index_name="",
    )


def _vector_literal(vec: Iterable[float]) -> str:
    """A pgvector literal of ``vec`` scaled to unit length.

    Every stored and every query vector is a unit vector, so cosine similarity is the inner
    product and the exact search can use pgvector's cheaper ``<#>`` (measured on a 2,948-chunk
    tenant: 3.0 ms against 4.4 ms for ``<=>``). Nine significant digits keep a float32 exact
    and halve the text the server parses.
    """
    values = [float(x) for x in vec]
    norm = math.sqrt(sum(x * x for x in values)) or 1.0
    return "[" + ",".join(f"{x / norm:.9g}" for x in values) + "]"


class KnowledgeBase:
    """Ingestion into and retrieval from one tenant-partitioned chunk table."""

    def __init__(
        self,
        pool: DictPool,
        engine: PGEngine,
        store: PGVectorStore,
        embeddings: Embeddings,
        table: str,
    ) -> None:
        self._pool = pool
        self._engine = engine
        self.vectorstore = store
        self.embeddings = embeddings
        self.table = table
        self._terms = f"{table}_terms"
        self._stats = f"{table}_stats"
        self.max_chunk_tokens = embedding_token_budget(embeddings)
        """Chunks are capped at what the embedding model reads (None: no cap)."""
        self._sizes_cache: dict[uuid.UUID, tuple[float, int, int]] = {}

    @classmethod
    async def open(
        cls,
        pool: DictPool,
        sqlalchemy_url: str,
        embeddings: Embeddings,
        *,
        model_key: str,
        dim: int,
    ) -> KnowledgeBase:
        """Open (creating on first use) the chunk table and its indexes for this model."""
        table = table_for(model_key, dim)
        engine = PGEngine.from_engine(
            # pre-ping: a pooled connection dropped by a Postgres restart is replaced, not used.
            create_async_engine(sqlalchemy_url, pool_size=2, pool_pre_ping=True)
        )
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_TABLE_LOCK,))
            try:
                cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (table,))
                row = await cur.fetchone()
                if not (row and row["ok"]):
                    await engine.ainit_vectorstore_table(
                        table_name=table,
                        vector_size=dim,
                        metadata_columns=[
                            Column("tenant_id", "UUID", nullable=False),
                            Column("article_id", "UUID", nullable=False),
                            Column("source_id", "TEXT", nullable=False),
                            Column("visibility", "TEXT", nullable=False),
                            Column("tags", "TEXT[]", nullable=False),
                            Column("title", "TEXT", nullable=False),
                            Column("section", "TEXT", nullable=False),
                            Column("doc_len", "INT", nullable=True),
                        ],
                        hybrid_search_config=_hybrid_config(10),
                    )
                await cls._ensure_side_tables(conn, table)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_TABLE_LOCK,))
        store = await PGVectorStore.create(
            engine,
            embedding_service=embeddings,
            table_name=table,
            metadata_columns=_METADATA_COLUMNS,
            hybrid_search_config=_hybrid_config(10),
        )
        return cls(pool, engine, store, embeddings, table)

    @staticmethod
    async def _ensure_side_tables(conn: Any, table: str) -> None:
        terms, stats = f"{table}_terms", f"{table}_stats"
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (terms,))
        row = await cur.fetchone()
        fresh = not (row and row["ok"])
        await conn.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS doc_len INT')
        # Keep vectors in the row: with the chunk text beside them a row passes the TOAST
        # threshold, and a TOASTed vector costs ~6 buffer reads per row in an exact scan
        # (measured: 18k buffers, 34 ms for 3,000 chunks). MAIN still moves a vector out as a
        # last resort, so 3,072-dimension models fit.
        await conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN embedding SET STORAGE MAIN')
        for stmt in (
            f'CREATE INDEX IF NOT EXISTS "{table}_hnsw" ON "{table}"'
            " USING hnsw (embedding vector_cosine_ops)",
            f'CREATE INDEX IF NOT EXISTS "{table}_tsv" ON "{table}" USING gin (content_tsv)',
            f'CREATE INDEX IF NOT EXISTS "{table}_article" ON "{table}" (tenant_id, article_id)',
            f"""CREATE TABLE IF NOT EXISTS "{terms}" (
                    tenant_id UUID NOT NULL, lexeme TEXT NOT NULL, chunk_id UUID NOT NULL,
                    article_id UUID NOT NULL, visibility TEXT NOT NULL, tf INT NOT NULL,
                    doc_len INT NOT NULL)""",
            f'CREATE INDEX IF NOT EXISTS "{terms}_lookup" ON "{terms}" (tenant_id, lexeme)'
            " INCLUDE (chunk_id, article_id, visibility, tf, doc_len)",
            f'CREATE INDEX IF NOT EXISTS "{terms}_article" ON "{terms}" (tenant_id, article_id)',
            f"""CREATE TABLE IF NOT EXISTS "{stats}" (
                    tenant_id UUID PRIMARY KEY, n_chunks INT NOT NULL,
                    total_len BIGINT NOT NULL)""",
        ):
            await conn.execute(stmt)
        if fresh:
            # A table from before postings existed: derive them from the stored tsvectors.
            await conn.execute(
                f"""UPDATE "{table}" SET doc_len = (SELECT coalesce(sum(
                        coalesce(array_length(positions, 1), 1)), 0) FROM unnest(content_tsv))
                    WHERE doc_len IS NULL"""
            )
            await conn.execute(
                f"""INSERT INTO "{terms}" SELECT c.tenant_id, u.lexeme, c.langchain_id,
                        c.article_id, c.visibility, coalesce(array_length(u.positions, 1), 1),
                        c.doc_len
                    FROM "{table}" c, unnest(c.content_tsv) u"""
            )
            await conn.execute(
                f"""INSERT INTO "{stats}" SELECT tenant_id, count(*), sum(doc_len)
                    FROM "{table}" GROUP BY tenant_id ON CONFLICT (tenant_id) DO NOTHING"""
            )

    async def close(self) -> None:
        """Dispose of the SQLAlchemy engine used by the vector store."""
        await self._engine.close()

    # ---------------------------------------------------------------- ingestion

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
                _vector_literal(vec),
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

    # ---------------------------------------------------------------- retrieval

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
    ) -> list[Hit]:
        """Return the ``k`` best chunks for ``query``, at most ``max_per_article`` per article.

        With the default of one chunk per article the results are article-level (what a search
        page or a recall@k over articles wants); the drafting step asks for two, since the
        answer to a question often sits in the second-best section of the best article.

        The tenant filter is always applied. Customers see external articles only; agents see
        internal ones too. ``tags`` keeps articles with any of the tags; ``updated_after`` keeps
        articles updated since. ``vote_weight`` > 0 moves articles with helpful votes up and
        not-helpful ones down (off by default: see README, "Retrieval"). ``query_vector`` lets a
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
        filters = _Filters(tenant_id, visibility, list(tags) if tags else None, updated_after)
        depth = max(FUSION_DEPTH, 4 * k)

        async def dense_side() -> dict[str, float]:
            if mode not in ("hybrid", "vector"):
                return {}
            vector = query_vector
            if vector is None:
                vector = await self.embeddings.aembed_query(query)
            async with self._pool.connection() as conn:
                return await self._dense(conn, filters, vector, depth)

        async def sparse_side() -> dict[str, float]:
            if mode not in ("hybrid", "fulltext"):
                return {}
            async with self._pool.connection() as conn:
                return await self._bm25(conn, filters, query, depth)

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
        return [self._hit(row, score) for score, row in ranked]

    async def _dense(
        self, conn: Any, f: _Filters, vector: Sequence[float], depth: int
    ) -> dict[str, float]:
        literal = _vector_literal(vector)
        where, params = f.sql()
        tenant_chunks, total = await self._sizes(conn, f.tenant_id)
        if tenant_chunks <= EXACT_SEARCH_MAX_CHUNKS:
            # Exact distances over the tenant's own rows, found through the tenant index, so
            # nothing is lost to filtering. The HNSW index is built for cosine distance, so the
            # inner-product order (the same order on unit vectors) never uses it.
            cur = await conn.execute(
                f"""SELECT langchain_id::text AS id, -(embedding <#> %s::vector) AS sim
                    FROM "{self.table}" WHERE {where}
                    ORDER BY embedding <#> %s::vector LIMIT %s""",
                (literal, *params, literal, depth),
            )
            return {r["id"]: float(r["sim"]) for r in await cur.fetchall()}
        # pgvector 0.6 filters after the index scan: widen the candidate list by the inverse of
        # the tenant's share of the table so `depth` of its own rows survive the filter.
        ef = min(1000, max(depth, math.ceil(depth * 1.5 * total / max(tenant_chunks, 1))))
        async with conn.transaction():
            await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            cur = await conn.execute(
                f"""SELECT langchain_id::text AS id, 1 - (embedding <=> %s::vector) AS sim
                    FROM "{self.table}" WHERE {where}
                    ORDER BY embedding <=> %s::vector LIMIT %s""",
                (literal, *params, literal, depth),
            )
            return {r["id"]: float(r["sim"]) for r in await cur.fetchall()}

    async def _sizes(self, conn: Any, tenant_id: uuid.UUID) -> tuple[int, int]:
        """(the tenant's chunks, all chunks), read at most every :data:`SIZES_TTL_S` seconds.

        They only choose between exact and HNSW search, so a few seconds stale is harmless,
        and a query saves a round trip.
        """
        now = time.monotonic()
        hit = self._sizes_cache.get(tenant_id)
        if hit is not None and now - hit[0] < SIZES_TTL_S:
            return hit[1], hit[2]
        cur = await conn.execute(
            f"""SELECT coalesce(sum(n_chunks) FILTER (WHERE tenant_id = %s), 0) AS mine,
                       coalesce(sum(n_chunks), 0) AS total
                FROM "{self._stats}" """,
            (tenant_id,),
        )
        row = await cur.fetchone()
        mine, total = (int(row["mine"]), int(row["total"])) if row else (0, 0)
        self._sizes_cache[tenant_id] = (now, mine, total)
        return mine, total

    async def _bm25(self, conn: Any, f: _Filters, query: str, depth: int) -> dict[str, float]:
        where, params = f.sql(prefix="p.", chunk_table=self.table)
        cur = await conn.execute(
            f"""
            WITH s AS (
                SELECT n_chunks::float8 AS n,
                       greatest(total_len::float8 / greatest(n_chunks, 1), 1) AS avgdl
                FROM "{self._stats}" WHERE tenant_id = %s
            ), q AS (
                SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('{TS_CONFIG}', %s))) AS lexeme
            ), p AS (
                SELECT t.*, (count(*) OVER (PARTITION BY t.lexeme))::float8 AS df
                FROM "{self._terms}" t JOIN q ON q.lexeme = t.lexeme
                WHERE t.tenant_id = %s
            )
            SELECT p.chunk_id::text AS id,
                   sum(ln(1.0 + (s.n - p.df + 0.5) / (p.df + 0.5))
                       * p.tf * ({BM25_K1} + 1.0)
                       / (p.tf + {BM25_K1} * (1.0 - {BM25_B} + {BM25_B} * p.doc_len / s.avgdl)))
                       AS score
            FROM p, s WHERE {where}
            GROUP BY p.chunk_id ORDER BY score DESC LIMIT %s
            """,
            (f.tenant_id, query, f.tenant_id, *params, depth),
        )
        return {r["id"]: float(r["score"]) for r in await cur.fetchall()}

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
    def _hit(row: dict[str, Any], score: float) -> Hit:
        return Hit(
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


@dataclass(frozen=True)
class _Filters:
    """The WHERE clause every retrieval query carries; the tenant is never optional."""

    tenant_id: uuid.UUID
    visibility: list[str]
    tags: list[str] | None
    updated_after: datetime | None

    def sql(self, prefix: str = "", chunk_table: str | None = None) -> tuple[str, list[Any]]:
        clauses = [f"{prefix}tenant_id = %s", f"{prefix}visibility = ANY(%s)"]
        params: list[Any] = [self.tenant_id, self.visibility]
        if self.tags:
            if chunk_table is None:
                clauses.append(f"{prefix}tags && %s::text[]")
            else:  # postings carry no tags: check them on the chunk
                clauses.append(
                    f'{prefix}chunk_id IN (SELECT langchain_id FROM "{chunk_table}"'
                    " WHERE tenant_id = %s AND tags && %s::text[])"
                )
                params.append(self.tenant_id)
            params.append(self.tags)
        if self.updated_after is not None:
            clauses.append(
                f"{prefix}article_id IN (SELECT id FROM kb_articles WHERE tenant_id = %s"
                " AND updated_at >= %s)"
            )
            params.extend([self.tenant_id, self.updated_after])
        return " AND ".join(clauses), params
