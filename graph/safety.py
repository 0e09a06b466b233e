"""Customers in danger: answer them without paraphrase.

A hazard :func:`nlp.hazards.detect_hazard` recognised must never be answered with an extract or a
generated summary: an extract of a safety article can point at a title instead of giving the
steps ("See "Smell gas?" ... ", issue 19), and a model can drop a step. So the reply is either
the tenant's own safety article quoted word for word (``TenantPolicy.safety_mode = "article"``)
or a fixed message with the emergency line (``"handoff"``, and any hazard without a configured
article). Either way the conversation then goes to a person as urgent; nothing is ever held for
approval first.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import cast

from graph.services import Services
from graph.state import Citation, Reply
from helpdesk.db import DictPool
from helpdesk.policy import Hazard, TenantPolicy
from helpdesk.tenants import Tenant
from kb_pipeline.articles import published_article
from nlp.verdicts import SafetyAlert

log = logging.getLogger(__name__)


def emergency_line(policy: TenantPolicy, hazard: Hazard) -> str:
    """The number the customer is told to call for ``hazard``."""
    return policy.safety_lines.get(hazard) or policy.emergency_line


def _plain(markdown: str) -> str:
    # Emphasis markers only: every word of the article stays, in order (the widget shows text).
    return re.sub(r"\*\*|__|`", "", markdown).strip()


async def article_steps(
    pool: DictPool, tenant_id: uuid.UUID, refs: list[str]
) -> tuple[str, list[Citation]] | None:
    """The configured safety article sections, word for word, and their citations.

    ``refs`` are ``"source-id"`` or ``"source-id#Heading"``. None when any of them is missing
    (deleted, unpublished, internal, or a heading renamed): a half-quoted safety article is
    worse than the plain emergency message, so the caller falls back to that.
    """
    parts: list[str] = []
    citations: dict[str, Citation] = {}
    for ref in refs:
        source_id, _, heading = ref.partition("#")
        article = await published_article(pool, tenant_id, source_id.strip())
        if article is None:
            log.warning("safety article %r is not a published external article", source_id)
            return None
        text = article.section(heading) if heading else article.body
        if not text:
            log.warning("safety article %r has no section %r", source_id, heading)
            return None
        parts.append(_plain(text))
        citations.setdefault(
            article.source_id,
            Citation(
                source_id=article.source_id,
                title=article.title,
                article_id=str(article.id),
                url=article.url,
            ),
        )
    if not parts:
        return None
    return "\n\n".join(parts), list(citations.values())


async def safety_reply(svc: Services, tenant: Tenant, alert: SafetyAlert) -> Reply:
    """What the customer is sent at once: the article's steps, or the emergency message.

    Both name the emergency line and say a person has been asked to follow up; the wording
    around the steps comes from ``prompts/replies.json`` (``safety_article``,
    ``safety_handoff`` and one ``safety_<hazard>`` first action each), never from a model.
    """
    policy = tenant.rules
    hazard = cast(Hazard, alert["hazard"])
    line = emergency_line(policy, hazard)
    refs = policy.safety_articles.get(hazard) if policy.safety_mode == "article" else None
    found = await article_steps(svc.pool, tenant.id, refs) if refs else None
    if found is not None:
        steps, citations = found
        text = svc.prompts.reply(
            "safety_article", tenant.business, title=citations[0]["title"], steps=steps, line=line
        )
    else:
        advice = svc.prompts.reply(f"safety_{hazard}", tenant.business)
        text = svc.prompts.reply("safety_handoff", tenant.business, advice=advice, line=line)
        citations = []
    return Reply(text=text, sender="ai", citations=citations, confidence=None, declined=False)
