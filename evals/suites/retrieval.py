"""The ``retrieval`` suite: does the knowledge-base search find the articles that answer?

Input: questions with gold article ids and a search function (the tenant's
``KnowledgeBase.search``, or any function with the same shape, which is how the quality gate
proves it can fail). For each question the suite asks for the ``k`` chunks the drafter gets
(``graph/nodes/retrieve.py`` asks for 4) and, for ranking metrics, for ``depth`` chunks.

A chunk is a hit when it belongs to a gold article (for Galaxy S10: any chunk of a gold
section). Per question, averaged over the questions that have gold ids (the others are
unanswerable by design and belong to the ``escalation`` suite):

* ``recall@1``, ``recall@k``, ``recall@depth``: share of the gold articles among the articles of
  the first 1 / k / depth chunks; ``hit@k``: at least one gold article in the first k chunks.
* ``mrr@depth``: 1 / rank of the first gold chunk (0 when none is in the first ``depth``).
* ragas on the first k chunks: ``id_context_recall`` / ``id_context_precision``
  (``IDBasedContextRecall`` / ``IDBasedContextPrecision`` on the distinct article ids: precision
  is the share of retrieved articles that are gold) and ``non_llm_context_recall``
  (``NonLLMContextRecall``: each gold passage against the retrieved text of each article, the
  chunks of one article joined; it needs gold passages, so it is reported when the dataset's
  gold articles are single passages such as Galaxy S10 sections, and left out otherwise, since a
  whole multi-section article never matches a chunk by string similarity).
* ``latency_p50_ms`` / ``latency_p95_ms`` of the k-search (lower is better).

:func:`retrieval_run` is the suite end to end on the demo tenant or a KB passed by path
(:mod:`evals.suites.kb_sets`), searching the tenant's knowledge base in ``hybrid`` (default),
``vector`` or ``fulltext`` mode.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.core import Example, RunClock, RunRecord, SuiteResult, mean, percentile
from evals.loaders import Question
from evals.ragas_metrics import OfflineScorers
from evals.suites.common import limit_rows, model_info
from evals.suites.kb_sets import prepare_kb_set
from graph.services import Services
from kb_pipeline.index import Retrieved, SearchMode

SearchFn = Callable[[str, int], Awaitable[Sequence[Retrieved]]]
"""``search(question, k) -> hits``, best first."""


def distinct(ids: Sequence[str]) -> list[str]:
    """Ids in first-seen order, each once."""
    return list(dict.fromkeys(ids))


def recall_at(ranked_ids: Sequence[str], gold: set[str], n: int) -> float:
    """Share of ``gold`` among the articles of the first ``n`` chunks."""
    return len(gold & set(ranked_ids[:n])) / len(gold)


def reciprocal_rank(ranked_ids: Sequence[str], gold: set[str]) -> float:
    """1 / rank of the first chunk of a gold article (0 when there is none)."""
    return next((1.0 / i for i, sid in enumerate(ranked_ids, 1) if sid in gold), 0.0)


def per_article_text(hits: Sequence[Retrieved]) -> dict[str, str]:
    """The retrieved text of each article: its chunks joined, in rank order."""
    texts: dict[str, list[str]] = {}
    for h in hits:
        texts.setdefault(h["source_id"], []).append(h["text"])
    return {sid: "\n".join(parts) for sid, parts in texts.items()}


async def run_retrieval(
    search: SearchFn,
    questions: Sequence[Question],
    *,
    k: int = 4,
    depth: int = 10,
    gold_texts: Mapping[str, str] | None = None,
    scorers: OfflineScorers | None = None,
) -> SuiteResult:
    """Run the retrieval suite.

    Args:
        search: ``search(question, k)`` returning hits best first.
        questions: the question set; questions without gold ids are skipped (and counted).
        k: chunks the drafter gets.
        depth: chunks looked at for ``mrr@depth`` and ``recall@depth`` (at least ``k``).
        gold_texts: gold passage text by id; enables ``non_llm_context_recall``.
        scorers: ragas scorers to reuse (built when None).

    Raises:
        ValueError: ``k`` < 1, or no question has gold ids.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    depth = max(depth, k)
    scorers = scorers or OfflineScorers()
    graded = [q for q in questions if q.gold_ids]
    if not graded:
        raise ValueError("no question has gold ids: nothing to measure retrieval against")
    rk, rd = f"recall@{k}", f"recall@{depth}"
    examples: list[Example] = []
    latencies: list[float] = []
    for q in graded:
        gold = set(q.gold_ids)
        started = time.perf_counter()
        hits = list(await search(q.question, k))
        latencies.append((time.perf_counter() - started) * 1000)
        deep = list(await search(q.question, depth)) if depth > k else hits
        ranked = [h["source_id"] for h in hits]
        ranked_deep = [h["source_id"] for h in deep]
        retrieved_articles = distinct(ranked)
        article_text = per_article_text(hits)
        golden = [gold_texts[g] for g in q.gold_ids if gold_texts and g in gold_texts]
        ragas = await scorers.retrieval(
            retrieved_articles, list(q.gold_ids), list(article_text.values()), golden
        )
        values: dict[str, float | None] = {
            "recall@1": recall_at(ranked, gold, 1),
            rk: recall_at(ranked, gold, k),
            f"hit@{k}": float(bool(gold & set(ranked))),
            rd: recall_at(ranked_deep, gold, depth),
            f"mrr@{depth}": reciprocal_rank(ranked_deep, gold),
            **ragas,
        }
        examples.append(
            Example(
                id=q.id,
                input=q.question,
                expected=list(q.gold_ids),
                output=retrieved_articles,
                score=values[rk],
                ok=bool(values[f"hit@{k}"]),
                metrics=values,
                contexts=[
                    {
                        "source_id": h["source_id"],
                        "title": h["title"],
                        "text": h["text"],
                        "score": round(float(h["score"]), 4),
                        "gold": h["source_id"] in gold,
                    }
                    for h in hits
                ],
                meta={"rank_of_first_gold": _first_rank(ranked_deep, gold)},
            )
        )
    names = list(examples[0].metrics)
    metrics: dict[str, float | None] = {n: mean(e.metrics.get(n) for e in examples) for n in names}
    metrics["latency_p50_ms"] = percentile(latencies, 50)
    metrics["latency_p95_ms"] = percentile(latencies, 95)
    skipped = len(questions) - len(graded)
    notes = [f"{len(graded)} questions with gold ids; k={k}, depth={depth}"]
    if skipped:
        notes.append(f"{skipped} questions without gold ids skipped (unanswerable by design)")
    if gold_texts is None:
        notes.append("non_llm_context_recall not computed: the dataset has no gold passages")
    return SuiteResult(
        metrics=metrics,
        examples=examples,
        tables={"misses": _misses(examples, k)},
        directions={"latency_p50_ms": "lower", "latency_p95_ms": "lower"},
        notes=notes,
    )


