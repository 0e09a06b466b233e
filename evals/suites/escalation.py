"""The ``escalation`` suite: does the assistant answer what it can and step back from the rest?

Cases are conversations labelled answerable or unanswerable from the tenant's knowledge base
(the demo set's ``answerable`` flag; MTRAG's ``ANSWERABLE`` / ``PARTIAL`` versus
``UNANSWERABLE``). Each runs through the real graph; the assistant "does not answer" when it
declines (the drafter finds no support) or hands the conversation to a person. A draft held for
a human's approval counts as answered (``evals.answering``).

The positive class is "should not answer":

* ``should_not_answer_precision``: of the cases it did not answer, the share it should not have.
* ``should_not_answer_recall``: of the unanswerable cases, the share it declined or handed off
  (``= decline_rate_unanswerable``), and their ``should_not_answer_f1``.
* ``answer_rate_answerable``: of the answerable cases, the share it answered.
* ``accuracy`` over both, and the outcome (answered / declined / handed off) of each label.

MTRAG's ``UNDERSPECIFIED`` conversations (the right move is a clarifying question, which the
desk does not ask) are left out by default; their outcome can still be seen by passing them
with an explicit label mapping.

:func:`escalation_run` is the suite end to end, on the demo questions, a KB + questions passed
by path, or MTRAG tasks (cases and tenants: :mod:`evals.suites.graph_cases`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from evals.core import Example, RunClock, RunRecord, SuiteResult, percentile
from evals.loaders import Question
from evals.mtrag import MtragTask
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
from graph.services import Services

MTRAG_SHOULD_ANSWER: Mapping[str, bool] = {
    "ANSWERABLE": True,
    "PARTIAL": True,
    "UNANSWERABLE": False,
}
"""MTRAG labels used by default, and whether the desk should answer them."""


def cases_from_questions(questions: Sequence[Question]) -> list[AnswerCase]:
    """Escalation cases from a question set (its ``answerable`` flag is the label)."""
    return [case_from_question(q, should_answer=q.answerable) for q in questions]


def cases_from_mtrag(
    tasks: Sequence[MtragTask], should_answer: Mapping[str, bool] = MTRAG_SHOULD_ANSWER
) -> list[AnswerCase]:
    """Escalation cases from MTRAG tasks whose label is in ``should_answer``."""
    return [
        case_from_mtrag(t, should_answer=should_answer[t.answerability])
        for t in tasks
        if t.answerability in should_answer
    ]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


async def run_escalation(answer: AnswerFn, cases: Sequence[AnswerCase]) -> SuiteResult:
    """Run the escalation suite.

    Args:
        answer: answers the cases (``graph_cases.graph_answerer`` for the real graph).
        cases: cases whose ``meta["should_answer"]`` says whether the desk should answer.

    Raises:
        ValueError: no cases, or a case without ``should_answer``.
    """
    if not cases:
        raise ValueError("no cases")
    for c in cases:
        if not isinstance(c.meta.get("should_answer"), bool):
            raise ValueError(f"case {c.id}: meta['should_answer'] must be true or false")
    results = await answer(cases)
    examples: list[Example] = []
    tp = fp = fn = tn = 0
    by_label: dict[str, Counter[str]] = {}
    for case, res in zip(cases, results, strict=True):
        should_answer = bool(case.meta["should_answer"])
        kind = outcome(res)
        answered = kind == "answered"
        if not should_answer and not answered:
            tp += 1
        elif should_answer and not answered:
            fp += 1
        elif not should_answer and answered:
            fn += 1
        else:
            tn += 1
        by_label.setdefault(case.label or str(should_answer), Counter())[kind] += 1
        correct = answered == should_answer
        examples.append(
            Example(
                id=case.id,
                input=case.item if not isinstance(case.item, str) else case.question,
                expected="answer" if should_answer else "decline or hand off",
                output=f"{kind}: {res.answer}",
                score=1.0 if correct else 0.0,
                ok=correct,
                metrics={"confidence": res.confidence},
                contexts=[{**c, "gold": c["source_id"] in case.gold_ids} for c in res.contexts],
                meta={
                    "label": case.label,
                    "outcome": kind,
                    "handoff_reason": res.handoff_reason,
                    "held_for_review": res.held_for_review,
                    "intent": res.intent,
                    "latency_s": round(res.latency_s, 3),
                    **{k: v for k, v in case.meta.items() if k != "should_answer"},
                },
            )
        )
    n = len(results)
    answerable = tn + fp
    unanswerable = tp + fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    metrics: dict[str, float | None] = {
        "answer_rate_answerable": _ratio(tn, answerable),
        "decline_rate_unanswerable": recall,
        "should_not_answer_precision": precision,
        "should_not_answer_recall": recall,
        "should_not_answer_f1": f1,
        "accuracy": (tp + tn) / n,
        "latency_p50_s": percentile((r.latency_s for r in results), 50),
    }
    kinds = ("answered", "declined", "handoff")
    notes = [f"{answerable} answerable and {unanswerable} unanswerable cases"]
    if not answerable or not unanswerable:
        notes.append("only one class present: precision / recall are partly undefined")
    return SuiteResult(
        metrics=metrics,
        examples=examples,
        tables={
            "confusion": {
                "title": "Should answer (rows) vs. did answer (columns)",
                "labels": ["answer", "not answer"],
                "matrix": [[tn, fp], [fn, tp]],
            },
            "by_label": {
                "title": "Outcome by dataset label",
                "columns": ["label", "cases", *kinds],
                "rows": [
                    [label, sum(c.values()), *[c[k] for k in kinds]]
                    for label, c in sorted(by_label.items())
                ],
            },
        },
        directions={"latency_p50_s": "lower"},
        notes=notes,
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
    clock = RunClock("escalation")
    cases, dataset, default_tenant = await graph_cases(
        services,
        kb=kb,
        questions=questions,
        mtrag_path=mtrag_path,
        limit=limit,
        from_questions=cases_from_questions,
        from_mtrag=cases_from_mtrag,
    )
    graph = await eval_graph(services)
    answer = graph_answerer(graph, services, default_tenant or "", concurrency=concurrency)
    result = await run_escalation(answer, cases)
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
