"""What the whole-graph suites (answers, escalation) ask, and how the real graph answers.

An :class:`AnswerCase` is one question or conversation with what a good answer looks like; the
suites make them from a question set (the demo's, or a KB's passed by path) or from MTRAG tasks
(:func:`graph_cases` sets up the tenants either needs). :func:`graph_answerer` runs the cases
through the real graph (``evals.answering``), each as a fresh conversation of its tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals import mtrag
from evals.loaders import Question
from evals.mtrag import MtragTask
from evals.suites.common import limit_rows
from evals.suites.kb_sets import prepare_kb_set
from evals.workspace import ensure_kb_tenant

if TYPE_CHECKING:
    from evals.answering import AnswerResult, Item
    from graph.services import Services

log = logging.getLogger(__name__)


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


def outcome(result: AnswerResult) -> str:
    """``handoff``, ``declined`` or ``answered``."""
    if result.handoff:
        return "handoff"
    return "declined" if result.declined else "answered"


async def mtrag_cases(
    services: Services,
    path: Path,
    build: Callable[[Sequence[MtragTask]], list[AnswerCase]],
    limit: int | None,
) -> tuple[list[AnswerCase], dict[str, Any]]:
    """The cases ``build`` makes of the MTRAG tasks in ``path`` (the first ``limit``), and the
    dataset description; the tenant of each collection a case asks is set up."""
    tasks = mtrag.load_tasks(path)
    cases = limit_rows(build(tasks), limit)
    used = {c.tenant for c in cases}
    for collection, articles in mtrag.collection_articles(tasks).items():
        slug = mtrag.tenant_slug(collection)
        if slug in used:
            _, stats = await ensure_kb_tenant(services, slug, f"MTRAG {collection}", articles)
            log.info("tenant %s: %s", slug, stats)
    return cases, {"name": "mtrag", "path": str(path), "collections": sorted(used)}


async def graph_cases(
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

    ``from_questions`` / ``from_mtrag`` are the suite's own choice of cases from each.

    Raises:
        ValueError: ``--mtrag`` given together with ``--kb`` / ``--questions``.
    """
    if mtrag_path is not None:
        if kb or questions:
            raise ValueError("--mtrag replaces --kb / --questions")
        cases, dataset = await mtrag_cases(services, mtrag_path, from_mtrag, limit)
        return cases, dataset, cases[0].tenant if cases else ""
    kbset = await prepare_kb_set(services, kb=kb, questions=questions, gold_passages=False)
    return limit_rows(from_questions(kbset.questions), limit), kbset.dataset, kbset.tenant.slug
