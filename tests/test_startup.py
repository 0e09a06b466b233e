"""Starting and stopping the product: the demo loader and the embedded Postgres of a server
process."""

from __future__ import annotations

import pytest

from api.demo import ensure_demo
from graph.services import Services
from helpdesk.tenants import Tenant
from kb_pipeline.loaders import Article

pytestmark = pytest.mark.integration


async def test_demo_loader_keeps_articles_an_admin_added(services: Services, demo: Tenant) -> None:
    added = Article("admin-added-gutters", "Gutter cleaning", "We clean gutters every autumn.")
    await services.kb.ingest(demo.id, [added])
    try:
        _, stats = await ensure_demo(services)  # what every `serve --demo` start runs
        assert stats.articles_deleted == 0
        hits = await services.kb.search(demo.id, "gutters every autumn", mode="fulltext")
        assert hits[0].source_id == "admin-added-gutters"
    finally:
        async with services.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM kb_articles WHERE tenant_id = %s AND source_id = %s",
                (demo.id, added.source_id),
            )
            row = await cur.fetchone()
        if row is not None:
            await services.kb.delete_article(demo.id, row["id"])
