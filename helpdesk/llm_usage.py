"""Token usage of the LLM tier per tenant (migration 0028): one row per model call.

Written by :mod:`graph.llm.gate` from each answer's usage metadata; read by the metrics
(``GET /v1/metrics/llm-usage``) and by the monthly token budget, which is the tenant policy's
``llm_monthly_tokens``: a tenant that has used it this calendar month (UTC) answers on the
offline tier until the next.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from helpdesk.metrics import Period
from helpdesk.tenancy import Db, connect


async def record(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    node: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    conversation_id: uuid.UUID | None = None,
    turn: int | None = None,
) -> None:
    """Store one call's token counts."""
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO llm_usage (tenant_id, conversation_id, turn, node, model,"
            " input_tokens, output_tokens) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (tenant_id, conversation_id, turn, node, model[:200], input_tokens, output_tokens),
        )


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current calendar month, UTC (the budget's period)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def month_tokens(db: Db, tenant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Tokens (in and out) the tenant used since the start of this month."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(input_tokens + output_tokens), 0) AS total FROM llm_usage"
            " WHERE tenant_id = %s AND created_at >= %s",
            (tenant_id, month_start(now)),
        )
        row = await cur.fetchone()
    return int(row["total"]) if row else 0


async def summary(db: Db, tenant_id: uuid.UUID, p: Period) -> dict[str, Any]:
    """The period's calls and tokens, in total and per node."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT node, count(*) AS calls, sum(input_tokens) AS input_tokens,"
            " sum(output_tokens) AS output_tokens FROM llm_usage"
            " WHERE tenant_id = %s AND created_at >= %s AND created_at < %s"
            " GROUP BY node ORDER BY node",
            (tenant_id, p.start, p.end),
        )
        rows = [
            {
                "node": r["node"],
                "calls": int(r["calls"]),
                "input_tokens": int(r["input_tokens"]),
                "output_tokens": int(r["output_tokens"]),
            }
            for r in await cur.fetchall()
        ]
    return {
        "calls": sum(r["calls"] for r in rows),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "by_node": rows,
    }
