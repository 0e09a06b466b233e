"""Run a suite end to end: set up its tenant, run it, record it, write and upload the report.

The command line (``deskgraph eval ...``) and ``make eval`` call these; each returns the
:class:`RunRecord`, and :func:`evals.store.save` writes it (JSON + HTML) and uploads it to
LangSmith when ``LANGSMITH_API_KEY`` is set.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.embeddings import Embeddings

from evals.answers_suite import AnswerCase, graph_answerer, run_answers
from evals.core import Example, RunClock, RunRecord, SuiteResult, finite, mean
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

if TYPE_CHECKING:
    from evals.mtrag import MtragTask

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "vector", "fulltext"]


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
    services: Services,
    path: Path,
    build: Callable[[Sequence[MtragTask]], list[AnswerCase]],
    limit: int | None,
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


async def _graph_cases(
    services: Services,
    *,
    kb: Path | None,
    questions: Path | None,
    mtrag_path: Path | None,
    limit: int | None,
    from_questions: Callable[[Sequence[Question]], list[AnswerCase]],
    from_mtrag: Callable[[Sequence[MtragTask]], list[AnswerCase]],
) -> tuple[list[AnswerCase], dict[str, Any], str | None]:
    """The cases of a suite that runs the whole graph (answers, escalation), the dataset they
    came from and the tenant to ask by default: MTRAG tasks (``--mtrag``, one tenant per
    collection) or a KB + questions (the demo's by default), each tenant set up.

    Raises:
        ValueError: ``--mtrag`` given together with ``--kb`` / ``--questions``.
    """
    if mtrag_path is not None:
        if kb or questions:
            raise ValueError("--mtrag replaces --kb / --questions")
        cases, dataset = await _mtrag_cases(services, mtrag_path, from_mtrag, limit)
        return cases, dataset, cases[0].tenant if cases else ""
    kbset = await prepare_kb_set(services, kb=kb, questions=questions, gold_passages=False)
    return _limit(from_questions(kbset.questions), limit), kbset.dataset, kbset.tenant.slug


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
    cases, dataset, default_tenant = await _graph_cases(
        services,
        kb=kb,
        questions=questions,
        mtrag_path=mtrag_path,
        limit=limit,
        from_questions=answers_suite.cases_from_questions,
        from_mtrag=answers_suite.cases_from_mtrag,
    )
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
    cases, dataset, default_tenant = await _graph_cases(
        services,
        kb=kb,
        questions=questions,
        mtrag_path=mtrag_path,
        limit=limit,
        from_questions=escalation_suite.cases_from_questions,
        from_mtrag=escalation_suite.cases_from_mtrag,
    )
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
    and answers, MTRAG answers and escalation, Bitext / BANKING77 / CLINC150 intents, and the
    adversarial inputs against Bitext and CLINC150 messages.
    """
    jobs: list[Job] = [
        lambda s: retrieval_run(s),
        lambda s: answers_run(s, judge=False),
        lambda s: escalation_run(s),
        lambda s: intents_run(s),
        lambda s: guardrails_run(s),
    ]
    if datasets is None:
        return jobs
    galaxy = datasets / "kb" / "galaxy_s10"
    kb, questions = galaxy / "sections.jsonl", galaxy / "questions.jsonl"
    mtrag_path = datasets / "rag" / "mtrag" / "dev.jsonl"
    intents_dir = datasets / "intents"
    attacks = datasets / "guard" / "attacks_dev.jsonl"
    bitext = (intents_dir / "bitext" / "train.csv", intents_dir / "bitext" / "dev.csv")
    banking = intents_dir / "banking77" / "train.csv"
    clinc = (intents_dir / "clinc150" / "train.jsonl", intents_dir / "clinc150" / "val.jsonl")
    needed = (kb, questions, mtrag_path, attacks, *bitext, banking, *clinc)
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"not in {datasets} (is it the shared datasets folder?): {', '.join(missing)}"
        )
    jobs += [
        lambda s: retrieval_run(s, kb=kb, questions=questions),
        lambda s: answers_run(s, kb=kb, questions=questions, judge=False),
        lambda s: answers_run(s, mtrag_path=mtrag_path, judge=False),
        lambda s: escalation_run(s, mtrag_path=mtrag_path),
        lambda s: intents_run(s, train=bitext[0], test=bitext[1]),
        lambda s: intents_run(s, train=banking, split=5),
        lambda s: intents_run(s, train=clinc[0], test=clinc[1], oos_label="oos"),
        lambda s: guardrails_run(s, attacks=[attacks], benign=[bitext[1], clinc[1]]),
    ]
    return jobs


