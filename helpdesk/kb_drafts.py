"""Knowledge-base article drafts and their review: the one table of states and who may move
them (issue 17 item 5).

``draft -> in_review -> approved -> published``, with ``rejected`` from any state before
published, and the way back (in_review -> draft to rework, approved -> in_review, rejected ->
draft). Anyone on the desk writes and submits drafts (``kb.draft``); approving, publishing and
rejecting is a manager's (``kb.review``), as the blueprint's review states intend. Publishing
itself (indexing the article) is :func:`desk.kb_learning.publish`; this module only records.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect

State = Literal["draft", "in_review", "approved", "published", "rejected"]
STATES: tuple[State, ...] = ("draft", "in_review", "approved", "published", "rejected")

MOVES: dict[str, dict[str, str]] = {
    "draft": {"in_review": "kb.draft", "rejected": "kb.review"},
    "in_review": {"approved": "kb.review", "draft": "kb.draft", "rejected": "kb.review"},
    "approved": {"published": "kb.review", "in_review": "kb.review", "rejected": "kb.review"},
    "rejected": {"draft": "kb.draft"},
    "published": {},
}
"""state -> {the state it may move to: the role-table action that move needs}."""
EDITABLE: frozenset[str] = frozenset({"draft", "in_review"})

_COLUMNS = (
    "id, state, kind, target_source_id, similarity, title, body, visibility,"
    " source_conversations, source_tickets, ai_generated, created_by, reviewed_by,"
    " published_source_id, confidence, created_at, updated_at"
)


def check_move(state: str, to: str) -> str:
    """The action a move needs; :class:`Conflict` (``invalid_transition``) naming the allowed."""
    allowed = MOVES.get(state, {})
    if to not in allowed:
        names = ", ".join(allowed) or "none: it is final"
        raise Conflict(f"a {state} draft cannot move to {to}; it may move to: {names}")
    return allowed[to]


async def create(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    title: str,
    body: str,
    created_by: str,
    kind: Literal["new", "update"] = "new",
    target_source_id: str | None = None,
    similarity: float | None = None,
    source_conversations: list[uuid.UUID] | None = None,
    source_tickets: list[uuid.UUID] | None = None,
    ai_generated: bool = True,
    confidence: float | None = None,
    visibility: Literal["external", "internal"] = "external",
) -> dict[str, Any]:
    """Store a new draft; a conversation that already has one gets that one back."""
    if not title.strip() or not body.strip():
        raise InvalidInput("title and body must not be empty")
    async with connect(db) as conn:
        cur = await conn.execute(
            f"INSERT INTO kb_drafts (tenant_id, kind, target_source_id, similarity, title, body,"
            f" source_conversations, source_tickets, ai_generated, created_by, confidence,"
            f" visibility) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (tenant_id, (source_conversations[1]))"
            f" WHERE cardinality(source_conversations) > 0 DO NOTHING RETURNING {_COLUMNS}",
            (
                tenant_id, kind, target_source_id, similarity, title.strip()[:300], body.strip(),
                source_conversations or [], source_tickets or [], ai_generated, created_by,
                confidence, visibility,
            ),
        )  # fmt: skip
        row = await cur.fetchone()
        if row is None:  # this conversation's draft exists: return it, unchanged
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM kb_drafts WHERE tenant_id = %s"
                " AND source_conversations[1] = %s",
                (tenant_id, source_conversations[0] if source_conversations else None),
            )
            row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def get(db: Db, tenant_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any]:
    async with connect(db) as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM kb_drafts WHERE tenant_id = %s AND id = %s",
            (tenant_id, draft_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no draft {draft_id}")
    return dict(row)


async def list_drafts(
    db: Db, tenant_id: uuid.UUID, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The review queue: drafts (of one state when given), oldest first."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state: {state!r} is not one of {', '.join(STATES)}")
    async with connect(db) as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM kb_drafts WHERE tenant_id = %s"
            " AND (%s::text IS NULL OR state = %s) ORDER BY created_at, id LIMIT %s",
            (tenant_id, state, state, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


async def edit(
    db: Db, tenant_id: uuid.UUID, draft_id: uuid.UUID, *, title: str | None, body: str | None
) -> dict[str, Any]:
    """Change a draft's text; only while it is a draft or in review (409 after)."""
    async with connect(db) as conn, conn.transaction():
        current = await _locked(conn, tenant_id, draft_id)
        if current["state"] not in EDITABLE:
            raise Conflict(f"a {current['state']} draft cannot be edited; move it back first")
        new_title = (title if title is not None else current["title"]).strip()
        new_body = (body if body is not None else current["body"]).strip()
        if not new_title or not new_body:
            raise InvalidInput("title and body must not be empty")
        cur = await conn.execute(
            f"UPDATE kb_drafts SET title = %s, body = %s, ai_generated = ai_generated AND %s,"
            f" updated_at = now() WHERE id = %s RETURNING {_COLUMNS}",
            (new_title[:300], new_body, new_body == current["body"], draft_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def move(
    db: Db,
    tenant_id: uuid.UUID,
    draft_id: uuid.UUID,
    to: str,
    *,
    by: str,
    published_source_id: str | None = None,
) -> dict[str, Any]:
    """Move a draft (the caller checked the role for :func:`check_move`'s action)."""
    async with connect(db) as conn, conn.transaction():
        current = await _locked(conn, tenant_id, draft_id)
        check_move(current["state"], to)
        reviewer = by if to in ("approved", "published", "rejected") else current["reviewed_by"]
        cur = await conn.execute(
            f"UPDATE kb_drafts SET state = %s, reviewed_by = %s,"
            f" published_source_id = coalesce(%s, published_source_id), updated_at = now()"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (to, reviewer, published_source_id, draft_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def _locked(conn: Any, tenant_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM kb_drafts WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, draft_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no draft {draft_id}")
    return dict(row)
