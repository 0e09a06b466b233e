"""Conversations, their messages and their event log.

Every function takes the tenant id and filters by it: a conversation id alone never reaches a
row of another tenant.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg.types.json import Jsonb

from helpdesk.db import DictPool
from helpdesk.errors import NotFound

Sender = Literal["customer", "ai", "agent", "system"]
Status = Literal["active", "waiting_human", "closed"]


async def create_conversation(
    pool: DictPool,
    tenant_id: uuid.UUID,
    *,
    channel: str = "web",
    conversation_id: uuid.UUID | None = None,
    customer: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Create a conversation and return its id (also its LangGraph thread id)."""
    cid = conversation_id or uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO conversations (id, tenant_id, channel, customer) VALUES (%s, %s, %s, %s)",
            (cid, tenant_id, channel, Jsonb(customer or {})),
        )
    return cid


async def ensure_conversation(
    pool: DictPool, tenant_id: uuid.UUID, conversation_id: uuid.UUID, channel: str
) -> None:
    """Create the conversation row for a thread started outside the API (Studio, CLI).

    Raises :class:`NotFound` when the id belongs to another tenant.
    """
    async with pool.connection() as conn:
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
    pool: DictPool, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """Return the conversation row; raise :class:`NotFound` if absent for this tenant."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT * FROM conversations WHERE id = %s AND tenant_id = %s",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no conversation {conversation_id} for this tenant")
    return dict(row)


async def set_status(
    pool: DictPool,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    status: Status,
    *,
    escalation: dict[str, Any] | None = None,
    owner_agent: str | None = None,
) -> None:
    """Set the conversation's status (and escalation details / owner when given)."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE conversations SET status = %s,"
            " escalation = COALESCE(%s, escalation), owner_agent = %s, updated_at = now()"
            " WHERE id = %s AND tenant_id = %s",
            (
                status,
                Jsonb(escalation) if escalation is not None else None,
                owner_agent,
                conversation_id,
                tenant_id,
            ),
        )


async def add_message(
    pool: DictPool,
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
) -> bool:
    """Store a message; return False when a message with this id was already stored.

    Ids come from the graph state, so a node re-run on resume stores nothing twice.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, sender, text, intent,"
            " confidence, citations, visibility) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
            ),
        )
        inserted = cur.rowcount == 1
        if inserted:
            await conn.execute(
                "UPDATE conversations SET updated_at = now() WHERE id = %s AND tenant_id = %s",
                (conversation_id, tenant_id),
            )
    return inserted


async def list_messages(
    pool: DictPool, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Return the conversation's messages, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT * FROM messages WHERE conversation_id = %s AND tenant_id = %s"
            " ORDER BY created_at, id",
            (conversation_id, tenant_id),
        )
        return [dict(r) for r in await cur.fetchall()]


async def append_event(
    pool: DictPool,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    *,
    dedupe_key: str | None = None,
) -> int:
    """Append an event to the conversation's log and return its sequence number.

    Sequence numbers are dense per conversation: the counter on the conversation row is bumped
    under its row lock, so concurrent writers are serialised. With ``dedupe_key`` a repeated
    append (a node re-run on resume) returns the first event's number and writes nothing.
    """
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT last_event_seq FROM conversations WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no conversation {conversation_id} for this tenant")
        if dedupe_key is not None:
            cur = await conn.execute(
                "SELECT seq FROM conversation_events WHERE conversation_id = %s"
                " AND dedupe_key = %s",
                (conversation_id, dedupe_key),
            )
            existing = await cur.fetchone()
            if existing is not None:
                return int(existing["seq"])
        seq = int(row["last_event_seq"]) + 1
        await conn.execute(
            "UPDATE conversations SET last_event_seq = %s WHERE id = %s", (seq, conversation_id)
        )
        await conn.execute(
            "INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, data,"
            " dedupe_key) VALUES (%s, %s, %s, %s, %s, %s)",
            (conversation_id, seq, tenant_id, type_, Jsonb(data), dedupe_key),
        )
    return seq


async def list_events(
    pool: DictPool,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    after_seq: int = 0,
) -> list[dict[str, Any]]:
    """Return the conversation's events after ``after_seq``, in order."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT seq, type, data, created_at FROM conversation_events"
            " WHERE conversation_id = %s AND tenant_id = %s AND seq > %s ORDER BY seq",
            (conversation_id, tenant_id, after_seq),
        )
        return [dict(r) for r in await cur.fetchall()]
