"""Loaders: files on disk -> :class:`Article` records, with per-file errors instead of crashes.

One entry point, :func:`load_path`, takes a file or a folder (walked recursively in sorted
order; hidden files and folders are ignored) and returns a :class:`LoadResult`: the articles,
the files read, the files skipped, and one :class:`FileError` per problem. A bad file never
stops the others, and a bad record in a FAQ file never drops the good records of that file.

Formats (by suffix):

* ``.md`` / ``.markdown``: one article. An optional front-matter block (``---`` lines) holds
  ``id``, ``title``, ``visibility`` (external | internal), ``tags`` (``[a, b]``),
  ``updated_at`` and ``url``. Without a title, the first ``#`` heading, else the file name.
* ``.html`` / ``.htm``: one article. Navigation, site header/footer, sidebars, scripts, styles
  and forms are dropped; when the page has a ``<main>`` (or ``<article>``) only that is kept.
  Headings become Markdown ``#`` lines so the chunker keeps sections. Title: first ``<h1>``,
  else ``<title>``, else the file name. ``<meta name="visibility|tags|updated_at|url">`` work
  like front matter. A ``<meta charset>`` is honoured when the bytes are not UTF-8.
* ``.pdf``: one article from the text layer (pypdf), pages separated by blank lines. Title:
  the document's ``/Title``, else the file name (a first line is often a running header).
  Scanned PDFs (no text layer) are reported as ``no_text_layer``; OCR is out of scope.
* ``.txt``: one article. A short first line followed by more text is the title, else the file
  name is.
* ``.csv``: a FAQ, one article per row. Columns (case-insensitive) ``question``/``answer`` or
  ``title``/``text`` (also ``content``, ``body``); optional ``id``, ``visibility``, ``tags``
  (comma-separated), ``updated_at``, ``url``. Without an ``id`` column the id is
  ``<file stem>/<question slug>-<hash>``, stable as long as the question is unchanged.
* ``.jsonl`` / ``.ndjson``: one article per line, ``{"id", "title", "text"}`` or
  ``{"id", "title", "content"}`` (``question``/``answer`` and ``body`` are accepted too), with
  optional ``visibility``, ``tags`` (list or comma string), ``updated_at`` and ``url``. The
  record's ``id`` is the article's source id.

Decisions:

* **Source ids** of single-article files are the front-matter ``id`` or the file stem, not the
  path, so ingesting a folder or one of its subfolders gives the same ids. ``index.*`` and
  ``README.*`` take their folder's name. Two articles with one id: the first (in sorted path
  order) wins, the others are reported as ``duplicate_id``.
* **Visibility** can only be restricted, never widened: ``visibility="internal"`` marks every
  article internal, and an article that declares itself internal (front matter, record field,
  or a title starting with ``Internal:``) stays internal whatever the caller passes. An agent-only
  document can never leak to customers through a command-line default.
* **Tags** passed by the caller are added to the article's own tags (order kept, no repeats).
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
* **Text**: UTF-8 (with or without BOM) or UTF-16 with a BOM. Anything else is a
  ``bad_encoding`` error naming the first bad byte; text is never guessed into mojibake.

Error codes (stable; see :data:`ERROR_CODES`): ``empty_file``, ``bad_encoding``,
``corrupt_pdf``, ``no_text_layer``, ``too_large``, ``unsupported_type``, ``bad_record``,
``bad_metadata``, ``duplicate_id``, ``load_failed``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

Visibility = Literal["external", "internal"]

DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
"""Files larger than this are refused with ``too_large`` (20 MiB)."""

ERROR_CODES: dict[str, str] = {
    "empty_file": "the file has no text (zero bytes, only whitespace, or only boilerplate)",
    "bad_encoding": "the file is not UTF-8 / UTF-16-with-BOM text, or contains NUL bytes",
    "corrupt_pdf": "the PDF cannot be parsed (damaged, truncated, encrypted, not a PDF)",
    "no_text_layer": "the PDF has pages but no extractable text (scanned images)",
    "too_large": "the file is larger than the configured limit",
    "unsupported_type": "the file's suffix is not a supported format",
    "bad_record": "a CSV row or JSONL line is malformed; the other rows are still loaded",
    "bad_metadata": "front matter or meta tags hold an invalid value (visibility, date, url)",
    "duplicate_id": "an article id already came from an earlier file or record",
    "load_failed": "an unexpected error while reading the file",
}
"""Every error code a loader reports, with what it means."""

_FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".txt": "text",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_FORMATS)
"""File suffixes the loaders read (lower case, with the dot)."""


@dataclass(frozen=True)
class Article:
    """One knowledge-base article, the unit of ingestion."""

    source_id: str
    title: str
    body: str
    visibility: Visibility = "external"
    tags: tuple[str, ...] = field(default_factory=tuple)
    updated_at: datetime | None = None
    url: str | None = None
    """Where the article lives on the web (an absolute http(s) URL), when the source says.

    Not part of :attr:`content_hash`: no chunk carries it, so a changed url is written to the
    article's row alone (:meth:`KnowledgeBase.ingest` compares it on its own) and never costs
    a re-embedding."""

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes the article's chunks or their metadata (not url)."""
        h = hashlib.sha256()
        for part in (self.title, self.body, self.visibility, ",".join(self.tags)):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class FileError:
    """One problem with one file (or one record of a FAQ file)."""

    file: str
    """The file, relative to the folder that was loaded (its name when a file was given)."""
    code: str
    """A stable code from :data:`ERROR_CODES`."""
    message: str
    """What was expected and what arrived."""
    line: int | None = None
    """The line (JSONL) or row's starting line (CSV) of a record error."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``errors`` column of ``ingestion_jobs``)."""
        out: dict[str, Any] = {"file": self.file, "code": self.code, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.code}: {self.message}"


