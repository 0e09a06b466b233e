"""Send replies over SMTP from the ``mail_outbox`` table.

A reply is written to the outbox complete (our Message-ID, ``In-Reply-To``, ``References``, a
``Re:`` subject with the reply token, text + HTML parts), so every attempt sends the very same
bytes. :func:`send_pending` then, per row:

1. **claims** it (``pending -> sending``, committed before the server is contacted);
2. **sends** it with ``aiosmtplib``, step by step (connect, login, MAIL, RCPT, DATA), knowing
   which step failed;
3. **marks** it: ``sent``; or ``pending`` again with backoff when the server refused it
   (a 4xx reply, or any failure before DATA: the server cannot have accepted it); or
   ``failed`` on a permanent refusal (5xx) or too many attempts; or ``uncertain`` when the
   connection broke *during* DATA, where the server may have accepted the message.

The guarantee, stated honestly: **at most once automatically**. A row is sent again only when
the server cannot have accepted it. If the process dies between the server's acceptance and the
mark, the row stays ``sending``; the next :func:`send_pending` turns a claim older than
``DESKGRAPH_MAIL_SEND_CLAIM_S`` into ``uncertain`` for a person to check, never into a second
send. SMTP offers nothing stronger: the server's "250 OK" and our commit cannot be one
transaction.
"""

from __future__ import annotations

import html
import logging
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import aiosmtplib

from desk.email.thread import our_message_id, subject_with_token
from helpdesk import mail_store, mailboxes
from helpdesk.config import Settings
from helpdesk.db import DictPool
from helpdesk.errors import InvalidInput
from helpdesk.mail_store import OutboxRow
from helpdesk.mailboxes import Mailbox, SecretBox
from helpdesk.tenancy import tenant_scope

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Transient refusals retried this many times in all, then the row is ``failed``."""


class SmtpNotConfigured(InvalidInput):
    """The mailbox has no SMTP server."""


@dataclass
class SendResult:
    """What one :func:`send_pending` did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0


