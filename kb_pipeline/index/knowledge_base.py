"""The knowledge base of one embedding model: its tables, ingestion into them, search over them.

:class:`KnowledgeBase` is opened once per process (:meth:`KnowledgeBase.open` creates the
tables on first use, :mod:`~kb_pipeline.index.schema`); its writing half is
:class:`~kb_pipeline.index.writing.ChunkWriter`, its search half
:class:`~kb_pipeline.index.search.ChunkSearch`.

The hot paths are SQL of our own rather than ``PGVectorStore``'s methods (each module says
why, measured on the Galaxy S10 manual, ``bench/retrieval.py``), but the store is still the
library's: :attr:`KnowledgeBase.vectorstore` is a ``PGVectorStore`` on the same table (its
``HybridSearchConfig`` uses :func:`~kb_pipeline.index.fusion.convex_fusion`), for LangChain
interop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from langchain_postgres import PGEngine, PGVectorStore
from sqlalchemy.ext.asyncio import create_async_engine

from kb_pipeline.index.dense import TenantSizes
from kb_pipeline.index.schema import (
    METADATA_COLUMNS,
    create_tables,
    hybrid_config,
    stats_table,
    table_for,
    terms_table,
)
from kb_pipeline.index.search import ChunkSearch
from kb_pipeline.index.writing import ChunkWriter, embedding_token_budget

if TYPE_CHECKING:
    from helpdesk.db import DictPool


class KnowledgeBase(ChunkWriter, ChunkSearch):
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
        self._terms = terms_table(table)
        self._stats = stats_table(table)
        self.max_chunk_tokens = embedding_token_budget(embeddings)
        """Chunks are capped at what the embedding model reads (None: no cap)."""
        self._sizes = TenantSizes(table)

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
        await create_tables(pool, engine, table, dim)
        store = await PGVectorStore.create(
            engine,
            embedding_service=embeddings,
            table_name=table,
            metadata_columns=METADATA_COLUMNS,
            hybrid_search_config=hybrid_config(10),
        )
        return cls(pool, engine, store, embeddings, table)

    async def close(self) -> None:
        """Dispose of the SQLAlchemy engine used by the vector store."""
        await self._engine.close()