@dataclass
class LoadResult:
    """What loading a file or a folder produced."""

    articles: list[Article] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Files that were read (display names), whether or not they had errors."""
    skipped: list[str] = field(default_factory=list)
    """Files in a folder with an unsupported suffix; not errors (a docs folder has images)."""

    @property
    def failed_files(self) -> list[str]:
        """Files with at least one error, in order."""
        return list(dict.fromkeys(e.file for e in self.errors))

    def extend(self, other: LoadResult) -> None:
        """Append another result to this one."""
        self.articles += other.articles
        self.errors += other.errors
        self.files += other.files
        self.skipped += other.skipped


class LoadError(Exception):
    """A file-level problem with a stable code; :func:`load_file` turns it into a FileError."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


# ------------------------------------------------------------------------------ discovery


def discover(path: Path) -> tuple[list[Path], list[Path]]:
    """Return ``(files to load, files skipped)`` under ``path``, both sorted.

    A file given directly is always returned for loading (an unsupported one then gets
    ``unsupported_type``). In a folder, hidden files and folders (``.git``, ``.DS_Store``) are
    ignored, and files with an unsupported suffix are returned as skipped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not path.is_dir():
        return [path], []
    files: list[Path] = []
    skipped: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            (files if p.suffix.lower() in SUPPORTED_SUFFIXES else skipped).append(p)

    def key(p: Path) -> str:
        return p.relative_to(path).as_posix()

    return sorted(files, key=key), sorted(skipped, key=key)


def display_name(path: Path, root: Path | None) -> str:
    """How a file is named in reports: relative to the loaded folder, else its name."""
    if root is not None and root.is_dir():
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name


# ------------------------------------------------------------------------------ entry points


def load_path(
    path: Path,
    *,
    visibility: Visibility | None = None,
    tags: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> LoadResult:
    """Load a file or a folder of files into articles, reporting problems per file.

    Args:
        path: A file, or a folder walked recursively (sorted; hidden entries ignored).
        visibility: ``"internal"`` marks every article internal; ``"external"`` or ``None``
            keep each article's own visibility (external unless it says internal).
        tags: Tags added to every article.
        max_file_bytes: Larger files are reported as ``too_large`` and not read.

    Returns:
        The articles (duplicates of an earlier id removed), errors, files read and skipped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    files, skipped = discover(path)
    root = path if path.is_dir() else None
    result = LoadResult(skipped=[display_name(p, root) for p in skipped])
    seen: dict[str, str] = {}
    for file in files:
        one = load_file(
            file, root=root, visibility=visibility, tags=tags, max_file_bytes=max_file_bytes
        )
        kept, dupes = drop_duplicates(one.articles, seen, one.files[0])
        result.articles += kept
        result.errors += one.errors + dupes
        result.files += one.files
    return result


