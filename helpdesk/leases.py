"""Conversation leases: one graph run (customer turn or agent action) at a time per
conversation, across every API process.

A lease is a token and an expiry on the conversation row, taken with one conditional
``UPDATE``. Unlike an advisory lock it pins no connection while the turn runs (a turn needs the
pool itself), and a process that dies holding one only blocks that conversation until the lease
expires. The holder renews it while it works (:meth:`Lease.keep_alive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from helpdesk.db import DictPool

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """A held conversation lease."""

    pool: DictPool
    tenant_id: uuid.UUID
    conversation_id: uuid.UUID
    token: uuid.UUID
    ttl_s: float

    async def renew(self) -> bool:
        """Push the expiry out by ``ttl_s``; False if the lease was lost meanwhile."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE conversations"
                " SET lease_until = clock_timestamp() + %s * interval '1 second'"
                " WHERE id = %s AND tenant_id = %s AND lease_token = %s",
                (self.ttl_s, self.conversation_id, self.tenant_id, self.token),
            )
            return cur.rowcount == 1

    async def release(self) -> None:
        """Give the lease up (a no-op if it already expired and was taken by someone else)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE conversations SET lease_token = NULL, lease_until = NULL"
                " WHERE id = %s AND tenant_id = %s AND lease_token = %s",
                (self.conversation_id, self.tenant_id, self.token),
            )

    @contextlib.asynccontextmanager
    async def keep_alive(self) -> AsyncIterator[Lease]:
        """Renew the lease every third of its lifetime while the block runs."""

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(self.ttl_s / 3)
                try:
                    if not await self.renew():
                        log.warning("lease on conversation %s was lost", self.conversation_id)
                        return
                except Exception:  # a failed renewal must not kill the turn it protects
                    log.exception("renewing the lease on %s failed", self.conversation_id)

        task = asyncio.create_task(renew_forever())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def try_acquire(
    pool: DictPool, tenant_id: uuid.UUID, conversation_id: uuid.UUID, *, ttl_s: float
) -> Lease | None:
    """Take the conversation's lease if it is free (or expired); None if someone holds it."""
    token = uuid.uuid4()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE conversations SET lease_token = %s,"
            " lease_until = clock_timestamp() + %s * interval '1 second'"
            " WHERE id = %s AND tenant_id = %s"
            " AND (lease_until IS NULL OR lease_until < clock_timestamp())",
            (token, ttl_s, conversation_id, tenant_id),
        )
        if cur.rowcount != 1:
            return None
    return Lease(pool, tenant_id, conversation_id, token, ttl_s)


async def acquire(
    pool: DictPool,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    ttl_s: float,
    wait_s: float,
    poll_s: float = 0.05,
) -> Lease | None:
    """Take the lease, waiting up to ``wait_s`` for its holder to finish; None on time-out."""
    deadline = time.monotonic() + wait_s
    while True:
        lease = await try_acquire(pool, tenant_id, conversation_id, ttl_s=ttl_s)
        if lease is not None or time.monotonic() >= deadline:
            return lease
        await asyncio.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
