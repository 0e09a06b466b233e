"""Retrieval benchmark: quality, latency, ingestion throughput and a multi-tenant scale run.

Prints one JSON document. Runs on throwaway databases on the embedded Postgres (or the server
of ``DATABASE_URL``), dropped at the end, with the offline MiniLM embeddings.

* ``galaxy_s10``: the manual's sections are ingested as articles (section id = source id); each
  question is searched with k=10 in hybrid, vector-only and full-text-only mode (and through
  ``PGVectorStore``'s own hybrid search with reciprocal-rank fusion, the library baseline). A hit
  is any chunk of a gold section; results are one chunk per article, so ranks are article ranks.
  Latency is per query and includes embedding the query.
* ``quality``: recall@1/5/10 and MRR@10 of every mode on each set, split by the protocol of
  issue 13: ``chosen_on`` (Galaxy S10 and the demo questions, on which the fusion's weights
  were chosen) and ``held_out`` (Rho-Bank known-item: 200 document titles, agent audience, the
  tenant alone; and, with ``--public-manual FILE``, a public manual no weight was chosen on:
  a JSON file ``{"docs": [{"id","title","text"}], "questions": [{"question","gold"}]}`` read
  at run time, never committed).
* ``ingest``: chunks/s of the whole pipeline against the raw throughput of the same model on the
  same chunk texts; a re-ingest of the unchanged data: rows written (from
  ``pg_stat_user_tables``) and time relative to the first ingest.
* ``scale``: Rho-Bank's 698 documents copied into as many tenants as it takes to pass
  ``--scale-chunks`` chunks. One tenant's queries (document titles, known-item search, agent
  audience) are run while it is alone in the index and again once the other tenants are in:
  recall and the share of identical result lists. The copies reuse the first copy's embeddings
  (same text, same vector): the scale run measures search, not the embedding model.
  ``--keep-scale-db`` keeps its two databases and reuses them on the next run, so the
  search figures can be re-measured without ingesting 100,000 chunks again.

Usage: ``python bench/retrieval.py [--datasets ../shared/datasets] [--skip-scale]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpdesk import db  # noqa: E402
from helpdesk.config import Settings  # noqa: E402
from helpdesk.tenants import create_tenant  # noqa: E402
from kb_pipeline.chunking import chunk_article  # noqa: E402
from kb_pipeline.index import Audience, KnowledgeBase, SearchMode, bm25, dense, fusion, schema  # noqa: E402
from kb_pipeline.loaders import Article  # noqa: E402
from nlp.models import LOCAL_EMBEDDING_DIM, LOCAL_EMBEDDING_KEY, build_models  # noqa: E402
from nlp.text import EmbeddingCache  # noqa: E402


def pct(values: Sequence[float], q: float) -> float:
    """Percentile by nearest rank, in milliseconds rounded to 0.1."""
    ordered = sorted(values)
    i = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return round(ordered[i] * 1000, 1)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def rank_metrics(ranked: list[list[str]], gold: list[set[str]]) -> dict[str, float]:
    """recall@1/5/10 (a hit is any gold id in the top k) and MRR@10."""
    out = {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
    for ids, g in zip(ranked, gold, strict=True):
        first = next((i for i, s in enumerate(ids[:10]) if s in g), None)
        if first is None:
            continue
        for k in (1, 5, 10):
            out[f"recall@{k}"] += first < k
        out["mrr@10"] += 1 / (first + 1)
    return {k: round(v / len(gold), 3) for k, v in out.items()}


async def written_rows(pool: db.DictPool) -> int:
    """Rows inserted, updated or deleted so far in this database's tables."""
    # Backends flush their table counters about once a second: read until they settle.
    last = -1
    for _ in range(20):
        await asyncio.sleep(1.0)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) AS n"
                " FROM pg_stat_user_tables"
            )
            row = await cur.fetchone()
        n = int(row["n"]) if row else 0
        if n == last:
            return n
        last = n
    return last


async def open_db(name: str, *, fixed: bool = False) -> tuple[str, db.DictPool]:
    """A bench database: a fresh random name, or with ``fixed`` one that is kept and reused."""
    settings = Settings()
    server = db.server_url(settings)
    suffix = "" if fixed else f"_{uuid.uuid4().hex[:8]}"
    url = db.with_database(server, f"deskgraph_bench_{name}{suffix}")
    db.ensure_database(url)
    db.upgrade(url)
    pool = db.make_pool(url, 4)
    await pool.open()
    return url, pool


