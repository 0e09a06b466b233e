"""Fetch a mailbox over IMAP into ``mail_messages``, one committed message at a time.

The position is the folder's UIDVALIDITY and the last UID committed under it, kept on the
mailbox row. Each message is read with ``BODY.PEEK[]`` (the folder is even selected read-only),
so the server's ``\\Seen`` flags are neither relied on nor changed. A message, its attachments
and the new last UID are committed in one transaction: a crash or a dropped connection resumes
after the last stored message, with nothing skipped and nothing stored twice (and a Message-ID
stored once more is skipped anyway: a redelivery, a copy in another folder, a UIDVALIDITY
reset that starts the folder over). A message too large, or one that cannot be parsed, is
stored raw and flagged for a person; it never stops the mailbox.

:func:`poll_mailbox` is a plain coroutine: a queue task (or ``deskgraph mail poll --once``)
calls it every ``poll_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

from desk.email.parse import ParsedMail, derived_message_id, parse_message
from desk.email.thread import new_token, thread_for
from helpdesk import mail_store, mailboxes
from helpdesk.config import Settings
from helpdesk.db import DictPool, connection_lost
from helpdesk.mailboxes import Mailbox, SecretBox
from helpdesk.tenancy import tenant_scope

log = logging.getLogger(__name__)

FETCH_SIZES_BATCH = 200


class MailConnectionError(Exception):
    """The mail server could not be reached, or refused the login."""


@dataclass
class PollResult:
    """What one poll did."""

    mailbox_id: uuid.UUID
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    flagged: int = 0
    automatic: int = 0
    uidvalidity_reset: bool = False
    error: str | None = None
    stored_ids: list[uuid.UUID] = field(default_factory=list)


def _connect(mailbox: Mailbox, password: str, timeout: float) -> IMAPClient:
    context = ssl.create_default_context()
    try:
        client = IMAPClient(
            mailbox.imap_host,
            port=mailbox.imap_port,
            ssl=mailbox.imap_security == "tls",
            ssl_context=context if mailbox.imap_security == "tls" else None,
            timeout=timeout,
        )
        if mailbox.imap_security == "starttls":
            client.starttls(context)
        client.login(mailbox.imap_user, password)
    except Exception as exc:
        raise MailConnectionError(
            f"IMAP {mailbox.imap_host}:{mailbox.imap_port}: {type(exc).__name__}: {exc}"
        ) from exc
    return client


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the connection may be gone already
        client.logout()


async def check_imap(mailbox: Mailbox, password: str, socket_timeout_s: float = 15.0) -> str:
    """Log in and open the folder read-only; return what was found, raise
    :class:`MailConnectionError` with the reason otherwise."""

    def go() -> str:
        client = _connect(mailbox, password, socket_timeout_s)
        try:
            info = client.select_folder(mailbox.imap_folder, readonly=True)
            return (
                f"IMAP ok: {mailbox.imap_folder} holds {info.get(b'EXISTS', 0)} messages"
                f" (UIDVALIDITY {info.get(b'UIDVALIDITY')})"
            )
        except Exception as exc:
            raise MailConnectionError(f"IMAP folder {mailbox.imap_folder!r}: {exc}") from exc
        finally:
            _logout(client)

    return await asyncio.to_thread(go)


async def poll_mailbox(
    pool: DictPool,
    tenant_id: uuid.UUID,
    mailbox_id: uuid.UUID,
    *,
    box: SecretBox,
    settings: Settings,
    max_messages: int | None = None,
    after_store: Callable[[uuid.UUID], Awaitable[None]] | None = None,
) -> PollResult:
    """Fetch what is new in one mailbox and store it; never raises for the server or a bad
    message (the result's ``error`` says what stopped the poll, also kept on the mailbox).

    Args:
        pool: The app's pool (work runs under the tenant's row-level security).
        tenant_id: The mailbox's tenant.
        mailbox_id: The mailbox.
        box: Decrypts the IMAP password.
        settings: Size limits and the socket timeout.
        max_messages: Stop after this many new UIDs (the rest waits for the next poll).
        after_store: Awaited with each stored row's id after its commit (a queue task can
            enqueue triage there).
    """
    result = PollResult(mailbox_id)
    mailbox = await mailboxes.get_mailbox(pool, tenant_id, mailbox_id)
    try:
        secrets_ = await mailboxes.get_mailbox_secrets(pool, tenant_id, mailbox_id, box)
    except ValueError as exc:  # a changed DESKGRAPH_MAIL_KEY
        result.error = str(exc)
        await mailboxes.record_poll(pool, tenant_id, mailbox_id, result.error)
        return result
    own = frozenset(
        {mailbox.from_address.lower()}
        | ({mailbox.imap_user.lower()} if "@" in mailbox.imap_user else set())
    )
    client: IMAPClient | None = None
    try:
        client = imap = await asyncio.to_thread(
            _connect, mailbox, secrets_.imap_password, settings.mail_timeout_s
        )
        info: dict[bytes, Any] = await asyncio.to_thread(
            imap.select_folder, mailbox.imap_folder, True
        )
        uidvalidity = int(info[b"UIDVALIDITY"])
        async with tenant_scope(pool, tenant_id) as conn:
            row = await mail_store.lock_mailbox(conn, tenant_id, mailbox_id)
            if row["uidvalidity"] != uidvalidity:
                if row["uidvalidity"] is not None:
                    log.warning(
                        "mailbox %s: UIDVALIDITY %s -> %s, reading the folder again (stored"
                        " Message-IDs are skipped)",
                        mailbox_id,
                        row["uidvalidity"],
                        uidvalidity,
                    )
                    result.uidvalidity_reset = True
                await mail_store.reset_sync(conn, tenant_id, mailbox_id, uidvalidity)
                last_uid = 0
            else:
                last_uid = int(row["last_uid"])
        found = await asyncio.to_thread(imap.search, ["UID", f"{last_uid + 1}:*"])
        uids = sorted(int(u) for u in found if int(u) > last_uid)  # "N:*" always names the last
        if max_messages is not None:
            uids = uids[:max_messages]
        for start in range(0, len(uids), FETCH_SIZES_BATCH):
            chunk = uids[start : start + FETCH_SIZES_BATCH]
            sizes = await asyncio.to_thread(imap.fetch, chunk, ["RFC822.SIZE"])
            for uid in chunk:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                # Past the keep limit only the header comes down (the rest stays on the server).
                part = b"BODY[HEADER]" if size > settings.mail_keep_raw_bytes else b"BODY[]"
                what = "BODY.PEEK[HEADER]" if part == b"BODY[HEADER]" else "BODY.PEEK[]"
                fetched = await asyncio.to_thread(imap.fetch, [uid], [what])
                item = fetched.get(uid)
                if item is None:  # expunged between SEARCH and FETCH
                    async with tenant_scope(pool, tenant_id) as conn:
                        await mail_store.advance_sync(conn, tenant_id, mailbox_id, uidvalidity, uid)
                    continue
                raw = bytes(item.get(part) or b"")
                result.seen += 1
                try:
                    stored = await _store_one(
                        pool,
                        tenant_id,
                        mailbox_id,
                        uidvalidity,
                        uid,
                        raw,
                        own,
                        settings,
                        result,
                        size=size if part == b"BODY[HEADER]" else None,
                    )
                except Exception as exc:
                    if connection_lost(exc):
                        raise
                    # The database refused what this message parsed into: keep it raw for
                    # a person rather than retry it at every poll (a stopped mailbox).
                    log.exception(
                        "mailbox %s: UID %s could not be stored as parsed", mailbox_id, uid
                    )
                    stored = await _store_raw(
                        pool, tenant_id, mailbox_id, uidvalidity, uid, raw, exc, result
                    )
                if after_store is not None and stored is not None:
                    await after_store(stored)
    except Exception as exc:
        # The server went away mid-poll, refused us, or a database error: what is committed
        # stays committed, and the next poll resumes after it.
        result.error = f"{type(exc).__name__}: {exc}"
        log.warning("mailbox %s: poll stopped: %s", mailbox_id, result.error)
    finally:
        if client is not None:
            await asyncio.to_thread(_logout, client)
    await mailboxes.record_poll(pool, tenant_id, mailbox_id, result.error)
    return result


async def _store_one(
    pool: DictPool,
    tenant_id: uuid.UUID,
    mailbox_id: uuid.UUID,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    own: frozenset[str],
    settings: Settings,
    result: PollResult,
    size: int | None = None,
) -> uuid.UUID | None:
    mail: ParsedMail = await asyncio.to_thread(
        parse_message,
        raw,
        own_addresses=own,
        max_message_bytes=settings.mail_max_message_bytes,
        max_attachment_bytes=settings.mail_max_attachment_bytes,
        size=size,
    )
    async with tenant_scope(pool, tenant_id) as conn:
        row = await mail_store.lock_mailbox(conn, tenant_id, mailbox_id)
        if row["uidvalidity"] != uidvalidity or int(row["last_uid"]) >= uid:
            return None  # another poller committed it first
        stored_id: uuid.UUID | None = None
        if not await mail_store.message_exists(conn, tenant_id, mail.message_id):
            thread, _how = await thread_for(conn, tenant_id, mailbox_id, mail)
            stored_id = await mail_store.insert_message(
                conn,
                tenant_id,
                {
                    "mailbox_id": mailbox_id,
                    "thread_id": thread.id,
                    "message_id": mail.message_id,
                    "message_id_derived": mail.message_id_derived,
                    "in_reply_to": mail.in_reply_to,
                    "refs": mail.references,
                    "from_address": mail.from_address,
                    "from_name": _no_nul(mail.from_name),
                    "to_addresses": mail.to_addresses,
                    "cc_addresses": mail.cc_addresses,
                    "subject": _no_nul(mail.subject),
                    "sent_at": mail.sent_at,
                    "imap_uidvalidity": uidvalidity,
                    "imap_uid": uid,
                    "size_bytes": mail.size_bytes,
                    "raw": raw,
                    "body_text": _no_nul(mail.body_text),
                    "body_html": _no_nul(mail.body_html) if mail.body_html else None,
                    "clean_text": _no_nul(mail.clean_text),
                    "flags": mail.flags,
                    "needs_person": mail.needs_person,
                    "auto_kind": mail.auto_kind,
                },
            )
            if stored_id is not None and mail.bounced_ids:
                # The staff see the bounce in the reply's thread and the reply as failed.
                await mail_store.mark_bounced(conn, tenant_id, mail.bounced_ids, mail.message_id)
            if stored_id is not None:
                for att in mail.attachments:
                    await mail_store.insert_attachment(
                        conn,
                        tenant_id,
                        stored_id,
                        filename=_no_nul(att.filename),
                        content_type=att.content_type,
                        size_bytes=att.size_bytes,
                        content=att.content,
                        refused_reason=att.refused_reason,
                    )
        await mail_store.advance_sync(conn, tenant_id, mailbox_id, uidvalidity, uid)
    if stored_id is None:
        result.duplicates += 1
        return None
    result.stored += 1
    result.stored_ids.append(stored_id)
    if mail.needs_person:
        result.flagged += 1
    if mail.auto_kind:
        result.automatic += 1
    return stored_id


async def _store_raw(
    pool: DictPool,
    tenant_id: uuid.UUID,
    mailbox_id: uuid.UUID,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    error: BaseException,
    result: PollResult,
) -> uuid.UUID | None:
    """Store ``raw`` with nothing parsed but its id, flagged ``store_failed`` for a person."""
    message_id = derived_message_id(raw)
    with contextlib.suppress(Exception):
        message_id = parse_message(raw).message_id
    async with tenant_scope(pool, tenant_id) as conn:
        row = await mail_store.lock_mailbox(conn, tenant_id, mailbox_id)
        if row["uidvalidity"] != uidvalidity or int(row["last_uid"]) >= uid:
            return None
        stored_id = None
        if not await mail_store.message_exists(conn, tenant_id, message_id):
            thread = await mail_store.create_thread(
                conn, tenant_id, mailbox_id, reply_token=new_token(), subject="", contact_email=""
            )
            stored_id = await mail_store.insert_message(
                conn,
                tenant_id,
                {
                    "mailbox_id": mailbox_id,
                    "thread_id": thread.id,
                    "message_id": message_id,
                    "message_id_derived": message_id.startswith("<derived."),
                    "imap_uidvalidity": uidvalidity,
                    "imap_uid": uid,
                    "size_bytes": len(raw),
                    "raw": raw,
                    "body_text": f"(not stored as parsed: {type(error).__name__})",
                    "flags": ["store_failed"],
                    "needs_person": True,
                },
            )
        await mail_store.advance_sync(conn, tenant_id, mailbox_id, uidvalidity, uid)
    if stored_id is None:
        result.duplicates += 1
        return None
    result.stored += 1
    result.flagged += 1
    result.stored_ids.append(stored_id)
    return stored_id


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # Postgres text cannot hold NUL
