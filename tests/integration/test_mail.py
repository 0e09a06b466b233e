"""The email plumbing against real servers on loopback: Dovecot (IMAP) started by a fixture,
aiosmtpd recording what it receives, and the embedded Postgres. Faults: IMAP down at poll time,
the connection cut mid-fetch, UIDVALIDITY changing, the same message twice, a 10 MB
attachment, malformed MIME, unknown and mislabelled charsets, an empty Message-ID, an
auto-reply loop, SMTP refusing and then accepting; and threading of a reply against a stranger
with the same subject."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from imapclient import IMAPClient

from desk.email import fetch, send
from desk.email.fetch import poll_mailbox
from desk.email.send import enqueue_reply, send_pending
from helpdesk import db, mailboxes
from helpdesk.config import Settings
from helpdesk.db import DictPool
from helpdesk.errors import InvalidInput
from helpdesk.mailboxes import MailboxInput, SecretBox
from helpdesk.tenants import create_tenant
from tests.support import dovecot as dovecot_support
from tests.support import mails
from tests.support.tcp_cut import CuttingProxy

pytestmark = pytest.mark.integration

SUPPORT = "support@desk.test"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[dovecot_support.Dovecot]:
    if dovecot_support.dovecot_binary() is None:
        pytest.skip(
            "dovecot is not installed (Debian package dovecot-imapd; `make dovecot` installs it)"
        )
    # Not under pytest's tmp_path: its parents are 0700, and under root Dovecot's auth and
    # mail processes run as other users that must read the passwd file and write the mail.
    root = Path(tempfile.mkdtemp(prefix="deskgraph-dovecot-"))
    server = dovecot_support.start(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def mail_pool(database_url: str) -> AsyncIterator[DictPool]:
    db.upgrade(database_url)
    pool = db.make_pool(database_url, 4)
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def mail_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"mail_timeout_s": 5.0})


class Recorder:
    """aiosmtpd handler: records each accepted message; refuses the next ``refuse`` with 451."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.refuse = 0
        self.refuse_permanently = False
        self.slow_s = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.slow_s:
            # Accepts, but answers after the client gave up: the "crash after the server
            # accepted it" window, seen from the sender.
            self.received.append(bytes(envelope.original_content or envelope.content))
            await asyncio.sleep(self.slow_s)
            return "250 OK"
        if self.refuse_permanently:
            return "554 5.7.1 rejected"
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.received.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    handler = Recorder()
    port = dovecot_support.free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


class Env:
    """One test's tenant, IMAP user and mailbox."""

    def __init__(
        self, pool: DictPool, box: SecretBox, settings: Settings, server: Any, user: str
    ) -> None:
        self.pool, self.box, self.settings, self.server, self.user = (
            pool,
            box,
            settings,
            server,
            user,
        )
        self.tenant_id: uuid.UUID = uuid.UUID(int=0)
        self.mailbox_id: uuid.UUID = uuid.UUID(int=0)

    def imap(self) -> IMAPClient:
        c = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=10)
        c.login(self.user, "secret")
        return c

    def deliver(self, *raws: bytes, folder: str = "INBOX") -> None:
        c = self.imap()
        try:
            for raw in raws:
                c.append(folder, raw)
        finally:
            c.logout()

    async def poll(self, **kw: Any) -> fetch.PollResult:
        return await poll_mailbox(
            self.pool,
            self.tenant_id,
            self.mailbox_id,
            box=self.box,
            settings=kw.pop("settings", self.settings),
            **kw,
        )

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, args)
            return list(await cur.fetchall())

    async def messages(self) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM mail_messages WHERE tenant_id = %s ORDER BY imap_uid", self.tenant_id
        )


async def make_env(
    pool: DictPool,
    box: SecretBox,
    settings: Settings,
    server: Any,
    *,
    imap_port: int | None = None,
    folder: str = "INBOX",
    smtp_port: int | None = None,
    tenant: Any = None,
) -> Env:
    user = server.new_user()
    env = Env(pool, box, settings, server, user)
    tenant = tenant or await create_tenant(pool, f"mail-{uuid.uuid4().hex[:10]}", "Mail Co")
    env.tenant_id = tenant.id
    if folder != "INBOX":
        c = env.imap()
        c.create_folder(folder)
        c.logout()
    mb = await mailboxes.create_mailbox(
        pool,
        tenant.id,
        MailboxInput(
            name="support",
            imap_host="127.0.0.1",
            imap_port=imap_port or server.port,
            imap_security="none",
            imap_user=user,
            imap_password="secret",
            imap_folder=folder,
            from_address=SUPPORT,
            from_name="Desk Support",
            smtp_host="127.0.0.1" if smtp_port else None,
            smtp_port=smtp_port,
            smtp_security="none" if smtp_port else None,
        ),
        box,
    )
    env.mailbox_id = mb.id
    return env


