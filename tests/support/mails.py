"""Test mails written by hand: plain, replies, charsets, broken MIME, automatic mail."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime


def plain(
    *,
    sender: str = "alice@customer.test",
    to: str = "support@desk.test",
    subject: str = "Printer jams",
    body: str = "Hello, my printer jams on every page.\n",
    message_id: str | None = "<m1@customer.test>",
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A simple text/plain mail."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


def with_attachment(size: int, *, message_id: str = "<att@customer.test>") -> bytes:
    """A mail with a binary attachment of ``size`` bytes."""
    msg = EmailMessage()
    msg["From"] = "bob@customer.test"
    msg["To"] = "support@desk.test"
    msg["Subject"] = "Logs attached"
    msg["Message-ID"] = message_id
    msg.set_content("The logs are attached.\n")
    msg.add_attachment(
        bytes(range(256)) * (size // 256) + b"x" * (size % 256),
        maintype="application",
        subtype="octet-stream",
        filename="logs.bin",
    )
    return msg.as_bytes()


def raw_8bit(body: bytes, charset: str | None, *, message_id: str = "<c1@customer.test>") -> bytes:
    """A mail whose body bytes are given as is, with or without a declared charset."""
    ctype = "text/plain" + (f"; charset={charset}" if charset else "")
    return (
        b"From: carla@customer.test\r\nTo: support@desk.test\r\nSubject: Umlaute\r\n"
        b"Message-ID: " + message_id.encode() + b"\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: " + ctype.encode() + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


MALFORMED = (
    b"From: dan@customer.test\r\nTo: support@desk.test\r\nSubject: broken\r\n"
    b"Message-ID: <broken@customer.test>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
    b"--XYZ\r\nContent-Type: text/plain\r\n\r\nthe text part, never closed\r\n"
    b"--XYZ\r\nContent-Type: application/pdf; name=a.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n"
)

GARBAGE = b"\x00\xff\xfe this is not a mail at all \x00\r\n\r\n\x00"


def bounce(original_message_id: str, *, message_id: str = "<dsn1@mx.customer.test>") -> bytes:
    """A delivery status notification returning one of our messages (RFC 3464)."""
    return (
        "From: MAILER-DAEMON@mx.customer.test\r\nTo: support@desk.test\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; alice@customer.test\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: support@desk.test\r\nTo: alice@customer.test\r\n"
        f"Message-ID: {original_message_id}\r\n"
        "Subject: Re: Printer jams\r\n\r\n--B--\r\n"
    ).encode()
