"""Open everything a running graph needs: database, migrations, KB, models, prompts.

Used by the API lifespan, the CLI and the Studio factory, so all three run the same setup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from graph.models import Models, build_models
from graph.services import Prompts, Services, train_classifier
from graph.text import EmbeddingCache
from helpdesk import db
from helpdesk.config import Settings, get_settings
from kb_pipeline.index import KnowledgeBase


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
        kb = await KnowledgeBase.open(
            pool,
            db.sqlalchemy_url(url),
            models.embeddings,
            model_key=models.embedding_key,
            dim=models.embedding_dim,
        )
        yield Services(
            pool=pool,
            kb=kb,
            models=models,
            prompts=prompts,
            classifier=classifier,
            sentence_cache=EmbeddingCache(models.embeddings),
        )
    finally:
        if kb is not None:
            await kb.close()
        await pool.close()


async def open_checkpointer(services: Services) -> AsyncPostgresSaver:
    """A Postgres checkpointer on the services' pool, its tables created if needed."""
    saver = AsyncPostgresSaver(services.pool)
    await saver.setup()
    return saver
