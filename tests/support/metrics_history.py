"""A scripted history of conversations for the metrics tests (``test_metrics.py`` works out its
right answers by hand; the dashboard's page test shows it): rows written with the times the
script gives, as the graph and the API write them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from helpdesk import metrics
from helpdesk.tenants import Tenant

CHICAGO = ZoneInfo("America/Chicago")
PERIOD = metrics.Period(date(2026, 11, 2), date(2026, 11, 8), "America/Chicago")
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CHICAGO)


class History:
    """Writes a scripted conversation's rows with the times the script gives."""

    def __init__(self, conn: Any, tenant_id: uuid.UUID) -> None:
        self.conn, self.tenant_id = conn, tenant_id

    async def conversation(
        self, started: datetime, script: list[tuple[float, str, dict[str, Any]]], **kw: Any
    ) -> uuid.UUID:
        conv = uuid.uuid4()
        await self.conn.execute(
            "INSERT INTO conversations (id, tenant_id, channel, status, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (conv, self.tenant_id, kw.get("channel", "web"), kw.get("status", "active"), started),
        )
        seq = 0
        for offset, kind, data in script:
            at = started + timedelta(seconds=offset)
            if kind in ("customer", "ai", "agent", "system"):
                message = uuid.uuid4()
                await self.conn.execute(
                    "INSERT INTO messages (id, tenant_id, conversation_id, sender, text, intent,"
                    " citations, agent_name, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        message,
                        self.tenant_id,
                        conv,
                        kind,
                        data.get("text", kind),
                        data.get("intent"),
                        json.dumps(data.get("citations", [])),
                        data.get("agent"),
                        at,
                    ),
                )
                if kind in ("ai", "agent"):
                    seq += 1
                    event = "agent.message" if kind == "agent" else "message.completed"
                    payload = {"sender": kind, "declined": data.get("declined", False)}
                    await self._event(conv, seq, event, payload, at)
                if "vote" in data:
                    await self.conn.execute(
                        "INSERT INTO feedback (tenant_id, conversation_id, message_id, kind,"
                        " rating, created_at) VALUES (%s, %s, %s, 'rating', %s, %s)",
                        (self.tenant_id, conv, message, data["vote"], at),
                    )
            elif kind == "csat":
                await self.conn.execute(
                    "INSERT INTO feedback (tenant_id, conversation_id, kind, csat, created_at)"
                    " VALUES (%s, %s, 'csat', %s, %s)",
                    (self.tenant_id, conv, data["score"], at),
                )
            else:
                seq += 1
                await self._event(conv, seq, kind, data, at)
        return conv

    async def _event(
        self, conv: uuid.UUID, seq: int, kind: str, data: dict[str, Any], at: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO conversation_events (conversation_id, seq, tenant_id, type, data,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (conv, seq, self.tenant_id, kind, json.dumps(data), at),
        )


async def write_history(pool: Any, tenant: Tenant) -> None:
    async with pool.connection() as conn, conn.transaction():
        h = History(conn, tenant.id)
        await h.conversation(local(2, 10), [(0, "customer", {"intent": "hours"}), (2, "ai", {})])
        await h.conversation(
            local(2, 11),
            [
                (0, "customer", {"intent": "billing"}),
                (
                    4,
                    "ai",
                    {"citations": [{"source_id": "billing-faq", "title": "Billing"}], "vote": "up"},
                ),
                (120, "customer", {}),
                (130, "csat", {"score": 5}),
            ],
        )
        await h.conversation(
            local(3, 9),
            [
                (0, "customer", {"intent": "billing"}),
                (3, "approval.pending", {}),
                (600, "approval.approved", {}),
                (600, "ai", {}),
            ],
            channel="email",
        )
        await h.conversation(
            local(4, 14),
            [
                (0, "customer", {"intent": "leak"}),
                (1, "handoff", {"reason": "emergency"}),
                (1, "system", {}),
                (300, "agent", {"agent": "Alex"}),
                (400, "csat", {"score": 2}),
            ],
        )
        await h.conversation(
            local(5, 16, 30),
            [
                (0, "customer", {"intent": "pricing"}),
                (2, "ai", {"declined": True}),
                (30, "customer", {}),
                (31, "handoff", {"reason": "customer_request"}),
                (90, "agent", {"agent": "Sam"}),
            ],
        )
        await h.conversation(
            local(8, 23, 30),
            [
                (0, "customer", {"intent": "hours"}),
                (
                    1,
                    "ai",
                    {
                        "citations": [{"source_id": "opening-hours", "title": "Hours"}],
                        "vote": "down",
                    },
                ),
                (3600, "customer", {}),
                (3602, "ai", {}),
            ],
        )
        await h.conversation(local(6, 12), [])
        await h.conversation(
            local(6, 13),
            [
                (0, "customer", {"intent": "billing"}),
                (2, "approval.pending", {}),
                (100, "approval.edited", {}),
                (100, "ai", {}),
                (300, "approval.pending", {}),
                (400, "approval.rejected", {}),
                (400, "handoff", {"reason": "draft_rejected"}),
                (500, "agent", {"agent": "Alex"}),
            ],
            status="waiting_human",
        )
        await h.conversation(local(9, 0, 30), [(0, "customer", {}), (1, "ai", {})])
        await h.conversation(local(1, 23, 30), [(0, "customer", {}), (1, "ai", {})])
        cur = await conn.execute(
            "INSERT INTO contacts (tenant_id, email) VALUES (%s, 'lead@example.com') RETURNING id",
            (tenant.id,),
        )
        contact = (await cur.fetchone())["id"]
        for at in (local(4, 12), local(12, 12)):
            await conn.execute(
                "INSERT INTO leads (tenant_id, contact_id, created_at) VALUES (%s, %s, %s)",
                (tenant.id, contact, at),
            )
        await conn.execute(
            "INSERT INTO tickets (tenant_id, status, priority) VALUES (%s, 'new', 'high'),"
            " (%s, 'resolved', 'low')",
            (tenant.id, tenant.id),
        )