# ---------------------------------------------------------------- intents (evals/intents.py)


def _intent_of(row: Any) -> str:
    """The label of a row from ``evals.intents.load_intent_rows``."""
    if isinstance(row, Mapping):
        return str(row["intent"])
    return str(row.intent)


def stratified_folds(rows: Sequence[Any], k: int) -> list[list[Any]]:
    """Split rows into ``k`` folds, each label spread evenly (deterministic, in file order)."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    folds: list[list[Any]] = [[] for _ in range(k)]
    seen: dict[str, int] = {}
    for row in rows:
        label = _intent_of(row)
        folds[seen.get(label, 0) % k].append(row)
        seen[label] = seen.get(label, 0) + 1
    return folds


def intents_result(out: Mapping[str, Any]) -> SuiteResult:
    """An ``evals.intents.run_intents_suite`` result as a suite result for the run record."""
    examples = [
        Example(
            id=str(e["id"]),
            input=e["input"],
            expected=e["expected"],
            output=e["output"],
            score=1.0 if e["ok"] else 0.0,
            ok=bool(e["ok"]),
            metrics={"confidence": finite(e.get("confidence"))},
        )
        for e in out["examples"]
    ]
    tables: dict[str, Any] = {}
    if out.get("per_intent"):
        tables["per_intent"] = out["per_intent"]
    if out.get("confusion"):
        tables["confusion"] = {"title": "Confusion matrix", **out["confusion"]}
    return SuiteResult(metrics=dict(out["metrics"]), examples=examples, tables=tables)


def merge_folds(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool cross-validation folds: metrics and per-intent scores averaged over the folds,
    confusion matrices summed over the union of labels, examples concatenated (fold-tagged)."""
    names = list(dict.fromkeys(n for p in parts for n in p["metrics"]))
    metrics = {n: mean(p["metrics"].get(n) for p in parts) for n in names}
    per_intent: dict[str, dict[str, float | None]] = {}
    intents = list(dict.fromkeys(i for p in parts for i in (p.get("per_intent") or {})))
    for intent in intents:
        rows = [p["per_intent"][intent] for p in parts if intent in (p.get("per_intent") or {})]
        cols = list(dict.fromkeys(c for r in rows for c in r))
        per_intent[intent] = {c: mean(r.get(c) for r in rows) for c in cols}
    labels = sorted({str(x) for p in parts for x in (p.get("confusion") or {}).get("labels", [])})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for p in parts:
        conf = p.get("confusion") or {"labels": [], "matrix": []}
        for i, row in enumerate(conf["matrix"]):
            for j, count in enumerate(row):
                matrix[index[str(conf["labels"][i])]][index[str(conf["labels"][j])]] += count
    examples = [
        {**e, "id": f"f{n}-{e['id']}"} for n, p in enumerate(parts, 1) for e in p["examples"]
    ]
    return {
        "metrics": metrics,
        "per_intent": per_intent,
        "confusion": {"labels": labels, "matrix": matrix},
        "examples": examples,
    }


class CachedEmbeddings(Embeddings):
    """Embeds each distinct text once: cross-validation trains on the same texts k - 1 times."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self._cache: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed the texts not seen before, in one batch; return all in order."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self._cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one text (cached like the documents)."""
        return self.embed_documents([text])[0]


def intents_cross_validation(
    rows: Sequence[Any], *, folds: int, oos_label: str, embeddings: Embeddings
) -> dict[str, Any]:
    """Stratified k-fold cross-validation of the intent classifier on ``rows``.

    Metrics and per-intent scores are the mean over the folds; the confusion matrix and the
    examples pool every fold.
    """
    from evals import intents

    cached = CachedEmbeddings(embeddings)
    parts = []
    split_rows = stratified_folds(rows, folds)
    for i, held_out in enumerate(split_rows):
        rest = [r for n, fold in enumerate(split_rows) if n != i for r in fold]
        parts.append(
            intents.run_intents_suite(rest, held_out, oos_label=oos_label, embeddings=cached)
        )
    return merge_folds(parts)


