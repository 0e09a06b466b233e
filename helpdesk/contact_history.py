"""A contact's history, as agents see it: their conversations and tickets, their average CSAT,
and the card beside a conversation. Read-only; tenant-scoped like every repository."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk.tenancy import Db, connect


async def contact_conversations(
    db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The contact's conversations, most recent first, each with its latest ticket's number
    (``ticket_number``), its CSAT (``csat``) and the last customer message."""
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT c.*, t.number AS ticket_number, f.csat, lm.text AS last_customer_message
            FROM conversations c
            LEFT JOIN LATERAL (
                SELECT t.number FROM tickets t
                WHERE t.conversation_id = c.id AND t.tenant_id = c.tenant_id
                ORDER BY t.created_at DESC LIMIT 1
            ) t ON true
            LEFT JOIN feedback f ON f.conversation_id = c.id AND f.tenant_id = c.tenant_id
                 AND f.kind = 'csat'
            LEFT JOIN LATERAL (
                SELECT m.text FROM messages m
                WHERE m.conversation_id = c.id AND m.tenant_id = c.tenant_id
                  AND m.sender = 'customer'
                ORDER BY m.created_at DESC LIMIT 1
            ) lm ON true
            WHERE c.tenant_id = %s AND c.contact_id = %s
            ORDER BY c.created_at DESC, c.id LIMIT %s
            """,
            (tenant_id, contact_id, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


async def contact_tickets(
    db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The contact's tickets, most recent first."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE tenant_id = %s AND contact_id = %s"
            " ORDER BY created_at DESC, number DESC LIMIT %s",
            (tenant_id, contact_id, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


async def contact_stats(db: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any]:
    """``{"conversations", "tickets", "csat_count", "average_csat"}`` of the contact
    (``average_csat`` None when no conversation of theirs was rated)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT
              (SELECT count(*) FROM conversations c
               WHERE c.tenant_id = %(t)s AND c.contact_id = %(c)s) AS conversations,
              (SELECT count(*) FROM tickets k
               WHERE k.tenant_id = %(t)s AND k.contact_id = %(c)s) AS tickets,
              count(f.csat) AS csat_count,
              avg(f.csat)::float AS average_csat
            FROM feedback f JOIN conversations c
              ON c.id = f.conversation_id AND c.tenant_id = f.tenant_id
            WHERE f.tenant_id = %(t)s AND c.contact_id = %(c)s AND f.kind = 'csat'
            """,
            {"t": tenant_id, "c": contact_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def contact_card(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any] | None:
    """What an agent sees beside a conversation: its contact (name, email, phone), their
    organisation (``organization_id``, ``organization_name``), whether the business's site
    vouched for them in this conversation (``verified``), and how many conversations they
    had before this one (``earlier_conversations``). None when the conversation has no contact."""
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT k.id, k.name, k.email, k.phone, k.organization_id, k.verified_at,
                   o.name AS organization_name, c.contact_verified AS verified,
                   (SELECT count(*) FROM conversations e
                    WHERE e.tenant_id = c.tenant_id AND e.contact_id = k.id AND e.id <> c.id
                      AND e.created_at <= c.created_at) AS earlier_conversations
            FROM conversations c
            JOIN contacts k ON k.id = c.contact_id AND k.tenant_id = c.tenant_id
            LEFT JOIN organizations o ON o.id = k.organization_id AND o.tenant_id = k.tenant_id
            WHERE c.id = %s AND c.tenant_id = %s
            """,
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    return dict(row) if row else None
