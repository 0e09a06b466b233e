"""Notifications to staff by email (desk/staff_mail.py) against a real SMTP server on loopback
(aiosmtpd) and the real database: only the people who chose email for a kind get it, once
however often the task runs, through the tenant's mailbox SMTP and the outbox's sender (a
refusal is retried); a tenant without SMTP gets no mail and no backlog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from desk import staff_mail
from desk.email.send import send_pending
from helpdesk import mailboxes, notifications, tickets
from helpdesk.audit import Actor
from helpdesk.config import Settings
from helpdesk.mailboxes import MailboxInput, SecretBox
from helpdesk.tenancy import tenant_scope
from tests.support import dovecot as dovecot_support
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration


class Inbox:
    """aiosmtpd handler: keeps what it accepts; refuses the next ``refuse`` with 451."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = dovecot_support.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def _mailbox(pool: Any, tenant_id: uuid.UUID, box: SecretBox, port: int) -> None:
    await mailboxes.create_mailbox(
        pool,
        tenant_id,
        MailboxInput(
            name="support",
            imap_host="127.0.0.1",
            imap_port=1,
            imap_security="none",
            imap_user="support",
            imap_password="secret",
            from_address="support@desk.test",
            from_name="Desk Support",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        ),
        box,
    )


async def _outbox(pool: Any, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT * FROM mail_outbox WHERE tenant_id = %s ORDER BY created_at", (tenant_id,)
        )
        return list(await cur.fetchall())


async def test_staff_get_the_kinds_they_chose_by_email_once(
    services: Any, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    box = SecretBox(Fernet.generate_key())
    staff = await make_staff(services.pool)
    tenant = staff.tenant.id
    await _mailbox(services.pool, tenant, box, port)
    alice, bob = staff.ids["alice"], staff.ids["bob"]
    await notifications.set_preferences(
        services.pool, tenant, alice, {"assigned": {"in_app": True, "email": True}}
    )
    await notifications.set_preferences(
        services.pool, tenant, bob, {"urgent": {"in_app": True, "email": False}}
    )
    async with tenant_scope(services.pool, tenant) as conn:
        ticket = await tickets.create_ticket(
            conn, tenant, subject="Boiler leaking", actor=Actor("ann"), priority="urgent"
        )
        await tickets.update_ticket(
            conn, tenant, ticket["id"], {"assignee_id": alice}, actor=Actor("ann")
        )
    # urgent (the desk) and assigned (alice): only alice chose email, for assigned only.
    assert await staff_mail.email_notifications(services.pool) == 1
    assert await staff_mail.email_notifications(services.pool) == 0  # once
    (row,) = await _outbox(services.pool, tenant)
    assert row["to_addresses"] == [staff.emails["alice"]] and row["thread_id"] is None

    inbox.refuse = 1  # the server refuses the first attempt: retried by the outbox's sender
    first = await send_pending(services.pool, tenant, box=box, settings=settings)
    assert first.retried == 1 and not inbox.received
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE mail_outbox SET next_attempt_at = now() WHERE tenant_id = %s", (tenant,)
        )
    second = await send_pending(services.pool, tenant, box=box, settings=settings)
    assert second.sent == 1
    ((rcpt, raw),) = inbox.received
    assert rcpt == [staff.emails["alice"]]
    mail = message_from_bytes(raw, policy=policy.default)
    assert f"T-{ticket['number']}" in str(mail["Subject"]) and "[assigned]" in str(mail["Subject"])
    assert "Boiler leaking" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Nothing more to send, however often the tasks run.
    assert await staff_mail.email_notifications(services.pool) == 0
    assert (await send_pending(services.pool, tenant, box=box, settings=settings)).sent == 0
    assert len(inbox.received) == 1


async def test_a_tenant_without_smtp_gets_no_mail_and_no_backlog(services: Any) -> None:
    staff = await make_staff(services.pool)
    tenant = staff.tenant.id
    await notifications.set_preferences(
        services.pool, tenant, staff.ids["alice"], {"urgent": {"in_app": True, "email": True}}
    )
    async with tenant_scope(services.pool, tenant) as conn:
        await tickets.create_ticket(
            conn, tenant, subject="Site down", actor=Actor("ann"), priority="urgent"
        )
    await staff_mail.email_notifications(services.pool)
    assert await _outbox(services.pool, tenant) == []
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE tenant_id = %s AND emailed_at IS NULL",
            (tenant,),
        )
        assert (await cur.fetchone())["n"] == 0  # type: ignore[index]
