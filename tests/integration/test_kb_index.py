"""The chunk index on a real Postgres: tenant isolation, visibility, article-level results,
idempotent re-ingest, BM25 + vector fusion, filters, votes and the ``deskgraph search`` probe."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graph.services import Services
from helpdesk.tenants import Tenant, create_tenant
from kb_pipeline.chunking import count_tokens
from kb_pipeline.index import Retrieved, dense
from kb_pipeline.loaders import Article
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration


async def _tenant(services: Services, prefix: str) -> Tenant:
    return await create_tenant(services.pool, f"{prefix}-{uuid.uuid4().hex[:6]}", prefix)


async def _chunk_rows(services: Services, tenant: Tenant) -> tuple[int, int]:
    kb = services.kb
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT count(*) AS n FROM "{kb.table}" WHERE tenant_id = %s', (tenant.id,)
        )
        chunks = (await cur.fetchone())["n"]
        cur = await conn.execute(
            f'SELECT count(*) AS n FROM "{kb.table}_terms" WHERE tenant_id = %s', (tenant.id,)
        )
        postings = (await cur.fetchone())["n"]
    return int(chunks), int(postings)


PLUMBING = Article(
    "leaky-faucet",
    "Fixing a leaky faucet",
    "A dripping faucet usually needs a new washer or cartridge. Our plumbers carry both.",
)
BOILER = Article(
    "boiler-service",
    "Annual boiler service",
    "We service gas boilers once a year: burner check, flue test and a safety certificate.",
)
SECRET = Article(
    "refund-override",
    "Refund override codes",
    "Agents may waive the call-out fee with override code BW-77 after a missed arrival window.",
    visibility="internal",
)


async def test_search_never_crosses_tenants_or_shows_internal_articles_to_customers(
    services: Services,
) -> None:
    a, b = await _tenant(services, "tenant-a"), await _tenant(services, "tenant-b")
    await services.kb.ingest(a.id, [PLUMBING, BOILER, SECRET])
    # tenant B has an article with the same source id and different words
    await services.kb.ingest(
        b.id, [Article("leaky-faucet", "Faucets", "Tenant B replaces faucet cartridges for free.")]
    )
    for mode in ("hybrid", "vector", "fulltext"):
        hits = await services.kb.search(b.id, "leaky faucet washer", k=10, mode=mode)
        assert [h["title"] for h in hits] == ["Faucets"], mode
        hits = await services.kb.search(a.id, "override code to waive the call-out fee", k=10)
        assert "refund-override" not in [h["source_id"] for h in hits]
        hits = await services.kb.search(
            a.id, "override code to waive the call-out fee", k=10, audience="agent", mode=mode
        )
        assert hits[0]["source_id"] == "refund-override", mode


async def test_one_visibility_is_filtered_in_the_query_so_k_results_still_come_back(
    services: Services,
) -> None:
    t = await _tenant(services, "one-visibility")
    internal = [
        Article(f"override-{i}", f"Override {i}", f"Waive the fee with code BW-{i}.", "internal")
        for i in range(6)
    ]
    await services.kb.ingest(t.id, [*internal, BOILER])

    async def agent_search(query: str, k: int, mode: Any, only: Any) -> list[Retrieved]:
        return await services.kb.search(
            t.id, query, k=k, audience="agent", mode=mode, only_visibility=only
        )

    for mode in ("hybrid", "vector", "fulltext"):
        # six internal articles match "fee code" as well as the one external article does
        hits = await agent_search("boiler fee code service", 2, mode, "external")
        assert [h["source_id"] for h in hits] == ["boiler-service"], mode
        hits = await agent_search("waive the fee code", 3, mode, "internal")
        assert len(hits) == 3 and all(h["visibility"] == "internal" for h in hits), mode
    # a customer never sees internal articles, asked for or not
    assert not await services.kb.search(t.id, "waive the fee code", k=3, only_visibility="internal")


async def test_the_hnsw_path_also_filters_by_tenant(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await _tenant(services, "ann-a"), await _tenant(services, "ann-b")
    await services.kb.ingest(a.id, [PLUMBING, BOILER])
    await services.kb.ingest(b.id, [Article("b1", "Gutters", "We clean gutters in autumn.")])
    monkeypatch.setattr(dense, "EXACT_SEARCH_MAX_CHUNKS", 0)
    hits = await services.kb.search(b.id, "dripping faucet washer", k=5, mode="vector")
    assert [h["source_id"] for h in hits] == ["b1"]
    hits = await services.kb.search(a.id, "dripping faucet washer", k=5, mode="vector")
    assert hits[0]["source_id"] == "leaky-faucet"


async def test_results_are_article_level_unless_more_chunks_per_article_are_asked_for(
    services: Services,
) -> None:
    t = await _tenant(services, "dedupe")
    long_body = "\n\n".join(
        f"## Step {i}\n\nTurn the water valve {i} times and check the faucet washer again."
        for i in range(8)
    )
    await services.kb.ingest(t.id, [Article("steps", "Faucet steps", long_body), PLUMBING])
    hits = await services.kb.search(t.id, "faucet washer valve", k=5)
    assert len(hits) == 2 and len({h["article_id"] for h in hits}) == 2
    hits = await services.kb.search(t.id, "faucet washer valve", k=5, max_per_article=3)
    by_article = [h["source_id"] for h in hits]
    assert by_article.count("steps") == 3 and "leaky-faucet" in by_article


async def test_reingest_writes_nothing_and_a_change_replaces_every_chunk_and_posting(
    services: Services,
) -> None:
    t = await _tenant(services, "reingest")
    first = await services.kb.ingest(t.id, [PLUMBING, BOILER])
    assert first.articles_written == 2 and first.chunks_written >= 2
    before = await _chunk_rows(services, t)
    again = await services.kb.ingest(t.id, [PLUMBING, BOILER])
    assert (again.articles_written, again.articles_unchanged, again.chunks_written) == (0, 2, 0)
    assert await _chunk_rows(services, t) == before

    changed = Article(PLUMBING.source_id, PLUMBING.title, "Tap drips are fixed by a plumber.")
    stats = await services.kb.ingest(t.id, [changed, BOILER])
    assert stats.articles_written == 1
    # no posting of the old text survives: its words find nothing any more
    assert await services.kb.search(t.id, "cartridge washer", mode="fulltext") == []
    assert (await services.kb.search(t.id, "tap drips", mode="fulltext"))[0]["source_id"] == (
        "leaky-faucet"
    )

    stats = await services.kb.ingest(t.id, [BOILER], cleanup=True)
    assert stats.articles_deleted == 1
    assert await services.kb.search(t.id, "tap drips", mode="fulltext") == []
    assert [h["source_id"] for h in await services.kb.search(t.id, "tap drips", k=5)] == [
        "boiler-service"
    ]
    chunks, postings = await _chunk_rows(services, t)
    assert chunks == 1 and postings > 0
    async with services.pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM kb_articles WHERE tenant_id = %s", (t.id,))
        (only,) = await cur.fetchall()
    await services.kb.delete_article(t.id, only["id"])
    assert await _chunk_rows(services, t) == (0, 0)


async def test_bm25_ranks_the_article_with_the_rare_term_first(services: Services) -> None:
    t = await _tenant(services, "bm25")
    articles = [
        Article(f"common-{i}", f"Service note {i}", "Our service team visits your home. " * 3)
        for i in range(6)
    ] + [Article("rare", "Thermostat", "Our service team calibrates the thermostat.")]
    await services.kb.ingest(t.id, articles)
    hits = await services.kb.search(t.id, "service thermostat", k=3, mode="fulltext")
    assert hits[0]["source_id"] == "rare"


async def test_tag_and_updated_filters(services: Services) -> None:
    t = await _tenant(services, "filters")
    old = datetime.now(UTC) - timedelta(days=400)
    await services.kb.ingest(
        t.id,
        [
            Article("a", "Gas safety", "Gas boiler safety checks.", tags=("gas",), updated_at=old),
            Article("b", "Boiler repair", "Gas boiler repair visits.", tags=("repair",)),
        ],
    )
    hits = await services.kb.search(t.id, "gas boiler", k=5, tags=["gas"])
    assert [h["source_id"] for h in hits] == ["a"]
    hits = await services.kb.search(
        t.id, "gas boiler", k=5, updated_after=datetime.now(UTC) - timedelta(days=30)
    )
    assert [h["source_id"] for h in hits] == ["b"]


async def test_votes_move_ranking_only_when_turned_on(services: Services) -> None:
    t = await _tenant(services, "votes")
    body = "Book a chimney sweep once a year before winter."
    await services.kb.ingest(
        t.id, [Article("liked", "Chimney sweep", body), Article("disliked", "Chimney sweep", body)]
    )
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE kb_articles SET helpful = 20 WHERE tenant_id = %s AND source_id = 'liked'",
            (t.id,),
        )
        await conn.execute(
            "UPDATE kb_articles SET not_helpful = 20 WHERE tenant_id = %s"
            " AND source_id = 'disliked'",
            (t.id,),
        )
    plain = {h["source_id"]: h["score"] for h in await services.kb.search(t.id, "chimney sweep")}
    assert plain["liked"] == pytest.approx(plain["disliked"])
    voted = await services.kb.search(t.id, "chimney sweep", vote_weight=0.5)
    assert [h["source_id"] for h in voted] == ["liked", "disliked"]
    assert voted[0]["score"] > voted[1]["score"]


async def test_chunks_fit_the_embedding_window(services: Services) -> None:
    kb = services.kb
    assert kb.max_chunk_tokens is not None and kb.max_chunk_tokens < 256
    t = await _tenant(services, "window")
    body = " ".join(f"Sentence number {i} talks about radiators and valves." for i in range(200))
    await kb.ingest(t.id, [Article("long", "Radiators", body)], max_tokens=512, overlap=64)
    async with services.pool.connection() as conn:
        cur = await conn.execute(f'SELECT content FROM "{kb.table}" WHERE tenant_id = %s', (t.id,))
        texts = [r["content"].split("\n\n", 1)[1] for r in await cur.fetchall()]
    assert len(texts) > 3
    assert max(count_tokens(x) for x in texts) <= kb.max_chunk_tokens


async def test_search_probe_writes_one_json_array_per_input_line(
    services: Services, database_url: str
) -> None:
    t = await _tenant(services, "probe")
    boiler = Article(BOILER.source_id, BOILER.title, BOILER.body, url="https://x.test/boiler")
    await services.kb.ingest(t.id, [PLUMBING, boiler, SECRET])
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", "search", "--tenant", t.slug, "--k", "2", "--jsonl"],
        input='my faucet drips\n{"query": "boiler flue test"}\n\noverride code\n',
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 4
    assert lines[0][0]["source_id"] == "leaky-faucet"
    # the documented keys; "url" only for an article that has one, never null
    assert set(lines[0][0]) == {"source_id", "chunk_id", "title", "score"}
    assert lines[1][0]["source_id"] == "boiler-service"
    assert lines[1][0]["url"] == "https://x.test/boiler"
    assert lines[2] == []
    assert "refund-override" not in [r["source_id"] for r in lines[3]]  # customer audience


async def _versions(services: Services, tenant: Tenant) -> tuple[dict[str, str], dict[str, str]]:
    """Row versions (xmin) of the tenant's article rows and chunk rows: any write changes them."""
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT source_id, xmin::text AS v FROM kb_articles WHERE tenant_id = %s", (tenant.id,)
        )
        article_rows = {r["source_id"]: r["v"] for r in await cur.fetchall()}
        cur = await conn.execute(
            f'SELECT langchain_id::text AS id, xmin::text AS v FROM "{services.kb.table}"'
            " WHERE tenant_id = %s",
            (tenant.id,),
        )
        chunk_rows = {r["id"]: r["v"] for r in await cur.fetchall()}
    return article_rows, chunk_rows


