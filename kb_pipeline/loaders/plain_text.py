"""Plain text files (``.txt``): one article each.

A short first line followed by more text is the title, else the file name is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kb_pipeline.loaders.base import Article
from kb_pipeline.loaders.fields import default_visibility, stem_id, title_from_name


def text_article(text: str, path: Path, mtime: datetime) -> Article:
    """The article of a text file's decoded ``text``."""
    lines = text.strip().split("\n")
    first = lines[0].strip()
    rest = "\n".join(lines[1:]).strip()
    # A short first line followed by more text reads as a title; a one-paragraph note does not.
    if rest and len(first) <= 120 and not first.endswith((".", ",", ";", ":")):
        title, body = first.lstrip("# ").strip() or title_from_name(path), rest
    else:
        title, body = title_from_name(path), text.strip()
    return Article(
        source_id=stem_id(path),
        title=title,
        body=body,
        visibility=default_visibility(title),
        updated_at=mtime,
    )
