"""Parse one raw email into what the desk stores: pure functions, nothing started.

The standard library's ``email`` package with ``policy.default`` reads the message. Text parts
are decoded with the charset they declare; a charset Python does not know, or text that is not
valid in the declared one (mislabelled), or 8-bit text with no charset at all, falls back to
UTF-8, then Windows-1252 (which maps nearly every byte; Latin-1 last, which maps all), and the
message is flagged ``charset_fallback``. HTML becomes text; quoted history and signatures are
stripped with ``mail-parser-reply`` for the AI and the preview, the full text kept for staff.
Auto-replies, bounces, list mail and loops are classified (:func:`auto_kind`) so that they are
recorded and never answered. A message that cannot be parsed at all raises nothing: it comes
back with the ``unparseable`` flag and ``needs_person``.
"""

from __future__ import annotations

import codecs
import email
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from mailparser_reply import EmailReplyParser

OUR_ID_PREFIX = "dg."
"""Our Message-IDs look like ``<dg.TOKEN.RANDOM@domain>`` (see :mod:`desk.email.send`)."""

BLOCKED_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/x-executable",
        "application/x-sh",
        "application/x-bat",
        "application/javascript",
        "application/hta",
    }
)
BLOCKED_EXTENSIONS = frozenset(
    {".exe", ".bat", ".cmd", ".com", ".scr", ".pif", ".js", ".vbs", ".msi", ".jar", ".ps1", ".hta"}
)
_FALLBACKS = ("utf-8", "cp1252", "latin-1")


@dataclass
class Attachment:
    """One attachment: kept (``content``) or refused (``refused_reason``)."""

    filename: str
    content_type: str
    size_bytes: int
    content: bytes | None = field(repr=False)
    refused_reason: str | None = None


@dataclass
class ParsedMail:
    """What :func:`parse_message` read from a raw message."""

    message_id: str
    message_id_derived: bool
    in_reply_to: str | None
    references: list[str]
    from_address: str
    from_name: str
    to_addresses: list[str]
    cc_addresses: list[str]
    subject: str
    sent_at: datetime | None
    body_text: str
    body_html: str | None
    clean_text: str
    attachments: list[Attachment]
    flags: list[str]
    auto_kind: str | None
    size_bytes: int
    bounced_ids: list[str] = field(default_factory=list)
    """For a bounce: our Message-IDs quoted in it (the replies that did not arrive)."""

    @property
    def needs_person(self) -> bool:
        """Whether staff must look at it: it could not be read as mail should be, or it
        returns one of our replies."""
        return bool(self.bounced_ids) or any(f in ("unparseable", "oversize") for f in self.flags)


# --- ids ------------------------------------------------------------------------------------

_ID_RE = re.compile(r"<[^<>\s]+>")


_OUR_ID_IN_TEXT = re.compile(
    rb"<" + re.escape(OUR_ID_PREFIX.encode()) + rb"[0-9a-f]{12}\.[0-9a-f]+@[A-Za-z0-9.-]+>",
    re.IGNORECASE,
)


def our_ids_in(raw: bytes) -> list[str]:
    """Our Message-IDs anywhere in a raw message (a bounce quotes the mail it returns)."""
    return list(dict.fromkeys(m.decode("ascii") for m in _OUR_ID_IN_TEXT.findall(raw)))


