"""Idempotency keys: a retried request returns the first result instead of running twice.

The first request with a key *claims* it (a ``running`` row with the hash of its body); when
it finishes, the response is stored and the row is ``done``. A retry with the same key and body
gets the stored response; with another body it is refused (:class:`IdempotencyKeyReused`);
while the first is still running, claiming again says so (the caller may poll until it is
done). A ``running`` row older than ``stale_after_s`` belongs to a process that died
mid-request: the next retry takes it over and runs the request again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg.types.json import Jsonb

from helpdesk.errors import DeskError
from helpdesk.tenancy import Db, connect


class IdempotencyKeyReused(DeskError):
    """The key was first used with a different request body."""

    code = "idempotency_key_reused"
    status = 422


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``new`` (run the request), ``running`` or ``done``."""

    state: Literal["new", "running", "done"]
    response: Any = None


def request_hash(body: Any) -> str:
    """A stable hash of a JSON-able request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def claim(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    key: str,
    body_hash: str,
    *,
    stale_after_s: float = 600.0,
) -> Claim:
    """Claim ``key`` for a request with ``body_hash`` (see the module docstring)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO idempotency_keys (conversation_id, key, tenant_id, request_hash)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (conversation_id, key) DO NOTHING",
            (conversation_id, key, tenant_id, body_hash),
        )
        if cur.rowcount == 1:
            return Claim("new")
        cur = await conn.execute(
            "SELECT request_hash, status, response,"
            " created_at < clock_timestamp() - %s * interval '1 second' AS stale"
            " FROM idempotency_keys WHERE conversation_id = %s AND key = %s AND tenant_id = %s",
            (stale_after_s, conversation_id, key, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:  # deleted by an abandoning first request just now: claim it again
            return await claim(db, tenant_id, conversation_id, key, body_hash)
        if row["request_hash"] != body_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was already used with a different request body"
            )
        if row["status"] == "done":
            return Claim("done", row["response"])
        if row["stale"]:
            cur = await conn.execute(
                "UPDATE idempotency_keys SET created_at = clock_timestamp()"
                " WHERE conversation_id = %s AND key = %s AND tenant_id = %s"
                " AND status = 'running'"
                " AND created_at < clock_timestamp() - %s * interval '1 second'",
                (conversation_id, key, tenant_id, stale_after_s),
            )
            if cur.rowcount == 1:
                return Claim("new")
        return Claim("running")


async def complete(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, key: str, response: Any
) -> None:
    """Store the response of the request that claimed ``key``."""
    async with connect(db) as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET status = 'done', response = %s,"
            " completed_at = clock_timestamp()"
            " WHERE conversation_id = %s AND key = %s AND tenant_id = %s",
            (Jsonb(response), conversation_id, key, tenant_id),
        )


async def abandon(db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, key: str) -> None:
    """Forget a claim whose request was refused before it ran, so a retry can run it."""
    async with connect(db) as conn:
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE conversation_id = %s AND key = %s"
            " AND tenant_id = %s AND status = 'running'",
            (conversation_id, key, tenant_id),
        )
