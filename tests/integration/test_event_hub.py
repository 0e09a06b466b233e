"""The per-process event hub: notifications wake the right subscribers, and a lost listener
connection makes every subscriber re-read (nothing committed meanwhile is missed)."""

from __future__ import annotations

import asyncio

import pytest

from helpdesk import conversations
from helpdesk.notify import EventHub

pytestmark = pytest.mark.integration


async def test_notifications_wake_the_conversation_and_tenant_subscribers(
    services, demo, database_url
):
    hub = EventHub(database_url)
    await hub.start()
    try:
        mine = await conversations.create_conversation(services.pool, demo.id)
        other = await conversations.create_conversation(services.pool, demo.id)
        async with hub.conversation(mine) as sub, hub.tenant(demo.id) as tenant_sub:
            seq = await conversations.append_event(services.pool, demo.id, other, "note", {})
            assert not await sub.wait(0.5), "another conversation's event must not wake it"
            seq = await conversations.append_event(services.pool, demo.id, mine, "note", {})
            assert await sub.wait(5)
            notice = sub.notices.get_nowait()
            assert (notice.conversation_id, notice.seq, notice.type) == (mine, seq, "note")
            await asyncio.sleep(0.2)
            seen = [tenant_sub.notices.get_nowait() for _ in range(tenant_sub.notices.qsize())]
            assert {n.conversation_id for n in seen} == {mine, other}
        # Unsubscribed: nothing left registered.
        assert not hub._by_conversation and not hub._by_tenant
    finally:
        await hub.stop()


async def test_a_lost_listener_reconnects_and_makes_subscribers_re_read(
    services, demo, database_url
):
    hub = EventHub(database_url, reconnect_s=0.2)
    await hub.start()
    try:
        cid = await conversations.create_conversation(services.pool, demo.id)
        async with hub.conversation(cid) as sub:
            pid = hub.backend_pid
            assert pid is not None
            async with services.pool.connection() as conn:
                await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # Committed while nobody listens: its notification is gone for good.
            seq = await conversations.append_event(services.pool, demo.id, cid, "note", {})
            for _ in range(100):
                if hub.listening.is_set() and hub.backend_pid not in (None, pid):
                    break
                await asyncio.sleep(0.05)
            assert hub.backend_pid not in (None, pid), "the listener reconnected"
            notices = []
            while await sub.wait(1):
                notices += [sub.notices.get_nowait() for _ in range(sub.notices.qsize())]
                if any(n.resync for n in notices):
                    break
            assert any(n.resync for n in notices), "subscribers are told to re-read"
            # Re-reading the log finds the event the lost notification announced.
            rows = await conversations.list_events(services.pool, demo.id, cid)
            assert seq in [r["seq"] for r in rows]
            # And the new connection carries notifications again.
            seq2 = await conversations.append_event(services.pool, demo.id, cid, "note", {})
            got = []
            while await sub.wait(5):
                got += [sub.notices.get_nowait() for _ in range(sub.notices.qsize())]
                if any(n.seq == seq2 for n in got):
                    break
            assert any(n.seq == seq2 and not n.resync for n in got)
    finally:
        await hub.stop()
