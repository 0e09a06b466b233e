"""Mail benchmark (issue 16): messages through a real Dovecot and a recording SMTP server, with
faults injected, into the desk and back; prints one JSON document.

What it does, on its own database (``deskgraph_bench_mail`` on the embedded Postgres, made
afresh) with the demo tenant loaded:

1. **Delivers** ``--messages`` mails (default 1,000) into a Dovecot mailbox on loopback:
   support questions (the demo question set, each made unique), with faults mixed in: every
   25th a second delivery of an earlier message, every 20th an auto-reply, every 40th without
   a Message-ID, every 30th undeclared 8-bit text, every 100th a 1 MB attachment, one
   malformed MIME message.
2. **Fetches** them with the "worker" killed right after the first commit (``after_store``
   raising), then through a proxy that cuts the connection mid-fetch, polling until nothing
   is new: ``stored_per_s`` is stored messages over the time of all polls.
3. **Takes them into the desk** (``desk.email.intake``: a conversation, a ticket and an
   offline AI turn each; the email channel holds every draft): ``triaged_per_s``.
4. **Approves** ``--approve`` held drafts (default 100), queues their replies twice (the second
   must queue nothing) and sends with the SMTP server refusing the first five, then accepting.

Counted, each must be 0: ``lost`` (a distinct message delivered and not stored),
``duplicated`` (a message stored twice, a thread with two conversations, a conversation with
two open tickets, a mail taken in as two customer messages), ``sent_twice`` (a reply mailed
twice), ``auto_replies_answered``.

Usage: ``python bench/mail.py [--messages 1000] [--approve 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from desk.actions import ActionRequest  # noqa: E402
from desk.email import intake  # noqa: E402
from desk.email.fetch import poll_mailbox  # noqa: E402
from desk.email.send import send_pending  # noqa: E402
from desk.service import Desk  # noqa: E402
from graph.graph import build_graph  # noqa: E402
from graph.runtime import open_checkpointer, open_services  # noqa: E402
from helpdesk import db, mailboxes  # noqa: E402
from helpdesk.config import get_settings  # noqa: E402
from helpdesk.errors import DeskError  # noqa: E402
from helpdesk.mailboxes import MailboxInput, SecretBox  # noqa: E402
from tests.support import dovecot, mails  # noqa: E402
from tests.support.tcp_cut import CuttingProxy  # noqa: E402

QUESTIONS = ROOT / "evals" / "datasets" / "demo_questions.jsonl"


class Recorder:
    """aiosmtpd handler: refuses the first ``refuse`` messages with 451, records the rest."""

    def __init__(self, refuse: int) -> None:
        self.refuse, self.received = refuse, []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.received.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"


def auto_reply(i: int) -> bytes:
    return (
        f"From: away{i}@customer.test\r\nTo: support@desk.test\r\nSubject: Out of office\r\n"
        f"Message-ID: <auto{i}@customer.test>\r\nAuto-Submitted: auto-replied\r\n"
        f"Content-Type: text/plain\r\n\r\nI am away until Monday.\r\n"
    ).encode()


def batch(n: int) -> tuple[list[bytes], int, set[str]]:
    """The deliveries, how many distinct messages they hold, the auto-replies' ids."""
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()]
    out: list[bytes] = []
    distinct, autos = 0, set()
    for i in range(n):
        q = questions[i % len(questions)]
        if i == 7:
            out.append(mails.MALFORMED)
        elif i and i % 25 == 0:
            out.append(out[i // 2])  # an earlier message, delivered again
            continue
        elif i % 20 == 0:
            out.append(auto_reply(i))
            autos.add(f"<auto{i}@customer.test>")
        elif i % 40 == 0:
            out.append(
                mails.plain(message_id=None, sender=f"c{i}@customer.test", body=f"{q} ({i})\n")
            )
        elif i % 30 == 0:
            body = f"{q} ({i}) gr\u00fc\u00dfe".encode("latin-1", "replace")
            out.append(mails.raw_8bit(body, None, message_id=f"<cs{i}@customer.test>"))
        elif i % 100 == 0:
            out.append(mails.with_attachment(1_000_000, message_id=f"<att{i}@customer.test>"))
        else:
            out.append(
                mails.plain(
                    message_id=f"<q{i}@customer.test>",
                    sender=f"Customer {i} <c{i % 97}@customer.test>",
                    subject=f"Question {i}",
                    body=f"Hello,\n\n{q}\n\nThanks,\nCustomer {i}\n",
                )
            )
        distinct += 1
    return out, distinct, autos


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--approve", type=int, default=100)
    args = parser.parse_args()

    settings = get_settings()
    url = db.with_database(db.server_url(settings), "deskgraph_bench_mail")
    db.drop_database(url)
    db.ensure_database(url)
    db.upgrade(url)
    root = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    server = dovecot.start(root)
    recorder = Recorder(refuse=5)
    smtp = Controller(recorder, hostname="127.0.0.1", port=dovecot.free_port())
    smtp.start()
    proxy = CuttingProxy(server.port, cut_after=None)
    box = SecretBox(Fernet.generate_key())
    out: dict[str, Any] = {"messages": args.messages}
    try:
        async with open_services(settings, database_url=url) as services:
            from cli.demo import ensure_demo

            demo, _ = await ensure_demo(services)
            desk = Desk.build(build_graph(services, await open_checkpointer(services)), services)
            user = server.new_user()
            mb = await mailboxes.create_mailbox(
                services.pool, demo.id,
                MailboxInput(
                    name="bench", imap_host="127.0.0.1", imap_port=proxy.port,
                    imap_security="none", imap_user=user, imap_password="secret",
                    from_address="support@desk.test", from_name="Support",
                    smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                ),
                box,
            )  # fmt: skip
            deliveries, distinct, autos = batch(args.messages)
            c = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=30)
            c.login(user, "secret")
            for raw in deliveries:
                c.append("INBOX", raw)
            c.logout()

            # 2. fetch, with a cut connection and a crash after a commit
            mail_settings = settings.model_copy(update={"mail_timeout_s": 10.0})
            crashed = False

            async def crash_once(_: Any) -> None:
                nonlocal crashed
                if not crashed:
                    crashed = True
                    raise RuntimeError("worker killed after a commit")

            stored = polls = 0
            faults: list[str] = []
            started = time.perf_counter()
            while True:
                # the first poll's worker dies after its first commit; the second one's
                # connection is cut mid-fetch; then polls run until nothing is new
                proxy.cut_after = 400_000 if polls == 1 else None
                r = await poll_mailbox(
                    services.pool, demo.id, mb.id, box=box, settings=mail_settings,
                    after_store=None if crashed else crash_once,
                )  # fmt: skip
                polls += 1
                stored += r.stored
                if r.error:
                    faults.append(r.error.split(":")[0][:60])
                elif r.stored == 0:
                    break
            fetch_s = time.perf_counter() - started
            out.update(
                stored=stored, polls=polls, faults=faults, fetch_s=round(fetch_s, 2),
                stored_per_s=round(stored / fetch_s, 1),
            )  # fmt: skip

            # 3. into the desk
            started = time.perf_counter()
            taken = 0
            while n := await intake.intake_pending(services, desk, tenant_id=demo.id, limit=100):
                taken += n
            triage_s = time.perf_counter() - started
            async with services.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM mail_messages WHERE tenant_id = %s"
                    " AND auto_kind IS NULL AND NOT needs_person",
                    (demo.id,),
                )
                turns = (await cur.fetchone())["n"]
            out.update(
                taken_in=taken, turns=turns, triage_s=round(triage_s, 2),
                triaged_per_s=round(turns / triage_s, 2),
            )  # fmt: skip

            # 4. approve, mail once, through an SMTP server that refuses at first
            async with services.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT DISTINCT t.conversation_id FROM mail_threads t"
                    " JOIN conversation_events e ON e.conversation_id = t.conversation_id"
                    " WHERE t.tenant_id = %s AND e.type = 'approval.pending'",
                    (demo.id,),
                )
                candidates = [r["conversation_id"] for r in await cur.fetchall()]
            held = []
            for conv in candidates:
                if len(held) == args.approve:
                    break
                try:
                    await desk.actions.act(
                        demo, conv, ActionRequest(action="approve", agent="Bench")
                    )
                except DeskError:
                    continue  # nothing held there (answered already, or handed off)
                held.append(conv)
            queued = await intake.queue_replies(services, tenant_id=demo.id, limit=10_000)
            again = await intake.queue_replies(services, tenant_id=demo.id, limit=10_000)
            for _ in range(20):
                await send_pending(services.pool, demo.id, box=box, settings=mail_settings)
                async with services.pool.connection() as conn:
                    cur = await conn.execute(
                        "UPDATE mail_outbox SET next_attempt_at = now() WHERE tenant_id = %s"
                        " AND state = 'pending' RETURNING id",
                        (demo.id,),
                    )  # the backoff's waits skipped: the outcome is what is measured
                    if not await cur.fetchall():
                        break
            sent_ids = [str(message_from_bytes(m, policy=policy.default)["Message-ID"])
                        for m in recorder.received]  # fmt: skip
            answered = [str(message_from_bytes(m, policy=policy.default)["In-Reply-To"])
                        for m in recorder.received]  # fmt: skip

            async with services.pool.connection() as conn:
                checks = {}
                for name, sql in {
                    "stored_distinct": "SELECT count(DISTINCT message_id) AS n FROM mail_messages"
                    " WHERE tenant_id = %(t)s",
                    "threads_with_two_conversations": "SELECT count(*) AS n FROM (SELECT"
                    " conversation_id FROM mail_threads WHERE tenant_id = %(t)s AND"
                    " conversation_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x",
                    "conversations_with_two_open_tickets": "SELECT count(*) AS n FROM (SELECT"
                    " conversation_id FROM tickets WHERE tenant_id = %(t)s AND status NOT IN"
                    " ('resolved','closed') AND channel = 'email' GROUP BY 1"
                    " HAVING count(*) > 1) x",
                    "customer_messages": "SELECT count(*) AS n FROM messages m JOIN conversations"
                    " c ON c.id = m.conversation_id WHERE c.tenant_id = %(t)s AND c.channel ="
                    " 'email' AND m.sender = 'customer'",
                    "outbox_twice": "SELECT count(*) AS n FROM (SELECT source_message_id FROM"
                    " mail_outbox WHERE tenant_id = %(t)s AND source_message_id IS NOT NULL"
                    " GROUP BY 1 HAVING count(*) > 1) x",
                    "outbox_sent": "SELECT count(*) AS n FROM mail_outbox WHERE tenant_id = %(t)s"
                    " AND state = 'sent'",
                }.items():
                    cur = await conn.execute(sql, {"t": demo.id})
                    checks[name] = (await cur.fetchone())["n"]
            out.update(
                lost=max(0, distinct - checks["stored_distinct"]),
                duplicated=checks["threads_with_two_conversations"]
                + checks["conversations_with_two_open_tickets"]
                + max(0, checks["customer_messages"] - turns),
                approved=len(held),
                replies_queued=queued,
                replies_queued_again=again,
                replies_sent=len(recorder.received),
                sent_twice=len(sent_ids) - len(set(sent_ids)) + checks["outbox_twice"],
                auto_replies_answered=sum(1 for a in answered if a in autos),
                smtp_refusals_first=5,
                distinct_delivered=distinct,
                checks=checks,
            )
    finally:
        proxy.close()
        smtp.stop()
        server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