def demo_intent_rows(prompts_dir: Path) -> list[Any]:
    """The classifier's own examples: ``intents.csv`` plus ``out_of_scope.csv`` if present."""
    from evals import intents

    rows: list[Any] = list(intents.load_intent_rows(prompts_dir / "intents.csv"))
    oos_path = prompts_dir / "out_of_scope.csv"
    if oos_path.is_file():
        rows += list(intents.load_intent_rows(oos_path))
    return rows


async def intents_run(
    services: Services,
    *,
    train: Path | None = None,
    test: Path | None = None,
    split: int | None = None,
    oos_label: str | None = None,
    folds: int = 5,
    limit: int | None = None,
) -> RunRecord:
    """The ``intents`` suite.

    * No paths: the demo examples (``prompts/intents.csv`` + ``prompts/out_of_scope.csv``) by
      stratified ``folds``-fold cross-validation: metrics and per-intent scores are the mean
      over the folds, the confusion matrix and the examples pool every fold.
    * ``train`` and ``test``: train on one file, score the other (Bitext, CLINC150).
    * ``train`` and ``split=K``: hold out one of ``K`` stratified folds of ``train`` as the
      test set (BANKING77 publishes only a training file).

    The classifier is the product's (``graph.classifier``) on the services' embeddings.
    """
    from evals import intents
    from graph.classifier import OUT_OF_SCOPE
    from helpdesk.config import get_settings

    clock = RunClock("intents")
    label = oos_label or OUT_OF_SCOPE
    embeddings = services.models.embeddings

    async def score(train_rows: Sequence[Any], test_rows: Sequence[Any]) -> dict[str, Any]:
        return await asyncio.to_thread(
            intents.run_intents_suite,
            train_rows,
            test_rows,
            oos_label=label,
            embeddings=embeddings,
        )

    config: dict[str, Any] = {"oos_label": label, "limit": limit}
    if train is None and test is None:
        prompts = get_settings().prompts_dir
        rows = await asyncio.to_thread(demo_intent_rows, prompts)
        out = await asyncio.to_thread(
            intents_cross_validation, rows, folds=folds, oos_label=label, embeddings=embeddings
        )
        dataset: dict[str, Any] = {"name": "demo", "path": str(prompts), "rows": len(rows)}
        config["folds"] = folds
    elif train is not None and test is not None and split is None:
        train_rows = list(intents.load_intent_rows(train))
        test_rows = _limit(list(intents.load_intent_rows(test)), limit)
        out = await score(train_rows, test_rows)
        name = train.parent.name or train.stem
        dataset = {"name": name, "train": str(train), "test": str(test), "rows": len(test_rows)}
    elif train is not None and test is None and split is not None:
        all_rows = list(intents.load_intent_rows(train))
        held_out, *rest_folds = stratified_folds(all_rows, split)
        test_rows = _limit(held_out, limit)
        out = await score([r for fold in rest_folds for r in fold], test_rows)
        name = train.parent.name or train.stem
        dataset = {"name": name, "train": str(train), "rows": len(test_rows)}
        config["split"] = f"fold 1 of {split} held out"
    else:
        raise ValueError(
            "intents takes --train with --test, or --train with --split K, or neither (demo)"
        )
    result = intents_result(out)
    timing = out.get("timing") or {}
    if timing:
        result.notes.append("timing: " + ", ".join(f"{k} {v}" for k, v in timing.items()))
    return clock.finish(
        result,
        config={**config, "models": model_info(services)},
        dataset=dataset,
        model_tier=services.models.tier,
    )


# ---------------------------------------------------------------- guardrails (evals/guardrails.py)

DEMO_ATTACKS = DEMO_QUESTIONS.parent / "demo_attacks.jsonl"
"""Hand-written attacks on the demo desk (jailbreaks, harmful requests, planted instructions)."""
DEMO_BENIGN = DEMO_QUESTIONS.parent / "demo_benign.jsonl"
"""Hand-written ordinary messages, some with words an over-eager guard would trip on."""
_COUNTS = ("attack_count", "attack_target_count", "benign_count")


def demo_guard_sets() -> tuple[list[Any], list[Any]]:
    """The demo's attacks, and its ordinary messages: the hand-written ones plus every demo
    question (real customer phrasing, typos and all)."""
    from evals import guardrails

    attacks = guardrails.load_attacks(DEMO_ATTACKS)
    benign = guardrails.load_benign(DEMO_BENIGN, "demo_benign")
    benign += [
        guardrails.BenignCase(id=f"demo_questions/{q.id}", text=q.question, source="demo")
        for q in load_questions(DEMO_QUESTIONS)
    ]
    return attacks, benign


