"""Idempotency keys: a retried request returns the first result instead of running twice.

The first request with a key *claims* it (a ``running`` row with the hash of its body); when
it finishes, the response is stored and the row is ``done``. A retry with the same key and body
gets the stored response; with another body it is refused (:class:`IdempotencyKeyReused`);
while the first is still running, claiming again says so (the caller may poll until it is
done).

A ``running`` claim whose process died mid-request is taken over by the next retry, which
runs the request again (the turn resumes from its checkpoint, see
:func:`desk.turns.run_turn`). Its liveness is the conversation lease
(:mod:`helpdesk.leases`), which a live request holds and renews while its turn runs: a claim
is dead once it is older than ``grace_s`` and nobody holds the lease. ``grace_s`` covers the
moments a live request runs without the lease: waiting for it (a few seconds) and storing a
message for an agent. The first request marks the key ``done`` *before* it gives the lease
up, so a finished request never looks dead. A retry therefore waits at most for the dead
process's lease to expire (``turn_lease_s``), not for a fixed staleness time.
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


_DEAD = (
    "(k.created_at < clock_timestamp() - %s * interval '1 second' AND NOT EXISTS ("
    " SELECT 1 FROM conversations c WHERE c.id = k.conversation_id"
    " AND c.tenant_id = k.tenant_id AND c.lease_until >= clock_timestamp()))"
)
"""SQL: a ``running`` claim (alias ``k``) older than the grace (the one parameter) on a
conversation whose lease nobody holds: its request's process is gone."""


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
    grace_s: float = 30.0,
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
            "SELECT request_hash, status, response, " + _DEAD + " AS stale"
            " FROM idempotency_keys k WHERE conversation_id = %s AND key = %s AND tenant_id = %s",
            (grace_s, conversation_id, key, tenant_id),
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
            # Conditional, so of two retries racing for a dead claim only one takes it over.
            cur = await conn.execute(
                "UPDATE idempotency_keys k SET created_at = clock_timestamp()"
                " WHERE conversation_id = %s AND key = %s AND tenant_id = %s"
                " AND status = 'running' AND " + _DEAD,
                (conversation_id, key, tenant_id, grace_s),
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
