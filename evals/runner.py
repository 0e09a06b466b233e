"""Run a suite end to end: set up its tenant, run it, record it, write and upload the report.

The command line (``deskgraph eval ...``) and ``make eval`` call these; each returns the
:class:`RunRecord`, and :func:`save` writes it (JSON + HTML) and uploads it to LangSmith when
``LANGSMITH_API_KEY`` is set.

Datasets (formats in ``evals/datasets/README.md``):

* retrieval / answers / escalation: the demo tenant and ``evals/datasets/demo_questions.jsonl``
  by default; ``--kb PATH --questions PATH`` for another knowledge base (Galaxy S10:
  ``kb/galaxy_s10/{sections,questions}.jsonl``), ingested as the ``eval-<name>`` tenant;
  ``--mtrag PATH`` for MTRAG conversations (one ``mtrag-<collection>`` tenant per collection).
* intents: the demo intent examples (``prompts/intents.csv`` + ``prompts/out_of_scope.csv``)
  by stratified cross-validation, or ``--train PATH --test PATH``.
* guardrails: the demo's hand-written sets in ``evals/datasets``, or ``--attacks`` /
  ``--benign`` paths.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evals.answers_suite import AnswerCase, graph_answerer, run_answers
from evals.core import RunClock, RunFiles, RunRecord, write_run
from evals.loaders import DEMO_QUESTIONS, Question, check_gold_ids, load_kb, load_questions
from evals.ragas_metrics import LlmScorers, OfflineScorers
from evals.retrieval_suite import run_retrieval
from evals.workspace import (
    ensure_demo_tenant,
    ensure_kb_tenant,
    eval_graph,
    kb_tenant_slug,
)
from graph.services import Services
from helpdesk.tenants import Tenant
from kb_pipeline.loaders import Article

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "vector", "fulltext"]


@dataclass(frozen=True)
class Saved:
    """Where a run went."""

    record: RunRecord
    files: RunFiles
    langsmith: str


def save(record: RunRecord, out_dir: Path, *, upload: bool = True) -> Saved:
    """Write the run's JSON and HTML; upload it when ``LANGSMITH_API_KEY`` is set."""
    from evals.langsmith_upload import SKIPPED, upload_run

    files = write_run(record, out_dir)
    status = SKIPPED
    if upload:
        try:
            status = upload_run(record)
        except Exception as exc:  # the local report is the product; an upload is a copy
            log.warning("LangSmith upload of %s failed: %s", record.run_id, exc)
            status = f"failed: {type(exc).__name__}: {exc}"
    return Saved(record=record, files=files, langsmith=status)


def model_info(services: Services) -> dict[str, Any]:
    """Which models a run used (for the record's configuration)."""
    models = services.models

    def name(model: Any) -> str | None:
        if model is None:
            return None
        return str(getattr(model, "model_name", None) or getattr(model, "model", None) or model)

    return {
        "embeddings": models.embedding_key,
        "chat": name(models.chat),
        "judge": name(models.judge),
    }


def _limit(rows: Sequence[Any], limit: int | None) -> list[Any]:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return list(rows[:limit] if limit else rows)


@dataclass
class KbSet:
    """A knowledge base loaded as a tenant, with its question set."""

    tenant: Tenant
    questions: list[Question]
    dataset: dict[str, Any]
    gold_texts: dict[str, str] | None


def load_kb_set(
    kb: Path | None, questions: Path | None, gold_passages: bool | None
) -> tuple[list[Article] | None, list[Question], dict[str, Any], bool]:
    """Read a KB and its questions (the demo questions when both are None).

    Returns the articles (None for the demo), the questions, the dataset description and
    whether the gold articles are passages.

    Raises:
        ValueError: only one of ``kb`` / ``questions`` given, or gold ids not in the KB.
    """
    if kb is None and questions is None:
        demo: dict[str, Any] = {
            "name": "demo",
            "questions": str(DEMO_QUESTIONS),
            "kb": "kb_pipeline/demo_kb",
        }
        return None, load_questions(DEMO_QUESTIONS), demo, False
    if kb is None or questions is None:
        raise ValueError("--kb and --questions go together (or neither, for the demo tenant)")
    articles = load_kb(kb)
    rows = load_questions(questions)
    unknown = check_gold_ids(rows, articles)
    if unknown:
        raise ValueError(
            f"{len(unknown)} gold id(s) of {questions.name} are not articles of {kb}: "
            + ", ".join(unknown[:5])
        )
    dataset: dict[str, Any] = {
        "name": kb_tenant_slug(kb).removeprefix("eval-"),
        "questions": str(questions),
        "kb": str(kb),
        "articles": len(articles),
    }
    passages = gold_passages if gold_passages is not None else kb.is_file()
    return articles, rows, dataset, passages


async def prepare_kb_set(
    services: Services, *, kb: Path | None, questions: Path | None, gold_passages: bool | None
) -> KbSet:
    """The demo tenant and demo questions, or a KB + questions passed by path.

    ``gold_passages`` (default: on for a JSONL / CSV KB, whose records are passages; off for a
    folder of documents) makes the gold articles' text the reference contexts of
    ``non_llm_context_recall``.

    Raises:
        ValueError: only one of ``kb`` / ``questions`` given, or gold ids not in the KB.
    """
    articles, rows, dataset, passages = await asyncio.to_thread(
        load_kb_set, kb, questions, gold_passages
    )
    if articles is None or kb is None:
        tenant, _ = await ensure_demo_tenant(services)
        return KbSet(tenant, rows, dataset, None)
    slug = kb_tenant_slug(kb)
    tenant, stats = await ensure_kb_tenant(services, slug, f"eval: {kb.name}", articles)
    log.info("tenant %s: %s", slug, stats)
    gold = {a.source_id: a.body for a in articles} if passages else None
    return KbSet(tenant, rows, dataset, gold)


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

    rows = _limit(kbset.questions, limit)
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


