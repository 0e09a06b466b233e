"""The knowledge base learns from resolved conversations (issue 17 item 5).

* :func:`draft_from_conversation` assembles an article draft from what was asked and what the
  person answered (problem, cause, steps, the answer), offline and plainly: the customer's own
  question as the title, the agent's public replies as the answer, a resolution's summary,
  root cause and steps when a ticket's resolution gives them. A draft whose question is close
  to an existing article (cosine of the question to the article's best chunk, dense side, at
  least :data:`UPDATE_SIMILARITY`) is proposed as an *update* of that article instead: a
  section added to it, not a second article on the same thing.
* :func:`publish` indexes the approved draft at once (the knowledge base's own ``ingest``), so
  the next customer with that question is answered from it, then records it published. A
  crash between the two is safe: publishing again writes the same article (same source id,
  unchanged content writes nothing) and then records it.

* :func:`draft_from_cluster` is the "draft an article" action of a knowledge gap (a top-questions
  cluster): its questions, and what people answered them.

* :func:`draft_resolved` makes the draft of every ticket resolved lately (the queue sweeps it
  every few minutes, ``desk/queue.py``), with the resolution's summary, cause and steps.

On the LLM tier the model rewrites the assembled draft (:mod:`desk.llm_writing`; the offline
text stands when it fails).

* Each learned draft carries a :func:`confidence`: how much of what a reviewer checks it
  already rests on. A tenant that sets ``learning.auto_publish_internal_at`` in its profile
  (micro teams, as the blueprint allows) has every *new* draft at or above it published at once
  as an **internal** article (:func:`_auto_publish`): agents find it in their search the next
  minute, customers are never sent it (only external articles reach them), and it goes through
  the same states, reviewed by "the desk". An update of an existing article always waits for
  a person: it changes text customers may already read.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from desk import llm_writing
from graph.services import Services
from helpdesk import kb_drafts
from helpdesk.errors import InvalidInput, NotFound
from helpdesk.profile import BusinessProfile
from helpdesk.tenancy import tenant_scope
from kb_pipeline.loaders import Article

log = logging.getLogger(__name__)

UPDATE_SIMILARITY = 0.8
"""A draft this close to an existing article (cosine, MiniLM) is proposed as its update. Set
a priori: MiniLM paraphrases of one question score 0.8-0.95 (the top-questions clusters'
members, docs/metrics.md), different questions on one subject well under it."""


CONFIDENCE_WEIGHTS = {"person_answered": 0.5, "resolution_summary": 0.25, "steps_or_cause": 0.25}
"""What :func:`confidence` adds up. Set a priori, not fitted: there are no reviewed drafts to
fit on yet. A person's answer is the ground a learned article stands on (without it there is
nothing to publish); a resolution a person wrote down says the answer solved it; steps or a
cause make it an article rather than one reply."""


def confidence(answers: list[str], resolution: dict[str, Any]) -> float:
    """How much a learned draft rests on, 0-1 (:data:`CONFIDENCE_WEIGHTS`)."""
    w = CONFIDENCE_WEIGHTS
    score = 0.0
    if any(a.strip() for a in answers) or str(resolution.get("summary") or "").strip():
        score += w["person_answered"]
    else:
        return 0.0
    if str(resolution.get("summary") or "").strip():
        score += w["resolution_summary"]
    steps = [s for s in resolution.get("steps") or [] if str(s).strip()]
    if steps or str(resolution.get("root_cause") or "").strip():
        score += w["steps_or_cause"]
    return round(score, 4)


async def draft_from_conversation(
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    created_by: str,
    resolution: dict[str, Any] | None = None,
    ticket_id: uuid.UUID | None = None,
    business: BusinessProfile | None = None,
) -> dict[str, Any]:
    """A draft from the conversation (one per conversation: asking twice returns the first).
    On the LLM tier (with ``business`` given) the model rewrites the assembled draft."""
    async with tenant_scope(services.pool, tenant_id) as conn:
        cur = await conn.execute(
            "SELECT sender, text FROM messages WHERE tenant_id = %s AND conversation_id = %s"
            " AND visibility = 'public' ORDER BY created_at",
            (tenant_id, conversation_id),
        )
        messages = await cur.fetchall()
    if not messages:
        raise NotFound(f"no conversation {conversation_id}")
    questions = [m["text"] for m in messages if m["sender"] == "customer"]
    answers = [m["text"] for m in messages if m["sender"] == "agent"]
    if not questions or (not answers and not resolution):
        raise InvalidInput("the conversation has no question answered by a person to learn from")
    question = " ".join(questions[0].split())
    body = _body(question, questions[1:], answers, resolution or {})
    title, body, _ = await llm_writing.article(services, business, _title(question), body)
    return await _store(
        services,
        tenant_id,
        question,
        title=title,
        body=body,
        created_by=created_by,
        source_conversations=[conversation_id],
        source_tickets=[ticket_id] if ticket_id else [],
        confidence=confidence(answers, resolution or {}),
        auto_publish_at=business.learning.auto_publish_internal_at if business else None,
    )


def _title(question: str) -> str:
    return question if len(question) <= 120 else question[:117] + "..."


async def _store(
    services: Services,
    tenant_id: uuid.UUID,
    question: str,
    *,
    title: str,
    body: str,
    created_by: str,
    source_conversations: list[uuid.UUID],
    source_tickets: list[uuid.UUID] | None = None,
    confidence: float,
    auto_publish_at: float | None = None,
) -> dict[str, Any]:
    """Store the draft: a new article, or an update of the one ``question`` is within
    :data:`UPDATE_SIMILARITY` of; then publish it as internal when the tenant allows it."""
    kind, target, similarity = "new", None, None
    found = await services.kb.search(tenant_id, question, k=1, mode="vector", audience="agent")
    if found and found[0]["score"] >= UPDATE_SIMILARITY:
        kind, target, similarity = "update", found[0]["source_id"], float(found[0]["score"])
    auto = kind == "new" and auto_publish_at is not None and confidence >= auto_publish_at
    async with tenant_scope(services.pool, tenant_id) as conn:
        draft = await kb_drafts.create(
            conn,
            tenant_id,
            title=title,
            body=body,
            created_by=created_by,
            kind=kind,  # type: ignore[arg-type]
            target_source_id=target,
            similarity=similarity,
            source_conversations=source_conversations,
            source_tickets=source_tickets or [],
            confidence=confidence,
            visibility="internal" if auto else "external",
        )
    if auto and draft["state"] != "published" and draft["visibility"] == "internal":
        draft = await _auto_publish(services, tenant_id, draft, auto_publish_at)
    return draft


async def _auto_publish(
    services: Services, tenant_id: uuid.UUID, draft: dict[str, Any], threshold: float | None
) -> dict[str, Any]:
    """Walk a draft through review to published as "the desk", from wherever it stands (a
    crash half-way leaves it in review or approved: the next call goes on from there)."""
    by = f"the desk (auto-publish: confidence {draft['confidence']} >= {threshold})"
    for to in ("in_review", "approved"):
        if to in kb_drafts.MOVES.get(draft["state"], {}):
            async with tenant_scope(services.pool, tenant_id) as conn:
                draft = await kb_drafts.move(conn, tenant_id, draft["id"], to, by=by)
    return await publish(services, tenant_id, draft["id"], by=by)


async def draft_from_cluster(
    services: Services,
    tenant_id: uuid.UUID,
    cluster_id: uuid.UUID,
    *,
    created_by: str,
    business: BusinessProfile | None = None,
) -> dict[str, Any]:
    """ "Draft an article" for a top-questions cluster (a knowledge gap, usually): the
    cluster's name as the title, its example questions as the problem, and what people
    answered in its conversations (each conversation's first agent reply, up to three
    distinct ones) as the answer. With no person's answer yet the draft says so and waits for
    one to be written: it is a draft, and only a manager publishes. One draft per cluster's
    central conversation: asking twice, or after a refresh, returns the first."""
    async with tenant_scope(services.pool, tenant_id) as conn:
        cur = await conn.execute(
            "SELECT label, examples, conversation_ids FROM question_clusters"
            " WHERE tenant_id = %s AND id = %s",
            (tenant_id, cluster_id),
        )
        cluster = await cur.fetchone()
        if cluster is None:
            raise NotFound(f"no question cluster {cluster_id}")
        members = list(cluster["conversation_ids"] or [])
        cur = await conn.execute(
            "SELECT DISTINCT ON (conversation_id) conversation_id, text FROM messages"
            " WHERE tenant_id = %s AND conversation_id = ANY(%s) AND sender = 'agent'"
            " AND visibility = 'public' ORDER BY conversation_id, created_at",
            (tenant_id, members),
        )
        first_replies = {r["conversation_id"]: r["text"] for r in await cur.fetchall()}
    answers: list[str] = []
    for conv in members:  # the most central conversations first
        text = first_replies.get(conv)
        if text and text not in answers:
            answers.append(text)
    label = " ".join(str(cluster["label"]).split())
    questions = [q for q in cluster["examples"] if q != label]
    parts = ["## Problem", label, *(f"- {q}" for q in questions)]
    parts += ["## Answer", "\n\n".join(answers[:3]) or NO_ANSWER_YET]
    title, body = _title(label), "\n\n".join(parts)
    if answers:  # with nothing answered yet there is nothing for the model to write from
        title, body, _ = await llm_writing.article(services, business, title, body)
    # never published by itself: a cluster's answers are several people's, a manager's to merge
    return await _store(
        services, tenant_id, label, title=title, body=body, created_by=created_by,
        source_conversations=members, confidence=confidence(answers, {}),
    )  # fmt: skip


LEARN_FROM = ("answered_question", "workaround", "permanent_fix")
"""Resolutions worth an article (a duplicate or an invalid ticket teaches nothing)."""
LEARN_WINDOW = timedelta(days=2)
"""How far back :func:`draft_resolved` looks: a sweep that was down a while still catches up,
and a resolution that can never make a draft is not looked at for ever."""

_RESOLVED = """
SELECT DISTINCT ON (t.id) t.id AS ticket_id, t.number, t.tenant_id, t.conversation_id,
       n.slug, r.summary, r.steps, r.root_cause