async def library_hybrid(kb: KnowledgeBase, tenant_id: uuid.UUID, query: str, k: int) -> list[str]:
    """PGVectorStore's own hybrid search (plainto_tsquery + RRF k=60), one hit per article."""
    from langchain_postgres.v2.hybrid_search_config import (
        HybridSearchConfig,
        reciprocal_rank_fusion,
    )

    cfg = HybridSearchConfig(
        tsv_column="content_tsv",
        tsv_lang=schema.TS_CONFIG,
        fusion_function=reciprocal_rank_fusion,
        fusion_function_parameters={"rrf_k": 60},
        primary_top_k=40,
        secondary_top_k=40,
        fts_query=query,
        index_name="",
    )
    docs = await kb.vectorstore.asimilarity_search(
        query, k=40, filter={"tenant_id": {"$eq": str(tenant_id)}}, hybrid_search_config=cfg
    )
    seen: list[str] = []
    for d in docs:
        sid = str(d.metadata["source_id"])
        if sid not in seen:
            seen.append(sid)
    return seen[:k]


async def galaxy(datasets: Path, embeddings: Embeddings) -> dict[str, Any]:
    sections = read_jsonl(datasets / "kb/galaxy_s10/sections.jsonl")
    questions = read_jsonl(datasets / "kb/galaxy_s10/questions.jsonl")
    articles = [Article(source_id=s["id"], title=s["title"], body=s["text"]) for s in sections]
    url, pool = await open_db("galaxy")
    try:
        kb = await KnowledgeBase.open(
            pool,
            db.sqlalchemy_url(url),
            embeddings,
            model_key=LOCAL_EMBEDDING_KEY,
            dim=LOCAL_EMBEDDING_DIM,
        )
        tenant = await create_tenant(pool, "galaxy", "Galaxy S10 manual")

        # Raw model throughput on exactly the texts the pipeline embeds.
        max_tokens = min(512, kb.max_chunk_tokens or 512)
        texts = [
            f"{c.section}\n\n{c.text}"
            for a in articles
            for c in chunk_article(
                a.title, a.body, max_tokens=max_tokens, overlap=min(64, max_tokens // 4)
            )
        ]
        embeddings.embed_documents(texts[:64])  # warm-up
        t0 = time.perf_counter()
        embeddings.embed_documents(texts)
        raw_s = time.perf_counter() - t0

        before = await written_rows(pool)
        t0 = time.perf_counter()
        first = await kb.ingest(tenant.id, articles)
        ingest_s = time.perf_counter() - t0
        after_first = await written_rows(pool)
        t0 = time.perf_counter()
        again = await kb.ingest(tenant.id, articles)
        reingest_s = time.perf_counter() - t0
        after_again = await written_rows(pool)

        gold = [set(q["gold_section_ids"]) for q in questions]
        modes: dict[str, Any] = {}
        for mode in ("hybrid", "vector", "fulltext"):
            for q in questions[:5]:  # warm-up
                await kb.search(tenant.id, q["question"], k=10, mode=mode)
            ranked, lat = [], []
            for q in questions:
                t0 = time.perf_counter()
                hits = await kb.search(tenant.id, q["question"], k=10, mode=mode)
                lat.append(time.perf_counter() - t0)
                ranked.append([h["source_id"] for h in hits])
            modes[mode] = {
                **rank_metrics(ranked, gold),
                "latency_ms_p50": pct(lat, 50),
                "latency_ms_p95": pct(lat, 95),
            }
        ranked = [await library_hybrid(kb, tenant.id, q["question"], 10) for q in questions]
        modes["library_pgvectorstore_rrf"] = rank_metrics(ranked, gold)
        await kb.close()
        return {
            "articles": len(articles),
            "questions": len(questions),
            "chunks": first.chunks_written,
            "retrieval": modes,
            "ingest": {
                "seconds": round(ingest_s, 2),
                "chunks_per_s": round(first.chunks_written / ingest_s, 1),
                "raw_embedding_chunks_per_s": round(len(texts) / raw_s, 1),
                "ratio_to_raw_embedding": round(
                    (first.chunks_written / ingest_s) / (len(texts) / raw_s), 3
                ),
                "rows_written": after_first - before,
                "reingest_unchanged": {
                    "seconds": round(reingest_s, 3),
                    "ratio_to_first_ingest": round(reingest_s / ingest_s, 4),
                    "articles_written": again.articles_written,
                    "rows_written": after_again - after_first,
                },
            },
        }
    finally:
        await pool.close()
        db.drop_database(url)


MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "fulltext")


