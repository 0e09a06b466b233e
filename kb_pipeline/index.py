"""The chunk index (langchain-postgres ``PGVectorStore``) and hybrid retrieval over it.

Chunks live in one table per embedding model, ``kb_chunks_<model key>``, so changing the model
means a fresh table that is filled by re-ingesting, never vectors of two models mixed in one
column. The table has metadata columns (tenant_id, article_id, source_id, visibility, tags,
title, section), an HNSW index on the embedding, and a stored tsvector with a GIN index for the
full-text half of hybrid search.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_postgres import Column, PGEngine, PGVectorStore
from langchain_postgres.v2.hybrid_search_config import (
    HybridSearchConfig,
    reciprocal_rank_fusion,
)
from sqlalchemy.ext.asyncio import create_async_engine

from kb_pipeline.chunking import chunk_article
from kb_pipeline.loaders import Article

if TYPE_CHECKING:
    from helpdesk.db import DictPool

Audience = Literal["customer", "agent"]
SearchMode = Literal["hybrid", "vector", "fulltext"]

_METADATA_COLUMNS = [
    "tenant_id",
    "article_id",
    "source_id",
    "visibility",
    "tags",
    "title",
    "section",
]
_TABLE_LOCK = 7_201_912


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    chunk_id: str
    article_id: str
    source_id: str
    title: str
    section: str
    text: str
    visibility: str
    score: float


@dataclass
class IngestStats:
    """What an ingestion run did."""

    articles_seen: int = 0
    articles_written: int = 0
    articles_unchanged: int = 0
    articles_deleted: int = 0
    chunks_written: int = 0


def table_for(model_key: str, dim: int) -> str:
    """Name of the chunk table for an embedding model."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_key.lower()).strip("_")[:40]
    return f"kb_chunks_{slug}_{dim}"


