"""Top questions and knowledge gaps (issue 17, item 4): what customers asked most in a period,
grouped by meaning, and where the assistant failed them.

* **The question** of a conversation is its first customer message of three words or more
  ("hi" is not a question); one per conversation, so a cluster's size is a count of
  conversations and its rates are the metrics' own (:mod:`helpdesk.metrics`).
* **Clusters** come from :func:`nlp.clustering.cluster_questions`, named by their most central
  question. Each question is embedded once and kept (``question_vectors``): a nightly refresh
  of the last 30 days embeds only the questions it has not met.
* **A knowledge gap** is a cluster where the AI failed at least half the time: the
  conversations that needed a person (a hand-off, an agent reply, a held draft) or got a
  decline, over the cluster's conversations. Those are the questions to write an article for;
  each comes with up to five example questions.

:func:`refresh` computes and stores a period (the scheduled task runs it nightly for the last
30 days; ``POST /v1/metrics/top-questions/refresh`` runs it now); :func:`stored` reads it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from desk import llm_writing
from graph.services import Services
from helpdesk import metrics
from helpdesk.profile import BusinessProfile
from helpdesk.tenancy import Db, connect, tenant_scope
from nlp.clustering import cluster_questions

GAP_SHARE = 0.5
"""A cluster is a knowledge gap when at least this share of its conversations failed."""
EXAMPLES = 5
MIN_WORDS = 3
NAMED = 20
"""On the LLM tier, how many of the largest clusters the model names (a call each)."""


async def questions(
    db: Db, tenant_id: uuid.UUID, p: metrics.Period, *, as_of: datetime
) -> list[dict[str, Any]]:
    """The period's conversations that asked something: flags plus ``question`` (the text)."""
    flags = await metrics.conversation_flags(db, tenant_id, p, as_of=as_of)
    by_id = {f["id"]: f for f in flags if f["engaged"]}
    if not by_id:
        return []
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT conversation_id, text FROM messages"
            " WHERE conversation_id = ANY(%s) AND sender = 'customer'"
            " ORDER BY conversation_id, created_at",
            (list(by_id),),
        )
        rows = await cur.fetchall()
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for r in rows:
        conv = r["conversation_id"]
        if conv not in out and len(r["text"].split()) >= MIN_WORDS:
            out[conv] = {**by_id[conv], "question": " ".join(r["text"].split())}
    return [out[c] for c in by_id if c in out]


def summarise(asked: list[dict[str, Any]], vectors: list[list[float]]) -> list[dict[str, Any]]:
    """The clusters of ``asked`` (in the order of ``vectors``), with their figures."""
    out = []
    for rank, cluster in enumerate(cluster_questions(vectors), start=1):
        rows = [asked[i] for i in cluster.members]
        decided = [r for r in rows if r["ai_answers"] > 0 and not r["ai_pending"]]
        failed = [r for r in rows if r["person_involved"] or r["ai_declines"] > 0]
        rated = [r["csat"] for r in rows if r["csat"] is not None]
        examples: list[str] = []
        for r in rows:  # the most central first, each distinct text once
            if r["question"] not in examples:
                examples.append(r["question"])
            if len(examples) == EXAMPLES:
                break
        out.append(
            {
                "rank": rank,
                "label": asked[cluster.central]["question"],
                "conversations": len(rows),
                "ai_resolved": sum(1 for r in decided if r["ai_resolved"]),
                "ai_decided": len(decided),
                "needed_person": sum(1 for r in rows if r["person_involved"]),
                "csat_average": sum(rated) / len(rated) if rated else None,
                "knowledge_gap": len(failed) >= GAP_SHARE * len(rows),
                "examples": examples,
                "conversation_ids": [r["id"] for r in rows],
            }
        )
    return out