async def _mtrag_cases(
    services: Services, path: Path, build: Any, limit: int | None
) -> tuple[list[AnswerCase], dict[str, Any]]:
    from evals import mtrag

    tasks = mtrag.load_tasks(path)
    cases = _limit(build(tasks), limit)
    used = {c.tenant for c in cases}
    for collection, articles in mtrag.collection_articles(tasks).items():
        slug = mtrag.tenant_slug(collection)
        if slug in used:
            _, stats = await ensure_kb_tenant(services, slug, f"MTRAG {collection}", articles)
            log.info("tenant %s: %s", slug, stats)
    return cases, {"name": "mtrag", "path": str(path), "collections": sorted(used)}


def judge_scorers(services: Services, judge: bool | None) -> LlmScorers | None:
    """The judge-model ragas metrics: on when a judge model is configured, unless refused.

    Raises:
        ValueError: ``judge`` is True but no judge model is configured.
    """
    model = services.models.judge
    if judge is False or (judge is None and model is None):
        return None
    if model is None:
        raise ValueError(
            "--judge needs a judge model: set OPENAI_API_KEY or OPENAI_BASE_URL"
            " (and DESKGRAPH_JUDGE_MODEL to pick one)"
        )
    return LlmScorers.build(model, services.models.embeddings)


async def answers_run(
    services: Services,
    *,
    kb: Path | None = None,
    questions: Path | None = None,
    mtrag_path: Path | None = None,
    judge: bool | None = None,
    limit: int | None = None,
    concurrency: int = 1,
) -> RunRecord:
    """The ``answers`` suite: demo questions, a KB + questions, or MTRAG answerable tasks."""
    from evals import answers_suite

    clock = RunClock("answers")
    if mtrag_path is not None:
        if kb or questions:
            raise ValueError("--mtrag replaces --kb / --questions")
        cases, dataset = await _mtrag_cases(
            services, mtrag_path, answers_suite.cases_from_mtrag, limit
        )
        default_tenant = cases[0].tenant if cases else ""
    else:
        kbset = await prepare_kb_set(services, kb=kb, questions=questions, gold_passages=False)
        cases = _limit(answers_suite.cases_from_questions(kbset.questions), limit)
        dataset, default_tenant = kbset.dataset, kbset.tenant.slug
    llm = judge_scorers(services, judge)
    graph = await eval_graph(services)
    answer = graph_answerer(graph, services, default_tenant or "", concurrency=concurrency)
    result = await run_answers(answer, cases, services, scorers=OfflineScorers(), llm=llm)
    return clock.finish(
        result,
        config={
            "limit": limit,
            "concurrency": concurrency,
            "judge_metrics": llm is not None,
            "tenant": default_tenant,
            "models": model_info(services),
        },
        dataset={**dataset, "rows": len(cases)},
        model_tier=services.models.tier,
    )


async def escalation_run(
    services: Services,
    *,
    kb: Path | None = None,
    questions: Path | None = None,
    mtrag_path: Path | None = None,
    limit: int | None = None,
    concurrency: int = 1,
) -> RunRecord:
    """The ``escalation`` suite: demo questions (answerable flag) or MTRAG labels."""
    from evals import escalation_suite

    clock = RunClock("escalation")
    if mtrag_path is not None:
        if kb or questions:
            raise ValueError("--mtrag replaces --kb / --questions")
        cases, dataset = await _mtrag_cases(
            services, mtrag_path, escalation_suite.cases_from_mtrag, limit
        )
        default_tenant = cases[0].tenant if cases else ""
    else:
        kbset = await prepare_kb_set(services, kb=kb, questions=questions, gold_passages=False)
        cases = _limit(escalation_suite.cases_from_questions(kbset.questions), limit)
        dataset, default_tenant = kbset.dataset, kbset.tenant.slug
    graph = await eval_graph(services)
    answer = graph_answerer(graph, services, default_tenant or "", concurrency=concurrency)
    result = await escalation_suite.run_escalation(answer, cases)
    return clock.finish(
        result,
        config={
            "limit": limit,
            "concurrency": concurrency,
            "tenant": default_tenant,
            "models": model_info(services),
        },
        dataset={**dataset, "rows": len(cases)},
        model_tier=services.models.tier,
    )


Job = Callable[[Services], Awaitable[RunRecord]]


def plan_all(datasets: Path | None) -> list[Job]:
    """Every offline suite on the demo tenant, then (with ``datasets``) on the shared sets.

    ``datasets`` is the shared datasets folder (``../shared/datasets``): Galaxy S10 retrieval
    and answers, MTRAG answers and escalation.
    """
    jobs: list[Job] = [
        lambda s: retrieval_run(s),
        lambda s: answers_run(s, judge=False),
        lambda s: escalation_run(s),
    ]
    if datasets is None:
        return jobs
    galaxy = datasets / "kb" / "galaxy_s10"
    mtrag_path = datasets / "rag" / "mtrag" / "dev.jsonl"
    for needed in (galaxy / "sections.jsonl", galaxy / "questions.jsonl", mtrag_path):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{needed} not found: is {datasets} the shared datasets folder?"
            )
    kb, questions = galaxy / "sections.jsonl", galaxy / "questions.jsonl"
    jobs += [
        lambda s: retrieval_run(s, kb=kb, questions=questions),
        lambda s: answers_run(s, kb=kb, questions=questions, judge=False),
        lambda s: answers_run(s, mtrag_path=mtrag_path, judge=False),
        lambda s: escalation_run(s, mtrag_path=mtrag_path),
    ]
    return jobs
