"""Questions the knowledge base had nothing good for (issue 17 item 4: knowledge gaps).

Two kinds are logged, both as the customer typed them:

* ``chat``: an AI answer that declined because the knowledge base did not support one (the
  answerability check or the judge; out-of-scope questions are not gaps and are not logged),
  written with the reply itself so a replayed turn logs it once (the reply's id is the row's);
* ``search``: a knowledge-base search (``GET /v1/kb/search``) that returned nothing.

:func:`summary` groups a period's misses by their text (case and spacing folded), most asked
first, for ``GET /v1/metrics/kb-misses``. A search miss has no conversation to be deleted
with, so retention deletes it by age (:mod:`helpdesk.retention`).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from helpdesk.metrics import Period
from helpdesk.tenancy import Db, connect

LIMIT = 50


async def record(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    source: Literal["chat", "search"],
    query: str,
    top_score: float | None,
    conversation_id: uuid.UUID | None = None,
    miss_id: uuid.UUID | None = None,
) -> None:
    """Log one miss; a second record with the same ``miss_id`` is a no-op."""
    text = " ".join(query.split())
    if not text:
        return
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO kb_misses (id, tenant_id, source, query, top_score, conversation_id)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (miss_id or uuid.uuid4(), tenant_id, source, text[:1000], top_score, conversation_id),
        )


async def summary(db: Db, tenant_id: uuid.UUID, p: Period) -> list[dict[str, Any]]:
    """The period's misses grouped by text: count by source, last seen, up to five
    conversations, the best score any of them got."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT min(query) AS query, count(*) AS count,"
            " count(*) FILTER (WHERE source = 'chat') AS chat,"
            " count(*) FILTER (WHERE source = 'search') AS search,"
            " max(top_score) AS best_score, max(created_at) AS last_at,"
            " (array_agg(conversation_id ORDER BY created_at DESC)"
            "   FILTER (WHERE conversation_id IS NOT NULL))[1:5] AS conversation_ids"
            " FROM kb_misses WHERE tenant_id = %s AND created_at >= %s AND created_at < %s"
            " GROUP BY lower(query) ORDER BY count(*) DESC, max(created_at) DESC LIMIT %s",
            (tenant_id, p.start, p.end, LIMIT),
        )
        rows = await cur.fetchall()
    return [
        {
            **dict(r),
            "last_at": r["last_at"].isoformat(),
            "conversation_ids": [str(c) for c in r["conversation_ids"] or []],
        }
        for r in rows
    ]
