"""Cross-process event fan-out over Postgres ``LISTEN``/``NOTIFY``.

Each API process keeps one listening connection (:class:`EventHub`) and wakes its local
subscribers when an event of their conversation (or tenant) is committed, by any process.
A notification only says *where* to look (tenant, conversation, sequence number, type):
subscribers read the rows from ``conversation_events`` themselves, after the last sequence number
they delivered. So coalesced, reordered or lost notifications can delay an event, never drop or
repeat one; and after the listener reconnects every subscriber is woken to re-read, because
notifications sent while it was away are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg

from helpdesk.conversations import EVENTS_CHANNEL, parse_notify_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One announced event; ``resync`` means "events may have been missed, re-read all"."""

    conversation_id: uuid.UUID | None
    seq: int
    type: str
    resync: bool = False


@dataclass(eq=False)
class Subscription:
    """A local subscriber: woken on new events, with the notices kept for tenant streams."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    notices: asyncio.Queue[Notice] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))

    def _push(self, notice: Notice) -> None:
        if self.notices.full():  # a stuck consumer: drop the backlog, ask it to re-read
            while not self.notices.empty():
                self.notices.get_nowait()
            notice = Notice(None, 0, "", resync=True)
        self.notices.put_nowait(notice)
        self.wake.set()

    async def wait(self, max_wait_s: float) -> bool:
        """Wait until woken (True) or ``max_wait_s`` seconds pass (False); then re-arm."""
        try:
            await asyncio.wait_for(self.wake.wait(), max_wait_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.wake.clear()


class EventHub:
    """One ``LISTEN`` connection per process, fanned out to local subscribers."""

    def __init__(self, url: str, *, reconnect_s: float = 1.0) -> None:
        self._url = url
        self._reconnect_s = reconnect_s
        self._by_conversation: dict[uuid.UUID, set[Subscription]] = {}
        self._by_tenant: dict[uuid.UUID, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the listener is connected (tests and health checks wait on it)."""
        self.backend_pid: int | None = None
        """The Postgres backend of the listening connection, while connected."""

    async def start(self, *, timeout_s: float = 10.0) -> None:
        """Start listening; returns once the first ``LISTEN`` is in place."""
        self._task = asyncio.create_task(self._run(), name="deskgraph-event-hub")
        await asyncio.wait_for(self.listening.wait(), timeout_s)

    async def stop(self) -> None:
        """Stop listening and wake every subscriber."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.listening.clear()

    @contextlib.asynccontextmanager
    async def conversation(self, conversation_id: uuid.UUID) -> AsyncIterator[Subscription]:
        """Subscribe to one conversation's events while the block runs."""
        sub = Subscription()
        self._by_conversation.setdefault(conversation_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._by_conversation.get(conversation_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_conversation[conversation_id]

    @contextlib.asynccontextmanager
    async def tenant(self, tenant_id: uuid.UUID) -> AsyncIterator[Subscription]:
        """Subscribe to every conversation event of one tenant while the block runs."""
        sub = Subscription()
        self._by_tenant.setdefault(tenant_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._by_tenant.get(tenant_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_tenant[tenant_id]

    def dispatch(self, payload: str) -> None:
        """Wake the subscribers a notification payload concerns."""
        try:
            tenant_id, conversation_id, seq, type_ = parse_notify_payload(payload)
        except ValueError:
            log.warning("ignoring malformed notification %r", payload)
            return
        notice = Notice(conversation_id, seq, type_)
        for sub in self._by_conversation.get(conversation_id, ()):
            sub._push(notice)
        for sub in self._by_tenant.get(tenant_id, ()):
            sub._push(notice)

    def _resync_all(self) -> None:
        notice = Notice(None, 0, "", resync=True)
        for group in (self._by_conversation, self._by_tenant):
            for subs in group.values():
                for sub in subs:
                    sub._push(notice)

    async def _run(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.listening.set()
                    # Anything committed before LISTEN took effect was not announced to us.
                    self._resync_all()
                    async for notification in conn.notifies():
                        self.dispatch(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event listener lost its connection; reconnecting")
            self.listening.clear()
            self.backend_pid = None
            self._resync_all()
            await asyncio.sleep(self._reconnect_s)
