"""The audit log: what staff did, append-only.

One row per staff action: the tenant, the actor (a user id or an API key id, and the name
recorded for them), the action (``conversation.reply``, ``user.update``...), its target (type
and id) and a JSON detail. Rows are written in the same transaction as the change they record
where the change is one transaction (pass that connection as ``db``); an agent action that
resumes the graph commits its writes in the graph run, and its entry follows right after it.

The app role may only insert and read rows, and a trigger refuses every update
(``0010_staff.sql``): nothing the API does can rewrite history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from helpdesk.tenancy import Db, connect


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, an API key, or the system (neither)."""

    name: str
    user_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None

    @property
    def identity(self) -> str:
        """The credential's identity (``user:<id>``, ``key:<id>``, or ``name:<name>``): what
        ownership of a conversation is compared by."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return f"name:{self.name}"


SYSTEM = Actor("system")


@dataclass(frozen=True)
class Entry:
    """One audit log row."""

    id: int
    tenant_id: uuid.UUID
    actor_user_id: uuid.UUID | None
    actor_key_id: uuid.UUID | None
    actor_name: str
    action: str
    target_type: str
    target_id: str | None
    detail: dict[str, Any]
    at: datetime


async def record(
    db: Db,
    tenant_id: uuid.UUID,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry (on ``db``: in the caller's transaction when it is a connection)."""
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO audit_log (tenant_id, actor_user_id, actor_key_id, actor_name, action,"
            " target_type, target_id, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                tenant_id,
                actor.user_id,
                actor.key_id,
                actor.name[:300],
                action,
                target_type,
                str(target_id) if target_id is not None else None,
                Jsonb(detail or {}),
            ),
        )


async def list_entries(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
    target_id: str | None = None,
    actor_user_id: uuid.UUID | None = None,
) -> list[Entry]:
    """The tenant's entries, newest first; ``before`` (an entry id) pages back, ``action``
    matches exactly or as a prefix ending in a dot (``conversation.``)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM audit_log WHERE tenant_id = %(tenant)s"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s"
            "      OR (right(%(action)s, 1) = '.' AND starts_with(action, %(action)s)))"
            " AND (%(target)s::text IS NULL OR target_id = %(target)s)"
            " AND (%(user)s::uuid IS NULL OR actor_user_id = %(user)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {
                "tenant": tenant_id,
                "before": before,
                "action": action,
                "target": target_id,
                "user": actor_user_id,
                "limit": limit,
            },
        )
        rows = await cur.fetchall()
    return [
        Entry(
            r["id"],
            r["tenant_id"],
            r["actor_user_id"],
            r["actor_key_id"],
            r["actor_name"],
            r["action"],
            r["target_type"],
            r["target_id"],
            r["detail"],
            r["at"],
        )
        for r in rows
    ]