@pytest.fixture
async def env(mail_pool: DictPool, box: SecretBox, mail_settings: Settings, dovecot: Any) -> Env:
    return await make_env(mail_pool, box, mail_settings, dovecot)


async def test_passwords_are_encrypted_at_rest_and_never_listed(env: Env) -> None:
    (row,) = await env.rows("SELECT * FROM mailboxes WHERE id = %s", env.mailbox_id)
    assert b"secret" not in bytes(row["imap_password_enc"])
    listed = await mailboxes.list_mailboxes(env.pool, env.tenant_id)
    assert "secret" not in repr(listed)
    secrets_ = await mailboxes.get_mailbox_secrets(env.pool, env.tenant_id, env.mailbox_id, env.box)
    assert secrets_.imap_password == "secret" and "secret" not in repr(secrets_)
    other = SecretBox(Fernet.generate_key())
    with pytest.raises(ValueError, match="DESKGRAPH_MAIL_KEY"):
        await mailboxes.get_mailbox_secrets(env.pool, env.tenant_id, env.mailbox_id, other)
    r = await poll_mailbox(
        env.pool, env.tenant_id, env.mailbox_id, box=other, settings=env.settings
    )
    assert r.error and "DESKGRAPH_MAIL_KEY" in r.error and "secret" not in r.error
    mb = await mailboxes.get_mailbox(env.pool, env.tenant_id, "support")
    assert "ok" in await fetch.check_imap(mb, "secret")


async def test_a_poll_stores_each_message_once_and_leaves_seen_flags_alone(env: Env) -> None:
    env.deliver(mails.plain(), mails.plain(message_id="<m2@customer.test>", subject="Other"))
    r = await env.poll()
    assert (r.stored, r.duplicates, r.error) == (2, 0, None)
    assert (await env.poll()).stored == 0  # nothing new
    c = env.imap()
    c.select_folder("INBOX", readonly=True)
    flags = c.get_flags(c.search(["ALL"]))
    c.logout()
    assert all(b"\\Seen" not in f for f in flags.values())
    rows = await env.messages()
    assert [m["message_id"] for m in rows] == ["<m1@customer.test>", "<m2@customer.test>"]
    assert rows[0]["clean_text"].startswith("Hello, my printer jams")


async def test_imap_down_at_poll_time_is_recorded_and_the_next_poll_catches_up(
    mail_pool: DictPool, box: SecretBox, mail_settings: Settings, dovecot: Any
) -> None:
    closed = dovecot_support.free_port()  # nothing listens there
    env = await make_env(mail_pool, box, mail_settings, dovecot, imap_port=closed)
    env.deliver(mails.plain())
    r = await env.poll()
    assert r.stored == 0 and r.error and "MailConnectionError" in r.error
    mb = await mailboxes.get_mailbox(env.pool, env.tenant_id, env.mailbox_id)
    assert mb.last_error and mb.last_polled_at is not None
    await env.rows(
        "UPDATE mailboxes SET imap_port = %s WHERE id = %s RETURNING id",
        dovecot.port,
        env.mailbox_id,
    )
    r = await env.poll()
    assert (r.stored, r.error) == (1, None)
    assert (await mailboxes.get_mailbox(env.pool, env.tenant_id, env.mailbox_id)).last_error is None


async def test_a_connection_cut_mid_fetch_resumes_with_nothing_skipped_or_twice(
    mail_pool: DictPool, box: SecretBox, mail_settings: Settings, dovecot: Any
) -> None:
    proxy = CuttingProxy(dovecot.port, cut_after=None)
    try:
        env = await make_env(mail_pool, box, mail_settings, dovecot, imap_port=proxy.port)
        env.deliver(
            *[
                mails.plain(message_id=f"<cut{i}@customer.test>", body=f"message {i}\n" * 60)
                for i in range(12)
            ]
        )
        proxy.cut_after = 9000  # past login and select, a few messages in
        first = await env.poll()
        assert first.error is not None and proxy.cuts == 1
        assert 0 < first.stored < 12
        # A crash between messages: the callback after the next commit raises.
        proxy.cut_after = None

        async def crash(_: uuid.UUID) -> None:
            raise RuntimeError("worker killed")

        second = await env.poll(after_store=crash)
        assert second.stored == 1 and second.error and "worker killed" in second.error
        third = await env.poll()
        assert third.error is None
        assert first.stored + second.stored + third.stored == 12
        rows = await env.messages()
        assert [m["message_id"] for m in rows] == [f"<cut{i}@customer.test>" for i in range(12)]
        assert [m["imap_uid"] for m in rows] == list(range(1, 13))
    finally:
        proxy.close()


