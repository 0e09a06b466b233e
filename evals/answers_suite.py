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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evals.core import Example, SuiteResult, mean, percentile
from evals.loaders import Question
from evals.ragas_metrics import OfflineScorers
from graph.nodes.draft import CITATION
from graph.nodes.judge import MIN_CONTENT_WORDS, unsupported_sentences
from kb_pipeline.index import Retrieved
from nlp.text import content_words, sentences

if TYPE_CHECKING:
    from evals.answering import AnswerResult, Item
    from evals.mtrag import MtragTask
    from evals.ragas_metrics import LlmScorers
    from graph.services import Services


@dataclass(frozen=True)
class AnswerCase:
    """One question to answer, with what a good answer looks like."""

    id: str
    item: Item
    """The question, or ``{"turns": [...]}`` for a conversation (see ``evals.answering``)."""
    question: str
    reference: str = ""
    gold_ids: tuple[str, ...] = ()
    tenant: str | None = None
    """The tenant to ask (None: the suite's default tenant)."""
    label: str = ""
    """The dataset's own answerability label, when it has one."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


AnswerFn = Callable[[Sequence[AnswerCase]], Awaitable[list["AnswerResult"]]]
"""Answers cases in order (``graph_answerer`` runs the real graph)."""


def case_from_question(q: Question, **meta: Any) -> AnswerCase:
    """The case of one question-set row (its ``answerable`` flag is the label)."""
    return AnswerCase(
        id=q.id,
        item=q.question,
        question=q.question,
        reference=q.answer,
        gold_ids=q.gold_ids,
        label="answerable" if q.answerable else "unanswerable",
        meta=meta,
    )


def case_from_mtrag(task: MtragTask, **meta: Any) -> AnswerCase:
    """The case of one MTRAG task: asked of its collection's tenant, its gold ids the documents
    of its contexts, its label the task's answerability; ``meta`` adds to the collection."""
    return AnswerCase(
        id=task.task_id,
        item=task.item,
        question=task.question,
        reference=task.reference,
        gold_ids=tuple(c["document_id"] for c in task.contexts),
        tenant=task.tenant,
        label=task.answerability,
        meta={"collection": task.collection, **meta},
    )


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


def graph_answerer(
    graph: Any, services: Services, default_tenant: str, *, concurrency: int = 1
) -> AnswerFn:
    """An :data:`AnswerFn` over the real graph, grouping cases by tenant."""
    from evals.answering import answer_many

    async def answer(cases: Sequence[AnswerCase]) -> list[AnswerResult]:
        results: dict[int, AnswerResult] = {}
        groups: dict[str, list[int]] = {}
        for i, case in enumerate(cases):
            groups.setdefault(case.tenant or default_tenant, []).append(i)
        for tenant, idx in groups.items():
            got = await answer_many(
                graph, services, tenant, [cases[i].item for i in idx], concurrency=concurrency
            )
            results.update(zip(idx, got, strict=True))
        return [results[i] for i in range(len(cases))]

    return answer


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


def outcome(result: AnswerResult) -> str:
    """``handoff``, ``declined`` or ``answered``."""
    if result.handoff:
        return "handoff"
    return "declined" if result.declined else "answered"


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
