"""The ``answers`` suite: run the whole graph per question and score what the customer gets.

Each case runs as a fresh conversation through the real graph (``evals.answering``: guard,
classify, retrieve, draft, judge, with the tenant's policy). What the customer would get is
scored against the reference answer and the retrieved contexts.

Offline metrics (no model, no network):

* ``string_similarity`` (ragas ``NonLLMStringSimilarity``, Levenshtein) and ``rouge_l`` (ragas
  ``RougeScore``, rouge-L F1) of the answer against the reference answer, over every case: a
  declined or handed-off question scores what the customer got (the decline or hand-off text),
  so fewer answers show here as well as in ``answered_rate``.
* ``groundedness``: share of the answer's sentences that the retrieved contexts support, by the
  judge's own sentence-level check (``graph.nodes.judge.unsupported_sentences``: MiniLM cosine
  or content-word coverage), over answered cases.
* ``gold_citation_rate``: answered cases citing at least one gold article (when gold ids are
  known); ``id_context_recall``: ragas ``IDBasedContextRecall`` of the chunks the graph
  retrieved against the gold ids.
* ``answered_rate``, ``declined_rate``, ``handoff_rate``, ``held_for_review_rate`` and latency.

With a judge model configured (``--judge``): ragas ``Faithfulness``, ``ResponseRelevancy``,
``FactualCorrectness`` and ``LLMContextPrecisionWithReference`` over answered cases.

An example passes when it was answered (not declined, not handed off), every checked sentence
is grounded, and it cites a gold article where gold ids are known. Its score is ``rouge_l``.

:func:`answers_run` is the suite end to end: the demo questions, a KB + questions passed by
path, or MTRAG's answerable tasks (cases and tenants: :mod:`evals.suites.graph_cases`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.core import Example, RunClock, RunRecord, SuiteResult, mean, percentile
from evals.loaders import Question
from evals.mtrag import MtragTask
from evals.ragas_metrics import LlmScorers, OfflineScorers
from evals.suites.common import model_info
from evals.suites.graph_cases import (
    AnswerCase,
    AnswerFn,
    case_from_mtrag,
    case_from_question,
    graph_answerer,
    graph_cases,
    outcome,
)
from evals.workspace import eval_graph
from graph.nodes.draft import CITATION
from graph.nodes.judge import MIN_CONTENT_WORDS, unsupported_sentences
from graph.services import Services
from kb_pipeline.index import Retrieved
from nlp.text import content_words, sentences


def cases_from_questions(
    questions: Sequence[Question], *, answerable_only: bool = True
) -> list[AnswerCase]:
    """Answer cases from a question set (answerable rows with a reference answer by default)."""
    return [
        case_from_question(q)
        for q in questions
        if not answerable_only or (q.answerable and q.answer)
    ]


def cases_from_mtrag(
    tasks: Sequence[MtragTask], labels: Sequence[str] = ("ANSWERABLE", "PARTIAL")
) -> list[AnswerCase]:
    """Answer cases from MTRAG tasks with the given answerability labels."""
    return [case_from_mtrag(t, turns=len(t.turns)) for t in tasks if t.answerability in labels]


def claims(text: str) -> list[str]:
    """The sentences of an answer the judge checks (citations removed, short ones skipped)."""
    return [
        s for s in sentences(CITATION.sub("", text)) if len(content_words(s)) >= MIN_CONTENT_WORDS
    ]


async def groundedness(
    services: Services, text: str, contexts: Sequence[Mapping[str, Any]]
) -> float | None:
    """Share of the answer's checked sentences that the contexts support (None: nothing to
    check), using the judge's sentence-level check."""
    checked = claims(text)
    if not checked:
        return None
    chunks = [
        Retrieved(
            chunk_id="",
            article_id="",
            source_id=str(c.get("source_id", "")),
            title=str(c.get("title", "")),
            section="",
            text=str(c.get("text", "")),
            score=0.0,
        )
        for c in contexts
    ]
    unsupported = await unsupported_sentences(services, text, chunks)
    return 1.0 - len(unsupported) / len(checked)