def message_ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a header value (In-Reply-To, References), in order."""
    if not value:
        return []
    found = _ID_RE.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [f"<{value.strip().strip('<>')}>"]  # some clients drop the brackets
    return found


def derived_message_id(raw: bytes) -> str:
    """A stable id for a message without one.

    It hashes what a redelivery keeps (From, To, Cc, Date, Subject and the body), not the
    trace headers a second delivery path adds (Received, Return-Path, Delivered-To), so the
    same message delivered twice is stored once; two different messages never share it.
    """
    normalized = raw.replace(b"\r\n", b"\n")
    head, sep, body = normalized.partition(b"\n\n")
    if not sep:
        head, body = b"", normalized
    kept: list[bytes] = []
    current: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and current:
            current.append(line.strip())  # a folded continuation
            continue
        if current:
            kept.append(b" ".join(current))
        current = [line.strip()]
    if current:
        kept.append(b" ".join(current))
    stable = sorted(
        h.lower()
        for h in kept
        if h.split(b":", 1)[0].strip().lower() in (b"from", b"to", b"cc", b"date", b"subject")
    )
    digest = hashlib.sha256(b"\n".join([*stable, b"", body.strip()])).hexdigest()[:40]
    return f"<derived.{digest}@deskgraph.invalid>"


# --- charsets -------------------------------------------------------------------------------


def decode_text(data: bytes, declared: str | None) -> tuple[str, bool]:
    """Decode ``data`` with its declared charset; return ``(text, fell_back)``.

    ``fell_back`` is true when the charset was unknown, wrong for these bytes, or absent while
    the bytes are 8-bit.
    """
    charset = (declared or "").strip().strip('"').lower() or None
    if charset in (None, "us-ascii", "ascii"):
        try:
            return data.decode("ascii"), False
        except UnicodeDecodeError:
            charset = None  # 8-bit bytes under a 7-bit label: undeclared in effect
    if charset is not None:
        try:
            codecs.lookup(charset)
            return data.decode(charset), False
        except (LookupError, UnicodeDecodeError):
            pass
    for candidate in _FALLBACKS:
        try:
            return data.decode(candidate), True
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1", errors="replace"), True  # unreachable: latin-1 maps all


def _header(msg: Message, name: str) -> str:
    """A header as text, whatever it holds: undeclared 8-bit bytes are decoded as body text
    is, an encoded word of an unknown charset or a header that does not parse is not fatal."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    if _has_surrogates(raw):
        return " ".join(_clean(raw).split())
    try:
        return _clean(str(msg.get(name)))
    except Exception:  # policy.default parses on access; a broken header must not stop us
        return " ".join(_clean(raw).split())


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _clean(text: str) -> str:
    """Text with surrogate escapes (8-bit bytes) decoded, and no NUL (Postgres has none)."""
    if _has_surrogates(text):
        text, _ = decode_text(text.encode("utf-8", "surrogateescape"), None)
    return text.replace("\x00", "")


def _raw_header(msg: Message, name: str) -> str | None:
    items = msg.raw_items() if hasattr(msg, "raw_items") else msg.items()
    for key, value in items:
        if key.lower() == name.lower():
            return value if isinstance(value, str) else str(value)
    return None


# --- HTML -----------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: blocks on their own lines, scripts and styles dropped."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
    except Exception:
        text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted history -------------------------------------------------------------------------

_QUOTE_HEADER = re.compile(
    r"^(On .{3,200} wrote:|Am .{3,200} schrieb .{1,200}:|-{2,} ?Original Message ?-{2,}"
    r"|-{2,} ?Ursprüngliche Nachricht ?-{2,}|From: .+)$",
    re.MULTILINE,
)


def strip_quoted(text: str) -> str:
    """The newest part of a reply: quoted history and the signature removed."""
    try:
        mail = EmailReplyParser(languages=["en", "de", "fr", "es"]).read(text)
        newest = mail.replies[0].body if mail.replies else text
    except Exception:  # the library's regexes are no reason to lose the message
        newest = text
    # What the library leaves: "> " lines and a signature after the "-- " delimiter.
    lines = []
    for line in newest.splitlines():
        if line.rstrip() == "--" or line == "-- ":
            break
        if line.lstrip().startswith(">"):
            continue
        lines.append(line)
    out = "\n".join(lines)
    match = _QUOTE_HEADER.search(out)
    if match and match.start() > 0:
        out = out[: match.start()]
    out = out.strip()
    return out or text.strip()


# --- automatic mail -------------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?reply|out of (the )?office|abwesenheit|autoreply|vacation)",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)


