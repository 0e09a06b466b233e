"""The WHERE clause of every retrieval query (dense and BM25 alike)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Filters:
    """The WHERE clause every retrieval query carries; the tenant is never optional."""

    tenant_id: uuid.UUID
    visibility: list[str]
    tags: list[str] | None
    updated_after: datetime | None

    def sql(self, prefix: str = "", chunk_table: str | None = None) -> tuple[str, list[Any]]:
        """``(clause, parameters)``; columns get ``prefix``. Given the ``chunk_table``, the
        query is over postings, which carry no tags: those are checked on the chunk."""
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
