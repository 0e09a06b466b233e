"""Tickets: what a hand-off leaves for the human team."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk.db import DictPool


async def open_or_update_ticket(
    pool: DictPool,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    handoff_key: str,
    subject: str,
    reason: str,
    summary: str,
    intents: list[str],
    priority: str = "normal",
) -> dict[str, Any]:
    """Open the conversation's ticket, or update its open one; return the ticket row.

    A conversation has at most one open ticket. ``handoff_key`` names the hand-off; the same
    key again (the hand-off node re-running on resume) changes nothing, so one hand-off never
    counts twice.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            INSERT INTO tickets (tenant_id, conversation_id, subject, reason, summary, intents,
                                 priority, last_handoff_key)
            VALUES (%(tenant)s, %(conv)s, %(subject)s, %(reason)s, %(summary)s, %(intents)s,
                    %(priority)s, %(key)s)
            ON CONFLICT (conversation_id) WHERE status NOT IN ('resolved', 'closed')
            DO UPDATE SET
                reason = EXCLUDED.reason,
                summary = EXCLUDED.summary,
                intents = EXCLUDED.intents,
                priority = EXCLUDED.priority,
                handoff_count = tickets.handoff_count + 1,
                last_handoff_key = EXCLUDED.last_handoff_key,
                updated_at = now()
            WHERE tickets.last_handoff_key <> EXCLUDED.last_handoff_key
              AND tickets.tenant_id = EXCLUDED.tenant_id
            RETURNING *
            """,
            {
                "tenant": tenant_id,
                "conv": conversation_id,
                "subject": subject,
                "reason": reason,
                "summary": summary,
                "intents": intents,
                "priority": priority,
                "key": handoff_key,
            },
        )
        row = await cur.fetchone()
        if row is None:  # same hand-off again: nothing changed, return the open ticket
            cur = await conn.execute(
                "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
                " AND status NOT IN ('resolved', 'closed')",
                (conversation_id, tenant_id),
            )
            row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def list_tickets(
    pool: DictPool, tenant_id: uuid.UUID, conversation_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Return the tenant's tickets (of one conversation when given), oldest first."""
    async with pool.connection() as conn:
        if conversation_id is None:
            cur = await conn.execute(
                "SELECT * FROM tickets WHERE tenant_id = %s ORDER BY created_at", (tenant_id,)
            )
        else:
            cur = await conn.execute(
                "SELECT * FROM tickets WHERE tenant_id = %s AND conversation_id = %s"
                " ORDER BY created_at",
                (tenant_id, conversation_id),
            )
        return [dict(r) for r in await cur.fetchall()]
