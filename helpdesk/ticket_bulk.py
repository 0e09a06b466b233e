"""Bulk moves of tickets: resolve or close hundreds at once, set-based (issue 15, the bench's
``bulk_close_1000_s``).

:func:`transition` moves many tickets of a tenant in one transaction with the same rules as
:func:`helpdesk.tickets.transition` (the lifecycle table, a resolution to resolve, the SLA
clock stopping, the timeline, the audit log, CSAT for a conversation's ticket), in a few
statements over the whole set instead of a dozen per ticket:

* the rows are locked in one statement (conversations first when resolving, the order every
  writer of both follows; then the tickets, by id, so two bulk moves cannot deadlock);
* which tickets may move is decided by :data:`helpdesk.tickets.TRANSITIONS`, in SQL
  (``status = ANY(<the statuses that may move there>)``); the others are reported with the
  message the single move would give;
* moves to ``resolved`` and ``closed`` (what the console's bulk actions and "close T-1, T-2"
  do) are one ``UPDATE ... WHERE id = ANY(...)`` with the resolutions, the status and
  resolution events, the SLA breaches a late resolve makes and the audit entries each one
  ``INSERT ... SELECT``; the SLA columns follow :func:`helpdesk.sla.refresh` for a clock that
  stops (paused at the move, no next check, a target met late is breached once).
  Notifications are made, once per event, for the events that make any
  (:data:`helpdesk.notifications.EVENT_KINDS`: here the breaches).
* other moves (to ``in_progress``...) go ticket by ticket through the single move, in the
  same transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk import notifications, tickets
from helpdesk.audit import Actor
from helpdesk.errors import InvalidInput
from helpdesk.tenancy import Db, connect

MAX_BULK = 1000
"""Tickets one bulk move takes at most (one transaction)."""


@dataclass
class BulkResult:
    """What a bulk move did, per ticket id."""

    moved: list[dict[str, Any]] = field(default_factory=list)
    """The tickets moved, as they are now."""
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    """Tickets already in the status asked for."""
    refused: dict[uuid.UUID, str] = field(default_factory=dict)
    """Ticket id -> why the lifecycle refuses the move (the ``invalid_transition`` message)."""
    missing: list[uuid.UUID] = field(default_factory=list)
    """Ids that are no ticket of this tenant."""


def _sources(to: str) -> list[str]:
    """The statuses that may move to ``to`` (the lifecycle table read backwards)."""
    return [s for s, moves in tickets.TRANSITIONS.items() if to in moves]


async def transition(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_ids: list[uuid.UUID],
    to: str,
    *,
    actor: Actor | None,
    resolution: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkResult:
    """Move every ticket of ``ticket_ids`` that may move to ``to``; return what happened to
    each (see :class:`BulkResult`). Resolving needs ``resolution`` (one for all: each ticket
    gets its own row of it)."""
    if to not in tickets.STATUSES:
        raise InvalidInput(f"status is one of {', '.join(tickets.STATUSES)}; got {to!r}")
    ids = list(dict.fromkeys(ticket_ids))
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} tickets at once; got {len(ids)}")
    if to == "resolved" and resolution is None:
        raise InvalidInput("resolving tickets needs a resolution: type and summary")
    if to != "resolved" and resolution is not None:
        raise InvalidInput("a resolution is given only when moving to resolved")
    at = now if now is not None else datetime.now(UTC)
    out = BulkResult()
    async with connect(db) as conn, conn.transaction():
        if to == "resolved":
            await conn.execute(
                "SELECT 1 FROM conversations c JOIN tickets t ON t.conversation_id = c.id"
                " WHERE t.tenant_id = %s AND t.id = ANY(%s) AND c.tenant_id = %s"
                " ORDER BY c.id FOR UPDATE OF c",
                (tenant_id, ids, tenant_id),
            )
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
            (tenant_id, ids),
        )
        rows = {r["id"]: dict(r) for r in await cur.fetchall()}
        out.missing = [i for i in ids if i not in rows]
        movable: list[uuid.UUID] = []
        for tid, row in rows.items():
            if row["status"] == to:
                out.unchanged.append(row)
                continue
            try:
                tickets.check_transition(row["status"], to)
            except tickets.InvalidTransition as exc:
                out.refused[tid] = exc.message
                continue
            movable.append(tid)
        if not movable:
            return out
        if to == "resolved":
            assert resolution is not None
            out.moved = await _resolve(conn, tenant_id, movable, resolution, actor, at)
        elif to == "closed":
            out.moved = await _close(conn, tenant_id, movable, actor, at)
        else:
            for tid in movable:
                moved = await tickets._move(conn, tenant_id, rows[tid], to, actor, None, at)
                out.moved.append(moved)
    return out


def _actor(actor: Actor | None) -> dict[str, Any]:
    return {
        "actor_name": (actor.name if actor else "ai")[:300],
        "actor_user": actor.user_id if actor else None,
        "actor_key": actor.key_id if actor else None,
        "audited": actor is not None,  # staff actions; the AI's are on the timeline only
    }


# Every CTE reads the tickets as they were before the statement (one snapshot): ``before``
# is the row as locked, ``moved`` the row after.
_RESOLVE = """
WITH before AS (
    SELECT id, status, first_response_breached, resolution_breached
    FROM tickets WHERE tenant_id = %(t)s AND id = ANY(%(ids)s) AND status = ANY(%(from)s)
),
res AS (
    INSERT INTO resolutions (tenant_id, ticket_id, type, summary, steps, root_cause, article_id,
                             refs, resolved_by, resolved_by_user_id, resolved_by_name,
                             ai_generated, created_at)
    SELECT %(t)s, b.id, %(type)s, %(summary)s, %(steps)s, %(root_cause)s, %(article)s,
           %(refs)s, %(resolved_by)s, %(actor_user)s, %(actor_name)s, %(ai)s, %(at)s
    FROM before b
    RETURNING id, ticket_id
),
moved AS (
    UPDATE tickets t SET status = 'resolved', updated_at = %(at)s, resolved_at = %(at)s,
        closed_at = NULL, resolution_id = res.id,
        -- helpdesk.sla.refresh for a clock that stops: paused now, nothing left to check,
        -- a target answered (or resolved) after its due time is breached.
        sla_paused_at = CASE WHEN t.sla_policy IS NULL THEN t.sla_paused_at
                             ELSE COALESCE(t.sla_paused_at, %(at)s) END,
        sla_next_check_at = CASE WHEN t.sla_policy IS NULL THEN t.sla_next_check_at END,
        first_response_breached = t.first_response_breached OR coalesce(t.sla_policy IS NOT NULL
            AND COALESCE(t.first_response_at, %(at)s) > t.first_response_due_at, false),
        first_response_warned = t.first_response_warned OR coalesce(t.sla_policy IS NOT NULL
            AND COALESCE(t.first_response_at, %(at)s) > t.first_response_due_at, false),
        resolution_breached = t.resolution_breached OR coalesce(t.sla_policy IS NOT NULL
            AND %(at)s > t.resolution_due_at, false),
        resolution_warned = t.resolution_warned OR coalesce(t.sla_policy IS NOT NULL
            AND %(at)s > t.resolution_due_at, false)
    FROM res WHERE t.id = res.ticket_id AND t.tenant_id = %(t)s
    RETURNING t.*
),
status_events AS (
    INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, actor_user_id, detail,
                               created_at)
    SELECT %(t)s, m.id, e.kind, %(actor_name)s, %(actor_user)s, e.detail, %(at)s
    FROM moved m JOIN before b ON b.id = m.id CROSS JOIN LATERAL (VALUES
        (1, 'status', jsonb_build_object('from', b.status, 'to', 'resolved')),
        (2, 'resolved', jsonb_build_object('resolution_id', m.resolution_id, 'type', %(type)s,
                                           'summary', %(summary)s))) AS e(n, kind, detail)
    ORDER BY m.id, e.n
),
breaches AS (
    INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail, created_at,
                               dedupe_key)
    SELECT %(t)s, m.id, 'sla.breach', 'system',
           jsonb_build_object('target', k.target, 'due_at', k.due_at, 'priority', m.priority),
           %(at)s, 'sla.breach:' || k.target
    FROM moved m JOIN before b ON b.id = m.id CROSS JOIN LATERAL (VALUES
        ('first_response', m.first_response_due_at,
         m.first_response_breached AND NOT b.first_response_breached),
        ('resolution', m.resolution_due_at, m.resolution_breached AND NOT b.resolution_breached)
    ) AS k(target, due_at, fresh)
    WHERE k.fresh
    ON CONFLICT (ticket_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING ticket_id, kind, detail
),
audited AS (
    INSERT INTO audit_log (tenant_id, actor_user_id, actor_key_id, actor_name, action,
                           target_type, target_id, detail)
    SELECT %(t)s, %(actor_user)s, %(actor_key)s, %(actor_name)s, 'ticket.transition', 'ticket',
           m.id::text, jsonb_build_object('from', b.status, 'to', 'resolved', 'resolution',
               jsonb_build_object('resolution_id', m.resolution_id, 'type', %(type)s,
                                  'summary', %(summary)s))
    FROM moved m JOIN before b ON b.id = m.id
    WHERE %(audited)s
    ORDER BY m.id
)
SELECT (SELECT coalesce(array_agg(id), '{}') FROM moved) AS moved,
       (SELECT coalesce(array_agg(ARRAY[ticket_id::text, kind, detail::text]), '{}')
        FROM breaches) AS events