def auto_kind(msg: Message, from_address: str, own_addresses: frozenset[str]) -> str | None:
    """``auto_reply``, ``bounce``, ``list``, ``loop`` or ``None`` (a person wrote it)."""
    own = {a.lower() for a in own_addresses}
    if from_address.lower() in own:
        return "loop"
    x_loop = _header(msg, "X-Loop").lower()
    if x_loop and (any(a in x_loop for a in own) or "deskgraph" in x_loop):
        return "loop"
    mid = _header(msg, "Message-ID")
    if f"<{OUR_ID_PREFIX}" in mid:
        return "loop"
    content_type = msg.get_content_type()
    report = (msg.get_param("report-type") or "") if content_type == "multipart/report" else ""
    if (
        "delivery-status" in str(report).lower()
        or _BOUNCE_SENDER.match(from_address)
        or _header(msg, "X-Failed-Recipients")
    ):
        return "bounce"
    submitted = _header(msg, "Auto-Submitted").strip().lower()
    if submitted and submitted != "no":
        return "auto_reply"
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return "auto_reply"
    suppress = _header(msg, "X-Auto-Response-Suppress").lower()
    if "all" in suppress or "oof" in suppress:
        return "auto_reply"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence == "auto_reply":
        return "auto_reply"
    if precedence in ("bulk", "junk", "list"):
        return "list"
    if _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return "list"
    if _AUTO_SUBJECT.match(_header(msg, "Subject")):
        return "auto_reply"
    return None


# --- the message ----------------------------------------------------------------------------


def _addresses(msg: Message, name: str) -> list[str]:
    value = _header(msg, name)
    return [addr.lower() for _, addr in getaddresses([value]) if addr and "@" in addr]


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    if part.get_filename():
        return True
    return part.get_content_maintype() not in ("text", "multipart", "message")


def parse_message(
    raw: bytes,
    *,
    own_addresses: frozenset[str] = frozenset(),
    max_message_bytes: int = 25 * 1024 * 1024,
    max_attachment_bytes: int = 15 * 1024 * 1024,
    size: int | None = None,
) -> ParsedMail:
    """Parse ``raw``; never raises for bad mail (flags say what was wrong).

    ``size`` is the message's real size when ``raw`` is only its header (a message too large
    to download, see :mod:`desk.email.fetch`): it is then oversize and ``raw_truncated``.
    """
    size = max(size or 0, len(raw))
    flags: list[str] = []
    try:
        msg: Any = email.message_from_bytes(raw, policy=policy.default)
    except Exception:
        return _unreadable(raw, ["unparseable"])
    if size > max_message_bytes or size > len(raw):
        oversize = ["oversize", "raw_truncated"] if size > len(raw) else ["oversize"]
        parsed = _headers_only(msg, raw, oversize, own_addresses)
        parsed.size_bytes = size
        return parsed
    try:
        return _parse(msg, raw, flags, own_addresses, max_attachment_bytes)
    except Exception:
        return _headers_only(msg, raw, ["unparseable"], own_addresses)


def _envelope(msg: Message, raw: bytes) -> dict[str, Any]:
    ids = message_ids(_header(msg, "Message-ID"))
    message_id = ids[0] if ids else derived_message_id(raw)
    in_reply = message_ids(_header(msg, "In-Reply-To"))
    refs = message_ids(_header(msg, "References"))
    name, address = parseaddr(_header(msg, "From"))
    sent_at = None
    date = _header(msg, "Date")
    if date:
        try:
            sent_at = parsedate_to_datetime(date)
            if sent_at.tzinfo is None:
                sent_at = None  # a date without a zone says nothing reliable
        except (TypeError, ValueError, IndexError):
            sent_at = None
    return {
        "message_id": message_id[:900],
        "message_id_derived": not ids,
        "in_reply_to": in_reply[0] if in_reply else None,
        "references": refs[-50:],
        "from_address": address.lower() if "@" in address else "",
        "from_name": name,
        "to_addresses": _addresses(msg, "To"),
        "cc_addresses": _addresses(msg, "Cc"),
        "subject": " ".join(_header(msg, "Subject").split())[:998],
        "sent_at": sent_at,
    }


