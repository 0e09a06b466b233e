"""Human edits as data: export the drafts agents edited or rejected as an eval dataset.

When a draft waits for approval, the reviewer's decision is kept in the conversation's event log
by the ``approve`` node (``graph/nodes/approve.py``): ``approval.edited`` holds the question,
the draft and the text the agent sent instead; ``approval.rejected`` the question, the draft,
the reason and what happened next (redraft or hand-off). Nothing else needs recording: the
events are the labelled data, written once per decision (they are deduplicated on resume).

``export_feedback`` writes them as JSONL in the question format of ``evals/datasets`` (see its
README), one row per decision, oldest first:

``{"id", "question", "answer", "answerable", "label", "draft", "reason", "then", "reviewer",
"conversation_id", "created_at"}``

* ``label`` is ``edited`` or ``rejected``.
* For an edit, ``answer`` is the agent's text: the reference answer a better assistant should
  give, so the file runs as is with ``deskgraph eval answers --questions FILE`` (the suite takes
  the rows with an answer) against the tenant's knowledge base.
* For a rejection there is no reference (``answer`` is empty, ``answerable`` null): the row
  records a bad draft and why, for reading and for writing references by hand.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from helpdesk.db import DictPool
from helpdesk.errors import NotFound

EVENT_TYPES = ("approval.edited", "approval.rejected")


@dataclass(frozen=True)
class ExportStats:
    """What an export wrote."""

    rows: int
    edited: int
    rejected: int
    path: Path


def _row(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"] or {}
    edited = event["type"] == "approval.edited"
    conv = str(event["conversation_id"])
    return {
        "id": f"fb-{conv[:8]}-{event['seq']}",
        "question": data.get("question", ""),
        "answer": data.get("edited", "") if edited else "",
        "answerable": True if edited else None,
        "label": "edited" if edited else "rejected",
        "draft": data.get("draft", ""),
        "reason": data.get("reason"),
        "then": data.get("then"),
        "reviewer": data.get("reviewer"),
        "conversation_id": conv,
        "created_at": event["created_at"].isoformat()
        if isinstance(event["created_at"], datetime)
        else str(event["created_at"]),
    }


async def feedback_rows(
    pool: DictPool,
    tenant_slug: str,
    *,
    since: datetime | None = None,
    labels: Sequence[str] = ("edited", "rejected"),
) -> list[dict[str, Any]]:
    """The tenant's edited / rejected drafts as dataset rows, oldest first.

    Rows without a question (nothing to ask an assistant) are left out.

    Raises:
        NotFound: no tenant with this slug.
        ValueError: an unknown label.
    """
    unknown = sorted(set(labels) - {"edited", "rejected"})
    if unknown:
        raise ValueError(f"labels must be edited and/or rejected, got {', '.join(unknown)}")
    types = [t for t in EVENT_TYPES if t.split(".")[1] in labels]
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM tenants WHERE slug = %s", (tenant_slug,))
        tenant = await cur.fetchone()
        if tenant is None:
            raise NotFound(f"no tenant with slug {tenant_slug!r}")
        cur = await conn.execute(
            "SELECT conversation_id, seq, type, data, created_at FROM conversation_events"
            " WHERE tenant_id = %s AND type = ANY(%s)"
            " AND (%s::timestamptz IS NULL OR created_at >= %s::timestamptz)"
            " ORDER BY created_at, conversation_id, seq",
            (tenant["id"], types, since, since),
        )
        events = await cur.fetchall()
    return [r for r in (_row(dict(e)) for e in events) if str(r["question"]).strip()]


async def export_feedback(
    pool: DictPool,
    tenant_slug: str,
    out: Path,
    *,
    since: datetime | None = None,
    labels: Sequence[str] = ("edited", "rejected"),
) -> ExportStats:
    """Write the tenant's edited / rejected drafts to ``out`` as JSONL (see the module doc).

    Raises:
        NotFound: no tenant with this slug.
        ValueError: an unknown label.
    """
    rows = await feedback_rows(pool, tenant_slug, since=since, labels=labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    edited = sum(r["label"] == "edited" for r in rows)
    return ExportStats(rows=len(rows), edited=edited, rejected=len(rows) - edited, path=out)
