"""Conversations, their messages and their event log.

Every function takes the tenant id and filters by it: a conversation id alone never reaches a
row of another tenant. Functions take a pool or a connection (:data:`helpdesk.tenancy.Db`), so
the API can run them inside a row-level-security scope (:func:`helpdesk.tenancy.tenant_scope`).

Every appended event is announced with ``NOTIFY`` on :data:`EVENTS_CHANNEL` when its
transaction commits; subscribers read the rows themselves, so a lost or coalesced notification
delays an event but never drops it.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk import tickets
from helpdesk.errors import NotFound
from helpdesk.event_log import (  # re-exported: the event log's home was this module
    EVENTS_CHANNEL,
    _append_locked,
    append_event,
    notify_payload,
    parse_notify_payload,
)
from helpdesk.tenancy import Db, connect

__all__ = ["EVENTS_CHANNEL", "append_event", "notify_payload", "parse_notify_payload"]

Sender = Literal["customer", "ai", "agent", "system"]
Status = Literal["active", "waiting_human", "closed"]


def waiting_on(status: str, escalation: dict[str, Any] | None) -> str | None:
    """What a waiting conversation waits on: ``handoff``, ``approval``, ``human_turn``, or None
    when it does not wait on a person."""
    if status != "waiting_human":
        return None
    kind = (escalation or {}).get("kind")
    return kind if kind in ("approval", "human_turn") else "handoff"


async def create_conversation(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    channel: str = "web",
    conversation_id: uuid.UUID | None = None,
    customer: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Create a conversation and return its id (also its LangGraph thread id)."""
    cid = conversation_id or uuid.uuid4()
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO conversations (id, tenant_id, channel, customer) VALUES (%s, %s, %s, %s)",
            (cid, tenant_id, channel, Jsonb(customer or {})),
        )
    return cid


async def ensure_conversation(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, channel: str
) -> None:
    """Create the conversation row for a thread started outside the API (Studio, CLI).

    Raises :class:`NotFound` when the id belongs to another tenant.
    """
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO conversations (id, tenant_id, channel) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (conversation_id, tenant_id, channel),
        )
        cur = await conn.execute(
            "SELECT tenant_id FROM conversations WHERE id = %s", (conversation_id,)
        )
        row = await cur.fetchone()
    if row is None or row["tenant_id"] != tenant_id:
        raise NotFound(f"no conversation {conversation_id} for this tenant")


