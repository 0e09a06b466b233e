"""Loaders: files on disk -> :class:`Article` records.

Markdown files may start with a front-matter block (``---`` lines) holding ``id``, ``title``,
``visibility`` (external | internal), ``tags`` (``[a, b]``) and ``updated_at``. Without one, the
file name is the id and the first ``#`` heading the title.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

Visibility = Literal["external", "internal"]


@dataclass(frozen=True)
class Article:
    """One knowledge-base article, the unit of ingestion."""

    source_id: str
    title: str
    body: str
    visibility: Visibility = "external"
    tags: tuple[str, ...] = field(default_factory=tuple)
    updated_at: datetime | None = None

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes the article's chunks or their metadata."""
        h = hashlib.sha256()
        for part in (self.title, self.body, self.visibility, ",".join(self.tags)):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def _parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    meta: dict[str, str] = {}
    for line in m.group(1).splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    return meta, text[m.end() :]


def _parse_tags(raw: str) -> tuple[str, ...]:
    raw = raw.strip().strip("[]")
    return tuple(t.strip().strip("'\"") for t in raw.split(",") if t.strip())


def _parse_date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        d = date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValueError(f"updated_at must be an ISO date (YYYY-MM-DD), got {raw!r}") from exc
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def load_markdown(path: Path, *, visibility: Visibility | None = None) -> Article:
    """Load one Markdown file as an article (``visibility`` overrides the front matter)."""
    text = path.read_text(encoding="utf-8")
    meta, body = _parse_front_matter(text)
    title = meta.get("title")
    if not title:
        heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else path.stem.replace("-", " ").title()
    vis = visibility or meta.get("visibility", "external")
    if vis not in ("external", "internal"):
        raise ValueError(f"{path.name}: visibility must be external or internal, got {vis!r}")
    return Article(
        source_id=meta.get("id") or path.stem,
        title=title,
        body=body.strip(),
        visibility=vis,  # type: ignore[arg-type]
        tags=_parse_tags(meta.get("tags", "")),
        updated_at=_parse_date(meta.get("updated_at")),
    )


def load_directory(root: Path, *, visibility: Visibility | None = None) -> list[Article]:
    """Load every Markdown file under ``root`` (sorted by path)."""
    return [load_markdown(p, visibility=visibility) for p in sorted(root.rglob("*.md"))]


def demo_kb_path() -> Path:
    """The demo tenant's knowledge base shipped with the package."""
    return Path(__file__).resolve().parent / "demo_kb"
