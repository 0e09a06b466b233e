"""Mail into the desk, replies back out (issue 16 items 5 and 6): an email is a conversation and
a ticket like any chat.

* :func:`intake_pending` takes each stored inbound message not taken in yet (``intake_at`` is
  NULL) and, for its thread, finds or makes the conversation (channel ``email``, the sender as
  its contact) and an open ticket (the subject, channel ``email``), then runs the customer's
  words (quoted history and signature stripped) through the same graph as a chat turn, with
  the message's id as the turn's idempotency key. The email channel holds every AI draft for
  a person (the tenant policy), so what the AI wrote waits in the review queue. Automatic mail
  (auto-replies, bounces, lists, loops) is never taken in; a message flagged for a person (too
  large, unreadable) gets its ticket and no AI turn.
* :func:`queue_replies` turns each public reply of an email conversation that a person wrote
  or signed off (an agent's, or the AI's once approved or edited) into an outbox mail in the
  thread, answering
  the thread's last inbound message: a greeting, the reply with its ``[source-id]`` markers
  made into a short list of sources, and the business's sign-off. One mail per reply (a
  unique index on the outbox's ``source_message_id``), so a sweep run twice, or crashed
  between the two writes, never sends a reply twice. The outbox sends at most once
  (``desk.email.send``).

What the AI says without a person in email is not mailed: a decline ("not in our articles"),
an off-topic redirect, a greeting, the safety steps before a hand-off. In chat those help at
once; by email they would be a robot's letter, so the ticket stays open for a person instead
(a hand-off for danger is urgent, and its notification tells the desk).

Both are sweeps the task queue runs (``desk/queue.py``), safe to run again after a crash:
the turn is idempotent by key, the ticket is one per conversation, the outbox one per reply.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from psycopg import errors as pg_errors

from desk.email.send import SmtpNotConfigured, enqueue_reply
from desk.errors import ConversationClosed
from desk.service import Desk
from graph.services import Services
from helpdesk import contacts, conversations, tickets
from helpdesk.errors import DeskError
from helpdesk.tenancy import tenant_scope

log = logging.getLogger(__name__)

_CITATION = re.compile(r"\s?\[([a-z0-9][a-z0-9_.:/-]*)\]", re.I)

_PENDING = """
SELECT m.id, m.tenant_id, m.thread_id, m.from_address, m.from_name, m.subject, m.clean_text,
       m.body_text, m.auto_kind, m.needs_person, t.conversation_id, t.ticket_id, n.slug
FROM mail_messages m
JOIN mail_threads t ON t.id = m.thread_id
JOIN tenants n ON n.id = m.tenant_id
WHERE m.intake_at IS NULL AND (%(tenant)s::uuid IS NULL OR m.tenant_id = %(tenant)s)
ORDER BY m.created_at
LIMIT %(limit)s
"""


async def intake_pending(
    services: Services, desk: Desk, *, tenant_id: uuid.UUID | None = None, limit: int = 50
) -> int:
    """Take in the stored mail not taken in yet (every tenant's, or one's); return how many."""
    async with services.pool.connection() as conn:
        cur = await conn.execute(_PENDING, {"tenant": tenant_id, "limit": limit})
        rows = await cur.fetchall()
    taken = 0
    for m in rows:
        try:
            await _intake_one(services, desk, dict(m))
        except DeskError as exc:  # busy now (an agent acting, a turn running): next sweep
            log.info("mail %s not taken in yet: %s", m["id"], exc)
            continue
        taken += 1
    return taken


async def _intake_one(services: Services, desk: Desk, m: dict[str, Any]) -> None:
    tid = m["tenant_id"]
    if m["auto_kind"] is None:
        tenant = await services.tenant(m["slug"])
        conv = m["conversation_id"] or await _conversation(services, m)
        ticket = await _ticket(services, m, conv)
        text = (m["clean_text"] or m["body_text"] or "").strip()
        if not m["needs_person"] and text:
            key = f"mail:{m['id']}"
            try:
                stream = await desk.turns.say(tenant, conv, text[:4000], idempotency_key=key)
            except ConversationClosed:
                # Mail to a thread whose conversation was closed: a new conversation and
                # ticket, as a chat customer coming back would get.
                conv = await _conversation(services, m, replace=conv)
                ticket = await _ticket(services, m, conv)
                stream = await desk.turns.say(tenant, conv, text[:4000], idempotency_key=key)
            async for _ in stream.events():  # the turn runs to its end; its events are logged
                pass
        log.info("mail %s taken in: conversation %s, ticket %s", m["id"], conv, ticket)
    async with tenant_scope(services.pool, tid) as conn:
        await conn.execute(
            "UPDATE mail_messages SET intake_at = now() WHERE tenant_id = %s AND id = %s",
            (tid, m["id"]),
        )


async def _conversation(
    services: Services, m: dict[str, Any], *, replace: uuid.UUID | None = None
) -> uuid.UUID:
    """The thread's conversation, made (with the sender as its contact) when it has none, or
    in place of ``replace`` (closed)."""
    tid = m["tenant_id"]
    async with tenant_scope(services.pool, tid) as conn:
        cur = await conn.execute(
            "SELECT conversation_id FROM mail_threads WHERE id = %s FOR UPDATE", (m["thread_id"],)
        )
        found = (await cur.fetchone() or {}).get("conversation_id")
        if found is not None and found != replace:
            return found
        customer = {"email": m["from_address"], "name": m["from_name"]}
        conv = await conversations.create_conversation(
            conn, tid, channel="email", customer=customer
        )
        await conn.execute(
            "UPDATE mail_threads SET conversation_id = %s, updated_at = now() WHERE id = %s",
            (conv, m["thread_id"]),
        )
        if m["from_address"]:
            try:
                contact, _ = await contacts.resolve_contact(
                    conn, tid, email=m["from_address"], name=m["from_name"] or None
                )
                await contacts.link_conversation(conn, tid, conv, contact["id"])
            except DeskError as exc:  # an address the contacts refuse: the mail still counts
                log.info("mail %s: no contact from %r (%s)", m["id"], m["from_address"], exc)
    return conv


async def _ticket(services: Services, m: dict[str, Any], conv: uuid.UUID) -> uuid.UUID:
    """The conversation's open ticket, opened (channel email, the subject) when it has none."""
    tid = m["tenant_id"]
    async with tenant_scope(services.pool, tid) as conn:
        open_ = await tickets.open_ticket(conn, tid, conv)
        if open_ is None:
            try:
                open_ = await tickets.create_ticket(
                    conn,
                    tid,
                    subject=(m["subject"] or "(no subject)")[:300],
                    actor=None,
                    channel="email",
                    conversation_id=conv,
                    description=(m["clean_text"] or "")[:20000],
                )
            except pg_errors.UniqueViolation:  # opened meanwhile by a hand-off
                open_ = await tickets.open_ticket(conn, tid, conv)
        assert open_ is not None
        await conn.execute(
            "UPDATE mail_threads SET ticket_id = %s"
            " WHERE id = %s AND ticket_id IS DISTINCT FROM %s",
            (open_["id"], m["thread_id"], open_["id"]),
        )
        return uuid.UUID(str(open_["id"]))


