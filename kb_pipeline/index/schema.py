"""The tables of the chunk index, created on first use and brought up to date on open.

Chunks live in one table per embedding model, ``kb_chunks_<model key>_<dim>``, created by
``PGEngine.ainit_vectorstore_table`` with metadata columns (tenant_id, article_id, source_id,
visibility, tags, title, section, doc_len), an HNSW index on the embedding and a stored
``tsvector`` with a GIN index. Changing the model means a fresh table filled by re-ingesting,
never vectors of two models in one column. Beside it, ``<table>_terms`` holds one posting per
(chunk, lexeme) with its term frequency, and ``<table>_stats`` the per-tenant chunk count and
total length: together an inverted index in Postgres, which is what Okapi BM25 needs
(:mod:`~kb_pipeline.index.bm25`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from langchain_postgres import Column, PGEngine
from langchain_postgres.v2.hybrid_search_config import HybridSearchConfig

from kb_pipeline.index.fusion import HYBRID_ALPHA, convex_fusion

if TYPE_CHECKING:
    from helpdesk.db import DictPool

TS_CONFIG = "pg_catalog.english"
"""The text search configuration of the stored tsvectors and of every query."""

METADATA_COLUMNS = [
    "tenant_id",
    "article_id",
    "source_id",
    "visibility",
    "tags",
    "title",
    "section",
    "doc_len",
]
"""The chunk table's metadata columns, as ``PGVectorStore`` is told them."""
_TABLE_LOCK = 7_201_912


def table_for(model_key: str, dim: int) -> str:
    """Name of the chunk table for an embedding model."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_key.lower()).strip("_")[:40]
    return f"kb_chunks_{slug}_{dim}"


def terms_table(table: str) -> str:
    """Name of the postings table beside a chunk table (one row per chunk and lexeme)."""
    return f"{table}_terms"


def stats_table(table: str) -> str:
    """Name of the per-tenant chunk count and total length table beside a chunk table."""
    return f"{table}_stats"


def hybrid_config(fetch_k: int) -> HybridSearchConfig:
    """The hybrid search settings ``PGVectorStore`` is created with (fusion: ours)."""
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


def vector_literal(vec: Iterable[float]) -> str:
    """A pgvector literal of ``vec`` scaled to unit length.

    Every stored and every query vector is a unit vector, so cosine similarity is the inner
    product and the exact search can use pgvector's cheaper ``<#>`` (measured on a 2,948-chunk
    tenant: 3.0 ms against 4.4 ms for ``<=>``). Nine significant digits keep a float32 exact
    and halve the text the server parses.
    """
    values = [float(x) for x in vec]
    norm = math.sqrt(sum(x * x for x in values)) or 1.0
    return "[" + ",".join(f"{x / norm:.9g}" for x in values) + "]"


async def create_tables(pool: DictPool, engine: PGEngine, table: str, dim: int) -> None:
    """Create the chunk table of a model and its side tables, or bring existing ones up to date.

    Under an advisory lock, so that processes starting together do not race to create them.
    """
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
                    hybrid_search_config=hybrid_config(10),
                )
            await _ensure_side_tables(conn, table)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_TABLE_LOCK,))


async def _ensure_side_tables(conn: Any, table: str) -> None:
    """The postings and stats tables, the indexes, and columns added since the first
    release; a table from before postings existed gets them derived from its tsvectors."""
    terms, stats = terms_table(table), stats_table(table)
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
