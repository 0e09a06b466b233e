"""Open everything a running graph needs: database, migrations, KB, models, prompts.

Used by the API lifespan, the CLI and the Studio factory, so all three run the same setup;
``deskgraph ingest`` and ``deskgraph search`` open only the knowledge base, the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from graph.services import Prompts, Services, train_classifier
from helpdesk import db
from helpdesk.config import Settings, get_settings
from helpdesk.db import DictPool
from kb_pipeline.index import KnowledgeBase
from nlp.models import Models, build_models
from nlp.text import EmbeddingCache


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings | None = None,
    models: Models | None = None,
    *,
    database_url: str | None = None,
) -> AsyncIterator[Services]:
    """Yield ready :class:`Services`; close the pools on exit.

    ``database_url`` overrides the settings (tests use a fresh database per session).
    """
    settings = settings or get_settings()
    # Plain ifs, not ``a or await ...``: mypy would infer the awaited call in the Optional
    # context of the left operand.
    if database_url:
        url = database_url
    else:
        url = await asyncio.to_thread(db.app_database_url, settings)
    await asyncio.to_thread(db.upgrade, url)
    if not models:
        models = await asyncio.to_thread(build_models, settings)
    prompts = Prompts.load(settings.prompts_dir)
    classifier = await asyncio.to_thread(train_classifier, models, settings.prompts_dir)
    pool = db.make_pool(url, settings.pool_max_size)
    await pool.open(wait=True)
    kb = None
    try:
        kb = await _open_kb(pool, url, models)
        yield Services(
            pool=pool,
            kb=kb,
            models=models,
            prompts=prompts,
            classifier=classifier,
            sentence_cache=EmbeddingCache(models.embeddings),
            presence_away_after_s=settings.presence_away_after_s,
            presence_idle_s=settings.session_idle_s,
        )
    finally:
        if kb is not None:
            await kb.close()
        await pool.close()


@contextlib.asynccontextmanager
async def open_knowledge_base(
    settings: Settings | None = None, *, pool_size: int
) -> AsyncIterator[tuple[DictPool, KnowledgeBase]]:
    """Database (migrated), a pool of ``pool_size`` and the knowledge base: only what ingestion
    and search need.

    Not :func:`open_services`: that also trains the intent classifier, which they never use and
    which costs as much as loading the embedding model.
    """
    settings = settings or get_settings()
    url = await asyncio.to_thread(db.app_database_url, settings)
    await asyncio.to_thread(db.upgrade, url)
    models = await asyncio.to_thread(build_models, settings)
    pool = db.make_pool(url, pool_size)
    await pool.open(wait=True)
    try:
        kb = await _open_kb(pool, url, models)
        try:
            yield pool, kb
        finally:
            await kb.close()
    finally:
        await pool.close()


async def _open_kb(pool: DictPool, url: str, models: Models) -> KnowledgeBase:
    return await KnowledgeBase.open(
        pool,
        db.sqlalchemy_url(url),
        models.embeddings,
        model_key=models.embedding_key,
        dim=models.embedding_dim,
    )


_CHECKPOINTER_SETUP_LOCK = 7_201_915
"""Advisory lock key: one process at a time runs the checkpointer's own migrations."""


async def open_checkpointer(services: Services) -> AsyncPostgresSaver:
    """A Postgres checkpointer on the services' pool, its tables created if needed.

    ``setup()`` records its migrations without a lock, so two processes starting together on
    a database without checkpoint tables both insert version rows and one fails start-up with
    a unique violation on ``checkpoint_migrations``; an advisory lock makes them take turns.
    """
    saver = AsyncPostgresSaver(services.pool)
    async with services.pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_CHECKPOINTER_SETUP_LOCK,))
        try:
            await saver.setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_CHECKPOINTER_SETUP_LOCK,))
    return saver
