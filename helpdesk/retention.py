"""Retention: delete conversations nobody has touched for a tenant's ``retention_days``.

A support desk keeps customers' words, names and e-mail addresses; a business usually promises
(or is required) to keep them no longer than it needs them. ``TenantPolicy.retention_days``
(default ``None``: keep everything) sets how long. :func:`purge_conversations` deletes, for one
tenant, every conversation whose last activity (``updated_at``) is older than that, with what
hangs off it:

* its messages, event log, idempotency records, ratings and knowledge-base misses (foreign
  keys, ``ON DELETE CASCADE``), the tickets of it that are resolved or closed, and the
  LangGraph thread (every checkpoint, blob and pending write, through the checkpointer's own
  ``adelete_thread``); and the tenant's search misses older than that (they have no
  conversation);
* never a conversation waiting for a person, nor one with an open ticket: those are work in
  progress, however old, and go once a person has dealt with them;
* never one whose turn is running (its lease is live); rows another purge holds are skipped.

Order: the batch's rows are locked, their threads deleted, then the rows deleted and the lock
released in one commit. A crash in between leaves rows that are still eligible, and the next
purge finishes them (deleting a thread that is gone is a no-op). The other order could leave
threads that nothing refers to any more, so no later purge would find them: data kept past
its time. While the rows are locked no turn can start on them. A customer token outlives
nothing it could use: it names the conversation, which answers 404 ``not_found`` once purged,
and the widget then starts a new conversation.

Run by ``deskgraph purge`` and, every ``DESKGRAPH_RETENTION_INTERVAL_S`` (an hour), by each API
process for every tenant with a retention period (:func:`purge_all`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from helpdesk.db import DictPool
from helpdesk.policy import TenantPolicy
from helpdesk.tenancy import tenant_scope

log = logging.getLogger(__name__)

BATCH = 200
"""Conversations deleted per transaction: bounded locks and undo on a large backlog."""


@dataclass
class PurgeStats:
    """What one purge did (or, dry, would do)."""

    conversations: int = 0
    tickets: int = 0
    threads: int = 0


_ELIGIBLE = """
    SELECT c.id FROM conversations c
    WHERE c.tenant_id = %(tenant)s AND c.updated_at < now() - %(age)s
      AND c.status <> 'waiting_human'
      AND (c.lease_until IS NULL OR c.lease_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM tickets t
          WHERE t.conversation_id = c.id AND t.status NOT IN ('resolved', 'closed'))
    ORDER BY c.updated_at
"""


async def purge_conversations(
    pool: DictPool,
    checkpointer: Any,
    tenant_id: uuid.UUID,
    older_than: timedelta,
    *,
    dry_run: bool = False,
) -> PurgeStats:
    """Delete the tenant's conversations untouched for longer than ``older_than`` (see the
    module docstring for what goes with them and what is kept).

    Args:
        checkpointer: the graph's checkpointer (``AsyncPostgresSaver``), for the threads.
        dry_run: count what would go, delete nothing.

    Raises:
        ValueError: ``older_than`` is not positive.
    """
    if older_than <= timedelta(0):
        raise ValueError(f"older_than must be positive, got {older_than}")
    stats = PurgeStats()
    params = {"tenant": tenant_id, "age": older_than}
    if dry_run:
        async with tenant_scope(pool, tenant_id) as conn:
            cur = await conn.execute(f"SELECT count(*) AS n FROM ({_ELIGIBLE}) e", params)
            row = await cur.fetchone()
        stats.conversations = int(row["n"]) if row else 0
        return stats
    while True:
        async with tenant_scope(pool, tenant_id) as conn:
            cur = await conn.execute(
                f"{_ELIGIBLE} LIMIT {BATCH} FOR UPDATE OF c SKIP LOCKED", params
            )
            ids = [r["id"] for r in await cur.fetchall()]
            if not ids:
                # Search misses (helpdesk.kb_misses) hold what a customer typed and belong
                # to no conversation: they go by the same age.
                await conn.execute(
                    "DELETE FROM kb_misses WHERE tenant_id = %(tenant)s"
                    " AND conversation_id IS NULL AND created_at < now() - %(age)s",
                    params,
                )
                return stats
            for cid in ids:  # the checkpointer's own connections; the rows stay locked
                await checkpointer.adelete_thread(str(cid))
                stats.threads += 1
            cur = await conn.execute(
                "DELETE FROM tickets WHERE tenant_id = %s AND conversation_id = ANY(%s)",
                (tenant_id, ids),
            )
            stats.tickets += cur.rowcount
            cur = await conn.execute(
                "DELETE FROM conversations WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, ids)
            )
            stats.conversations += cur.rowcount
        log.info("retention: tenant %s, %d conversations deleted", tenant_id, len(ids))


async def purge_all(
    pool: DictPool, checkpointer: Any, *, dry_run: bool = False
) -> dict[str, PurgeStats]:
    """Apply every tenant's ``retention_days``; return what was deleted, by tenant slug."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, slug, policy FROM tenants"
            " WHERE policy->>'retention_days' IS NOT NULL ORDER BY slug"
        )
        rows = await cur.fetchall()
    done: dict[str, PurgeStats] = {}
    for row in rows:
        days = TenantPolicy.model_validate(row["policy"]).retention_days
        if days is not None:
            done[row["slug"]] = await purge_conversations(
                pool, checkpointer, row["id"], timedelta(days=days), dry_run=dry_run
            )
    return done