def _first_rank(ranked: Sequence[str], gold: set[str]) -> int | None:
    return next((i for i, sid in enumerate(ranked, 1) if sid in gold), None)


def _misses(examples: Sequence[Example], k: int) -> dict[str, Any]:
    """Which gold articles are most often missed in the first k (a table for the report)."""
    counts: dict[str, int] = {}
    for e in examples:
        for g in e.expected:
            if g not in e.output:
                counts[g] = counts.get(g, 0) + 1
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {
        "title": f"Gold articles most often missing from the first {k} chunks",
        "columns": ["article", "questions missed"],
        "rows": [[a, n] for a, n in rows],
    }


async def retrieval_run(
    services: Services,
    *,
    kb: Path | None = None,
    questions: Path | None = None,
    k: int = 4,
    depth: int = 10,
    mode: SearchMode = "hybrid",
    limit: int | None = None,
    gold_passages: bool | None = None,
) -> RunRecord:
    """The ``retrieval`` suite on the demo tenant or a KB passed by path."""
    clock = RunClock("retrieval")
    kbset = await prepare_kb_set(services, kb=kb, questions=questions, gold_passages=gold_passages)
    tenant_id = kbset.tenant.id

    async def search(question: str, n: int) -> Any:
        return await services.kb.search(tenant_id, question, k=n, mode=mode)

    rows = limit_rows(kbset.questions, limit)
    result = await run_retrieval(search, rows, k=k, depth=depth, gold_texts=kbset.gold_texts)
    return clock.finish(
        result,
        config={
            "k": k,
            "depth": depth,
            "mode": mode,
            "limit": limit,
            "tenant": kbset.tenant.slug,
            "models": model_info(services),
        },
        dataset={**kbset.dataset, "rows": len(rows)},
        model_tier=services.models.tier,
    )