async def run_answers(
    answer: AnswerFn,
    cases: Sequence[AnswerCase],
    services: Services,
    *,
    scorers: OfflineScorers | None = None,
    llm: LlmScorers | None = None,
) -> SuiteResult:
    """Run the answers suite.

    Args:
        answer: answers the cases (``graph_answerer`` for the real graph).
        cases: what to ask, with reference answers and gold ids.
        services: services whose sentence embeddings the groundedness check uses.
        scorers: offline ragas scorers to reuse (built when None).
        llm: the judge-model ragas scorers; None runs the offline metrics only.

    Raises:
        ValueError: no cases.
    """
    if not cases:
        raise ValueError("no cases to answer")
    scorers = scorers or OfflineScorers()
    results = await answer(cases)
    examples: list[Example] = []
    errors: list[str] = []
    for case, res in zip(cases, results, strict=True):
        kind = outcome(res)
        values: dict[str, float | None] = dict(await scorers.answer(res.answer, case.reference))
        values["groundedness"] = (
            await groundedness(services, res.answer, res.contexts) if kind == "answered" else None
        )
        gold = set(case.gold_ids)
        values["gold_citation"] = (
            float(bool(gold & set(res.citations))) if gold and kind == "answered" else None
        )
        ids = await scorers.retrieval(
            [c["source_id"] for c in res.contexts], list(case.gold_ids), [], []
        )
        values["id_context_recall"] = ids["id_context_recall"]
        if llm is not None and kind == "answered":
            judged, failed = await llm.score(
                case.question, res.answer, [c["text"] for c in res.contexts], case.reference
            )
            values.update(judged)
            errors.extend(f"{case.id}: {e}" for e in failed)
        ok = (
            kind == "answered"
            and values["groundedness"] in (None, 1.0)
            and values["gold_citation"] in (None, 1.0)
        )
        examples.append(
            Example(
                id=case.id,
                input=case.item if not isinstance(case.item, str) else case.question,
                expected=case.reference,
                output=res.answer,
                score=values["rouge_l"],
                ok=ok,
                metrics=values,
                contexts=[{**c, "gold": c["source_id"] in gold} for c in res.contexts],
                meta={
                    "outcome": kind,
                    "handoff_reason": res.handoff_reason,
                    "held_for_review": res.held_for_review,
                    "citations": res.citations,
                    "gold_ids": list(case.gold_ids),
                    "intent": res.intent,
                    "confidence": res.confidence,
                    "latency_s": round(res.latency_s, 3),
                    **({"label": case.label} if case.label else {}),
                },
            )
        )
    n = len(results)
    kinds = Counter(outcome(r) for r in results)
    metric_names = [
        "string_similarity",
        "rouge_l",
        "groundedness",
        "gold_citation",
        "id_context_recall",
    ]
    if llm is not None:
        from evals.ragas_metrics import LLM_METRICS

        metric_names += list(LLM_METRICS)
    metrics: dict[str, float | None] = {
        "answered_rate": kinds["answered"] / n,
        "declined_rate": kinds["declined"] / n,
        "handoff_rate": kinds["handoff"] / n,
        "held_for_review_rate": sum(r.held_for_review for r in results) / n,
    }
    for name in metric_names:
        key = "gold_citation_rate" if name == "gold_citation" else name
        metrics[key] = mean(e.metrics.get(name) for e in examples)
    metrics["latency_p50_s"] = percentile((r.latency_s for r in results), 50)
    metrics["latency_p95_s"] = percentile((r.latency_s for r in results), 95)
    reasons = Counter(r.handoff_reason or "unknown" for r in results if r.handoff)
    notes = [
        f"{n} cases; {kinds['answered']} answered, {kinds['declined']} declined, "
        f"{kinds['handoff']} handed off"
    ]
    if errors:
        notes.append(f"{len(errors)} judge-model metric values failed; first: {errors[0]}")
    return SuiteResult(
        metrics=metrics,
        examples=examples,
        tables={
            "outcomes": {
                "title": "Outcomes",
                "columns": ["outcome", "cases", "share"],
                "rows": [[k, v, v / n] for k, v in kinds.most_common()],
            },
            "handoff_reasons": {
                "title": "Hand-off reasons",
                "columns": ["reason", "cases"],
                "rows": [[k, v] for k, v in reasons.most_common()],
            },
        },
        directions={
            "declined_rate": "lower",
            "handoff_rate": "lower",
            "held_for_review_rate": "lower",
        },
        notes=notes,
    )


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
    clock = RunClock("answers")
    cases, dataset, default_tenant = await graph_cases(
        services,
        kb=kb,
        questions=questions,
        mtrag_path=mtrag_path,
        limit=limit,
        from_questions=cases_from_questions,
        from_mtrag=cases_from_mtrag,
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