_REPLIES = """
SELECT msg.id, msg.tenant_id, msg.sender, msg.text, msg.citations, msg.agent_name,
       t.id AS thread_id, t.mailbox_id, n.slug,
       (SELECT mm.id FROM mail_messages mm WHERE mm.thread_id = t.id AND mm.auto_kind IS NULL
         ORDER BY mm.created_at DESC LIMIT 1) AS reply_to,
       (SELECT mm.from_name FROM mail_messages mm WHERE mm.thread_id = t.id
         AND mm.auto_kind IS NULL ORDER BY mm.created_at DESC LIMIT 1) AS customer_name
FROM messages msg
JOIN mail_threads t ON t.conversation_id = msg.conversation_id
JOIN tenants n ON n.id = msg.tenant_id
WHERE msg.visibility = 'public' AND (%(tenant)s::uuid IS NULL OR msg.tenant_id = %(tenant)s)
  AND (msg.sender = 'agent' OR (msg.sender = 'ai' AND EXISTS (
        -- an AI reply is mailed once a person signed it off: an approval or an edit logged
        -- after the AI's previous reply and no later than this one
        SELECT 1 FROM conversation_events e
        WHERE e.conversation_id = msg.conversation_id
          AND e.type IN ('approval.approved', 'approval.edited')
          AND e.created_at <= msg.created_at
          AND e.created_at > coalesce((SELECT max(p.created_at) FROM messages p
                                       WHERE p.conversation_id = msg.conversation_id
                                         AND p.sender = 'ai' AND p.created_at < msg.created_at),
                                      '-infinity'))))
  AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.tenant_id = msg.tenant_id
                  AND o.source_message_id = msg.id)
ORDER BY msg.created_at
LIMIT %(limit)s
"""


async def queue_replies(
    services: Services, *, tenant_id: uuid.UUID | None = None, limit: int = 100
) -> int:
    """Queue an outbox mail for each email conversation's reply not mailed yet; return how
    many were queued."""
    async with services.pool.connection() as conn:
        cur = await conn.execute(_REPLIES, {"tenant": tenant_id, "limit": limit})
        rows = await cur.fetchall()
    queued = 0
    for r in rows:
        if r["reply_to"] is None:
            continue
        tenant = await services.tenant(r["slug"])
        body = email_body(
            r["text"],
            list(r["citations"] or []),
            customer=r["customer_name"] or "",
            signer=r["agent_name"] if r["sender"] == "agent" else None,
            business=tenant.business.display_name,
        )
        try:
            await enqueue_reply(
                services.pool,
                r["tenant_id"],
                r["mailbox_id"],
                reply_to=r["reply_to"],
                body_text=body,
                approved_by=r["agent_name"],
                source_message_id=r["id"],
            )
        except pg_errors.UniqueViolation:
            continue  # queued by a sweep that ran at the same time
        except (DeskError, SmtpNotConfigured) as exc:
            log.warning("reply %s not mailed: %s", r["id"], exc)
            continue
        queued += 1
    return queued


def email_body(
    text: str,
    citations: list[dict[str, Any]],
    *,
    customer: str,
    signer: str | None,
    business: str,
) -> str:
    """A reply as an email: a greeting, the text without ``[source-id]`` markers, the sources
    as a short list, and the sign-off (the agent's name and the business's)."""
    first = customer.split()[0] if customer.split() else ""
    lines = [f"Hello {first}," if first else "Hello,", "", _CITATION.sub("", text).strip()]
    sources = []
    for c in citations:
        title = str(c.get("title") or c.get("source_id") or "").strip()
        if title and title not in sources:
            sources.append(title + (f" ({c['url']})" if c.get("url") else ""))
    if sources:
        lines += ["", "Sources:", *(f"- {s}" for s in sources)]
    lines += ["", "Kind regards,", f"{signer}, {business}" if signer else business]
    return "\n".join(lines)
