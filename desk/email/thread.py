"""Threading: which thread (future ticket) an inbound message joins.

In order, and the first that answers wins:

1. ``In-Reply-To`` / ``References`` naming a message we stored or sent: its thread (the newest
   such reference). A changed subject stays in its thread.
2. A reply token in one of those references (our Message-IDs are ``<dg.TOKEN.RANDOM@domain>``):
   that thread, even if the exact message is not ours to find (a client that rewrote ids).
3. A reply token in the subject (``[ref:TOKEN]``): that thread, *only if the sender is the
   thread's contact*. A subject or a ticket number alone never merges a stranger's mail.
4. Otherwise a new thread, even for the same person writing again with the same subject.
"""

from __future__ import annotations

import re
import secrets
import uuid

from desk.email.parse import OUR_ID_PREFIX, ParsedMail
from helpdesk import mail_store
from helpdesk.mail_store import Conn, ThreadRef

_ID_TOKEN = re.compile(r"^<" + re.escape(OUR_ID_PREFIX) + r"([0-9a-f]{12})\.", re.IGNORECASE)
_SUBJECT_TOKEN = re.compile(r"\[ref:([0-9a-f]{12})\]", re.IGNORECASE)


def new_token() -> str:
    """A fresh reply token (12 hex digits)."""
    return secrets.token_hex(6)


def our_message_id(token: str, domain: str) -> str:
    """A Message-ID of ours that carries the thread's reply token."""
    return f"<{OUR_ID_PREFIX}{token}.{secrets.token_hex(8)}@{domain}>"


def subject_with_token(subject: str, token: str) -> str:
    """``Re: subject [ref:TOKEN]`` (no second ``Re:``, no second token)."""
    base = _SUBJECT_TOKEN.sub("", subject).strip()
    if not re.match(r"^(re|aw|sv)\s*:", base, re.IGNORECASE):
        base = f"Re: {base}" if base else "Re:"
    return f"{base} [ref:{token}]"


def token_in_ids(ids: list[str]) -> str | None:
    """The reply token of the newest of our ids among ``ids``."""
    for mid in reversed(ids):
        match = _ID_TOKEN.match(mid)
        if match:
            return match.group(1).lower()
    return None


def token_in_subject(subject: str) -> str | None:
    """The reply token in a subject, if any."""
    match = _SUBJECT_TOKEN.search(subject)
    return match.group(1).lower() if match else None


async def thread_for(
    conn: Conn, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, mail: ParsedMail
) -> tuple[ThreadRef, str]:
    """The thread ``mail`` joins (created if new) and how it was found: ``reference``,
    ``reference_token``, ``subject_token`` or ``new``."""
    # A bounce rarely references the reply it returns, but quotes it: it joins that thread.
    refs = list(
        dict.fromkeys(
            [*mail.bounced_ids, *mail.references, *([mail.in_reply_to] if mail.in_reply_to else [])]
        )
    )
    found = await mail_store.thread_by_message_ids(conn, tenant_id, refs)
    if found is not None:
        return found, "reference"
    token = token_in_ids(refs)
    if token:
        found = await mail_store.thread_by_token(conn, tenant_id, token)
        if found is not None:
            return found, "reference_token"
    token = token_in_subject(mail.subject)
    if token and mail.from_address:
        found = await mail_store.thread_by_token(conn, tenant_id, token)
        if found is not None and found.contact_email == mail.from_address.lower():
            return found, "subject_token"
    created = await mail_store.create_thread(
        conn,
        tenant_id,
        mailbox_id,
        reply_token=new_token(),
        subject=_SUBJECT_TOKEN.sub("", mail.subject).strip(),
        contact_email=mail.from_address or "",
    )
    return created, "new"
