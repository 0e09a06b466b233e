"""The conversation event log: append with dense per-conversation sequence numbers, and the
``NOTIFY`` that announces each event on :data:`EVENTS_CHANNEL` when its transaction commits.

Its own module so that both :mod:`helpdesk.conversations` (which re-exports it) and
:mod:`helpdesk.tickets` (the CSAT request) append events without importing each other.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk.errors import NotFound
from helpdesk.tenancy import Db, connect

EVENTS_CHANNEL = "deskgraph_events"
"""The ``LISTEN``/``NOTIFY`` channel of new conversation events."""


def notify_payload(tenant_id: uuid.UUID, conversation_id: uuid.UUID, seq: int, type_: str) -> str:
    """The payload announcing one event: ``"<tenant> <conversation> <seq> <type>"``."""
    return f"{tenant_id} {conversation_id} {seq} {type_}"


def parse_notify_payload(payload: str) -> tuple[uuid.UUID, uuid.UUID, int, str]:
    """Inverse of :func:`notify_payload` (raises ValueError on anything else)."""
    tenant, conv, seq, type_ = payload.split(" ", 3)
    return uuid.UUID(tenant), uuid.UUID(conv), int(seq), type_


async def append_event(
    db: Db,
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
    async with connect(db) as conn, conn.transaction():
        return await _append_locked(conn, tenant_id, conversation_id, type_, data, dedupe_key)


async def _append_locked(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    dedupe_key: str | None,
) -> int:
    # Runs inside the caller's transaction; the row lock orders the sequence numbers.
    cur = await conn.execute(
        "SELECT last_event_seq FROM conversations WHERE id = %s AND tenant_id = %s FOR UPDATE",
        (conversation_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no conversation {conversation_id} for this tenant")
    if dedupe_key is not None:
        cur = await conn.execute(
            "SELECT seq FROM conversation_events WHERE conversation_id = %s AND dedupe_key = %s",
            (conversation_id, dedupe_key),
        )
        existing = await cur.fetchone()
        if existing is not None:
            return int(existing["seq"])
    seq = int(row["last_event_seq"]) + 1
    await conn.execute(
        "UPDATE conversations SET last_event_seq = %s WHERE id = %s AND tenant_id = %s",
        (seq, conversation_id, tenant_id),
    )
    await conn.execute(
        "INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, data,"
        " dedupe_key) VALUES (%s, %s, %s, %s, %s, %s)",
        (conversation_id, seq, tenant_id, type_, Jsonb(data), dedupe_key),
    )
    # Delivered on commit, in commit order; listeners re-read the table, so the payload only
    # needs to say where to look.
    await conn.execute(
        "SELECT pg_notify(%s, %s)",
        (EVENTS_CHANNEL, notify_payload(tenant_id, conversation_id, seq, type_)),
    )
    return seq
