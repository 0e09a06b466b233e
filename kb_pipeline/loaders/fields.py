"""Decoding a file's bytes, and the fields every format parses the same way.

Decisions:

* **Text**: UTF-8 (with or without BOM) or UTF-16 with a BOM. Anything else is a
  ``bad_encoding`` error naming the first bad byte; text is never guessed into mojibake.
  (An HTML page's ``<meta charset>`` is honoured when its bytes are not UTF-8.)
* **updated_at**: the declared value (front matter, meta tag, record field; ISO date or
  datetime, UTC when no zone is given); else the file's modification time for single-article
  files; else (records without a value) unset, which the index stores as the ingestion time.
* **url** (where the article lives on the web; citations and search results link to it):
  only an absolute ``http`` / ``https`` URL is accepted. Anything else (``javascript:``,
  ``data:``, a relative path, spaces or control characters, over 2,048 characters) is refused,
  not dropped: the article is reported as ``bad_metadata`` (files) or ``bad_record`` (FAQ
  records) and not loaded, like an invalid visibility or date, so the author learns that the
  link is wrong instead of finding it silently missing. Its previous version, if any, stays
  indexed.
* **Source ids** of single-article files are the front-matter ``id`` or the file stem, not the
  path, so ingesting a folder or one of its subfolders gives the same ids. ``index.*`` and
  ``README.*`` take their folder's name."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kb_pipeline.loaders.base import LoadError, Visibility


def decode(data: bytes, *, fallback_charset: str | None = None) -> str:
    """Decode file bytes as UTF-8 (BOM optional) or BOM-marked UTF-16; never guess."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(
                "bad_encoding", f"starts with a UTF-16 byte-order mark but is not UTF-16: {exc}"
            ) from exc
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if fallback_charset is None:
                bad = data[exc.start : exc.start + 1].hex()
                line = data[: exc.start].count(b"\n") + 1
                raise LoadError(
                    "bad_encoding",
                    f"expected UTF-8 text, found byte 0x{bad} on line {line} (byte offset "
                    f"{exc.start}) that is not valid UTF-8; the file is probably "
                    "Latin-1/Windows-1252 or binary: re-save it as UTF-8",
                ) from exc
            try:
                text = data.decode(fallback_charset)
            except UnicodeDecodeError as exc2:
                raise LoadError(
                    "bad_encoding",
                    f"the page declares charset {fallback_charset!r} but is not valid "
                    f"{fallback_charset}: {exc2}",
                ) from exc2
    if "\x00" in text:
        raise LoadError(
            "bad_encoding", f"contains a NUL character at offset {text.index(chr(0))} (binary?)"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KiB, if Python knows it."""
    m = _META_CHARSET.search(data[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def require_text(text: str) -> None:
    """Raise ``empty_file`` when the decoded text is only whitespace."""
    if not text.strip():
        raise LoadError("empty_file", "the file holds only whitespace")


def parse_visibility(raw: Any, what: str, code: str) -> Visibility | None:
    """A declared visibility, or None when none is declared (``code`` for a bad one)."""
    if raw is None or raw == "":
        return None
    value = str(raw).strip().lower()
    if value not in ("external", "internal"):
        raise LoadError(code, f"{what}: visibility must be external or internal, got {raw!r}")
    return value  # type: ignore[return-value]


def default_visibility(title: str) -> Visibility:
    """The visibility of an article that declares none, from its title."""
    # Agent-only documents are commonly titled "Internal: ..."; treating them as internal when
    # nothing else is said errs on the side of not showing them to customers.
    return "internal" if title.lower().startswith("internal:") else "external"


def clean_tags(raw: Iterable[Any]) -> tuple[str, ...]:
    """Tags stripped, empty ones dropped, each once (order kept)."""
    return tuple(dict.fromkeys(t for t in (str(x).strip() for x in raw) if t))


def parse_tags(raw: str) -> tuple[str, ...]:
    """Tags from ``a, b`` or ``[a, 'b']``."""
    raw = raw.strip().strip("[]")
    return clean_tags(t.strip().strip("'\"") for t in raw.split(","))


def parse_date(raw: Any, what: str, code: str) -> datetime | None:
    """ISO date or datetime -> aware datetime (UTC when no zone is given)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise LoadError(
            code, f"{what}: updated_at must be an ISO date or datetime, got {raw!r}"
        ) from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


MAX_URL_LENGTH = 2048
_URL_SCHEMES = ("http", "https")
# Not allowed unencoded in a URL (RFC 3986), and able to break out of an HTML attribute
# ("' < >) where the url becomes a link; the single quote is allowed by the RFC but is refused
# for the same reason (%27 works everywhere).
_URL_UNSAFE = frozenset("\"'<>\\^`{|}")


def parse_url(raw: Any, what: str, code: str) -> str | None:
    """An article's web address: an absolute http(s) URL, else a :class:`LoadError`.

    Only http(s): the address becomes a link in the chat widget and the console, and a
    ``javascript:`` or ``data:`` one would run in the customer's browser.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    shown = repr(raw)[:120]
    if not isinstance(raw, str):
        raise LoadError(code, f"{what}: url must be a string, got {shown}")
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH:
        raise LoadError(
            code, f"{what}: url must be at most {MAX_URL_LENGTH} characters, got {len(url)}"
        )
    expected = f"{what}: url must be an absolute http:// or https:// URL, got {shown}"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise LoadError(code, expected + " (it contains spaces or control characters)")
    unsafe = sorted({ch for ch in url if ch in _URL_UNSAFE})
    if unsafe:
        raise LoadError(
            code,
            f"{expected} (it contains {' '.join(unsafe)}, not allowed unencoded in a URL:"
            " percent-encode it)",
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise LoadError(code, f"{expected} ({exc})") from exc
    if parts.scheme.lower() not in _URL_SCHEMES or not parts.hostname:
        raise LoadError(code, expected)
    return url


def stem_id(path: Path) -> str:
    """The source id of a single-article file: its stem, or its folder's name for an index."""
    # "billing/index.html" is the billing page: name it after its folder, not "index".
    if path.stem.lower() in ("index", "readme") and path.parent.name:
        return path.parent.name
    return path.stem


def title_from_name(path: Path) -> str:
    """A title made from the file name, for files that state none."""
    return stem_id(path).replace("-", " ").replace("_", " ").strip().title() or path.name
