"""Persistence of the email channel: threads, messages, attachments, the IMAP sync position and
the outbox. Plain SQL on a connection the caller holds, so that a fetched message, its
attachments and the mailbox's new last UID commit in one transaction (see
:mod:`desk.email.fetch`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

Conn = AsyncConnection[DictRow]


@dataclass(frozen=True)
class ThreadRef:
    """A thread as threading needs it."""

    id: uuid.UUID
    reply_token: str
    contact_email: str


async def lock_mailbox(conn: Conn, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> dict[str, Any]:
    """The mailbox row, locked until the transaction ends (one poller per mailbox)."""
    cur = await conn.execute(
        "SELECT id, uidvalidity, last_uid FROM mailboxes WHERE tenant_id = %s AND id = %s"
        " FOR UPDATE",
        (tenant_id, mailbox_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no mailbox {mailbox_id}")
    return row


async def reset_sync(
    conn: Conn, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, uidvalidity: int
) -> None:
    """Start the folder over under a new UIDVALIDITY (Message-IDs keep what is stored once)."""
    await conn.execute(
        "UPDATE mailboxes SET uidvalidity = %s, last_uid = 0 WHERE tenant_id = %s AND id = %s",
        (uidvalidity, tenant_id, mailbox_id),
    )


async def advance_sync(
    conn: Conn, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, uidvalidity: int, uid: int
) -> bool:
    """Move the committed position to ``uid``; False if another poller already went past it."""
    cur = await conn.execute(
        "UPDATE mailboxes SET last_uid = %s WHERE tenant_id = %s AND id = %s"
        " AND uidvalidity = %s AND last_uid < %s",
        (uid, tenant_id, mailbox_id, uidvalidity, uid),
    )
    return cur.rowcount == 1


async def message_exists(conn: Conn, tenant_id: uuid.UUID, message_id: str) -> bool:
    """Whether a message with this Message-ID is stored (in or out)."""
    cur = await conn.execute(
        "SELECT 1 FROM mail_messages WHERE tenant_id = %s AND message_id = %s"
        " UNION ALL SELECT 1 FROM mail_outbox WHERE tenant_id = %s AND message_id = %s LIMIT 1",
        (tenant_id, message_id, tenant_id, message_id),
    )
    return await cur.fetchone() is not None


async def thread_by_message_ids(
    conn: Conn, tenant_id: uuid.UUID, ids: list[str]
) -> ThreadRef | None:
    """The thread of the newest of ``ids`` that we stored or sent."""
    if not ids:
        return None
    cur = await conn.execute(
        "SELECT t.id, t.reply_token, t.contact_email, x.pos FROM ("
        "  SELECT m.thread_id, array_position(%s::text[], m.message_id) AS pos"
        "  FROM mail_messages m WHERE m.tenant_id = %s AND m.message_id = ANY(%s)"
        "  UNION ALL"
        "  SELECT o.thread_id, array_position(%s::text[], o.message_id)"
        "  FROM mail_outbox o WHERE o.tenant_id = %s AND o.message_id = ANY(%s)"
        "    AND o.thread_id IS NOT NULL"
        ") x JOIN mail_threads t ON t.id = x.thread_id ORDER BY x.pos DESC LIMIT 1",
        (ids, tenant_id, ids, ids, tenant_id, ids),
    )
    row = await cur.fetchone()
    return ThreadRef(row["id"], row["reply_token"], row["contact_email"]) if row else None


async def thread_by_token(conn: Conn, tenant_id: uuid.UUID, token: str) -> ThreadRef | None:
    """The tenant's thread with this reply token."""
    cur = await conn.execute(
        "SELECT id, reply_token, contact_email FROM mail_threads"
        " WHERE tenant_id = %s AND reply_token = %s",
        (tenant_id, token),
    )
    row = await cur.fetchone()
    return ThreadRef(row["id"], row["reply_token"], row["contact_email"]) if row else None


async def create_thread(
    conn: Conn,
    tenant_id: uuid.UUID,
    mailbox_id: uuid.UUID,
    *,
    reply_token: str,
    subject: str,
    contact_email: str,
) -> ThreadRef:
    """A new thread (a future ticket) for ``contact_email``."""
    cur = await conn.execute(
        "INSERT INTO mail_threads (tenant_id, mailbox_id, reply_token, subject, contact_email)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, mailbox_id, reply_token, subject, contact_email.lower()),
    )
    row = await cur.fetchone()
    assert row is not None
    return ThreadRef(row["id"], reply_token, contact_email.lower())


