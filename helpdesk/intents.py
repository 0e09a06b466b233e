"""A tenant's own intent examples: a dog groomer is not classified with a plumber's intents.

A tenant adds labelled examples to the shared ones (``prompts/intents.csv``), or replaces them
with its own set; the shared out-of-scope examples (``prompts/out_of_scope.csv``: weather,
trivia, other trades' chatter) always stay, since "not about this business" looks alike for
every business. The graph trains one classifier per tenant that has examples, when they change
(``graph.services.Services.classifier_for``).

The tenant's policy names intents (``always_human_intents``); a replacing set should keep the
names its policy uses, or change the policy with it.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg.types.json import Jsonb

from helpdesk.errors import InvalidInput
from helpdesk.tenancy import Db, connect
from helpdesk.text_policy import check_text

Mode = Literal["add", "replace"]
MAX_EXAMPLES = 5000
_LABEL = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


@dataclass(frozen=True)
class TenantIntents:
    """A tenant's examples as stored."""

    mode: Mode
    examples: list[tuple[str, str]]
    """``(text, intent)`` rows."""
    saved_at: datetime


def validate(examples: list[tuple[str, str]], mode: Mode) -> list[tuple[str, str]]:
    """Trimmed examples, or :class:`InvalidInput` naming the first bad row (1-based).

    A replacing set needs at least two intents with two examples each, or no classifier can be
    trained on it; ``out_of_scope`` rows are allowed (more off-topic text for this business).
    """
    if not examples:
        raise InvalidInput("no examples given")
    if len(examples) > MAX_EXAMPLES:
        raise InvalidInput(f"at most {MAX_EXAMPLES} examples, got {len(examples)}")
    clean: list[tuple[str, str]] = []
    for row, (text, intent) in enumerate(examples, start=1):
        text, intent = " ".join(text.split()), intent.strip()
        if not text or len(text) > 500:
            raise InvalidInput(f"row {row}: the text must be 1-500 characters")
        check_text(text, f"row {row}: text")
        if not _LABEL.match(intent):
            raise InvalidInput(
                f"row {row}: intent {intent!r} must be lowercase letters, digits and _"
                " (2-63 characters, starting with a letter)"
            )
        clean.append((text, intent))
    if mode == "replace":
        counts = Counter(intent for _, intent in clean if intent != "out_of_scope")
        enough = [label for label, n in counts.items() if n >= 2]
        if len(enough) < 2:
            raise InvalidInput(
                "a replacing set needs at least two intents with two examples each"
                f" (got {dict(counts)})"
            )
    return clean


async def save_intents(
    db: Db, tenant_id: uuid.UUID, examples: list[tuple[str, str]], mode: Mode, saved_by: str
) -> TenantIntents:
    """Store the tenant's examples (validated), replacing what it had."""
    clean = validate(examples, mode)
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO tenant_intents (tenant_id, mode, examples, saved_by)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id) DO UPDATE SET"
            " mode = excluded.mode, examples = excluded.examples,"
            " saved_by = excluded.saved_by, saved_at = clock_timestamp()"
            " RETURNING saved_at",
            (tenant_id, mode, Jsonb([list(e) for e in clean]), saved_by[:200]),
        )
        row = await cur.fetchone()
    assert row is not None
    return TenantIntents(mode, clean, row["saved_at"])


async def load_intents(db: Db, tenant_id: uuid.UUID) -> TenantIntents | None:
    """The tenant's examples, or None when it uses the shared ones only."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT mode, examples, saved_at FROM tenant_intents WHERE tenant_id = %s",
            (tenant_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    rows = [(str(text), str(intent)) for text, intent in row["examples"]]
    return TenantIntents(row["mode"], rows, row["saved_at"])


async def clear_intents(db: Db, tenant_id: uuid.UUID) -> bool:
    """Go back to the shared examples; True if the tenant had its own."""
    async with connect(db) as conn:
        cur = await conn.execute("DELETE FROM tenant_intents WHERE tenant_id = %s", (tenant_id,))
        return cur.rowcount > 0
