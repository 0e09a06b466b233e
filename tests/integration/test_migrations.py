"""Existing databases move forward: a database as an older release left it (migrations up to
0004, with data in it) is upgraded to the current schema, keeps its rows, and works with the
current code. Each test gets its own database on the session's server, dropped after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from graph.services import Services
from helpdesk import db
from helpdesk.config import Settings
from kb_pipeline.index import KnowledgeBase
from kb_pipeline.jobs import reap_dead_jobs
from kb_pipeline.loaders import Article

pytestmark = pytest.mark.integration

BEFORE_URLS = "0004_message_agent"
"""The last migration before article urls (and job error codes) existed."""


@pytest.fixture
def old_database(settings: Settings) -> Iterator[str]:
    """A fresh database migrated only up to :data:`BEFORE_URLS`."""
    server = db.server_url(settings)
    name = f"deskgraph_mig_{uuid.uuid4().hex[:10]}"
    url = db.with_database(server, name)
    db.ensure_database(url)
    try:
        applied = db.upgrade(url, target=BEFORE_URLS)
        assert applied[-1] == BEFORE_URLS
        yield url
    finally:
        db.drop_database(url)


async def test_a_database_from_before_urls_and_job_codes_migrates_and_works(
    old_database: str, services: Services
) -> None:
    with psycopg.connect(old_database, autocommit=True) as conn:
        (tenant_id,) = conn.execute(
            "INSERT INTO tenants (slug, name) VALUES ('old-co', 'Old Co') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO kb_articles (tenant_id, source_id, title, body, content_hash)"
            " VALUES (%s, 'legacy', 'Legacy', 'Written by the old pipeline.', 'h')",
            (tenant_id,),
        )
        # A job an old release left running when its process died.
        (job_id,) = conn.execute(
            "INSERT INTO ingestion_jobs (tenant_id, status, started_at)"
            " VALUES (%s, 'running', now()) RETURNING id",
            (tenant_id,),
        ).fetchone()  # type: ignore[misc]
        assert (
            conn.execute(
                "SELECT 1 FROM information_schema.columns"
                " WHERE table_name = 'kb_articles' AND column_name = 'url'"
            ).fetchone()
            is None
        )

    applied = db.upgrade(old_database)
    assert applied[:2] == ["0005_kb_article_url", "0006_ingestion_job_error_code"]
    assert db.upgrade(old_database) == []  # nothing left to apply, nothing applied twice
    with psycopg.connect(old_database, autocommit=True) as conn:
        legacy = conn.execute(
            "SELECT body, content_hash, url FROM kb_articles WHERE source_id = 'legacy'"
        ).fetchone()
    assert legacy == ("Written by the old pipeline.", "h", None)

    # The chunk table is created by the index code, not by a migration: it must still come
    # up on the migrated database, and the article rows of the old pipeline (no url) must be
    # completed by the next run without re-embedding anything.
    pool = db.make_pool(old_database, 2)
    await pool.open(wait=True)
    kb = await KnowledgeBase.open(
        pool,
        db.sqlalchemy_url(old_database),
        services.models.embeddings,
        model_key=services.models.embedding_key,
        dim=services.models.embedding_dim,
    )
    try:
        assert await reap_dead_jobs(pool) == 1
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status, error_code FROM ingestion_jobs WHERE id = %s", (job_id,)
            )
            assert await cur.fetchone() == {"status": "failed", "error_code": "worker_lost"}

        article = Article("fees", "Call-out fees", "The call-out fee is $89 on weekdays.")
        assert (await kb.ingest(tenant_id, [article])).chunks_written >= 1
        linked = Article(article.source_id, article.title, article.body, url="https://x.test/fee")
        stats = await kb.ingest(tenant_id, [linked])
        assert (stats.articles_written, stats.chunks_written) == (1, 0)
        [hit] = await kb.search(tenant_id, "call-out fee", k=1)
        assert hit["url"] == "https://x.test/fee"
    finally:
        await kb.close()
        await pool.close()

    with (
        psycopg.connect(old_database, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute("UPDATE kb_articles SET url = 'javascript:alert(1)'")
