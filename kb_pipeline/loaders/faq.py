"""FAQ files, one article per record: CSV rows and JSON Lines.

* ``.csv``: columns (case-insensitive) ``question``/``answer`` or ``title``/``text`` (also
  ``content``, ``body``); optional ``id``, ``visibility``, ``tags`` (comma-separated),
  ``updated_at``, ``url``. Without an ``id`` column the id is
  ``<file stem>/<question slug>-<hash>``, stable as long as the question is unchanged.
* ``.jsonl`` / ``.ndjson``: one article per line, ``{"id", "title", "text"}`` or
  ``{"id", "title", "content"}`` (``question``/``answer`` and ``body`` are accepted too), with
  optional ``visibility``, ``tags`` (list or comma string), ``updated_at`` and ``url``. The
  record's ``id`` is the article's source id.

A bad record is a ``bad_record`` error with its line; the file's good records still load."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from kb_pipeline.loaders.base import Article, LoadError
from kb_pipeline.loaders.fields import (
    clean_tags,
    default_visibility,
    parse_date,
    parse_tags,
    parse_url,
    parse_visibility,
    stem_id,
)

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
        tags = parse_tags(tags_raw)
    elif isinstance(tags_raw, list) and all(isinstance(t, str) for t in tags_raw):
        tags = clean_tags(tags_raw)
    else:
        raise LoadError("bad_record", "tags must be a list of strings or a string")
    vis = parse_visibility(rec.get("visibility"), "record", "bad_record")
    return Article(
        source_id=source_id,
        title=title,
        body=body,
        visibility=vis or default_visibility(title),
        tags=tags,
        updated_at=parse_date(rec.get("updated_at"), "record", "bad_record"),
        url=parse_url(rec.get("url"), "record", "bad_record"),
    )


def jsonl_articles(text: str) -> tuple[list[Article], list[LoadError]]:
    """The articles of a JSON Lines file, and the errors of its bad lines."""
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


def csv_articles(text: str, path: Path) -> tuple[list[Article], list[LoadError]]:
    """The articles of a CSV file (header row first), and the errors of its bad rows."""
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
    stem = stem_id(path)
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
