"""The question set and tenant of a knowledge-base suite (retrieval, answers, escalation).

By default the demo tenant and ``evals/datasets/demo_questions.jsonl``; with ``--kb PATH
--questions PATH`` another knowledge base (Galaxy S10:
``kb/galaxy_s10/{sections,questions}.jsonl``), ingested as the ``eval-<name>`` tenant
(:mod:`evals.workspace`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.loaders import DEMO_QUESTIONS, Question, check_gold_ids, load_kb, load_questions
from evals.workspace import ensure_demo_tenant, ensure_kb_tenant, kb_tenant_slug
from graph.services import Services
from helpdesk.tenants import Tenant
from kb_pipeline.loaders import Article

log = logging.getLogger(__name__)


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