async def refresh(
    services: Services,
    tenant_id: uuid.UUID,
    p: metrics.Period,
    *,
    as_of: datetime,
    business: BusinessProfile | None = None,
) -> list[dict[str, Any]]:
    """Compute the period's clusters and store them in place of the period's earlier ones.
    On the LLM tier (with ``business`` given) the :data:`NAMED` largest are named by the
    model; the rest, and all on the offline tier, by their most central question."""
    model = services.models.embedding_key
    async with tenant_scope(services.pool, tenant_id) as conn:
        asked = await questions(conn, tenant_id, p, as_of=as_of)
        cur = await conn.execute(
            "SELECT conversation_id, question, vector FROM question_vectors"
            " WHERE conversation_id = ANY(%s) AND model = %s",
            ([a["id"] for a in asked], model),
        )
        text_of = {a["id"]: a["question"] for a in asked}
        stored_vectors = {
            r["conversation_id"]: r["vector"]
            for r in await cur.fetchall()
            if r["question"] == text_of[r["conversation_id"]]
        }
    new = [a for a in asked if a["id"] not in stored_vectors]
    if new:  # the model runs on the CPU: off the event loop
        fresh = await asyncio.to_thread(
            services.models.embeddings.embed_documents, [a["question"] for a in new]
        )
        async with tenant_scope(services.pool, tenant_id) as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO question_vectors (conversation_id, tenant_id, model, question,"
                " vector) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (conversation_id) DO UPDATE"
                " SET model = EXCLUDED.model, question = EXCLUDED.question,"
                " vector = EXCLUDED.vector",
                [
                    (a["id"], tenant_id, model, a["question"], list(v))
                    for a, v in zip(new, fresh, strict=True)
                ],
            )
        stored_vectors.update({a["id"]: list(v) for a, v in zip(new, fresh, strict=True)})
    vectors = [stored_vectors[a["id"]] for a in asked]
    clusters = await asyncio.to_thread(summarise, asked, vectors) if asked else []
    for c in clusters[:NAMED]:
        c["label"] = await llm_writing.cluster_name(services, business, c["label"], c["examples"])
    async with tenant_scope(services.pool, tenant_id) as conn:
        await conn.execute(
            "DELETE FROM question_clusters WHERE tenant_id = %s AND period_from = %s"
            " AND period_to = %s AND tz = %s",
            (tenant_id, p.first, p.last, p.tz),
        )
        for c in clusters:
            cur = await conn.execute(
                "INSERT INTO question_clusters (tenant_id, period_from, period_to, tz, rank,"
                " label, conversations, ai_resolved, ai_decided, needed_person, csat_average,"
                " knowledge_gap, examples, conversation_ids)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                (
                    tenant_id, p.first, p.last, p.tz, c["rank"], c["label"], c["conversations"],
                    c["ai_resolved"], c["ai_decided"], c["needed_person"], c["csat_average"],
                    c["knowledge_gap"], json.dumps(c["examples"]), c["conversation_ids"],
                ),
            )  # fmt: skip
            row = await cur.fetchone()
            c["id"] = row["id"] if row else None
    return [{k: v for k, v in c.items() if k != "conversation_ids"} for c in clusters]


async def stored(db: Db, tenant_id: uuid.UUID, p: metrics.Period) -> dict[str, Any]:
    """The clusters last computed for the period (empty, with ``computed_at`` None, if never)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT id, rank, label, conversations, ai_resolved, ai_decided, needed_person,"
            " csat_average, knowledge_gap, examples, computed_at FROM question_clusters"
            " WHERE tenant_id = %s AND period_from = %s AND period_to = %s AND tz = %s"
            " ORDER BY rank",
            (tenant_id, p.first, p.last, p.tz),
        )
        rows = [dict(r) for r in await cur.fetchall()]
    computed = rows[0].pop("computed_at") if rows else None
    for r in rows[1:]:
        r.pop("computed_at")
    return {
        "period": p.as_json(),
        "computed_at": computed.isoformat() if computed else None,
        "clusters": rows,
    }