async def test_a_uidvalidity_change_rereads_the_folder_without_duplicates(
    mail_pool: DictPool, box: SecretBox, mail_settings: Settings, dovecot: Any
) -> None:
    env = await make_env(mail_pool, box, mail_settings, dovecot, folder="Support")
    a, b = mails.plain(message_id="<v1@c.test>"), mails.plain(message_id="<v2@c.test>")
    env.deliver(a, b, folder="Support")
    assert (await env.poll()).stored == 2
    c = env.imap()
    before = c.select_folder("Support")[b"UIDVALIDITY"]
    c.select_folder("INBOX")
    c.delete_folder("Support")
    c.create_folder("Support")
    after = c.select_folder("Support")[b"UIDVALIDITY"]
    c.logout()
    assert before != after
    env.deliver(b, a, mails.plain(message_id="<v3@c.test>"), folder="Support")
    r = await env.poll()
    assert r.uidvalidity_reset and (r.stored, r.duplicates) == (1, 2)
    mb = await mailboxes.get_mailbox(env.pool, env.tenant_id, env.mailbox_id)
    assert (mb.uidvalidity, mb.last_uid) == (after, 3)
    assert len(await env.messages()) == 3


async def test_the_same_message_delivered_twice_is_stored_once(env: Env) -> None:
    env.deliver(
        mails.plain(), mails.plain(), mails.plain(message_id=None), mails.plain(message_id=None)
    )
    r = await env.poll()
    assert (r.stored, r.duplicates) == (2, 2)
    derived = [m for m in await env.messages() if m["message_id_derived"]]
    assert len(derived) == 1 and derived[0]["message_id"].startswith("<derived.")


async def test_a_10_mb_attachment_is_kept_and_an_oversize_mail_is_flagged_not_stuck(
    env: Env, mail_settings: Settings
) -> None:
    big = mails.with_attachment(10_000_000)
    env.deliver(big, mails.plain(message_id="<after-big@c.test>"))
    r = await env.poll()
    assert (r.stored, r.error) == (2, None)
    (att,) = await env.rows(
        "SELECT a.size_bytes, length(a.content) AS kept, a.refused_reason FROM mail_attachments a"
        " JOIN mail_messages m ON m.id = a.message_id WHERE m.message_id = '<att@customer.test>'"
    )
    assert att == {"size_bytes": 10_000_000, "kept": 10_000_000, "refused_reason": None}
    # The same size over a lower limit: stored raw, flagged for a person; the next one still comes.
    small = mail_settings.model_copy(update={"mail_max_message_bytes": 1_000_000})
    env.deliver(
        mails.with_attachment(2_000_000, message_id="<big2@c.test>"),
        mails.plain(message_id="<after2@c.test>"),
    )
    r = await env.poll(settings=small)
    assert (r.stored, r.flagged, r.error) == (2, 1, None)
    (row,) = await env.rows(
        "SELECT flags, needs_person, length(raw) AS raw_len, size_bytes FROM mail_messages"
        " WHERE message_id = '<big2@c.test>'"
    )
    assert row["flags"] == ["oversize"] and row["needs_person"]
    assert row["raw_len"] == row["size_bytes"] > 2_000_000
    # Past the keep limit only the header is downloaded and kept.
    tiny = small.model_copy(update={"mail_keep_raw_bytes": 1_500_000})
    env.deliver(mails.with_attachment(2_000_000, message_id="<big3@c.test>"))
    r = await env.poll(settings=tiny)
    assert (r.stored, r.flagged, r.error) == (1, 1, None)
    (row,) = await env.rows(
        "SELECT flags, needs_person, length(raw) AS raw_len, size_bytes, subject"
        " FROM mail_messages WHERE message_id = '<big3@c.test>'"
    )
    assert row["flags"] == ["oversize", "raw_truncated"] and row["needs_person"]
    assert row["raw_len"] < 2000 < 2_000_000 < row["size_bytes"]
    assert row["subject"] == "Logs attached"


async def test_malformed_mime_and_odd_charsets_are_stored_and_never_stop_the_mailbox(
    env: Env,
) -> None:
    text = "Grüße, die Rechnung ist falsch"
    env.deliver(
        mails.MALFORMED,
        mails.GARBAGE,
        mails.raw_8bit(text.encode("utf-8"), "x-made-up", message_id="<unknown@c.test>"),
        mails.raw_8bit(text.encode("latin-1"), "utf-8", message_id="<mislabelled@c.test>"),
        mails.raw_8bit(text.encode("cp1252"), None, message_id="<undeclared@c.test>"),
        mails.plain(message_id="<"[:0] or None, body="no id here\n"),
        mails.plain(message_id="<last@c.test>"),
    )
    r = await env.poll()
    assert (r.stored, r.error) == (7, None)
    by_id = {m["message_id"]: m for m in await env.messages()}
    assert "mime_defects" in by_id["<broken@customer.test>"]["flags"]
    for mid in ("<unknown@c.test>", "<mislabelled@c.test>", "<undeclared@c.test>"):
        assert by_id[mid]["body_text"] == text and "charset_fallback" in by_id[mid]["flags"]
    assert "<last@c.test>" in by_id
    assert sum(1 for m in by_id.values() if m["message_id_derived"]) == 2  # garbage + no id