def _hybrid_config(fetch_k: int) -> HybridSearchConfig:
    # A fresh config per query: PGVectorStore writes the query text and fetch_top_k into the
    # config object it is given, so a shared one would leak one query into the next.
    return HybridSearchConfig(
        tsv_column="content_tsv",
        tsv_lang="pg_catalog.english",
        fusion_function=reciprocal_rank_fusion,
        fusion_function_parameters={"rrf_k": 60},
        primary_top_k=fetch_k,
        secondary_top_k=fetch_k,
        index_name="",
    )


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
        self._store = store
        self.embeddings = embeddings
        self.table = table

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
        """Open (creating on first use) the chunk table for this embedding model."""
        table = table_for(model_key, dim)
        engine = PGEngine.from_engine(create_async_engine(sqlalchemy_url, pool_size=5))
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
                        ],
                        hybrid_search_config=_hybrid_config(10),
                    )
                    await conn.execute(
                        f'CREATE INDEX IF NOT EXISTS "{table}_hnsw" ON "{table}"'
                        " USING hnsw (embedding vector_cosine_ops)"
                    )
                    await conn.execute(
                        f'CREATE INDEX IF NOT EXISTS "{table}_tsv" ON "{table}"'
                        " USING gin (content_tsv)"
                    )
                    await conn.execute(
                        f'CREATE INDEX IF NOT EXISTS "{table}_article" ON "{table}"'
                        " (tenant_id, article_id)"
                    )
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
    ) -> IngestStats:
        """Index articles for a tenant. Unchanged articles write nothing.

        A changed article has its chunks replaced. With ``cleanup``, articles of the tenant that
        are not in ``articles`` are deleted with their chunks.
        """
        stats = IngestStats(articles_seen=len(articles))
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, source_id, content_hash FROM kb_articles WHERE tenant_id = %s",
                (tenant_id,),
            )
            known = {r["source_id"]: (r["id"], r["content_hash"]) for r in await cur.fetchall()}
        seen: set[str] = set()
        for article in articles:
            if article.source_id in seen:
                raise ValueError(f"duplicate article id {article.source_id!r} in one ingestion")
            seen.add(article.source_id)
            current = known.get(article.source_id)
            if current and current[1] == article.content_hash:
                stats.articles_unchanged += 1
                continue
            article_id = current[0] if current else uuid.uuid4()
            stats.chunks_written += await self._write_article(
                tenant_id, article_id, article, max_tokens, overlap
            )
            stats.articles_written += 1
        if cleanup:
            for source_id, (article_id, _) in known.items():
                if source_id not in seen:
                    await self.delete_article(tenant_id, article_id)
                    stats.articles_deleted += 1
        return stats

    async def _write_article(
        self,
        tenant_id: uuid.UUID,
        article_id: uuid.UUID,
        article: Article,
        max_tokens: int,
        overlap: int,
    ) -> int:
        chunks = chunk_article(article.title, article.body, max_tokens=max_tokens, overlap=overlap)
        docs = [
            Document(
                page_content=f"{chunk.section}\n\n{chunk.text}",
                metadata={
                    "tenant_id": str(tenant_id),
                    "article_id": str(article_id),
                    "source_id": article.source_id,
                    "visibility": article.visibility,
                    "tags": list(article.tags),
                    "title": article.title,
                    "section": chunk.section,
                },
            )
            for chunk in chunks
        ]
        ids = [str(uuid.uuid5(article_id, f"{article.content_hash}:{c.index}")) for c in chunks]
        await self._delete_chunks(tenant_id, article_id)
        if docs:
            await self._store.aadd_documents(docs, ids=ids)
        # The article row is written last: a crash before it leaves the old hash, so the next
        # run rewrites the article instead of trusting half-written chunks.
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                INSERT INTO kb_articles (id, tenant_id, source_id, title, visibility, tags, body,
                                         content_hash, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, COALESCE(%s, now()))
                ON CONFLICT (tenant_id, source_id) DO UPDATE SET
                    title = EXCLUDED.title, visibility = EXCLUDED.visibility,
                    tags = EXCLUDED.tags, body = EXCLUDED.body,
                    content_hash = EXCLUDED.content_hash, updated_at = EXCLUDED.updated_at
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
                    article.updated_at,
                ),
            )
        return len(docs)

    async def _delete_chunks(self, tenant_id: uuid.UUID, article_id: uuid.UUID) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f'DELETE FROM "{self.table}" WHERE tenant_id = %s AND article_id = %s',
                (tenant_id, article_id),
            )

    async def delete_article(self, tenant_id: uuid.UUID, article_id: uuid.UUID) -> None:
        """Delete an article and its chunks."""
        await self._delete_chunks(tenant_id, article_id)
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM kb_articles WHERE tenant_id = %s AND id = %s", (tenant_id, article_id)
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
    ) -> list[Hit]:
        """Return the ``k`` best chunks for ``query``, always filtered to the tenant.

        Customers see external articles only; agents see internal ones too.
        """
        filters: dict[str, Any] = {"tenant_id": {"$eq": str(tenant_id)}}
        if audience == "customer":
            filters["visibility"] = {"$eq": "external"}
        fetch_k = max(k * 3, 10)
        if mode == "fulltext":
            return await self._fulltext(tenant_id, query, k, audience)
        kwargs: dict[str, Any] = {}
        if mode == "hybrid":
            kwargs["hybrid_search_config"] = dataclasses.replace(
                _hybrid_config(fetch_k), fts_query=query
            )
        else:
            kwargs["hybrid_search_config"] = None
        pairs = await self._store.asimilarity_search_with_score(
            query, k=k, filter=filters, **kwargs
        )
        return [self._hit(doc, score) for doc, score in pairs]

    async def _fulltext(
        self, tenant_id: uuid.UUID, query: str, k: int, audience: Audience
    ) -> list[Hit]:
        vis = ["external"] if audience == "customer" else ["external", "internal"]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"""
                SELECT langchain_id, content, article_id, source_id, title, section, visibility,
                       ts_rank_cd(content_tsv, q) AS score
                FROM "{self.table}", plainto_tsquery('pg_catalog.english', %s) q
                WHERE tenant_id = %s AND visibility = ANY(%s) AND content_tsv @@ q
                ORDER BY score DESC LIMIT %s
                """,
                (query, tenant_id, vis, k),
            )
            rows = await cur.fetchall()
        return [
            Hit(
                chunk_id=str(r["langchain_id"]),
                article_id=str(r["article_id"]),
                source_id=r["source_id"],
                title=r["title"],
                section=r["section"],
                text=r["content"].split("\n\n", 1)[-1],
                visibility=r["visibility"],
                score=float(r["score"]),
            )
            for r in rows
        ]

    @staticmethod
    def _hit(doc: Document, score: float) -> Hit:
        md = doc.metadata
        return Hit(
            chunk_id=str(doc.id or md.get("langchain_id", "")),
            article_id=str(md["article_id"]),
            source_id=str(md["source_id"]),
            title=str(md["title"]),
            section=str(md["section"]),
            text=doc.page_content.split("\n\n", 1)[-1],
            visibility=str(md["visibility"]),
            score=float(score),
        )
