"""One holder at a time per conversation: in this process, and across processes.

An ``asyncio.Lock`` per conversation inside the process (so concurrent callers queue instead of
polling the database) and the conversation lease (:mod:`helpdesk.leases`) across processes.
Every graph run of a thread (a turn, a resumed interrupt, an agent's update) happens while the
caller holds its conversation here: two runs of one thread at once would interleave its
checkpoints.

The lease's length is a trade-off: shorter frees a crashed conversation sooner, but a live holder
that cannot renew it in time (an event loop blocked for a third of it, a database that stalls
longer than that) loses it, and a second run could then interleave with its checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from helpdesk import leases
from helpdesk.db import DictPool
from helpdesk.errors import DeskError


class ConversationGate:
    """One holder at a time per conversation: in this process, and across processes."""

    def __init__(self, pool: DictPool, *, lease_ttl_s: float = 20.0) -> None:
        self._pool = pool
        self._lease_ttl_s = lease_ttl_s
        self._locks: dict[uuid.UUID, tuple[asyncio.Lock, int]] = {}

    def _ref(self, conversation_id: uuid.UUID) -> asyncio.Lock:
        lock, refs = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, refs + 1)
        return lock

    def _unref(self, conversation_id: uuid.UUID) -> None:
        lock, refs = self._locks[conversation_id]
        if refs <= 1:
            del self._locks[conversation_id]
        else:
            self._locks[conversation_id] = (lock, refs - 1)

    @contextlib.asynccontextmanager
    async def hold(
        self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, *, wait_s: float, busy: DeskError
    ) -> AsyncIterator[None]:
        """Hold the conversation while the block runs; raise ``busy`` after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        lock = self._ref(conversation_id)
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout=wait_s)
            except TimeoutError:
                raise busy from None
            try:
                lease = await leases.acquire(
                    self._pool,
                    tenant_id,
                    conversation_id,
                    ttl_s=self._lease_ttl_s,
                    wait_s=max(0.0, deadline - time.monotonic()),
                )
                if lease is None:
                    raise busy
                try:
                    async with lease.keep_alive():
                        yield
                finally:
                    # Shielded: a cancelled holder must still free the conversation promptly
                    # rather than leave it blocked until the lease expires.
                    await asyncio.shield(lease.release())
            finally:
                lock.release()
        finally:
            self._unref(conversation_id)