"""


async def _resolve(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ids: list[uuid.UUID],
    resolution: dict[str, Any],
    actor: Actor | None,
    at: datetime,
) -> list[dict[str, Any]]:
    kind, summary = await tickets.check_resolution(conn, tenant_id, resolution)
    cur = await conn.execute(
        _RESOLVE,
        {
            "t": tenant_id,
            "ids": ids,
            "from": _sources("resolved"),
            "type": kind,
            "summary": summary,
            "steps": resolution.get("steps") or "",
            "root_cause": resolution.get("root_cause") or "",
            "article": resolution.get("article_id"),
            "refs": Jsonb(resolution.get("references") or []),
            "resolved_by": "user" if actor is not None else "ai",
            "ai": bool(resolution.get("ai_generated", actor is None)),
            "at": at,
            **_actor(actor),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    for ticket, event, detail in row["events"]:
        if event in notifications.EVENT_KINDS:
            await notifications.on_ticket_event(
                conn, tenant_id, uuid.UUID(ticket), event, None, json.loads(detail)
            )
    moved = await _rows(conn, tenant_id, list(row["moved"]))
    # CSAT is asked in the conversation of each ticket that has one (its event stream).
    for ticket_row in moved:
        if ticket_row["conversation_id"] is not None:
            res = {"id": ticket_row["resolution_id"]}
            await tickets._ask_csat(conn, tenant_id, ticket_row, res)
    return moved


_CLOSE = """
WITH before AS (
    SELECT id, status FROM tickets
    WHERE tenant_id = %(t)s AND id = ANY(%(ids)s) AND status = ANY(%(from)s)
),
moved AS (
    UPDATE tickets t SET status = 'closed', updated_at = %(at)s, closed_at = %(at)s,
        sla_paused_at = CASE WHEN t.sla_policy IS NULL THEN t.sla_paused_at
                             ELSE COALESCE(t.sla_paused_at, %(at)s) END,
        sla_next_check_at = CASE WHEN t.sla_policy IS NULL THEN t.sla_next_check_at END
    FROM before b WHERE t.id = b.id
    RETURNING t.id
),
events AS (
    INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, actor_user_id, detail,
                               created_at)
    SELECT %(t)s, m.id, 'status', %(actor_name)s, %(actor_user)s,
           jsonb_build_object('from', b.status, 'to', 'closed'), %(at)s
    FROM moved m JOIN before b ON b.id = m.id ORDER BY m.id
),
audited AS (
    INSERT INTO audit_log (tenant_id, actor_user_id, actor_key_id, actor_name, action,
                           target_type, target_id, detail)
    SELECT %(t)s, %(actor_user)s, %(actor_key)s, %(actor_name)s, 'ticket.transition', 'ticket',
           m.id::text, jsonb_build_object('from', b.status, 'to', 'closed')
    FROM moved m JOIN before b ON b.id = m.id WHERE %(audited)s ORDER BY m.id
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM moved
"""


async def _close(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ids: list[uuid.UUID],
    actor: Actor | None,
    at: datetime,
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        _CLOSE, {"t": tenant_id, "ids": ids, "from": _sources("closed"), "at": at, **_actor(actor)}
    )
    row = await cur.fetchone()
    assert row is not None
    return await _rows(conn, tenant_id, list(row["ids"]))


async def _rows(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT * FROM tickets WHERE tenant_id = %s AND id = ANY(%s) ORDER BY number",
        (tenant_id, ids),
    )
    return [dict(r) for r in await cur.fetchall()]


async def finish(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_ids: list[uuid.UUID],
    *,
    close: bool,
    actor: Actor | None,
    resolution: dict[str, Any],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Resolve (with ``resolution``) each open ticket of ``ticket_ids`` and, with ``close``,
    close each resolved one: "close T-1, T-2: fixed" and the console's resolve / close, in
    one transaction. A ticket already resolved (or closed) stays as it is. Return the
    tickets as they are now (ids not of this tenant are left out), by number."""
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id, status FROM tickets WHERE tenant_id = %s AND id = ANY(%s)",
            (tenant_id, ticket_ids),
        )
        found = {r["id"]: r["status"] for r in await cur.fetchall()}
        still_open = [i for i, s in found.items() if s in tickets.OPEN_STATUSES]
        if still_open:
            await transition(
                conn, tenant_id, still_open, "resolved", actor=actor, resolution=resolution, now=now
            )
        if close:
            await transition(
                conn, tenant_id, [i for i in found if found[i] != "closed"], "closed",
                actor=actor, now=now,
            )  # fmt: skip
        return await _rows(conn, tenant_id, list(found))