async def quality_of(
    name: str,
    articles: Sequence[Article],
    queries: Sequence[tuple[str, set[str]]],
    embeddings: Embeddings,
    audience: Audience = "customer",
) -> dict[str, Any]:
    """Every mode's rank metrics on one knowledge base and its queries (a fresh database)."""
    url, pool = await open_db(f"quality_{name}")
    try:
        kb = await KnowledgeBase.open(
            pool,
            db.sqlalchemy_url(url),
            embeddings,
            model_key=LOCAL_EMBEDDING_KEY,
            dim=LOCAL_EMBEDDING_DIM,
        )
        tenant = await create_tenant(pool, name.replace("_", "-"), name)
        await kb.ingest(tenant.id, list(articles))
        out: dict[str, Any] = {"articles": len(articles), "queries": len(queries)}
        for mode in MODES:
            ranked = []
            for q, _ in queries:
                hits = await kb.search(tenant.id, q, k=10, mode=mode, audience=audience)
                ranked.append([h["source_id"] for h in hits])
            out[mode] = rank_metrics(ranked, [g for _, g in queries])
        best = max(("vector", "fulltext"), key=lambda m: (out[m]["mrr@10"], out[m]["recall@5"]))
        out["best_single_mode"] = best
        out["hybrid_minus_best_single"] = {
            m: round(out["hybrid"][m] - out[best][m], 3) for m in ("recall@5", "mrr@10")
        }
        await kb.close()
        return out
    finally:
        await pool.close()
        db.drop_database(url)


async def quality(
    datasets: Path, embeddings: Embeddings, public_manual: Path | None
) -> dict[str, Any]:
    """The protocol's two halves: the sets the fusion was chosen on, and held-out ones."""
    from kb_pipeline.loaders import demo_kb_path, load_directory

    sections = read_jsonl(datasets / "kb/galaxy_s10/sections.jsonl")
    galaxy_q = read_jsonl(datasets / "kb/galaxy_s10/questions.jsonl")
    demo_q = read_jsonl(ROOT / "evals/datasets/demo_questions.jsonl")
    rho, known_items = rho_bank(datasets)
    chosen = {
        "galaxy_s10": await quality_of(
            "galaxy_s10",
            [Article(source_id=s["id"], title=s["title"], body=s["text"]) for s in sections],
            [(q["question"], set(q["gold_section_ids"])) for q in galaxy_q],
            embeddings,
        ),
        "demo": await quality_of(
            "demo",
            load_directory(demo_kb_path()),
            [(q["question"], set(q["gold_article_ids"])) for q in demo_q if q["gold_article_ids"]],
            embeddings,
        ),
    }
    held: dict[str, Any] = {
        "rho_bank_known_item": await quality_of(
            "rho_bank",
            rho,
            [(query, {gold}) for query, gold in known_items],
            embeddings,
            audience="agent",
        )
    }
    if public_manual is not None:
        manual = json.loads(await asyncio.to_thread(public_manual.read_text, encoding="utf-8"))
        held["public_manual"] = {
            "file": str(public_manual),
            **await quality_of(
                "public_manual",
                [
                    Article(source_id=d["id"], title=d["title"], body=d["text"])
                    for d in manual["docs"]
                ],
                [(q["question"], set(q["gold"])) for q in manual["questions"]],
                embeddings,
            ),
        }
    return {"chosen_on": chosen, "held_out": held}


def rho_bank(datasets: Path) -> tuple[list[Article], list[tuple[str, str]]]:
    """Rho-Bank's articles (``Internal:`` titles agent-only) and its known-item queries: 200
    titles (fixed seed), each with its own document as the gold, for the quality and scale runs
    alike."""
    docs = read_jsonl(datasets / "kb/rho_bank/documents.jsonl")
    articles = [
        Article(
            source_id=d["id"],
            title=d["title"],
            body=d["content"],
            visibility="internal" if d["title"].startswith("Internal:") else "external",
        )
        for d in docs
    ]
    sample = random.Random(7).sample(docs, min(200, len(docs)))
    return articles, [(d["title"].removeprefix("Internal:").strip(), d["id"]) for d in sample]


async def _tenants_with_chunks(pool: db.DictPool, kb: KnowledgeBase) -> dict[str, int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"""SELECT t.slug, s.n_chunks FROM tenants t
                JOIN "{kb.table}_stats" s ON s.tenant_id = t.id ORDER BY t.slug"""
        )
        return {r["slug"]: int(r["n_chunks"]) for r in await cur.fetchall()}