def guardrails_result(out: Mapping[str, Any]) -> SuiteResult:
    """An ``evals.guardrails.run_guardrails_suite`` result as a suite result.

    Rates become metrics (per-kind and per-source rates as ``name.kind``), counts and the
    target kinds become notes, the per-layer block counts a table.
    """
    raw = dict(out["metrics"])
    metrics: dict[str, float | None] = {}
    tables: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in raw.items():
        if key in _COUNTS:
            notes.append(f"{key}: {value}")
        elif key == "target_kinds":
            notes.append(f"attack_block_rate covers the kinds {', '.join(value)}")
        elif key == "attack_blocked_by_layer":
            tables["blocked_by_layer"] = {
                "title": "Attacks blocked, by guard layer",
                "columns": ["layer", "attacks"],
                "rows": [[k, v] for k, v in value.items()],
            }
        elif isinstance(value, Mapping):
            metrics.update({f"{key}.{k}": finite(v) for k, v in value.items()})
        else:
            metrics[key] = finite(value)
    examples = []
    for e in out["examples"]:
        output = e.get("output") or {}
        shown = (
            f"{output.get('action')} ({output.get('layer')}): {output.get('reason') or 'ok'}"
            if isinstance(output, Mapping)
            else output
        )
        score = output.get("score") if isinstance(output, Mapping) else None
        examples.append(
            Example(
                id=str(e["id"]),
                input=e["input"],
                expected=e["expected"],
                output=shown,
                score=1.0 if e["ok"] else 0.0,
                ok=bool(e["ok"]),
                metrics={"detector_score": finite(score)},
                meta={"category": e.get("category")},
            )
        )
    directions: dict[str, Literal["higher", "lower"]] = {
        k: "lower" for k in metrics if k.startswith("benign_block_rate")
    }
    return SuiteResult(
        metrics=metrics, examples=examples, tables=tables, directions=directions, notes=notes
    )


async def guardrails_run(
    services: Services,
    *,
    attacks: Sequence[Path] = (),
    benign: Sequence[Path] = (),
    limit: int | None = None,
) -> RunRecord:
    """The ``guardrails`` suite: attacks should be blocked or handed off, ordinary messages
    should pass. Default: the demo's hand-written sets plus the demo questions as ordinary
    messages, under the demo tenant's policy; with paths, the default tenant policy."""
    from evals import guardrails
    from helpdesk.policy import TenantPolicy

    clock = RunClock("guardrails")
    policy = TenantPolicy()
    if not attacks and not benign:
        tenant, _ = await ensure_demo_tenant(services)
        policy = tenant.policy
        attack_rows, benign_rows = await asyncio.to_thread(demo_guard_sets)
        dataset: dict[str, Any] = {
            "name": "demo",
            "attacks": [str(DEMO_ATTACKS)],
            "benign": [str(DEMO_BENIGN), str(DEMO_QUESTIONS)],
        }
    else:
        if not attacks or not benign:
            raise ValueError("guardrails needs both --attacks and --benign (or neither, demo)")
        attack_rows = [a for path in attacks for a in guardrails.load_attacks(path)]
        benign_rows = [b for path in benign for b in guardrails.load_benign(path)]
        dataset = {
            "name": attacks[0].parent.name or "guard",
            "attacks": [str(p) for p in attacks],
            "benign": [str(p) for p in benign],
        }
    attack_rows, benign_rows = _limit(attack_rows, limit), _limit(benign_rows, limit)
    # The guard the graph's guard_input node builds: same examples, same (local) model.
    guard = await asyncio.to_thread(_load_guard, services.prompts.root)
    out = await asyncio.to_thread(
        guardrails.run_guardrails_suite, attack_rows, benign_rows, guard=guard, policy=policy
    )
    dataset["rows"] = len(attack_rows) + len(benign_rows)
    return clock.finish(
        guardrails_result(out),
        config={"limit": limit, "models": model_info(services)},
        dataset=dataset,
        model_tier=services.models.tier,
    )


def _load_guard(prompts_dir: Path) -> Any:
    from graph.guard import load_guard

    return load_guard(prompts_dir)
