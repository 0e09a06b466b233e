"""The dense side of retrieval: nearest chunks by embedding, exact for small tenants.

A filtered HNSW scan in pgvector 0.6 filters *after* the index returns ``ef_search``
candidates, so in a table shared by many tenants a small tenant can get fewer results than it
should. A tenant with up to ``EXACT_SEARCH_MAX_CHUNKS`` chunks is searched exactly (its rows
through the tenant index, distances computed for all of them: a few milliseconds); a larger one
uses HNSW with ``ef_search`` raised by the tenant's share of the table.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

from kb_pipeline.index.filters import Filters
from kb_pipeline.index.schema import stats_table, vector_literal

EXACT_SEARCH_MAX_CHUNKS = 20_000
"""Tenants up to this size are searched exactly; larger ones through HNSW."""
SIZES_TTL_S = 5.0
"""How long :class:`TenantSizes` trusts what it read."""


class TenantSizes:
    """Chunk counts per tenant of one chunk table, read from its stats table (cached briefly)."""

    def __init__(self, table: str) -> None:
        self._stats = stats_table(table)
        self._cache: dict[uuid.UUID, tuple[float, int, int]] = {}

    async def get(self, conn: Any, tenant_id: uuid.UUID) -> tuple[int, int]:
        """(the tenant's chunks, all chunks), read at most every :data:`SIZES_TTL_S` seconds.

        They only choose between exact and HNSW search, so a few seconds stale is harmless,
        and a query saves a round trip.
        """
        now = time.monotonic()
        hit = self._cache.get(tenant_id)
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
        self._cache[tenant_id] = (now, mine, total)
        return mine, total


async def dense_scores(
    conn: Any, table: str, sizes: TenantSizes, f: Filters, vector: Sequence[float], depth: int
) -> dict[str, float]:
    """Cosine similarity of the ``depth`` nearest chunks that pass ``f``, by chunk id."""
    literal = vector_literal(vector)
    where, params = f.sql()
    tenant_chunks, total = await sizes.get(conn, f.tenant_id)
    if tenant_chunks <= EXACT_SEARCH_MAX_CHUNKS:
        # Exact distances over the tenant's own rows, found through the tenant index, so
        # nothing is lost to filtering. The HNSW index is built for cosine distance, so the
        # inner-product order (the same order on unit vectors) never uses it.
        cur = await conn.execute(
            f"""SELECT langchain_id::text AS id, -(embedding <#> %s::vector) AS sim
                FROM "{table}" WHERE {where}
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
                FROM "{table}" WHERE {where}
                ORDER BY embedding <=> %s::vector LIMIT %s""",
            (literal, *params, literal, depth),
        )
        return {r["id"]: float(r["sim"]) for r in await cur.fetchall()}