async def scale(
    datasets: Path, embeddings: Embeddings, target_chunks: int, *, keep: bool
) -> dict[str, Any]:
    articles, queries = rho_bank(datasets)
    gold = [{doc_id} for _, doc_id in queries]
    cached = EmbeddingCache(embeddings, max_items=None, cache_queries=False)
    out: dict[str, Any] = {"queries": len(queries)}
    results: dict[str, list[list[str]]] = {}

    async def run_queries(kb: KnowledgeBase, tenant_id: uuid.UUID) -> dict[str, Any]:
        for q, _ in queries[:5]:  # warm-up
            await kb.search(tenant_id, q, k=10, audience="agent")
        ranked, lat = [], []
        for q, _ in queries:
            t0 = time.perf_counter()
            hits = await kb.search(tenant_id, q, k=10, audience="agent")
            lat.append(time.perf_counter() - t0)
            ranked.append([h["source_id"] for h in hits])
        results["last"] = ranked
        return {
            **rank_metrics(ranked, gold),
            "latency_ms_p50": pct(lat, 50),
            "latency_ms_p95": pct(lat, 95),
        }

    # The same tenant twice: alone in its own database, then among many tenants in another.
    for phase in ("alone", "among_tenants"):
        url, pool = await open_db(f"scale_{phase}", fixed=keep)
        try:
            kb = await KnowledgeBase.open(
                pool,
                db.sqlalchemy_url(url),
                cached,
                model_key=LOCAL_EMBEDDING_KEY,
                dim=LOCAL_EMBEDDING_DIM,
            )
            present = await _tenants_with_chunks(pool, kb)
            want = 1 if phase == "alone" else None
            t0 = time.perf_counter()
            n = 0
            while (want is None and sum(present.values()) < target_chunks) or (
                want is not None and len(present) < want
            ):
                slug = f"rho-{n:03d}"
                n += 1
                if slug in present:
                    continue
                tenant = await create_tenant(pool, slug, f"Rho-Bank copy {n}")
                present[slug] = (await kb.ingest(tenant.id, articles)).chunks_written
            ingest_s = time.perf_counter() - t0
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT id FROM tenants WHERE slug = 'rho-000'")
                row = await cur.fetchone()
            assert row is not None, "the queried tenant rho-000 is missing"
            target = row["id"]
            out[phase] = {
                "tenants": len(present),
                "chunks_total": sum(present.values()),
                "chunks_of_queried_tenant": present["rho-000"],
                "ingest_s_this_run": round(ingest_s, 1),
                **await run_queries(kb, target),
            }
            results[phase] = results["last"]
            if phase == "among_tenants":
                # The same queries forced through the HNSW path (what a tenant above
                # EXACT_SEARCH_MAX_CHUNKS gets), to show what the ef_search widening keeps.
                limit = dense.EXACT_SEARCH_MAX_CHUNKS
                dense.EXACT_SEARCH_MAX_CHUNKS = 0
                try:
                    out["forced_hnsw_path"] = await run_queries(kb, target)
                finally:
                    dense.EXACT_SEARCH_MAX_CHUNKS = limit
            await kb.close()
        finally:
            await pool.close()
            if not keep:
                db.drop_database(url)
    out["identical_result_lists"] = round(
        sum(a == b for a, b in zip(results["alone"], results["among_tenants"], strict=True))
        / len(queries),
        3,
    )
    return out


def cached_quality(embeddings: Embeddings) -> Embeddings:
    """Chunk vectors kept on disk between quality runs (``DESKGRAPH_BENCH_CACHE``), if set."""
    folder = os.environ.get("DESKGRAPH_BENCH_CACHE")
    if not folder:
        return embeddings
    return EmbeddingCache(embeddings, max_items=None, folder=Path(folder), cache_queries=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--scale-chunks", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-galaxy", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--public-manual",
        type=Path,
        help="a public manual with questions (JSON, see the docstring): a held-out set",
    )
    parser.add_argument(
        "--keep-scale-db",
        action="store_true",
        help="keep the scale run's two databases and reuse them next time (ingest once)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = Settings(openai_api_key=None, openai_base_url=None)
    embeddings = build_models(settings).embeddings  # offline MiniLM, Settings.torch_threads
    out: dict[str, Any] = {
        "embedding_model": LOCAL_EMBEDDING_KEY,
        "torch_threads": settings.torch_threads,
        "fusion": {
            "kind": "convex min-max",
            "alpha_dense": fusion.HYBRID_ALPHA,
            "depth": fusion.FUSION_DEPTH,
            "bm25": [bm25.BM25_K1, bm25.BM25_B],
        },
    }
    if not args.skip_quality:
        out["quality"] = await quality(
            args.datasets, cached_quality(embeddings), args.public_manual
        )
    if not args.skip_galaxy:
        out["galaxy_s10"] = await galaxy(args.datasets, embeddings)
    if not args.skip_scale:
        out["scale"] = await scale(
            args.datasets, embeddings, args.scale_chunks, keep=args.keep_scale_db
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