def load_file(
    path: Path,
    *,
    root: Path | None = None,
    visibility: Visibility | None = None,
    tags: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> LoadResult:
    """Load one file. Never raises for a bad file: problems come back as errors.

    Args:
        path: The file.
        root: The folder being loaded, for the file's display name.
        visibility: See :func:`load_path`.
        tags: See :func:`load_path`.
        max_file_bytes: See :func:`load_path`.

    Returns:
        The file's articles (duplicates within the file already removed) and errors.
    """
    name = display_name(path, root)
    result = LoadResult(files=[name])
    try:
        articles, record_errors = _load_file(path, max_file_bytes)
    except LoadError as exc:
        result.errors.append(FileError(name, exc.code, exc.message, exc.line))
        return result
    except Exception as exc:  # one broken file must never stop the others
        result.errors.append(FileError(name, "load_failed", f"{type(exc).__name__}: {exc}"))
        return result
    result.errors += [FileError(name, e.code, e.message, e.line) for e in record_errors]
    extra_tags = _clean_tags(tags)
    finished = [_finish(a, visibility, extra_tags) for a in articles]
    kept, dupes = drop_duplicates(finished, {}, name)
    result.articles = kept
    result.errors += dupes
    return result


def drop_duplicates(
    articles: Iterable[Article], seen: dict[str, str], file: str
) -> tuple[list[Article], list[FileError]]:
    """Keep the first article per source id; report the others as ``duplicate_id``.

    Args:
        articles: Articles from ``file``.
        seen: Source id -> file it first came from; updated in place so it can span files.
        file: Display name of the file the articles came from.
    """
    kept: list[Article] = []
    errors: list[FileError] = []
    for article in articles:
        first = seen.get(article.source_id)
        if first is not None:
            where = "earlier in this file" if first == file else f"in {first}"
            errors.append(
                FileError(
                    file,
                    "duplicate_id",
                    f"article id {article.source_id!r} was already loaded {where}; "
                    "this one is ignored (give it its own id)",
                )
            )
            continue
        seen[article.source_id] = file
        kept.append(article)
    return kept, errors


def load_markdown(path: Path, *, visibility: Visibility | None = None) -> Article:
    """Load one Markdown file as an article.

    Raises:
        ValueError: the file cannot be loaded (the message carries the error code).
    """
    result = load_file(path, visibility=visibility)
    if result.errors:
        raise ValueError(str(result.errors[0]))
    return result.articles[0]


def load_directory(root: Path, *, visibility: Visibility | None = None) -> list[Article]:
    """Load every Markdown file under ``root`` (sorted by path); any bad file is an error.

    Kept for callers that need all-or-nothing (the demo knowledge base); ingestion jobs use
    :func:`load_path`, which reports bad files and carries on.

    Raises:
        ValueError: a file could not be loaded (the first error is in the message).
    """
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*.md")):
        result = load_file(path, root=root, visibility=visibility)
        kept, dupes = drop_duplicates(result.articles, seen, result.files[0])
        errors = result.errors + dupes
        if errors:
            raise ValueError(str(errors[0]))
        articles += kept
    return articles


def demo_kb_path() -> Path:
    """The demo tenant's knowledge base shipped with the package."""
    return Path(__file__).resolve().parents[1] / "demo_kb"


# ------------------------------------------------------------------------------ dispatch


def _load_file(path: Path, max_file_bytes: int) -> tuple[list[Article], list[LoadError]]:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoadError(
            "unsupported_type", f"expected one of {supported}, got {path.suffix or 'no suffix'!r}"
        )
    stat = path.stat()
    size = stat.st_size
    if size > max_file_bytes:
        raise LoadError(
            "too_large", f"the file is {size:,} bytes; the limit is {max_file_bytes:,} bytes"
        )
    if size == 0:
        raise LoadError("empty_file", "the file is empty (0 bytes)")
    data = path.read_bytes()
    mtime = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    if fmt == "pdf":
        return [_load_pdf(data, path, mtime)], []
    if fmt == "html":
        text = _decode(data, fallback_charset=_declared_charset(data))
        _require_text(text)
        return [_load_html(text, path, mtime)], []
    text = _decode(data)
    _require_text(text)
    if fmt == "markdown":
        return [_load_markdown_text(text, path, mtime)], []
    if fmt == "text":
        return [_load_plain_text(text, path, mtime)], []
    if fmt == "csv":
        return _load_csv(text, path)
    return _load_jsonl(text)


def _finish(article: Article, visibility: Visibility | None, tags: tuple[str, ...]) -> Article:
    """Apply the caller's visibility (restrict only) and extra tags."""
    vis: Visibility = "internal" if visibility == "internal" else article.visibility
    merged = tuple(dict.fromkeys((*article.tags, *tags)))
    if vis == article.visibility and merged == article.tags:
        return article
    return Article(
        source_id=article.source_id,
        title=article.title,
        body=article.body,
        visibility=vis,
        tags=merged,
        updated_at=article.updated_at,
        url=article.url,
    )


# ------------------------------------------------------------------------------ text and fields


def _decode(data: bytes, *, fallback_charset: str | None = None) -> str:
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


def _declared_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KiB, if Python knows it."""
    m = _META_CHARSET.search(data[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _require_text(text: str) -> None:
    if not text.strip():
        raise LoadError("empty_file", "the file holds only whitespace")


def _parse_visibility(raw: Any, what: str, code: str) -> Visibility | None:
    if raw is None or raw == "":
        return None
    value = str(raw).strip().lower()
    if value not in ("external", "internal"):
        raise LoadError(code, f"{what}: visibility must be external or internal, got {raw!r}")
    return value  # type: ignore[return-value]


def _default_visibility(title: str) -> Visibility:
    # Agent-only documents are commonly titled "Internal: ..."; treating them as internal when
    # nothing else is said errs on the side of not showing them to customers.
    return "internal" if title.lower().startswith("internal:") else "external"


def _clean_tags(raw: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in (str(x).strip() for x in raw) if t))


def _parse_tags(raw: str) -> tuple[str, ...]:
    raw = raw.strip().strip("[]")
    return _clean_tags(t.strip().strip("'\"") for t in raw.split(","))


def _parse_date(raw: Any, what: str, code: str) -> datetime | None:
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


def _parse_url(raw: Any, what: str, code: str) -> str | None:
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


def _stem_id(path: Path) -> str:
    # "billing/index.html" is the billing page: name it after its folder, not "index".
    if path.stem.lower() in ("index", "readme") and path.parent.name:
        return path.parent.name
    return path.stem


def _title_from_name(path: Path) -> str:
    return _stem_id(path).replace("-", " ").replace("_", " ").strip().title() or path.name


# ------------------------------------------------------------------------------ Markdown

_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)


def _parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    meta: dict[str, str] = {}
    for line in m.group(1).splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            meta[key.strip().lower()] = value
    return meta, text[m.end() :]


def _load_markdown_text(text: str, path: Path, mtime: datetime) -> Article:
    meta, body = _parse_front_matter(text)
    body = body.strip()
    if not body:
        raise LoadError("empty_file", "the file has front matter but no body")
    title = meta.get("title")
    if not title:
        heading = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else _title_from_name(path)
    vis = _parse_visibility(meta.get("visibility"), "front matter", "bad_metadata")
    return Article(
        source_id=meta.get("id") or _stem_id(path),
        title=title,
        body=body,
        visibility=vis or _default_visibility(title),
        tags=_parse_tags(meta.get("tags", "")),
        updated_at=_parse_date(meta.get("updated_at"), "front matter", "bad_metadata") or mtime,
        url=_parse_url(meta.get("url"), "front matter", "bad_metadata"),
    )


# ------------------------------------------------------------------------------ plain text


def _load_plain_text(text: str, path: Path, mtime: datetime) -> Article:
    lines = text.strip().split("\n")
    first = lines[0].strip()
    rest = "\n".join(lines[1:]).strip()
    # A short first line followed by more text reads as a title; a one-paragraph note does not.
    if rest and len(first) <= 120 and not first.endswith((".", ",", ";", ":")):
        title, body = first.lstrip("# ").strip() or _title_from_name(path), rest
    else:
        title, body = _title_from_name(path), text.strip()
    return Article(
        source_id=_stem_id(path),
        title=title,
        body=body,
        visibility=_default_visibility(title),
        updated_at=mtime,
    )


# ------------------------------------------------------------------------------ PDF


def _load_pdf(data: bytes, path: Path, mtime: datetime) -> Article:
    import pypdf  # imported on use: only PDF ingestion pays for it

    if b"%PDF-" not in data[:1024]:
        raise LoadError("corrupt_pdf", "expected a PDF (starting with '%PDF-'), got other bytes")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("corrupt_pdf", "the PDF is encrypted with a password")
        pages = [(page.extract_text() or "").replace("\x00", "") for page in reader.pages]
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except LoadError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...)
        raise LoadError(
            "corrupt_pdf", f"cannot parse the PDF: {type(exc).__name__}: {exc}"
        ) from exc
    if not pages:
        raise LoadError("empty_file", "the PDF has no pages")
    texts = [re.sub(r"[ \t]+\n", "\n", p).strip() for p in pages]
    body = "\n\n".join(t for t in texts if t)
    if not body:
        raise LoadError(
            "no_text_layer",
            f"none of the {len(pages)} page(s) has extractable text (a scan? OCR it first)",
        )
    title = meta_title or _title_from_name(path)
    return Article(
        source_id=_stem_id(path),
        title=title,
        body=body,
        visibility=_default_visibility(title),
        updated_at=mtime,
    )


# ------------------------------------------------------------------------------ HTML

_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()  # noqa: SIM905
)
_ALWAYS_SKIP = frozenset(
    "script style noscript template nav aside svg iframe form button select textarea "  # noqa: SIM905
    "canvas object head".split()
)
# A site header/footer is boilerplate; an <article>'s own header holds its title.
_SKIP_OUTSIDE_CONTENT = frozenset({"header", "footer"})
_SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_SKIP_CLASSES = frozenset(
    {"sidebar", "breadcrumb", "breadcrumbs", "cookie-banner", "skip-link", "toc", "site-nav"}
)
_IMPLICIT_CLOSE = {
    "p": {"p"},
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "option": {"option"},
}
_CONTAINERS = frozenset({"ul", "ol", "table", "dl", "select", "div", "body"})
_MAX_DEPTH = 256
_GROUPS = frozenset({"ul", "ol", "dl", "table"})
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = frozenset(
    "p div section article main ul ol dl dt dd table thead tbody tfoot blockquote figure "  # noqa: SIM905
    "figcaption address details summary body html center hr br".split()
)


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving DOM: unknown end tags are ignored, common implicit closes are applied."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack: list[_Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _IMPLICIT_CLOSE.get(tag)
        if closes:
            for i in range(len(self.stack) - 1, 0, -1):
                t = self.stack[i].tag
                if t in closes:
                    del self.stack[i:]
                    break
                if t in _CONTAINERS:
                    break
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        # A cap on nesting keeps rendering (recursive) safe on pathological pages.
        if tag not in _VOID and len(self.stack) < _MAX_DEPTH:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _find_all(node: _Node, tag: str) -> Iterable[_Node]:
    for child in node.children:
        if isinstance(child, _Node):
            if child.tag == tag:
                yield child
            else:
                yield from _find_all(child, tag)


def _text_of(node: _Node) -> str:
    parts: list[str] = []

    def walk(n: _Node) -> None:
        for c in n.children:
            if isinstance(c, str):
                parts.append(c)
            elif c.tag not in _ALWAYS_SKIP:
                walk(c)

    walk(node)
    return " ".join("".join(parts).split())


def _is_boilerplate(node: _Node, in_content: bool) -> bool:
    if node.tag in _ALWAYS_SKIP:
        return True
    if node.tag in _SKIP_OUTSIDE_CONTENT and not in_content:
        return True
    attrs = node.attrs
    if "hidden" in attrs or attrs.get("aria-hidden", "").lower() == "true":
        return True
    if attrs.get("role", "").lower() in _SKIP_ROLES:
        return True
    return bool(_SKIP_CLASSES.intersection(attrs.get("class", "").lower().split()))


class _Renderer:
    """Renders the content tree as Markdown-ish paragraphs with ``#`` headings."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.buf: list[str] = []

    def flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        self.buf = []
        if text and text not in ("-", "- "):
            # A paragraph that starts like a heading would open a bogus section in the chunker.
            if re.match(r"#{1,6}\s", text):
                text = "\\" + text
            self.blocks.append(text)

    def render(self, node: _Node, in_content: bool) -> None:
        for child in node.children:
            if isinstance(child, str):
                self.buf.append(child)
                continue
            if _is_boilerplate(child, in_content):
                continue
            tag = child.tag
            inside = in_content or tag in ("article", "main")
            if tag in _HEADINGS:
                self.flush()
                text = _text_of(child)
                if text:
                    self.blocks.append("#" * _HEADINGS[tag] + " " + text)
            elif tag == "pre":
                self.flush()
                raw = "".join(_raw_text(child)).strip("\n")
                if raw.strip():
                    # Indented as a Markdown code block so "# comment" lines are not headings.
                    self.blocks.append("\n".join("    " + line for line in raw.split("\n")))
            elif tag == "tr":
                self.flush()
                cells = [_text_of(c) for c in child.children if isinstance(c, _Node)]
                row = " | ".join(c for c in cells if c)
                if row:
                    self.blocks.append(row)
            elif tag in _GROUPS:
                # A list or table stays one paragraph, so the chunker keeps it together.
                self.flush()
                inner = _Renderer()
                inner.render(child, inside)
                inner.flush()
                if inner.blocks:
                    self.blocks.append("\n".join(inner.blocks))
            elif tag == "li":
                self.flush()
                self.buf.append("- ")
                self.render(child, inside)
                self.flush()
            elif tag in _BLOCKS:
                self.flush()
                self.render(child, inside)
                self.flush()
            else:
                self.render(child, inside)


def _raw_text(node: _Node) -> list[str]:
    out: list[str] = []
    for c in node.children:
        if isinstance(c, str):
            out.append(c)
        elif c.tag == "br":
            out.append("\n")
        else:
            out += _raw_text(c)
    return out


def _meta(root: _Node) -> dict[str, str]:
    return {
        m.attrs["name"].strip().lower(): m.attrs.get("content", "")
        for m in _find_all(root, "meta")
        if m.attrs.get("name")
    }


def _load_html(text: str, path: Path, mtime: datetime) -> Article:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    root = builder.root
    # The page's own content area, when it marks one, is all that matters.
    content = list(_find_all(root, "main")) or list(_find_all(root, "article"))
    renderer = _Renderer()
    if content:
        for node in content:
            renderer.render(node, in_content=True)
            renderer.flush()
    else:
        bodies = list(_find_all(root, "body"))
        renderer.render(bodies[0] if bodies else root, in_content=False)
        renderer.flush()
    body = "\n\n".join(renderer.blocks).strip()
    if not body:
        raise LoadError("empty_file", "no text left after removing navigation and boilerplate")
    h1 = next((b[2:] for b in renderer.blocks if b.startswith("# ")), "")
    title_tag = next((_text_of(t) for t in _find_all(root, "title")), "")
    title = h1 or title_tag or _title_from_name(path)
    meta = _meta(root)
    vis = _parse_visibility(meta.get("visibility"), "<meta name=visibility>", "bad_metadata")
    updated = _parse_date(meta.get("updated_at"), "<meta name=updated_at>", "bad_metadata")
    return Article(
        source_id=_stem_id(path),
        title=title,
        body=body,
        visibility=vis or _default_visibility(title),
        tags=_parse_tags(meta.get("tags", "")),
        updated_at=updated or mtime,
        url=_parse_url(meta.get("url"), "<meta name=url>", "bad_metadata"),
    )


# ------------------------------------------------------------------------------ FAQ records

_TITLE_KEYS = ("title", "question")
_BODY_KEYS = ("text", "content", "answer", "body")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-") or "item"


def _record_article(rec: dict[str, Any], fallback_id: str | None) -> Article:
    """Build an article from a FAQ record (JSONL object or CSV row with lower-cased keys)."""
    title_raw = next((rec[k] for k in _TITLE_KEYS if rec.get(k) not in (None, "")), None)
    body_raw = next((rec[k] for k in _BODY_KEYS if rec.get(k) not in (None, "")), None)
    if body_raw is None:
        raise LoadError("bad_record", "expected a non-empty text, content or answer field")
    if not isinstance(body_raw, str) or (title_raw is not None and not isinstance(title_raw, str)):
        raise LoadError("bad_record", "title and text must be strings")
    body = body_raw.replace("\r\n", "\n").strip()
    if not body or "\x00" in body:
        raise LoadError("bad_record", "the text is empty or contains NUL characters")
    raw_id = rec.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | type(None)):
        raise LoadError("bad_record", f"id must be a string or an integer, got {raw_id!r}")
    source_id = str(raw_id).strip() if raw_id is not None else ""
    if not source_id:
        if fallback_id is None:
            raise LoadError("bad_record", "expected a non-empty id")
        if title_raw is None:
            raise LoadError("bad_record", "needs an id or a title/question")
        source_id = fallback_id
    title = (title_raw or "").strip() or source_id
    tags_raw = rec.get("tags")
    if tags_raw is None or tags_raw == "":
        tags: tuple[str, ...] = ()
    elif isinstance(tags_raw, str):
        tags = _parse_tags(tags_raw)
    elif isinstance(tags_raw, list) and all(isinstance(t, str) for t in tags_raw):
        tags = _clean_tags(tags_raw)
    else:
        raise LoadError("bad_record", "tags must be a list of strings or a string")
    vis = _parse_visibility(rec.get("visibility"), "record", "bad_record")
    return Article(
        source_id=source_id,
        title=title,
        body=body,
        visibility=vis or _default_visibility(title),
        tags=tags,
        updated_at=_parse_date(rec.get("updated_at"), "record", "bad_record"),
        url=_parse_url(rec.get("url"), "record", "bad_record"),
    )