async def test_url_is_stored_searched_and_a_url_only_change_rewrites_no_chunk(
    services: Services,
) -> None:
    t = await _tenant(services, "urls")
    linked = Article(PLUMBING.source_id, PLUMBING.title, PLUMBING.body, url="https://x.test/tap")
    first = await services.kb.ingest(t.id, [linked, BOILER])
    assert first.articles_written == 2
    hits = {h["source_id"]: h["url"] for h in await services.kb.search(t.id, "faucet boiler", k=5)}
    assert hits == {"leaky-faucet": "https://x.test/tap", "boiler-service": None}

    # unchanged: not a single row written, article or chunk
    before = await _versions(services, t)
    again = await services.kb.ingest(t.id, [linked, BOILER])
    assert (again.articles_written, again.articles_unchanged, again.chunks_written) == (0, 2, 0)
    assert await _versions(services, t) == before

    # only the url changed: the article row is updated, every chunk stays as it was
    moved = Article(linked.source_id, linked.title, linked.body, url="https://x.test/taps#drip")
    stats = await services.kb.ingest(t.id, [moved, BOILER])
    assert (stats.articles_written, stats.articles_unchanged, stats.chunks_written) == (1, 1, 0)
    articles_after, chunks_after = await _versions(services, t)
    assert chunks_after == before[1]
    assert articles_after["boiler-service"] == before[0]["boiler-service"]
    assert articles_after["leaky-faucet"] != before[0]["leaky-faucet"]
    [hit] = await services.kb.search(t.id, "dripping faucet washer", k=1)
    assert (hit["source_id"], hit["url"]) == ("leaky-faucet", "https://x.test/taps#drip")

    # a url that goes away goes away
    await services.kb.ingest(t.id, [PLUMBING, BOILER])
    [hit] = await services.kb.search(t.id, "dripping faucet washer", k=1)
    assert hit["url"] is None

    # a content change and a url change together: chunks rewritten, url stored
    both = Article(linked.source_id, linked.title, "Tap drips need a washer.", url=linked.url)
    stats = await services.kb.ingest(t.id, [both, BOILER])
    assert stats.articles_written == 1 and stats.chunks_written >= 1
    [hit] = await services.kb.search(t.id, "tap drips washer", k=1)
    assert (hit["source_id"], hit["url"]) == ("leaky-faucet", "https://x.test/tap")


async def test_the_database_refuses_a_url_that_is_not_http(services: Services) -> None:
    """Loaders refuse such urls; the table's check holds whatever else writes an article."""
    import psycopg

    t = await _tenant(services, "badurl")
    bad = Article("x", "X", "Some text.", url="javascript:alert(1)")
    with pytest.raises(psycopg.errors.CheckViolation):
        await services.kb.ingest(t.id, [bad])
    assert await services.kb.search(t.id, "some text", k=5) == []
