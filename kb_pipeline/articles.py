"""Reading one published article whole, for the replies that must quote it word for word.

Retrieval returns chunks, which may cut an article's numbered steps apart; a safety message
(:mod:`graph.safety`) needs the steps exactly as the business wrote them, so it reads the stored
body instead.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from helpdesk.tenancy import Db, connect

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PublishedArticle:
    """A customer-facing, published article as stored."""

    id: uuid.UUID
    source_id: str
    title: str
    body: str
    url: str | None

    def section(self, heading: str) -> str | None:
        """The text under ``heading`` (matched case-insensitively), up to the next heading of
        any level; None when the article has no such heading."""
        marks = list(_HEADING.finditer(self.body))
        for i, mark in enumerate(marks):
            if mark.group(1).strip().casefold() == heading.strip().casefold():
                end = marks[i + 1].start() if i + 1 < len(marks) else len(self.body)
                return self.body[mark.end() : end].strip() or None
        return None


async def published_article(
    db: Db, tenant_id: uuid.UUID, source_id: str
) -> PublishedArticle | None:
    """The tenant's published external article ``source_id``, or None (missing, a draft, or
    internal: a customer may only ever be sent what they could read on the help pages)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT id, source_id, title, body, url FROM kb_articles WHERE tenant_id = %s"
            " AND source_id = %s AND review_state = 'published' AND visibility = 'external'",
            (tenant_id, source_id),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    return PublishedArticle(row["id"], row["source_id"], row["title"], row["body"], row["url"])
