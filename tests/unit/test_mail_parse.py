"""Parsing email (desk/email/parse.py) and the threading helpers: pure, nothing started."""

from __future__ import annotations

from desk.email.parse import (
    auto_kind,
    decode_text,
    derived_message_id,
    html_to_text,
    message_ids,
    parse_message,
    strip_quoted,
)
from desk.email.thread import our_message_id, subject_with_token, token_in_ids, token_in_subject
from tests.support import mails

OWN = frozenset({"support@desk.test"})


def test_a_plain_mail_is_read() -> None:
    m = parse_message(mails.plain(), own_addresses=OWN)
    assert m.message_id == "<m1@customer.test>" and not m.message_id_derived
    assert m.from_address == "alice@customer.test"
    assert m.subject == "Printer jams"
    assert "printer jams" in m.body_text
    assert m.flags == [] and m.auto_kind is None and not m.needs_person


def test_declared_unknown_mislabelled_and_undeclared_charsets() -> None:
    text = "Grüße aus Köln"
    assert decode_text(text.encode("iso-8859-1"), "iso-8859-1") == (text, False)
    # Unknown charset name: UTF-8 bytes still come out right, flagged.
    assert decode_text(text.encode("utf-8"), "x-no-such-charset") == (text, True)
    # Labelled UTF-8, really Latin-1: not valid UTF-8, so Windows-1252 reads it.
    assert decode_text(text.encode("latin-1"), "utf-8") == (text, True)
    # Undeclared 8-bit.
    assert decode_text(text.encode("utf-8"), None) == (text, True)
    m = parse_message(mails.raw_8bit(text.encode("cp1252"), None))
    assert m.body_text == text and "charset_fallback" in m.flags
    m = parse_message(mails.raw_8bit(text.encode("utf-8"), "x-unknown"))
    assert m.body_text == text and "charset_fallback" in m.flags
    m = parse_message(mails.raw_8bit(text.encode("koi8-r"[:0] or "iso-8859-15"), "iso-8859-15"))
    assert m.body_text == text and "charset_fallback" not in m.flags


def test_an_8bit_subject_with_no_charset_is_readable_text() -> None:
    raw = mails.raw_8bit(b"body", None).replace(
        b"Subject: Umlaute", "Subject: Grüße".encode("latin-1")
    )
    m = parse_message(raw)
    assert m.subject == "Grüße"


def test_html_only_mail_becomes_text() -> None:
    text = html_to_text(
        "<html><head><style>p{}</style></head><body><p>Hi&nbsp;there</p>"
        "<ul><li>one</li><li>two</li></ul><script>x()</script></body></html>"
    )
    assert "Hi there" in text and "- one" in text and "x()" not in text and "p{}" not in text


def test_quoted_history_and_signature_are_stripped() -> None:
    body = (
        "Thanks, that worked!\n\n-- \nAlice Example\nACME Inc.\n\n"
        "On Tue, Dec 1, 2026 at 9:00 AM Support <support@desk.test> wrote:\n"
        "> Please restart the printer.\n> Kind regards\n"
    )
    assert strip_quoted(body) == "Thanks, that worked!"
    body2 = "New question here.\n\nOn Mon, 30 Nov 2026, Bob wrote:\n> old text\n"
    assert strip_quoted(body2) == "New question here."


def test_missing_message_id_is_derived_stably() -> None:
    raw = mails.plain(message_id=None)
    a, b = parse_message(raw), parse_message(raw)
    assert a.message_id_derived and a.message_id == b.message_id == derived_message_id(raw)
    assert parse_message(mails.plain(message_id=None, body="other\n")).message_id != a.message_id
    # Delivered again by another path: new trace headers, same id.
    again = b"Received: from mx2.test by desk.test\r\nDelivered-To: x@desk.test\r\n" + raw
    assert parse_message(again).message_id == a.message_id
    other_sender = mails.plain(message_id=None, sender="eve@else.test")
    assert parse_message(other_sender).message_id != a.message_id


def test_malformed_mime_and_garbage_do_not_raise() -> None:
    m = parse_message(mails.MALFORMED)
    assert m.message_id == "<broken@customer.test>"
    assert "never closed" in m.body_text
    assert "mime_defects" in m.flags
    g = parse_message(mails.GARBAGE)
    assert g.message_id_derived  # stored, flagged or not, never a crash


def test_attachments_are_kept_or_refused_with_a_reason() -> None:
    m = parse_message(mails.with_attachment(1000), max_attachment_bytes=2000)
    (att,) = m.attachments
    assert att.filename == "logs.bin" and att.size_bytes == 1000 and att.content is not None
    m = parse_message(mails.with_attachment(3000), max_attachment_bytes=2000)
    assert m.attachments[0].content is None and m.attachments[0].refused_reason == "too_large"


def test_an_oversize_message_keeps_its_headers_and_needs_a_person() -> None:
    m = parse_message(mails.with_attachment(5000), max_message_bytes=1000)
    assert m.flags == ["oversize"] and m.needs_person
    assert m.message_id == "<att@customer.test>" and m.body_text == ""


def test_automatic_mail_is_recognised() -> None:
    cases = {
        "auto_reply": {"Auto-Submitted": "auto-replied"},
        "list": {"Precedence": "bulk"},
    }
    for kind, headers in cases.items():
        assert parse_message(mails.plain(headers=headers), own_addresses=OWN).auto_kind == kind
    assert parse_message(mails.plain(headers={"X-Autoreply": "yes"})).auto_kind == "auto_reply"
    assert parse_message(mails.plain(headers={"List-Id": "<x.lists>"})).auto_kind == "list"
    assert parse_message(mails.plain(sender="MAILER-DAEMON@mx.test")).auto_kind == "bounce"
    assert (
        parse_message(
            mails.plain(headers={"X-Loop": "support@desk.test"}), own_addresses=OWN
        ).auto_kind
        == "loop"
    )
    assert (
        parse_message(mails.plain(sender="support@desk.test"), own_addresses=OWN).auto_kind
        == "loop"
    )
    assert (
        parse_message(mails.plain(subject="Out of Office: back Monday")).auto_kind == "auto_reply"
    )
    assert parse_message(mails.plain(headers={"Auto-Submitted": "no"})).auto_kind is None


def test_reply_tokens_in_ids_and_subjects() -> None:
    mid = our_message_id("0123456789ab", "desk.test")
    assert token_in_ids(["<x@y>", mid]) == "0123456789ab"
    assert message_ids(f"<a@b> {mid}") == ["<a@b>", mid]
    subject = subject_with_token("Printer jams", "0123456789ab")
    assert subject == "Re: Printer jams [ref:0123456789ab]"
    assert subject_with_token(subject, "0123456789ab") == subject
    assert token_in_subject("AW: " + subject) == "0123456789ab"
    assert auto_kind.__name__ == "auto_kind"