def backoff_s(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` tries: 30 s doubling, at most 1 h."""
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))


def text_to_html(text: str) -> str:
    """A plain HTML part for a text reply: paragraphs, escaped."""
    paras = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paras)
    return f"<!DOCTYPE html><html><body>{body}</body></html>"


def build_message(
    mailbox: Mailbox,
    *,
    token: str | None,
    to: list[str],
    subject: str,
    body_text: str,
    body_html: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The outgoing message (our Message-ID carries the thread's token when there is one)."""
    domain = mailbox.from_address.rsplit("@", 1)[-1]
    msg = EmailMessage()
    msg["From"] = formataddr((mailbox.from_name or "", mailbox.from_address))
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject_with_token(subject, token) if token else subject
    msg["Message-ID"] = our_message_id(token, domain) if token else make_msgid(domain=domain)
    msg["Date"] = format_datetime(now or datetime.now().astimezone())
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    refs = list(dict.fromkeys([*(references or []), *([in_reply_to] if in_reply_to else [])]))
    if refs:
        msg["References"] = " ".join(refs[-20:])
    # Lets other systems' loop checks (and ours) recognise mail that came from this desk.
    msg["X-Loop"] = mailbox.from_address
    msg.set_content(body_text)
    msg.add_alternative(body_html or text_to_html(body_text), subtype="html")
    return msg


async def enqueue_reply(
    pool: DictPool,
    tenant_id: uuid.UUID,
    mailbox_id: uuid.UUID,
    *,
    reply_to: uuid.UUID,
    body_text: str,
    body_html: str | None = None,
    approved_by: str | None = None,
    approved_at: datetime | None = None,
) -> OutboxRow:
    """Queue a reply to stored message ``reply_to`` in its thread.

    Raises :class:`InvalidInput` for a message that must never be answered (an auto-reply, a
    bounce, list mail, a loop) or one without a sender address.
    """
    mailbox = await mailboxes.get_mailbox(pool, tenant_id, mailbox_id)
    if not mailbox.smtp_host:
        raise SmtpNotConfigured(f"mailbox {mailbox.name!r} has no SMTP server")
    async with tenant_scope(pool, tenant_id) as conn:
        cur = await conn.execute(
            "SELECT m.message_id, m.refs, m.from_address, m.subject, m.auto_kind, m.thread_id,"
            " t.reply_token FROM mail_messages m JOIN mail_threads t ON t.id = m.thread_id"
            " WHERE m.tenant_id = %s AND m.id = %s",
            (tenant_id, reply_to),
        )
        src: dict[str, Any] | None = await cur.fetchone()
        if src is None:
            raise InvalidInput(f"no stored message {reply_to}")
        if src["auto_kind"]:
            raise InvalidInput(
                f"message {reply_to} is {src['auto_kind']} mail: it is recorded, never answered"
            )
        if not src["from_address"]:
            raise InvalidInput(f"message {reply_to} has no sender address to answer")
        msg = build_message(
            mailbox,
            token=src["reply_token"],
            to=[src["from_address"]],
            subject=src["subject"],
            body_text=body_text,
            body_html=body_html,
            in_reply_to=src["message_id"],
            references=list(src["refs"]),
        )
        return await mail_store.insert_outbox(
            conn,
            tenant_id,
            {
                "mailbox_id": mailbox_id,
                "thread_id": src["thread_id"],
                "message_id": str(msg["Message-ID"]),
                "to_addresses": [src["from_address"]],
                "raw": msg.as_bytes(),
                "approved_by": approved_by,
                "approved_at": approved_at,
            },
        )


def _smtp_client(mailbox: Mailbox, timeout: float) -> aiosmtplib.SMTP:
    assert mailbox.smtp_host and mailbox.smtp_port
    return aiosmtplib.SMTP(
        hostname=mailbox.smtp_host,
        port=mailbox.smtp_port,
        use_tls=mailbox.smtp_security == "tls",
        start_tls=mailbox.smtp_security == "starttls",
        tls_context=ssl.create_default_context() if mailbox.smtp_security != "none" else None,
        timeout=timeout,
    )


async def check_smtp(mailbox: Mailbox, password: str | None, socket_timeout_s: float = 15.0) -> str:
    """Connect (and log in when a user is set) without sending; raise with the reason."""
    if not mailbox.smtp_host:
        raise SmtpNotConfigured(f"mailbox {mailbox.name!r} has no SMTP server")
    smtp = _smtp_client(mailbox, socket_timeout_s)
    try:
        await smtp.connect()
        if mailbox.smtp_user:
            await smtp.login(mailbox.smtp_user, password or "")
        await smtp.noop()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ConnectionError(
            f"SMTP {mailbox.smtp_host}:{mailbox.smtp_port}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()
    return f"SMTP ok: {mailbox.smtp_host}:{mailbox.smtp_port}"


_Outcome = tuple[str, str | None]  # (state, error)


async def _deliver(
    mailbox: Mailbox, password: str | None, row: OutboxRow, socket_timeout_s: float
) -> _Outcome:
    smtp = _smtp_client(mailbox, socket_timeout_s)
    in_data = False
    try:
        await smtp.connect()
        if mailbox.smtp_user:
            await smtp.login(mailbox.smtp_user, password or "")
        await smtp.mail(mailbox.from_address)
        for rcpt in row.to_addresses:
            await smtp.rcpt(rcpt)
        in_data = True
        await smtp.data(row.raw)
        in_data = False
    except aiosmtplib.SMTPResponseException as exc:
        # The server answered with a refusal: it did not take the message.
        state = "failed" if 500 <= exc.code < 600 else "pending"
        return state, f"SMTP {exc.code}: {exc.message}"
    except Exception as exc:  # a network error, a timeout, or anything unforeseen
        if in_data:
            return "uncertain", (
                f"the connection broke while the message was being handed over"
                f" ({type(exc).__name__}: {exc}); the server may have accepted it"
            )
        return "pending", f"{type(exc).__name__}: {exc}"
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    return "sent", None


async def send_pending(
    pool: DictPool,
    tenant_id: uuid.UUID,
    *,
    box: SecretBox,
    settings: Settings,
    mailbox_id: uuid.UUID | None = None,
    limit: int = 100,
) -> SendResult:
    """Send the tenant's due outbox rows (at most ``limit``); see the module docstring for
    what each outcome means. A plain coroutine for a queue task to call."""
    result = SendResult()
    async with tenant_scope(pool, tenant_id) as conn:
        result.uncertain += await mail_store.mark_stale_claims_uncertain(
            conn, tenant_id, settings.mail_send_claim_s
        )
    cache: dict[uuid.UUID, tuple[Mailbox, str | None]] = {}
    for _ in range(limit):
        async with tenant_scope(pool, tenant_id) as conn:
            row = await mail_store.claim_outbox(conn, tenant_id, mailbox_id)
        if row is None:
            break
        error: str | None
        try:
            if row.mailbox_id not in cache:
                mb = await mailboxes.get_mailbox(pool, tenant_id, row.mailbox_id)
                secret = await mailboxes.get_mailbox_secrets(pool, tenant_id, row.mailbox_id, box)
                cache[row.mailbox_id] = (mb, secret.smtp_password)
        except Exception as exc:  # e.g. a changed DESKGRAPH_MAIL_KEY: nothing was sent
            state, error = "pending", f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        else:
            mb, password = cache[row.mailbox_id]
            if not mb.smtp_host:
                state, error = "failed", "the mailbox has no SMTP server"
            else:
                state, error = await _deliver(mb, password, row, settings.mail_timeout_s)
        if state == "pending" and row.attempts >= MAX_ATTEMPTS:
            state, error = "failed", f"gave up after {row.attempts} attempts: {error}"
        async with tenant_scope(pool, tenant_id) as conn:
            await mail_store.finish_outbox(
                conn,
                tenant_id,
                row.id,
                state,
                error=error,
                retry_in_s=backoff_s(row.attempts) if state == "pending" else None,
            )
        if state == "sent":
            result.sent += 1
        elif state == "pending":
            result.retried += 1
            log.info("outbox %s: refused, retrying later: %s", row.id, error)
        elif state == "failed":
            result.failed += 1
            log.warning("outbox %s: failed: %s", row.id, error)
        else:
            result.uncertain += 1
            log.warning("outbox %s: uncertain: %s", row.id, error)
    return result
