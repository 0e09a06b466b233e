"""The records every loader shares: the :class:`Article`, and how a file's problems are reported.

An :class:`Article` is the unit of ingestion. A bad file is never an exception to the caller:
a format module raises :class:`LoadError` with a stable code from :data:`ERROR_CODES`, and
:func:`~kb_pipeline.loaders.files.load_file` turns it into a :class:`FileError` of the file's
:class:`LoadResult`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

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