async def insert_message(
    conn: Conn, tenant_id: uuid.UUID, values: dict[str, Any]
) -> uuid.UUID | None:
    """Store an inbound message; ``None`` when its Message-ID is stored already."""
    cols = ["tenant_id", *values]
    cur = await conn.execute(
        f"INSERT INTO mail_messages ({', '.join(cols)})"  # columns are ours, not input
        f" VALUES ({', '.join(['%s'] * len(cols))})"
        " ON CONFLICT (tenant_id, message_id) DO NOTHING RETURNING id",
        (tenant_id, *values.values()),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute(
        "UPDATE mail_threads SET updated_at = now() WHERE id = %s", (values["thread_id"],)
    )
    return row["id"]


async def insert_attachment(
    conn: Conn,
    tenant_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    filename: str,
    content_type: str,
    size_bytes: int,
    content: bytes | None,
    refused_reason: str | None,
) -> None:
    """Store an attachment of a stored message (``content`` None when refused)."""
    await conn.execute(
        "INSERT INTO mail_attachments (tenant_id, message_id, filename, content_type,"
        " size_bytes, content, refused_reason) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (tenant_id, message_id, filename, content_type, size_bytes, content, refused_reason),
    )


# --- outbox ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    """One outgoing message."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    mailbox_id: uuid.UUID
    thread_id: uuid.UUID | None
    message_id: str
    to_addresses: list[str]
    raw: bytes
    state: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OutboxRow:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            mailbox_id=row["mailbox_id"],
            thread_id=row["thread_id"],
            message_id=row["message_id"],
            to_addresses=list(row["to_addresses"]),
            raw=bytes(row["raw"]),
            state=row["state"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            sent_at=row["sent_at"],
            last_error=row["last_error"],
        )


async def insert_outbox(conn: Conn, tenant_id: uuid.UUID, values: dict[str, Any]) -> OutboxRow:
    """Queue an outgoing message."""
    cols = ["tenant_id", *values]
    cur = await conn.execute(
        f"INSERT INTO mail_outbox ({', '.join(cols)})"  # columns are ours, not input
        f" VALUES ({', '.join(['%s'] * len(cols))}) RETURNING *",
        (tenant_id, *values.values()),
    )
    row = await cur.fetchone()
    assert row is not None
    return OutboxRow.from_row(row)


async def claim_outbox(
    conn: Conn, tenant_id: uuid.UUID, mailbox_id: uuid.UUID | None = None
) -> OutboxRow | None:
    """Claim the next due row (pending -> sending, attempts + 1); ``None`` when none is due.
    The caller commits the claim before it talks to the SMTP server."""
    cur = await conn.execute(
        "UPDATE mail_outbox SET state = 'sending', claimed_at = now(), attempts = attempts + 1"
        " WHERE id = (SELECT id FROM mail_outbox WHERE tenant_id = %s AND state = 'pending'"
        "   AND next_attempt_at <= now() AND (%s::uuid IS NULL OR mailbox_id = %s::uuid)"
        "   ORDER BY next_attempt_at, created_at FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING *",
        (tenant_id, mailbox_id, mailbox_id),
    )
    row = await cur.fetchone()
    return OutboxRow.from_row(row) if row else None


async def finish_outbox(
    conn: Conn,
    tenant_id: uuid.UUID,
    outbox_id: uuid.UUID,
    state: str,
    *,
    error: str | None = None,
    retry_in_s: float | None = None,
) -> None:
    """Record how a claimed send ended: ``sent``, ``pending`` (retry later), ``failed`` or
    ``uncertain``. Only a row still ``sending`` moves."""
    await conn.execute(
        "UPDATE mail_outbox SET state = %s, last_error = %s,"
        " sent_at = CASE WHEN %s = 'sent' THEN now() ELSE sent_at END,"
        " next_attempt_at = now() + make_interval(secs => %s), claimed_at = NULL"
        " WHERE tenant_id = %s AND id = %s AND state = 'sending'",
        (state, error, state, retry_in_s or 0.0, tenant_id, outbox_id),
    )


async def mark_stale_claims_uncertain(conn: Conn, tenant_id: uuid.UUID, older_than_s: float) -> int:
    """Claims never marked (the sender died mid-send) -> ``uncertain``; how many."""
    cur = await conn.execute(
        "UPDATE mail_outbox SET state = 'uncertain', claimed_at = NULL,"
        " last_error = 'the sender stopped after claiming this message; the server may or may"
        " not have accepted it: check the recipient before sending again'"
        " WHERE tenant_id = %s AND state = 'sending'"
        " AND claimed_at < now() - make_interval(secs => %s)",
        (tenant_id, older_than_s),
    )
    return cur.rowcount


async def mark_bounced(
    conn: Conn, tenant_id: uuid.UUID, message_ids: list[str], bounce_id: str
) -> int:
    """Our sent (or uncertain) messages named by a bounce -> ``failed``; how many."""
    if not message_ids:
        return 0
    cur = await conn.execute(
        "UPDATE mail_outbox SET state = 'failed',"
        " last_error = 'bounced: returned by the recipient''s server (' || %s || ')'"
        " WHERE tenant_id = %s AND message_id = ANY(%s) AND state IN ('sent', 'uncertain')",
        (bounce_id, tenant_id, message_ids),
    )
    return cur.rowcount


async def get_outbox(conn: Conn, tenant_id: uuid.UUID, outbox_id: uuid.UUID) -> OutboxRow:
    """One outbox row."""
    cur = await conn.execute(
        "SELECT * FROM mail_outbox WHERE tenant_id = %s AND id = %s", (tenant_id, outbox_id)
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no outbox row {outbox_id}")
    return OutboxRow.from_row(row)