async def test_smtp_refusing_then_accepting_sends_exactly_once(
    mail_pool: DictPool,
    box: SecretBox,
    mail_settings: Settings,
    dovecot: Any,
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    env = await make_env(mail_pool, box, mail_settings, dovecot, smtp_port=port)
    env.deliver(mails.plain())
    await env.poll()
    (msg,) = await env.messages()
    row = await enqueue_reply(
        env.pool,
        env.tenant_id,
        env.mailbox_id,
        reply_to=msg["id"],
        body_text="Restart it.",
        approved_by="agent@desk.test",
    )
    # A wrong key: nothing sent, the row waits (it is not "uncertain": no server was reached).
    wrong = SecretBox(Fernet.generate_key())
    r = await send_pending(env.pool, env.tenant_id, box=wrong, settings=env.settings)
    assert (r.sent, r.retried, r.uncertain) == (0, 1, 0) and recorder.received == []
    await env.rows(
        "UPDATE mail_outbox SET next_attempt_at = now() WHERE id = %s RETURNING id", row.id
    )
    recorder.refuse = 1
    r = await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    assert (r.sent, r.retried) == (0, 1) and recorder.received == []
    assert (
        await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    ).sent == 0
    await env.rows(
        "UPDATE mail_outbox SET next_attempt_at = now() WHERE id = %s RETURNING id", row.id
    )
    r = await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    assert r.sent == 1
    assert (
        await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    ).sent == 0
    (raw,) = recorder.received
    sent = message_from_bytes(raw, policy=policy.default)
    assert sent["Message-ID"] == row.message_id and sent["In-Reply-To"] == "<m1@customer.test>"
    assert str(sent["Subject"]).startswith("Re: Printer jams [ref:")
    assert {p.get_content_type() for p in sent.walk()} >= {"text/plain", "text/html"}
    (out,) = await env.rows(
        "SELECT state, attempts, sent_at FROM mail_outbox WHERE id = %s", row.id
    )
    assert out["state"] == "sent" and out["attempts"] == 3 and out["sent_at"] is not None

    # A permanent refusal fails the row; a claim that never came back becomes uncertain.
    recorder.refuse_permanently = True
    row2 = await enqueue_reply(
        env.pool, env.tenant_id, env.mailbox_id, reply_to=msg["id"], body_text="Two"
    )
    r = await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    assert r.failed == 1
    recorder.refuse_permanently = False
    row3 = await enqueue_reply(
        env.pool, env.tenant_id, env.mailbox_id, reply_to=msg["id"], body_text="Three"
    )
    await env.rows(
        "UPDATE mail_outbox SET state = 'sending', claimed_at = now() - interval '1 hour'"
        " WHERE id = %s RETURNING id",
        row3.id,
    )
    r = await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    assert (r.sent, r.uncertain) == (0, 1) and len(recorder.received) == 1
    states = {
        x["id"]: x["state"]
        for x in await env.rows(
            "SELECT id, state FROM mail_outbox WHERE tenant_id = %s", env.tenant_id
        )
    }
    assert states == {row.id: "sent", row2.id: "failed", row3.id: "uncertain"}
    # The server takes the message but its answer never arrives: uncertain, not sent again.
    recorder.slow_s = 2.0
    row4 = await enqueue_reply(
        env.pool, env.tenant_id, env.mailbox_id, reply_to=msg["id"], body_text="Four"
    )
    impatient = env.settings.model_copy(update={"mail_timeout_s": 0.5})
    r = await send_pending(env.pool, env.tenant_id, box=env.box, settings=impatient)
    assert r.uncertain == 1 and len(recorder.received) == 2
    recorder.slow_s = 0.0
    await env.rows(
        "UPDATE mail_outbox SET next_attempt_at = now() WHERE tenant_id = %s RETURNING id",
        env.tenant_id,
    )
    assert (
        await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    ).sent == 0
    (out4,) = await env.rows("SELECT state, last_error FROM mail_outbox WHERE id = %s", row4.id)
    assert out4["state"] == "uncertain" and "may have accepted" in out4["last_error"]
    assert len(recorder.received) == 2
    mb = await mailboxes.get_mailbox(env.pool, env.tenant_id, env.mailbox_id)
    assert "SMTP ok" in await send.check_smtp(mb, None)


async def test_an_auto_reply_loop_is_recorded_and_never_answered(
    mail_pool: DictPool,
    box: SecretBox,
    mail_settings: Settings,
    dovecot: Any,
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    env = await make_env(mail_pool, box, mail_settings, dovecot, smtp_port=port)
    env.deliver(mails.plain())
    await env.poll()
    (msg,) = await env.messages()
    out = await enqueue_reply(
        env.pool, env.tenant_id, env.mailbox_id, reply_to=msg["id"], body_text="Hi"
    )
    await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    # The customer's autoresponder answers our reply, and a misconfigured forward bounces our
    # own mail back to us.
    env.deliver(
        mails.plain(
            message_id="<ooo@customer.test>",
            subject="Automatic reply: Re: Printer jams",
            in_reply_to=out.message_id,
            headers={"Auto-Submitted": "auto-replied"},
        ),
        recorder.received[0],
    )
    r = await env.poll()
    assert r.stored == 1 and r.duplicates == 1  # our own message is ours already (the outbox)
    rows = {m["message_id"]: m for m in await env.messages()}
    ooo = rows["<ooo@customer.test>"]
    assert ooo["auto_kind"] == "auto_reply" and ooo["thread_id"] == msg["thread_id"]
    with pytest.raises(InvalidInput, match="never answered"):
        await enqueue_reply(
            env.pool, env.tenant_id, env.mailbox_id, reply_to=ooo["id"], body_text="x"
        )
    # The reply bounces: recorded in its thread for a person, and the reply is failed.
    env.deliver(mails.bounce(out.message_id))
    assert (await env.poll()).stored == 1
    (dsn,) = await env.rows(
        "SELECT auto_kind, thread_id, needs_person FROM mail_messages"
        " WHERE message_id = '<dsn1@mx.customer.test>'"
    )
    assert dsn == {"auto_kind": "bounce", "thread_id": msg["thread_id"], "needs_person": True}
    (state,) = await env.rows("SELECT state, last_error FROM mail_outbox WHERE id = %s", out.id)
    assert state["state"] == "failed" and "bounced" in state["last_error"]
    # Our own address writing in (a loop through another system) is recorded as a loop.
    env.deliver(mails.plain(sender=SUPPORT, message_id="<fwd@elsewhere.test>"))
    await env.poll()
    (loop,) = await env.rows(
        "SELECT auto_kind FROM mail_messages WHERE message_id = '<fwd@elsewhere.test>'"
    )
    assert loop["auto_kind"] == "loop"
    assert len(recorder.received) == 1


async def test_a_reply_joins_its_thread_and_a_same_subject_stranger_does_not(
    mail_pool: DictPool,
    box: SecretBox,
    mail_settings: Settings,
    dovecot: Any,
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    env = await make_env(mail_pool, box, mail_settings, dovecot, smtp_port=port)
    env.deliver(mails.plain())
    await env.poll()
    (first,) = await env.messages()
    out = await enqueue_reply(
        env.pool, env.tenant_id, env.mailbox_id, reply_to=first["id"], body_text="Try this"
    )
    await send_pending(env.pool, env.tenant_id, box=env.box, settings=env.settings)
    subject = str(message_from_bytes(recorder.received[0], policy=policy.default)["Subject"])
    env.deliver(
        # Alice answers our reply and changes the subject: same thread.
        mails.plain(
            message_id="<a2@customer.test>",
            subject="Still broken!",
            in_reply_to=out.message_id,
            references=f"<m1@customer.test> {out.message_id}",
        ),
        # Bob copies the subject with its token: never merged into Alice's thread.
        mails.plain(sender="bob@stranger.test", message_id="<b1@stranger.test>", subject=subject),
        # Alice again, only the subject token: same thread (she is the thread's contact).
        mails.plain(message_id="<a3@customer.test>", subject=subject),
        # Alice, same subject as her first mail, no reference: a new thread.
        mails.plain(message_id="<a4@customer.test>"),
        # Bob references a message id that is not ours: new thread of his own.
        mails.plain(
            sender="bob@stranger.test", message_id="<b2@stranger.test>", in_reply_to="<nope@x>"
        ),
    )
    assert (await env.poll()).stored == 5
    thread = {m["message_id"]: m["thread_id"] for m in await env.messages()}
    t = first["thread_id"]
    assert thread["<a2@customer.test>"] == t and thread["<a3@customer.test>"] == t
    assert thread["<b1@stranger.test>"] != t and thread["<a4@customer.test>"] != t
    assert thread["<b2@stranger.test>"] not in (t, thread["<b1@stranger.test>"])
    (th,) = await env.rows(
        "SELECT contact_email, conversation_id FROM mail_threads WHERE id = %s", t
    )
    assert th == {"contact_email": "alice@customer.test", "conversation_id": None}


def test_the_mailbox_cli(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("DESKGRAPH_MAIL_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("DESKGRAPH_IMAP_PASSWORD", "hunter2-imap")
    runner = CliRunner()
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(app, ["tenant", "create", slug, "--name", "CLI Co"]).exit_code == 0
    base = [
        "mailbox",
        "add",
        "--tenant",
        slug,
        "--name",
        "main",
        "--imap-host",
        "127.0.0.1",
        "--imap-user",
        "x",
        "--from-address",
        "help@cli.test",
        "--imap-security",
        "none",
        "--imap-port",
        str(dovecot_support.free_port()),
    ]
    added = runner.invoke(app, base)
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["mailbox", "list", "--tenant", slug])
    assert "main" in listed.output and "hunter2" not in listed.output
    tested = runner.invoke(app, ["mailbox", "test", "--tenant", slug, "main"])
    assert tested.exit_code == 1 and "failed" in tested.output and "hunter2" not in tested.output
    polled = runner.invoke(app, ["mail", "poll", "--tenant", slug, "--once"])
    assert polled.exit_code == 0 and "stopped" in polled.output
    bad = runner.invoke(app, [*base[:-2], "--imap-port", "70000"])
    assert bad.exit_code == 2 and "1-65535" in bad.output
    bad = runner.invoke(app, [*base, "--imap-security", "ssl3"])
    assert bad.exit_code == 2
    dup = runner.invoke(app, base)
    assert dup.exit_code == 2 and "already exists" in dup.output
    assert runner.invoke(app, ["mailbox", "remove", "--tenant", slug, "main"]).exit_code == 0
    gone = runner.invoke(app, ["mailbox", "remove", "--tenant", slug, "main"])
    assert gone.exit_code == 2 and "no mailbox" in gone.output


async def test_mail_tables_are_under_row_level_security(env: Env) -> None:
    import psycopg

    from helpdesk.tenancy import tenant_scope

    env.deliver(mails.plain())
    await env.poll()
    other = await create_tenant(env.pool, f"other-{uuid.uuid4().hex[:8]}", "Other Co")
    tables = ("mailboxes", "mail_threads", "mail_messages", "mail_attachments", "mail_outbox")
    async with tenant_scope(env.pool, other.id) as conn:
        for table in tables:
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
            assert (await cur.fetchone()) == {"n": 0}, table
    async with tenant_scope(env.pool, env.tenant_id) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM mail_messages")
        assert (await cur.fetchone()) == {"n": 1}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(env.pool, other.id) as conn:
            await conn.execute(
                "INSERT INTO mail_threads (tenant_id, mailbox_id, reply_token, contact_email)"
                " VALUES (%s, %s, 'aaaaaaaaaaaa', 'x@y')",
                (env.tenant_id, env.mailbox_id),
            )


async def test_a_few_hundred_messages_with_faults_are_all_stored_once(env: Env) -> None:
    import time

    batch = [
        mails.plain(message_id=f"<bulk{i}@c.test>", sender=f"p{i % 17}@c.test", body=f"n {i}\n")
        for i in range(300)
    ]
    batch[50:50] = [batch[10], mails.MALFORMED, mails.plain(message_id=None, body="x\n")]
    env.deliver(*batch)
    started = time.perf_counter()
    r = await env.poll()
    elapsed = time.perf_counter() - started
    assert (r.stored, r.duplicates, r.error) == (302, 1, None)
    print(f"stored {r.stored} in {elapsed:.2f}s: {r.stored / elapsed:.0f}/s")
    (n,) = await env.rows(
        "SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM mail_messages"
        " WHERE tenant_id = %s",
        env.tenant_id,
    )
    assert n == {"n": 302, "d": 302}


async def test_a_message_the_database_refuses_is_kept_raw_for_a_person(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from helpdesk import mail_store

    real = mail_store.insert_attachment

    async def refuse(*args: Any, **kw: Any) -> None:
        if kw.get("filename") == "poison.bin":
            raise psycopg.errors.DataError("value refused")
        await real(*args, **kw)

    monkeypatch.setattr(mail_store, "insert_attachment", refuse)
    poison = mails.with_attachment(100, message_id="<poison@c.test>").replace(
        b"logs.bin", b"poison.bin"
    )
    eight_bit_name = mails.with_attachment(100, message_id="<latin@c.test>").replace(
        b'filename="logs.bin"', 'filename="Grüße.bin"'.encode("latin-1")
    )
    env.deliver(poison, eight_bit_name, mails.plain(message_id="<next@c.test>"))
    r = await env.poll()
    assert (r.stored, r.flagged, r.error) == (3, 1, None)
    rows = {m["message_id"]: m for m in await env.messages()}
    assert rows["<poison@c.test>"]["flags"] == ["store_failed"]
    assert (
        bytes(rows["<poison@c.test>"]["raw"])
        == poison.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        or rows["<poison@c.test>"]["size_bytes"] > 0
    )
    (att,) = await env.rows(
        "SELECT a.filename FROM mail_attachments a JOIN mail_messages m ON m.id = a.message_id"
        " WHERE m.message_id = '<latin@c.test>'"
    )
    assert att["filename"] == "Grüße.bin"


async def test_two_pollers_of_one_mailbox_store_each_message_once(env: Env) -> None:
    env.deliver(*[mails.plain(message_id=f"<par{i}@c.test>") for i in range(30)])
    a, b = await asyncio.gather(env.poll(), env.poll())
    assert a.error is None and b.error is None
    assert a.stored + b.stored == 30
    assert [m["imap_uid"] for m in await env.messages()] == list(range(1, 31))


async def test_the_queue_polls_a_mailbox_when_its_interval_has_passed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from desk import queue
    from helpdesk import mailboxes as mailbox_module

    # the task decrypts with the settings' key; this test's mailbox was sealed with env.box
    monkeypatch.setattr(mailbox_module, "load_mail_key", lambda settings: b"")
    monkeypatch.setattr(mailbox_module, "SecretBox", lambda key: env.box)
    context = SimpleNamespace(
        additional_context={"services": SimpleNamespace(pool=env.pool), "settings": env.settings}
    )
    env.deliver(mails.plain())
    assert await queue.poll_mailboxes.func(context) >= 1
    assert [m["message_id"] for m in await env.messages()] == ["<m1@customer.test>"]
    # polled just now: not due again until its interval has passed
    async with env.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT last_polled_at IS NOT NULL AS polled FROM mailboxes WHERE id = %s",
            (env.mailbox_id,),
        )
        assert (await cur.fetchone())["polled"]
    env.deliver(mails.plain(message_id="<m2@customer.test>", subject="Later"))
    await queue.poll_mailboxes.func(context)
    assert len(await env.messages()) == 1  # its 60 s have not passed
    async with env.pool.connection() as conn:
        await conn.execute(
            "UPDATE mailboxes SET last_polled_at = now() - interval '2 minutes' WHERE id = %s",
            (env.mailbox_id,),
        )
    await queue.poll_mailboxes.func(context)
    assert len(await env.messages()) == 2


async def test_a_mail_becomes_a_ticket_and_a_held_draft_whose_approval_is_mailed_once(
    mail_pool: DictPool,
    box: SecretBox,
    mail_settings: Settings,
    dovecot: Any,
    smtp: tuple[Recorder, int],
    services: Any,
    graph: Any,
    demo: Any,
) -> None:
    from desk.actions import ActionRequest
    from desk.email import intake
    from desk.service import Desk

    recorder, port = smtp
    env = await make_env(mail_pool, box, mail_settings, dovecot, smtp_port=port, tenant=demo)
    desk = Desk.build(graph, services)
    tag = uuid.uuid4().hex[:8]
    first_id = f"<fee-{tag}@customer.test>"
    env.deliver(
        mails.plain(
            sender=f"Kim Lee <kim-{tag}@customer.test>",
            message_id=first_id,
            subject=f"Call-out fee {tag}",
            body="Hi, how much is your call-out fee?\n\nThanks,\nKim",
        )
    )
    assert (await env.poll()).stored == 1
    assert await intake.intake_pending(services, desk, tenant_id=demo.id) >= 1
    assert await intake.intake_pending(services, desk, tenant_id=demo.id) == 0  # once

    (thread,) = await env.rows(
        "SELECT t.* FROM mail_threads t JOIN mail_messages m ON m.thread_id = t.id"
        " WHERE m.message_id = %s",
        first_id,
    )
    conv, ticket_id = thread["conversation_id"], thread["ticket_id"]
    (c,) = await env.rows("SELECT channel, contact_id FROM conversations WHERE id = %s", conv)
    assert c["channel"] == "email" and c["contact_id"] is not None
    (t,) = await env.rows("SELECT subject, channel, status FROM tickets WHERE id = %s", ticket_id)
    assert (t["subject"], t["channel"]) == (f"Call-out fee {tag}", "email")
    said = await env.rows(
        "SELECT sender, text FROM messages WHERE conversation_id = %s ORDER BY created_at", conv
    )
    assert [m["sender"] for m in said] == ["customer"]  # the AI's draft waits for a person
    assert "call-out fee" in said[0]["text"] and "Thanks" not in said[0]["text"]
    assert await intake.queue_replies(services, tenant_id=demo.id) == 0

    outcome = await desk.actions.act(
        demo, conv, ActionRequest(action="approve", agent="Alex Agent")
    )
    assert outcome is not None
    assert await intake.queue_replies(services, tenant_id=demo.id) == 1
    assert await intake.queue_replies(services, tenant_id=demo.id) == 0  # one mail per reply
    sent = await send_pending(env.pool, demo.id, box=env.box, settings=env.settings)
    assert sent.sent == 1 and len(recorder.received) == 1
    mail = message_from_bytes(recorder.received[0], policy=policy.default)
    assert mail["In-Reply-To"] == first_id and mail["Subject"].startswith("Re: Call-out fee")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("Hello Kim,") and "$89" in text
    assert "Sources:" in text and "[pricing-overview]" not in text
    assert text.rstrip().endswith("Brightwater Home Services")

    # the customer answers in the thread: the same conversation and ticket, a new turn
    env.deliver(
        mails.plain(
            sender=f"Kim Lee <kim-{tag}@customer.test>",
            message_id=f"<fee2-{tag}@customer.test>",
            subject=f"Re: Call-out fee {tag}",
            in_reply_to=mail["Message-ID"],
            body="Great, and do you work on Saturdays?",
        )
    )
    assert (await env.poll()).stored == 1
    await intake.intake_pending(services, desk, tenant_id=demo.id)
    threads = await env.rows(
        "SELECT DISTINCT thread_id FROM mail_messages WHERE message_id IN (%s, %s)",
        first_id,
        f"<fee2-{tag}@customer.test>",
    )
    assert len(threads) == 1
    said = await env.rows(
        "SELECT sender FROM messages WHERE conversation_id = %s AND sender = 'customer'", conv
    )
    assert len(said) == 2
    open_tickets = await env.rows(
        "SELECT id FROM tickets WHERE conversation_id = %s"
        " AND status NOT IN ('resolved', 'closed')",
        conv,
    )
    assert [r["id"] for r in open_tickets] == [ticket_id]

    # the conversation is closed; the customer writes again in the thread: a new conversation
    # and ticket take it, and the sweep is not stopped by the closed one
    async with services.pool.connection() as conn:
        await conn.execute("UPDATE conversations SET status = 'closed' WHERE id = %s", (conv,))
    env.deliver(
        mails.plain(
            sender=f"Kim Lee <kim-{tag}@customer.test>",
            message_id=f"<fee3-{tag}@customer.test>",
            subject=f"Re: Call-out fee {tag}",
            in_reply_to=mail["Message-ID"],
            body="One more thing: do you charge extra on Sundays?",
        )
    )
    assert (await env.poll()).stored == 1
    assert await intake.intake_pending(services, desk, tenant_id=demo.id) >= 1
    (again,) = await env.rows(
        "SELECT conversation_id FROM mail_threads WHERE id = %s", thread["id"]
    )
    assert again["conversation_id"] not in (None, conv)
    (later,) = await env.rows(
        "SELECT count(*) AS n FROM messages WHERE conversation_id = %s AND sender = 'customer'",
        again["conversation_id"],
    )
    assert later["n"] == 1
    pending = await env.rows(
        "SELECT count(*) AS n FROM mail_messages WHERE tenant_id = %s AND intake_at IS NULL",
        demo.id,
    )
    assert pending[0]["n"] == 0

    # what the AI says without a person (here: not in our articles) is not mailed
    before = len(recorder.received)
    env.deliver(
        mails.plain(
            sender=f"Sam <sam-{tag}@customer.test>",
            message_id=f"<rails-{tag}@customer.test>",
            subject="Towel rails",
            body="Do you repair heated towel rails in bathrooms?",
        )
    )
    assert (await env.poll()).stored == 1
    await intake.intake_pending(services, desk, tenant_id=demo.id)
    (rails,) = await env.rows(
        "SELECT t.conversation_id FROM mail_threads t JOIN mail_messages m ON m.thread_id = t.id"
        " WHERE m.message_id = %s",
        f"<rails-{tag}@customer.test>",
    )
    ai = await env.rows(
        "SELECT text FROM messages WHERE conversation_id = %s AND sender = 'ai'",
        rails["conversation_id"],
    )
    assert ai, "the offline tier answered the towel-rail mail somehow"
    assert await intake.queue_replies(services, tenant_id=demo.id) == 0
    await send_pending(env.pool, demo.id, box=env.box, settings=env.settings)
    assert len(recorder.received) == before
