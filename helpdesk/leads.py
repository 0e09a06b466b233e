"""Leads: a quote request that came with contact details, for the business to follow up.

A conversation has a quote request when the classifier took one of its customer messages for
a :data:`QUOTE_INTENTS` intent (``pricing`` in ``prompts/intents.csv``: "how much would a new
water heater cost", "can you give me a quote"). The answer to that message is stored with the
intent, and a hand-off's ticket lists it, so either says so (:func:`quote_request`); a draft
still held for review is only in the thread's state, which ``desk.contacts.thread_quote``
reads. One lead per conversation at most (a unique index), whatever order the details and the
question come in.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from helpdesk.errors import NotFound
from helpdesk.tenancy import Db, connect

LeadStatus = Literal["new", "contacted", "won", "lost"]
QUOTE_INTENTS: tuple[str, ...] = ("pricing",)
"""Intents that ask what a job will cost (the classifier's labels, ``prompts/intents.csv``)."""


async def quote_request(db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> str | None:
    """The text of the conversation's first quote request, or None when it has none.

    The customer message an answer with a quote intent answers (``in_reply_to``); when the
    turn was handed off instead, the latest customer message before the ticket that lists the
    intent.
    """
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT q.text FROM messages a
            JOIN messages q ON q.id = a.in_reply_to AND q.tenant_id = a.tenant_id
            WHERE a.tenant_id = %(t)s AND a.conversation_id = %(c)s
              AND a.intent = ANY(%(intents)s) AND q.sender = 'customer'
            ORDER BY a.created_at LIMIT 1
            """,
            {"t": tenant_id, "c": conversation_id, "intents": list(QUOTE_INTENTS)},
        )
        row = await cur.fetchone()
        if row is not None:
            return str(row["text"])
        cur = await conn.execute(
            """
            SELECT m.text FROM tickets k
            JOIN LATERAL (
                SELECT text FROM messages m
                WHERE m.conversation_id = k.conversation_id AND m.tenant_id = k.tenant_id
                  AND m.sender = 'customer' AND m.created_at <= k.updated_at
                ORDER BY m.created_at DESC LIMIT 1
            ) m ON true
            WHERE k.tenant_id = %(t)s AND k.conversation_id = %(c)s
              AND k.intents && %(intents)s::text[]
            ORDER BY k.created_at LIMIT 1
            """,
            {"t": tenant_id, "c": conversation_id, "intents": list(QUOTE_INTENTS)},
        )
        row = await cur.fetchone()
    return str(row["text"]) if row is not None else None


async def record_lead(
    db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID, conversation_id: uuid.UUID, request: str
) -> tuple[dict[str, Any], bool]:
    """The conversation's lead, created for this contact when it has none; ``(row, created)``."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO leads (tenant_id, contact_id, conversation_id, request)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (conversation_id) WHERE conversation_id IS NOT NULL DO NOTHING"
            " RETURNING *",
            (tenant_id, contact_id, conversation_id, request[:4000]),
        )
        row = await cur.fetchone()
        if row is not None:
            return dict(row), True
        cur = await conn.execute(
            "SELECT * FROM leads WHERE conversation_id = %s AND tenant_id = %s",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:  # the conversation is another tenant's: its lead is not ours to show
        raise NotFound(f"no conversation {conversation_id} for this tenant")
    return dict(row), False


_SELECT = """
    SELECT l.*, c.name AS contact_name, c.email AS contact_email, c.phone AS contact_phone
    FROM leads l JOIN contacts c ON c.id = l.contact_id AND c.tenant_id = l.tenant_id
"""


async def list_leads(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    status: LeadStatus | None = None,
    contact_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The tenant's leads (in one status, of one contact, when given), newest first, with
    their contact's name, email and phone."""
    async with connect(db) as conn:
        cur = await conn.execute(
            _SELECT + " WHERE l.tenant_id = %(t)s AND (%(s)s::text IS NULL OR l.status = %(s)s)"
            " AND (%(c)s::uuid IS NULL OR l.contact_id = %(c)s)"
            " ORDER BY l.created_at DESC, l.id LIMIT %(n)s",
            {"t": tenant_id, "s": status, "c": contact_id, "n": limit},
        )
        return [dict(r) for r in await cur.fetchall()]


async def get_lead(db: Db, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> dict[str, Any]:
    """One lead of the tenant with its contact's details; :class:`NotFound` otherwise."""
    async with connect(db) as conn:
        cur = await conn.execute(
            _SELECT + " WHERE l.id = %s AND l.tenant_id = %s", (lead_id, tenant_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no lead {lead_id} for this tenant")
    return dict(row)


async def set_lead_status(
    db: Db, tenant_id: uuid.UUID, lead_id: uuid.UUID, status: LeadStatus
) -> dict[str, Any]:
    """Move a lead to ``status`` (any status to any other: sales reopens lost leads)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE leads SET status = %s, updated_at = now() WHERE id = %s AND tenant_id = %s",
            (status, lead_id, tenant_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no lead {lead_id} for this tenant")
        return await get_lead(conn, tenant_id, lead_id)
