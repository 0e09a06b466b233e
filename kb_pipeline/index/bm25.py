"""The sparse side of retrieval: Okapi BM25 over the index's own postings in Postgres.

``PGVectorStore``'s sparse half is ``plainto_tsquery`` (every query word must match) ranked by
``ts_rank_cd``, which has no IDF; natural-language questions rarely match all their words.
BM25 over the same Postgres lexemes (the ``<table>_terms`` postings and ``<table>_stats``
counts, see :mod:`~kb_pipeline.index.schema`) is what reaches the targets (measured on the
Galaxy S10 manual, ``bench/retrieval.py``).
"""

from __future__ import annotations

from typing import Any

from kb_pipeline.index.filters import Filters
from kb_pipeline.index.schema import TS_CONFIG, stats_table, terms_table

BM25_K1 = 1.2
"""Term-frequency saturation."""
BM25_B = 0.75
"""Length normalisation."""


async def bm25_scores(
    conn: Any, table: str, f: Filters, query: str, depth: int
) -> dict[str, float]:
    """Okapi BM25 of the ``depth`` best chunks of ``table`` that pass ``f``, by chunk id."""
    terms, stats = terms_table(table), stats_table(table)
    where, params = f.sql(prefix="p.", chunk_table=table)
    cur = await conn.execute(
        f"""
        WITH s AS (
            SELECT n_chunks::float8 AS n,
                   greatest(total_len::float8 / greatest(n_chunks, 1), 1) AS avgdl
            FROM "{stats}" WHERE tenant_id = %s
        ), q AS (
            SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('{TS_CONFIG}', %s))) AS lexeme
        ), p AS (
            SELECT t.*, (count(*) OVER (PARTITION BY t.lexeme))::float8 AS df
            FROM "{terms}" t JOIN q ON q.lexeme = t.lexeme
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
