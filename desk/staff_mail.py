"""Notifications to staff by email (issue 15 item 10): each notification becomes one mail to
every person of the desk it is for who chose email for its kind
(``PUT /v1/agent/me/notification-preferences``, ``{"<kind>": {"email": true}}``).

No second SMTP client and no second outbox: the mail is a row of the tenant's ``mail_outbox``,
sent through the SMTP settings of the tenant's first mailbox that has them
(``helpdesk.mailboxes``) by the ``send_mail`` task (``desk.email.send.send_pending``: retries
with backoff on a refusal, at most once). :func:`email_notifications` (the queue's
``email_notifications`` task) turns the notifications not mailed yet into those rows and stamps
them ``emailed_at`` in the same transaction, so a re-run (or a worker killed and its job run
again) writes no mail twice; the Message-ID is fixed per notification and person, and the
outbox's unique (tenant, Message-ID) refuses a second row even so. A tenant without an SMTP
mailbox has its notifications stamped and not mailed: the console and webhooks still carry
them. See docs/notifications.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from desk.email.send import build_message
from helpdesk import mailboxes
from helpdesk.db import DictPool
from helpdesk.mailboxes import Mailbox

BATCH = 200
"""Notifications one transaction takes at most."""


async def smtp_mailbox(pool: DictPool, tenant_id: uuid.UUID) -> Mailbox | None:
    """The mailbox whose SMTP server staff mail leaves by: the tenant's first with one."""
    for mb in await mailboxes.list_mailboxes(pool, tenant_id):
        if mb.smtp_host:
            return mb
    return None


def _body(notification: dict[str, Any], console_url: str | None) -> str:
    payload = notification["payload"] or {}
    lines = [notification["title"], ""]
    if payload.get("number"):
        lines.append(f"Ticket: {payload['number']} - {payload.get('subject', '')}")
    if payload.get("reason"):
        lines.append(f"Reason: {payload['reason']}")
    if payload.get("due_at"):
        lines.append(f"Due: {payload['due_at']}")
    if console_url and payload.get("ticket_id"):
        lines.append(f"Open it: {console_url.rstrip('/')}/console/tickets#{payload['ticket_id']}")
    lines += ["", "You get this because you chose email for these notifications."]
    return "\n".join(lines)


async def email_notifications(
    pool: DictPool, *, console_url: str | None = None, now: datetime | None = None
) -> int:
    """Write the outbox mail of every notification not mailed yet, for every tenant (as the
    owner: the queue's pool); return how many mails were queued."""
    at = now or datetime.now(UTC)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT tenant_id FROM notifications WHERE emailed_at IS NULL"
        )
        tenants = [r["tenant_id"] for r in await cur.fetchall()]
    queued = 0
    for tenant_id in tenants:
        mailbox = await smtp_mailbox(pool, tenant_id)
        while True:
            count, more = await _one_batch(pool, tenant_id, mailbox, console_url, at)
            queued += count
            if not more:
                break
    return queued


async def _one_batch(
    pool: DictPool,
    tenant_id: uuid.UUID,
    mailbox: Mailbox | None,
    console_url: str | None,
    at: datetime,
) -> tuple[int, bool]:
    queued = 0
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT * FROM notifications WHERE tenant_id = %s AND emailed_at IS NULL"
            " ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (tenant_id, BATCH),
        )
        batch = [dict(r) for r in await cur.fetchall()]
        if not batch:
            return 0, False
        if mailbox is not None:
            # Who wants each by email: the person it is for (the whole desk when nobody in
            # particular), active, with email chosen for its kind.
            cur = await conn.execute(
                "SELECT n.id AS notification_id, u.id AS user_id, u.email, u.name"
                " FROM notifications n"
                " JOIN users u ON u.tenant_id = n.tenant_id AND u.active"
                "  AND (n.user_id IS NULL OR u.id = n.user_id)"
                " JOIN notification_preferences p ON p.user_id = u.id AND p.kind = n.kind"
                "  AND p.email"
                " WHERE n.tenant_id = %s AND n.id = ANY(%s)",
                (tenant_id, [n["id"] for n in batch]),
            )
            by_id = {n["id"]: n for n in batch}
            domain = mailbox.from_address.rsplit("@", 1)[-1]
            for r in await cur.fetchall():
                note = by_id[r["notification_id"]]
                msg = build_message(
                    mailbox,
                    token=None,
                    to=[r["email"]],
                    subject=f"[{note['kind']}] {note['title']}",
                    body_text=_body(note, console_url),
                    now=at,
                )
                del msg["Message-ID"]  # fixed per notification and person: never two rows
                msg["Message-ID"] = f"<notify.{note['id']}.{r['user_id']}@{domain}>"
                # Staff mail is no reply to anything: no auto-replies or loops to answer.
                msg["Auto-Submitted"] = "auto-generated"
                cur2 = await conn.execute(
                    "INSERT INTO mail_outbox (tenant_id, mailbox_id, message_id, to_addresses,"
                    " raw) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (tenant_id, message_id) DO NOTHING",
                    (tenant_id, mailbox.id, msg["Message-ID"], [r["email"]], msg.as_bytes()),
                )
                queued += cur2.rowcount
        await conn.execute(
            "UPDATE notifications SET emailed_at = %s WHERE id = ANY(%s)",
            (at, [n["id"] for n in batch]),
        )
    return queued, len(batch) == BATCH
