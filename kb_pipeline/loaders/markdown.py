"""Markdown files (``.md`` / ``.markdown``): one article each.

An optional front-matter block (``---`` lines) holds ``id``, ``title``, ``visibility``
(external | internal), ``tags`` (``[a, b]``), ``updated_at`` and ``url``. Without a title, the
first ``#`` heading, else the file name."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from kb_pipeline.loaders.base import Article, LoadError
from kb_pipeline.loaders.fields import (
    default_visibility,
    parse_date,
    parse_tags,
    parse_url,
    parse_visibility,
    stem_id,
    title_from_name,
)

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


def markdown_article(text: str, path: Path, mtime: datetime) -> Article:
    """The article of a Markdown file's decoded ``text`` (``mtime``: when it changed)."""
    meta, body = _parse_front_matter(text)
    body = body.strip()
    if not body:
        raise LoadError("empty_file", "the file has front matter but no body")
    title = meta.get("title")
    if not title:
        heading = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else title_from_name(path)
    vis = parse_visibility(meta.get("visibility"), "front matter", "bad_metadata")
    return Article(
        source_id=meta.get("id") or stem_id(path),
        title=title,
        body=body,
        visibility=vis or default_visibility(title),
        tags=parse_tags(meta.get("tags", "")),
        updated_at=parse_date(meta.get("updated_at"), "front matter", "bad_metadata") or mtime,
        url=parse_url(meta.get("url"), "front matter", "bad_metadata"),
    )
