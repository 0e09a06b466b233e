"""Customer feedback: thumbs up/down on an answer, and a CSAT score (1-5) per conversation.

A customer can change their mind: a second vote on the same message, or a second CSAT for the
same conversation, replaces the first (one row each, ``updated_at`` moves). Only answers can be
rated (messages from the AI, an agent or the system), never the customer's own messages.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg.types.json import Jsonb

from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect

Rating = Literal["up", "down"]


async def rate_message(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    rating: Rating,
    *,
    comment: str = "",
) -> dict[str, Any]:
    """Record (or change) the thumbs vote on one answer of the conversation, and move the
    helpful / not-helpful counts of the articles the answer cited by the change: a vote
    changed from up to down moves one count from one column to the other; the same vote
    again moves nothing. Votes on one message are serialised (an advisory lock for the
    transaction), so two at once cannot both count as the first."""
    async with connect(db) as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"vote:{message_id}",)
        )
        cur = await conn.execute(
            "SELECT sender, citations FROM messages"
            " WHERE id = %s AND conversation_id = %s AND tenant_id = %s",
            (message_id, conversation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no message {message_id} in this conversation")
        if row["sender"] == "customer":
            raise InvalidInput("only answers can be rated, not the customer's own messages")
        cur = await conn.execute(
            "SELECT rating FROM feedback WHERE message_id = %s AND kind = 'rating'", (message_id,)
        )
        before = await cur.fetchone()
        cur = await conn.execute(
            """
            INSERT INTO feedback (tenant_id, conversation_id, message_id, kind, rating, comment)
            VALUES (%s, %s, %s, 'rating', %s, %s)
            ON CONFLICT (message_id) WHERE kind = 'rating' DO UPDATE SET
                rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()
            RETURNING *
            """,
            (tenant_id, conversation_id, message_id, rating, comment),
        )
        out = await cur.fetchone()
        old = before["rating"] if before else None
        sources = sorted(
            {str(c["source_id"]) for c in row["citations"] or [] if c.get("source_id")}
        )
        if old != rating and sources:
            up = int(rating == "up") - int(old == "up")
            down = int(rating == "down") - int(old == "down")
            await conn.execute(
                "UPDATE kb_articles SET helpful = greatest(0, helpful + %s),"
                " not_helpful = greatest(0, not_helpful + %s)"
                " WHERE tenant_id = %s AND source_id = ANY(%s)",
                (up, down, tenant_id, sources),
            )
    assert out is not None
    return dict(out)


async def rate_conversation(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, csat: int, *, comment: str = ""
) -> dict[str, Any]:
    """Record (or change) the conversation's CSAT score, 1 (bad) to 5 (great)."""
    if not 1 <= csat <= 5:
        raise InvalidInput(f"csat is 1 to 5, got {csat}")
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            INSERT INTO feedback (tenant_id, conversation_id, kind, csat, comment)
            VALUES (%s, %s, 'csat', %s, %s)
            ON CONFLICT (conversation_id) WHERE kind = 'csat' AND resolution_id IS NULL
            DO UPDATE SET
                csat = EXCLUDED.csat, comment = EXCLUDED.comment, updated_at = now()
            RETURNING *
            """,
            (tenant_id, conversation_id, csat, comment),
        )
        out = await cur.fetchone()
    assert out is not None
    return dict(out)


async def rate_resolution(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, score: int, *, comment: str = ""
) -> dict[str, Any]:
    """Record the customer's CSAT (1-5) for the resolution of the conversation's latest
    resolved (or closed) ticket: once per resolution. The same score again returns the stored
    row unchanged (a retried request); another score is :class:`Conflict`, and so is a
    conversation with no resolved ticket. Returns the feedback row with ``ticket_number``."""
    if not 1 <= score <= 5:
        raise InvalidInput(f"score is 1 to 5, got {score}")
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id, number, resolution_id FROM tickets"
            " WHERE tenant_id = %s AND conversation_id = %s AND status IN ('resolved', 'closed')"
            " AND resolution_id IS NOT NULL ORDER BY number DESC LIMIT 1 FOR UPDATE",
            (tenant_id, conversation_id),
        )
        ticket = await cur.fetchone()
        if ticket is None:
            raise Conflict("nothing to rate yet: this conversation has no resolved ticket")
        cur = await conn.execute(
            """
            INSERT INTO feedback (tenant_id, conversation_id, kind, csat, comment, resolution_id)
            VALUES (%s, %s, 'csat', %s, %s, %s)
            ON CONFLICT (resolution_id) WHERE kind = 'csat' AND resolution_id IS NOT NULL
            DO NOTHING RETURNING *
            """,
            (tenant_id, conversation_id, score, comment, ticket["resolution_id"]),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "SELECT * FROM feedback WHERE resolution_id = %s AND kind = 'csat'",
                (ticket["resolution_id"],),
            )
            row = await cur.fetchone()
            assert row is not None
            if row["csat"] != score:
                raise Conflict(
                    f"this resolution was already rated {row['csat']}; a rating is given once"
                )
        else:
            await conn.execute(
                "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail)"
                " VALUES (%s, %s, 'csat', 'customer', %s)",
                (tenant_id, ticket["id"], Jsonb({"score": score, "comment": comment})),
            )
    return {**dict(row), "ticket_number": f"T-{ticket['number']}"}


async def list_feedback(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """The tenant's feedback (of one conversation when given), oldest first."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM feedback WHERE tenant_id = %s"
            " AND (%s::uuid IS NULL OR conversation_id = %s) ORDER BY created_at, id",
            (tenant_id, conversation_id, conversation_id),
        )
        return [dict(r) for r in await cur.fetchall()]