async def get_conversation(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """Return the conversation row; raise :class:`NotFound` if absent for this tenant."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM conversations WHERE id = %s AND tenant_id = %s",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no conversation {conversation_id} for this tenant")
    return dict(row)


async def set_status(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    status: Status,
    *,
    escalation: dict[str, Any] | None = None,
    owner_agent: str | None = None,
) -> bool:
    """Set the conversation's status (and escalation details / owner when given).

    A change of status or owner is logged as a ``status`` event (``{"status", "owner_agent",
    "waiting_on"}``), in the same transaction, so subscribers see it in order with the
    messages. Setting what is already set logs nothing, which keeps nodes that re-run on resume
    from logging twice. ``waiting_since`` (the queue's order) starts when the conversation starts
    waiting on a person. Returns whether anything changed.
    """
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT status, owner_agent FROM conversations WHERE id = %s AND tenant_id = %s"
            " FOR UPDATE",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no conversation {conversation_id} for this tenant")
        cur = await conn.execute(
            "UPDATE conversations SET status = %(status)s,"
            " escalation = COALESCE(%(escalation)s, escalation), owner_agent = %(owner)s,"
            # The credential behind the owner's name (desk.actions sets it) goes when the name
            # changes: a name set by the graph alone is compared by name.
            " owner_id = CASE WHEN owner_agent IS NOT DISTINCT FROM %(owner)s THEN owner_id"
            "   ELSE NULL END,"
            " waiting_since = CASE WHEN %(status)s <> 'waiting_human' THEN NULL"
            "   WHEN status = 'waiting_human' THEN COALESCE(waiting_since, now()) ELSE now() END,"
            " updated_at = now()"
            " WHERE id = %(id)s AND tenant_id = %(tenant)s RETURNING escalation",
            {
                "status": status,
                "escalation": Jsonb(escalation) if escalation is not None else None,
                "owner": owner_agent,
                "id": conversation_id,
                "tenant": tenant_id,
            },
        )
        updated = await cur.fetchone()
        changed = row["status"] != status or row["owner_agent"] != owner_agent
        if changed:
            await _append_locked(
                conn,
                tenant_id,
                conversation_id,
                "status",
                {
                    "status": status,
                    "owner_agent": owner_agent,
                    "waiting_on": waiting_on(status, updated["escalation"] if updated else None),
                },
                None,
            )
    return changed


async def set_owner_id(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, owner_id: str | None
) -> None:
    """Record which credential (``user:<id>``, ``key:<id>``) the current owner is, so that
    ownership is compared by identity, not by a name two credentials may share."""
    async with connect(db) as conn:
        await conn.execute(
            "UPDATE conversations SET owner_id = CASE WHEN owner_agent IS NULL THEN NULL"
            " ELSE %s END WHERE id = %s AND tenant_id = %s",
            (owner_id, conversation_id, tenant_id),
        )


async def add_message(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    message_id: uuid.UUID,
    sender: Sender,
    text: str,
    intent: str | None = None,
    confidence: float | None = None,
    citations: list[dict[str, Any]] | None = None,
    visibility: Literal["public", "internal"] = "public",
    agent_name: str | None = None,
    in_reply_to: uuid.UUID | None = None,
    pending_turn_key: str | None = None,
) -> bool:
    """Store a message; return False when a message with this id was already stored.

    Ids come from the graph state, so a node re-run on resume stores nothing twice.
    ``agent_name`` names the agent who wrote (or acted on) the message; ``in_reply_to`` the
    customer message an answer answers; ``pending_turn_key`` marks a customer message the AI
    still owes a turn (stored during a draft review, see :func:`pending_turns`).
    """
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, sender, text, intent,"
            " confidence, citations, visibility, agent_name, in_reply_to, pending_turn_key)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (
                message_id,
                tenant_id,
                conversation_id,
                sender,
                text,
                intent,
                confidence,
                Jsonb(citations or []),
                visibility,
                agent_name,
                in_reply_to,
                pending_turn_key,
            ),
        )
        inserted = cur.rowcount == 1
        if inserted:
            await conn.execute(
                "UPDATE conversations SET updated_at = now() WHERE id = %s AND tenant_id = %s",
                (conversation_id, tenant_id),
            )
            await _follow_ticket(conn, tenant_id, conversation_id, sender, visibility)
    return inserted


async def _follow_ticket(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    sender: str,
    visibility: str,
) -> None:
    """The conversation's ticket follows its messages: every message is stored here, by the
    graph and the desk alike, so this is the one place that stamps the first customer-visible
    reply (AI or agent) and that reopens or follows up a ticket when the customer writes."""
    if visibility != "public":
        return
    if sender in ("ai", "agent"):
        await tickets.stamp_first_response(conn, tenant_id, conversation_id, by_ai=sender == "ai")
    elif sender == "customer":
        await tickets.on_customer_message(conn, tenant_id, conversation_id)


async def list_messages(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Return the conversation's messages, oldest first."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM messages WHERE conversation_id = %s AND tenant_id = %s"
            " ORDER BY created_at, id",
            (conversation_id, tenant_id),
        )
        return [dict(r) for r in await cur.fetchall()]


async def pending_turns(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Customer messages stored during a draft review that the AI still owes a turn, oldest
    first (each row has ``id``, ``text`` and ``pending_turn_key``)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT id, text, pending_turn_key FROM messages"
            " WHERE conversation_id = %s AND tenant_id = %s AND pending_turn_key IS NOT NULL"
            " ORDER BY created_at, id",
            (conversation_id, tenant_id),
        )
        return [dict(r) for r in await cur.fetchall()]


async def settle_pending_turns(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID | None = None
) -> int:
    """Mark one message (or, without ``message_id``, all of them) as owing no turn any more:
    its turn ran, or a person now has the conversation. Returns how many were marked."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE messages SET pending_turn_key = NULL"
            " WHERE conversation_id = %s AND tenant_id = %s AND pending_turn_key IS NOT NULL"
            " AND (%s::uuid IS NULL OR id = %s)",
            (conversation_id, tenant_id, message_id, message_id),
        )
        return cur.rowcount


async def list_events(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    after_seq: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Return the conversation's events after ``after_seq``, in order (at most ``limit``)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT seq, type, data, created_at FROM conversation_events"
            " WHERE conversation_id = %s AND tenant_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (conversation_id, tenant_id, after_seq, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


async def list_conversations(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    status: Status | None = None,
    owner: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The tenant's conversations (in one status, owned by one agent, when given), most
    recently active first.

    Each row also has its open ticket's number (``ticket_number``) and the last customer
    message (``last_customer_message``), so a list can say what each one is about.
    """
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT c.*, t.number AS ticket_number, lm.text AS last_customer_message
            FROM conversations c
            LEFT JOIN LATERAL (
                SELECT t.number FROM tickets t
                WHERE t.conversation_id = c.id AND t.tenant_id = c.tenant_id
                  AND t.status NOT IN ('resolved', 'closed')
                ORDER BY t.created_at DESC LIMIT 1
            ) t ON true
            LEFT JOIN LATERAL (
                SELECT m.text FROM messages m
                WHERE m.conversation_id = c.id AND m.tenant_id = c.tenant_id
                  AND m.sender = 'customer'
                ORDER BY m.created_at DESC LIMIT 1
            ) lm ON true
            WHERE c.tenant_id = %(tenant)s
              AND (%(status)s::text IS NULL OR c.status = %(status)s)
              AND (%(owner)s::text IS NULL OR c.owner_agent = %(owner)s)
            ORDER BY c.updated_at DESC, c.id LIMIT %(limit)s
            """,
            {"tenant": tenant_id, "status": status, "owner": owner, "limit": limit},
        )
        return [dict(r) for r in await cur.fetchall()]


async def waiting_queue(db: Db, tenant_id: uuid.UUID, *, limit: int = 100) -> list[dict[str, Any]]:
    """Conversations waiting on a person, urgent tickets (a customer in danger) first, then
    oldest wait first, with what the agent needs to triage.

    Each row has the conversation's columns plus its open ticket (``ticket_id``,
    ``ticket_number``, ``ticket_reason``, ``ticket_summary``, ``ticket_priority``), the last
    customer message (``last_customer_message``, ``last_customer_at``), the data of the last
    ``approval.pending`` event (``approval``: its review reasons), and for a held draft the
    question under review (``held_question``: the latest customer message that does not wait
    behind the review) and how many customer messages wait behind it (``pending_count``).
    """
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT c.*, t.id AS ticket_id, t.number AS ticket_number, t.reason AS ticket_reason,
                   t.summary AS ticket_summary, t.priority AS ticket_priority,
                   lm.text AS last_customer_message, lm.created_at AS last_customer_at,
                   ap.data AS approval, hq.text AS held_question,
                   (SELECT count(*) FROM messages p
                    WHERE p.conversation_id = c.id AND p.tenant_id = c.tenant_id
                      AND p.pending_turn_key IS NOT NULL) AS pending_count
            FROM conversations c
            LEFT JOIN tickets t ON t.conversation_id = c.id AND t.tenant_id = c.tenant_id
                 AND t.status NOT IN ('resolved', 'closed')
            LEFT JOIN LATERAL (
                SELECT m.text, m.created_at FROM messages m
                WHERE m.conversation_id = c.id AND m.tenant_id = c.tenant_id
                  AND m.sender = 'customer'
                ORDER BY m.created_at DESC LIMIT 1
            ) lm ON true
            LEFT JOIN LATERAL (
                SELECT e.data FROM conversation_events e
                WHERE e.conversation_id = c.id AND e.tenant_id = c.tenant_id
                  AND e.type = 'approval.pending'
                ORDER BY e.seq DESC LIMIT 1
            ) ap ON true
            LEFT JOIN LATERAL (
                SELECT m.text FROM messages m
                WHERE m.conversation_id = c.id AND m.tenant_id = c.tenant_id
                  AND m.sender = 'customer' AND m.pending_turn_key IS NULL
                ORDER BY m.created_at DESC LIMIT 1
            ) hq ON true
            WHERE c.tenant_id = %s AND c.status = 'waiting_human'
            ORDER BY t.priority = 'urgent' DESC, c.waiting_since NULLS FIRST, c.updated_at, c.id
            LIMIT %s
            """,
            (tenant_id, limit),
        )
        return [dict(r) for r in await cur.fetchall()]
