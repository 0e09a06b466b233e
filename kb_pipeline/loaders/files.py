"""Finding files, dispatching each to its format by suffix, and the loaders' entry points.

:func:`load_path` takes a file or a folder (walked recursively in sorted order; hidden files
and folders are ignored) and returns a :class:`~kb_pipeline.loaders.base.LoadResult`: the
articles, the files read, the files skipped, and one error per problem. A bad file never stops
the others, and a bad record in a FAQ file never drops the good records of that file.

Decisions that span files and formats:

* **Duplicate ids**: two articles with one source id: the first (in sorted path order) wins,
  the others are reported as ``duplicate_id``.
* **Visibility** can only be restricted, never widened: ``visibility="internal"`` marks every
  article internal, and an article that declares itself internal (front matter, record field,
  or a title starting with ``Internal:``) stays internal whatever the caller passes. An agent-only
  document can never leak to customers through a command-line default.
* **Tags** passed by the caller are added to the article's own tags (order kept, no repeats)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kb_pipeline.loaders.base import (
    DEFAULT_MAX_FILE_BYTES,
    Article,
    FileError,
    LoadError,
    LoadResult,
    Visibility,
)
from kb_pipeline.loaders.faq import csv_articles, jsonl_articles
from kb_pipeline.loaders.fields import clean_tags, declared_charset, decode, require_text
from kb_pipeline.loaders.html import html_article
from kb_pipeline.loaders.markdown import markdown_article
from kb_pipeline.loaders.pdf import pdf_article
from kb_pipeline.loaders.plain_text import text_article

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
    extra_tags = clean_tags(tags)
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
    """The demo tenant's knowledge base shipped with the package (``kb_pipeline/demo_kb``)."""
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
        return [pdf_article(data, path, mtime)], []
    if fmt == "html":
        text = decode(data, fallback_charset=declared_charset(data))
        require_text(text)
        return [html_article(text, path, mtime)], []
    text = decode(data)
    require_text(text)
    if fmt == "markdown":
        return [markdown_article(text, path, mtime)], []
    if fmt == "text":
        return [text_article(text, path, mtime)], []
    if fmt == "csv":
        return csv_articles(text, path)
    return jsonl_articles(text)


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
