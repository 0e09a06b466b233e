"""The desk's ticket metrics (issue 17 item 1): one facts row per ticket created in the period,
every metric one SQL aggregate over them, as :mod:`helpdesk.metrics` does for conversations.

The cohort is the tickets *created* in the period (``[start, end)`` in the period's time
zone), so a period's figures do not move when later periods are computed; a ticket created on
the 31st and resolved on the 2nd counts in the month it was opened. Times are wall-clock (the
SLA policies of issue 15 count opening hours; these do not). A reopened ticket keeps its
``reopen_count``; "resolved" is its state now (``resolved`` or ``closed``), and its resolution
time runs to its last resolve. CSAT is the last rating given to one of the ticket's
resolutions. ``team`` narrows everything to one team's tickets (the dashboard's filter).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from helpdesk.errors import InvalidInput
from helpdesk.metrics import Metric, Period, _clean, _pct, _ratio
from helpdesk.tenancy import Db, connect

TICKET_FACTS_SQL = """
SELECT t.id, t.priority, t.channel, coalesce(t.category, 'none') AS category,
       coalesce(u.name, 'unassigned') AS assignee, coalesce(tm.name, 'no team') AS team,
       t.status IN ('resolved', 'closed') AS resolved,
       t.resolved_at IS NOT NULL OR t.reopen_count > 0 AS ever_resolved,
       t.reopen_count, t.ai_first_response,
       extract(epoch FROM t.first_response_at - t.created_at) AS first_response_s,
       CASE WHEN t.status IN ('resolved', 'closed')
            THEN extract(epoch FROM t.resolved_at - t.created_at) END AS resolution_s,
       (SELECT f.csat FROM feedback f JOIN resolutions r ON r.id = f.resolution_id
         WHERE r.tenant_id = t.tenant_id AND r.ticket_id = t.id AND f.kind = 'csat'
         ORDER BY f.updated_at DESC LIMIT 1) AS csat
FROM tickets t
LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.assignee_id
LEFT JOIN teams tm ON tm.tenant_id = t.tenant_id AND tm.id = t.team_id
WHERE t.tenant_id = %(tenant)s AND t.created_at >= %(start)s AND t.created_at < %(end)s
  AND (%(team)s::uuid IS NULL OR t.team_id = %(team)s::uuid)
"""

TICKET_METRICS: dict[str, Metric] = {
    "tickets": Metric("count(*)", "count", "tickets created in the period"),
    "tickets_resolved": Metric(
        "count(*) FILTER (WHERE resolved)", "count", "of them, resolved or closed now"
    ),
    "ticket_resolution_rate": Metric(
        _ratio("resolved", "true"), "ratio", "the share of the period's tickets resolved now"
    ),
    "ticket_first_response_p50_s": Metric(
        _pct(0.5, "first_response_s"),
        "seconds",
        "median time from a ticket's creation to its first customer-visible reply (AI or person)",
    ),
    "ticket_first_response_p90_s": Metric(
        _pct(0.9, "first_response_s"), "seconds", "the same, 90th percentile"
    ),
    "ai_first_response_rate": Metric(
        _ratio("ai_first_response", "ai_first_response IS NOT NULL"),
        "ratio",
        "of the answered tickets, the share whose first reply came from the AI",
    ),
    "resolution_p50_s": Metric(
        _pct(0.5, "resolution_s"),
        "seconds",
        "median time from a ticket's creation to its (last) resolve, of the resolved ones",
    ),
    "resolution_p90_s": Metric(_pct(0.9, "resolution_s"), "seconds", "the same, 90th percentile"),
    "reopen_rate": Metric(
        _ratio("reopen_count > 0", "ever_resolved"),
        "ratio",
        "of the tickets resolved at least once, the share a customer (or agent) reopened",
    ),
    "ticket_csat_average": Metric(
        "avg(csat)::float", "score", "mean CSAT (1-5) the customers gave the resolved tickets"
    ),
    "ticket_csat_responses": Metric("count(csat)", "count", "tickets with a CSAT rating"),
}
"""Every ticket metric: its SQL over the per-ticket facts, its unit, its meaning."""

TICKET_DIMENSIONS: dict[str, str] = {
    "priority": "priority",
    "category": "category",
    "channel": "channel",
    "agent": "assignee",
    "team": "team",
}
"""What a ticket breakdown may group by (each ticket once, under its value now)."""


def _params(tenant_id: uuid.UUID, p: Period, team: uuid.UUID | None) -> dict[str, Any]:
    return {"tenant": tenant_id, "start": p.start, "end": p.end, "team": team}


def _select(names: Sequence[str]) -> str:
    unknown = [n for n in names if n not in TICKET_METRICS]
    if unknown:
        raise InvalidInput(
            f"metrics: unknown ticket metric {unknown[0]!r} (one of {', '.join(TICKET_METRICS)})"
        )
    return ", ".join(f"{TICKET_METRICS[n].sql} AS {n}" for n in names)


async def summary(
    db: Db, tenant_id: uuid.UUID, p: Period, *, team: uuid.UUID | None = None
) -> dict[str, Any]:
    """Every ticket metric of the period."""
    async with connect(db) as conn:
        cur = await conn.execute(
            f"WITH facts AS ({TICKET_FACTS_SQL}) SELECT {_select(list(TICKET_METRICS))} FROM facts",
            _params(tenant_id, p, team),
        )
        row = dict(await cur.fetchone() or {})
    return {k: _clean(v) for k, v in row.items()}


async def breakdown(
    db: Db,
    tenant_id: uuid.UUID,
    p: Period,
    by: str,
    names: Sequence[str],
    *,
    team: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """``names`` per value of ``by`` (:data:`TICKET_DIMENSIONS`), most tickets first."""
    if by not in TICKET_DIMENSIONS:
        raise InvalidInput(f"by: one of {', '.join(TICKET_DIMENSIONS)}")
    select = _select(names)
    async with connect(db) as conn:
        cur = await conn.execute(
            f"WITH facts AS ({TICKET_FACTS_SQL}) SELECT {TICKET_DIMENSIONS[by]} AS key,"
            f" count(*) AS n, {select} FROM facts GROUP BY 1 ORDER BY 2 DESC, 1",
            _params(tenant_id, p, team),
        )
        rows = await cur.fetchall()
    return [{by: r["key"], **{n: _clean(r[n]) for n in names}} for r in rows]


def markdown() -> str:
    """The ticket metric table of ``docs/metrics.md``."""
    lines = [
        "| metric | unit | what it counts | SQL over the ticket facts |",
        "| --- | --- | --- | --- |",
    ]
    for name, m in TICKET_METRICS.items():
        sql = " ".join(m.sql.split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {m.unit} | {m.means} | `{sql}` |")
    return "\n".join(lines)