def _headers_only(msg: Message, raw: bytes, flags: list[str], own: frozenset[str]) -> ParsedMail:
    try:
        env = _envelope(msg, raw)
        kind = auto_kind(msg, env["from_address"], own)
    except Exception:
        return _unreadable(raw, flags)
    return ParsedMail(
        **env,
        bounced_ids=_bounced(kind, raw, env["message_id"]),
        body_text="",
        body_html=None,
        clean_text="",
        attachments=[],
        flags=flags,
        auto_kind=kind,
        size_bytes=len(raw),
    )


def _bounced(kind: str | None, raw: bytes, own_id: str) -> list[str]:
    if kind != "bounce":
        return []
    return [i for i in our_ids_in(raw) if i != own_id]


def _unreadable(raw: bytes, flags: list[str]) -> ParsedMail:
    return ParsedMail(
        message_id=derived_message_id(raw),
        message_id_derived=True,
        in_reply_to=None,
        references=[],
        from_address="",
        from_name="",
        to_addresses=[],
        cc_addresses=[],
        subject="",
        sent_at=None,
        body_text="",
        body_html=None,
        clean_text="",
        attachments=[],
        flags=flags,
        auto_kind=None,
        size_bytes=len(raw),
    )


def _parse(
    msg: Any, raw: bytes, flags: list[str], own: frozenset[str], max_attachment_bytes: int
) -> ParsedMail:
    env = _envelope(msg, raw)
    if msg.defects:
        flags.append("mime_defects")
    plain: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    parts = list(msg.walk()) if msg.is_multipart() else [msg]
    for part in parts:
        if part.is_multipart():
            continue
        if part.defects and "mime_defects" not in flags:
            flags.append("mime_defects")
        ctype = part.get_content_type()
        if _is_attachment(part):
            attachments.append(_attachment(part, max_attachment_bytes))
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            payload = b""
        if not isinstance(payload, bytes):
            payload = str(payload).encode("utf-8", "replace")
        text, fell_back = decode_text(payload, part.get_content_charset())
        if fell_back and "charset_fallback" not in flags:
            flags.append("charset_fallback")
        if ctype == "text/html":
            htmls.append(text)
        else:
            plain.append(text)
    body_html = "\n".join(htmls) if htmls else None
    body_text = "\n\n".join(t.strip("\n") for t in plain).strip()
    if not body_text and body_html:
        body_text = html_to_text(body_html)
    body_text = body_text.replace("\r\n", "\n")
    kind = auto_kind(msg, env["from_address"], own)
    return ParsedMail(
        **env,
        bounced_ids=_bounced(kind, raw, env["message_id"]),
        body_text=body_text,
        body_html=body_html,
        clean_text=strip_quoted(body_text) if body_text else "",
        attachments=attachments,
        flags=flags,
        auto_kind=kind,
        size_bytes=len(raw),
    )


def _attachment(part: EmailMessage, max_bytes: int) -> Attachment:
    ctype = part.get_content_type()
    try:
        filename = _clean(part.get_filename() or "")
    except Exception:
        filename = ""
    raw_disposition = _raw_header(part, "Content-Disposition") or ""
    if _has_surrogates(raw_disposition):  # an undeclared 8-bit name: decode it as text is
        match = re.search(r'filename\s*=\s*"?([^";\r\n]+)"?', _clean(raw_disposition))
        if match:
            filename = match.group(1).strip()
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        data = b""
    size = len(data)
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if ctype in BLOCKED_TYPES or ext in BLOCKED_EXTENSIONS:
        return Attachment(filename, ctype, size, None, "blocked_type")
    if size > max_bytes:
        return Attachment(filename, ctype, size, None, "too_large")
    return Attachment(filename, ctype, size, data)