def _load_jsonl(text: str) -> tuple[list[Article], list[LoadError]]:
    articles: list[Article] = []
    errors: list[LoadError] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(
                LoadError("bad_record", f"not valid JSON ({exc.msg} at column {exc.colno})", n)
            )
            continue
        if not isinstance(rec, dict):
            errors.append(
                LoadError("bad_record", f"expected a JSON object, got {type(rec).__name__}", n)
            )
            continue
        try:
            articles.append(_record_article(rec, None))
        except LoadError as exc:
            errors.append(LoadError(exc.code, exc.message, n))
    if not articles and not errors:
        raise LoadError("empty_file", "the file has no records")
    return articles, _with_file_summary(articles, errors)


def _load_csv(text: str, path: Path) -> tuple[list[Article], list[LoadError]]:
    header_line = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise LoadError("bad_record", f"cannot read the header row: {exc}", 1) from exc
    has_title = any(k in header for k in _TITLE_KEYS)
    has_body = any(k in header for k in _BODY_KEYS)
    if not (has_body and (has_title or "id" in header)):
        raise LoadError(
            "bad_record",
            "expected a header with question,answer or title,text columns (id optional), "
            f"got {', '.join(header) or 'nothing'}",
            1,
        )
    articles: list[Article] = []
    errors: list[LoadError] = []
    stem = _stem_id(path)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(LoadError("bad_record", f"unreadable CSV row: {exc}", line))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append(
                LoadError(
                    "bad_record",
                    f"expected {len(header)} columns, got {len(row)} (an unquoted comma?)",
                    line,
                )
            )
            continue
        rec = dict(zip(header, row, strict=True))
        title = next((rec[k].strip() for k in _TITLE_KEYS if rec.get(k, "").strip()), "")
        digest = hashlib.sha1(title.encode("utf-8")).hexdigest()[:8]
        try:
            articles.append(_record_article(rec, f"{stem}/{_slug(title)}-{digest}"))
        except LoadError as exc:
            errors.append(LoadError(exc.code, exc.message, line))
    if not articles and not errors:
        raise LoadError("empty_file", "the file has a header but no rows")
    return articles, _with_file_summary(articles, errors)


def _with_file_summary(articles: list[Article], errors: list[LoadError]) -> list[LoadError]:
    # Say plainly when bad records were skipped but the rest of the file was still loaded.
    if errors and articles:
        for e in errors:
            e.message += f" (record skipped; {len(articles)} good record(s) of this file loaded)"
    return errors
