"""Tickets: what a hand-off leaves for the human team."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import psycopg

from helpdesk.errors import Conflict, NotFound
from helpdesk.tenancy import Db, connect

TicketStatus = Literal[
    "new",
    "triage",
    "waiting_customer",
    "waiting_internal",
    "in_progress",
    "pending_release",
    "resolved",
    "closed",
]


async def open_or_update_ticket(
    db: Db,
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
    async with connect(db) as conn:
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
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Return the tenant's tickets (of one conversation / in one status when given), oldest
    first."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE tenant_id = %s"
            " AND (%s::uuid IS NULL OR conversation_id = %s)"
            " AND (%s::text IS NULL OR status = %s)"
            " ORDER BY created_at, number LIMIT %s",
            (tenant_id, conversation_id, conversation_id, status, status, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


async def get_ticket(db: Db, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> dict[str, Any]:
    """Return one ticket of the tenant; raise :class:`NotFound` if absent for this tenant."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE id = %s AND tenant_id = %s", (ticket_id, tenant_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ticket {ticket_id} for this tenant")
    return dict(row)


async def open_ticket(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any] | None:
    """The conversation's open ticket, if it has one."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
            " AND status NOT IN ('resolved', 'closed')",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    return dict(row) if row else None


async def set_ticket_status(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    status: TicketStatus,
    *,
    priority: str | None = None,
) -> dict[str, Any]:
    """Change a ticket's status (and priority when given); return the ticket row.

    Reopening a resolved ticket while the conversation already has another open one is a
    conflict the unique index refuses; the caller gets :class:`helpdesk.errors.Conflict`.
    """
    async with connect(db) as conn:
        try:
            cur = await conn.execute(
                "UPDATE tickets SET status = %s, priority = COALESCE(%s, priority),"
                " updated_at = now() WHERE id = %s AND tenant_id = %s RETURNING *",
                (status, priority, ticket_id, tenant_id),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict("the conversation already has another open ticket") from exc
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ticket {ticket_id} for this tenant")
    return dict(row)


async def settle_open_ticket(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, status: TicketStatus
) -> dict[str, Any] | None:
    """Move the conversation's open ticket (if any) to ``status``; return it."""
    ticket = await open_ticket(db, tenant_id, conversation_id)
    if ticket is None or ticket["status"] == status:
        return ticket
    return await set_ticket_status(db, tenant_id, ticket["id"], status)