FROM tickets t
JOIN tenants n ON n.id = t.tenant_id
JOIN resolutions r ON r.tenant_id = t.tenant_id AND r.ticket_id = t.id
WHERE t.status IN ('resolved', 'closed') AND t.conversation_id IS NOT NULL
  AND t.resolved_at >= %(since)s AND r.type = ANY(%(types)s)
  AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = t.conversation_id
              AND m.sender = 'agent' AND m.visibility = 'public')
  AND NOT EXISTS (SELECT 1 FROM kb_drafts d WHERE d.tenant_id = t.tenant_id
                  AND d.source_conversations[1] = t.conversation_id)
ORDER BY t.id, r.created_at DESC
LIMIT %(limit)s
"""


async def draft_resolved(
    services: Services, *, now: datetime | None = None, limit: int = 200
) -> int:
    """Make the article draft of every ticket resolved lately (:data:`LEARN_WINDOW`) whose
    conversation a person answered and which has none yet, from the conversation and the
    ticket's resolution (summary, cause, steps); return how many were made.

    For every tenant at once (the queue's sweep runs it as the owner of the tables). One draft
    per conversation (the unique index), so a sweep run twice, or two at once, makes each
    once; a ticket whose conversation cannot make a draft is skipped, not retried for ever.
    """
    since = (now or datetime.now(UTC)) - LEARN_WINDOW
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            _RESOLVED, {"since": since, "types": list(LEARN_FROM), "limit": limit}
        )
        rows = await cur.fetchall()
    made = 0
    for r in rows:
        tenant = await services.tenant(r["slug"])
        steps = [line.strip(" -*\t") for line in str(r["steps"] or "").splitlines()]
        resolution = {
            "summary": r["summary"],
            "root_cause": r["root_cause"],
            "steps": [s for s in steps if s],
        }
        try:
            await draft_from_conversation(
                services,
                r["tenant_id"],
                r["conversation_id"],
                created_by=f"the desk (T-{r['number']} resolved)",
                resolution=resolution,
                ticket_id=r["ticket_id"],
                business=tenant.business,
            )
        except (InvalidInput, NotFound) as exc:
            log.info("no article draft from ticket %s: %s", r["ticket_id"], exc)
            continue
        made += 1
    return made


NO_ANSWER_YET = "(Nobody has answered this question yet: write the answer here.)"


def _body(question: str, more: list[str], answers: list[str], resolution: dict[str, Any]) -> str:
    parts = ["## Problem", question, *more[:2]]
    if resolution.get("root_cause"):
        parts += ["## Cause", str(resolution["root_cause"])]
    steps = [str(s) for s in resolution.get("steps") or [] if str(s).strip()]
    if steps:
        parts += ["## Steps", "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start=1))]
    answer = resolution.get("summary") or "\n\n".join(answers)
    parts += ["## Answer", str(answer)]
    return "\n\n".join(parts)


async def publish(
    services: Services, tenant_id: uuid.UUID, draft_id: uuid.UUID, *, by: str
) -> dict[str, Any]:
    """Index an approved draft and record it published (409 unless it is approved)."""
    async with tenant_scope(services.pool, tenant_id) as conn:
        draft = await kb_drafts.get(conn, tenant_id, draft_id)
    kb_drafts.check_move(draft["state"], "published")
    if draft["kind"] == "update":
        async with tenant_scope(services.pool, tenant_id) as conn:
            cur = await conn.execute(
                "SELECT source_id, title, body, visibility, tags, url FROM kb_articles"
                " WHERE tenant_id = %s AND source_id = %s",
                (tenant_id, draft["target_source_id"]),
            )
            target = await cur.fetchone()
        if target is None:
            raise NotFound(f"the article {draft['target_source_id']} this draft updates is gone")
        section = f"## {draft['title']}\n\n{draft['body']}"
        body = target["body"]
        if section not in body:  # published before a crash: not added twice
            body = f"{body.rstrip()}\n\n{section}"
        article = Article(
            source_id=target["source_id"],
            title=target["title"],
            body=body,
            visibility=target["visibility"],
            tags=tuple(target["tags"] or ()),
            url=target["url"],
        )
    else:
        article = Article(
            source_id=f"learned-{str(draft_id)[:8]}",
            title=draft["title"],
            body=draft["body"],
            visibility=draft["visibility"],
            tags=("learned",),
        )
    await services.kb.ingest(tenant_id, [article])
    async with tenant_scope(services.pool, tenant_id) as conn:
        return await kb_drafts.move(
            conn, tenant_id, draft_id, "published", by=by, published_source_id=article.source_id
        )
