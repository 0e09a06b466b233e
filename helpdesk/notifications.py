"""Notifications to staff (issue 15 item 10): what a person on the desk should know now.

:func:`on_ticket_event` is called by ``helpdesk.tickets`` for every ticket event, in that
event's transaction, and turns the ones that matter into notifications:

============== ============================================== ==============================
kind           when                                           for
============== ============================================== ==============================
``handoff``    a hand-off opened a ticket                     everyone on the desk
``urgent``     a ticket was opened urgent or made urgent      everyone on the desk
``assigned``   a ticket got an assignee                       that person
``mention``    an internal note names ``@someone``            each person named (first name,
                                                              full name without spaces, or
                                                              the email before the @)
``sla_warning`` ``sla_breach`` an SLA event of the ticket     its assignee, else everyone
============== ============================================== ==============================

Each notification is also queued, in the same transaction, for every enabled webhook endpoint
of the tenant that takes its kind (``webhook_deliveries``: a transactional outbox, so a
notification and its deliveries exist together or not at all); ``desk.webhooks`` sends them.
The person who caused an event is not notified of it. Preferences (:func:`preferences`) turn a
kind off in the console per person; the email channel of a preference is stored and not sent
yet (the desk's SMTP sending lands with the email channel).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC
from typing import Any

from psycopg.types.json import Jsonb

from helpdesk.audit import Actor
from helpdesk.tenancy import Db, connect

KINDS = ("handoff", "urgent", "assigned", "mention", "sla_warning", "sla_breach")
EVENT_KINDS = frozenset({"created", "updated", "note", "sla.warning", "sla.breach"})
"""The ticket event kinds :func:`on_ticket_event` makes notifications of (the others make
none): what a set-based writer (``helpdesk.ticket_bulk``) calls it for."""
_MENTION = re.compile(r"(?<![\w@])@([\w.\-]{2,64})")


async def on_ticket_event(
    conn: Any,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    kind: str,
    actor: Actor | None,
    detail: dict[str, Any],
) -> None:
    """The notifications a ticket event makes (see the module docstring), in ``conn``'s
    transaction."""
    cur = await conn.execute(
        "SELECT number, subject, priority, assignee_id FROM tickets"
        " WHERE tenant_id = %s AND id = %s",
        (tenant_id, ticket_id),
    )
    ticket = await cur.fetchone()
    if ticket is None:
        return
    ref = f"T-{ticket['number']}"
    subject = ticket["subject"] or "(no subject)"
    base = {"ticket_id": str(ticket_id), "number": ref, "subject": subject}
    by = actor.user_id if actor else None
    out: list[tuple[str, uuid.UUID | None, str, dict[str, Any]]] = []
    if kind == "created" and detail.get("handoff"):
        reason = {"reason": detail["handoff"]}
        out.append(("handoff", None, f"{ref} handed over: {subject}", reason))
    if kind == "created" and ticket["priority"] == "urgent":
        out.append(("urgent", None, f"{ref} is urgent: {subject}", {}))
    if kind == "updated":
        before, after = detail.get("before") or {}, detail.get("after") or {}
        if after.get("priority") == "urgent" and before.get("priority") != "urgent":
            out.append(("urgent", None, f"{ref} is urgent now: {subject}", {}))
        if after.get("assignee_id") and after.get("assignee_id") != before.get("assignee_id"):
            to = uuid.UUID(str(after["assignee_id"]))
            out.append(("assigned", to, f"{ref} is yours: {subject}", {}))
    if kind == "note" and detail.get("note_id"):
        cur = await conn.execute(
            "SELECT body FROM internal_notes WHERE tenant_id = %s AND id = %s",
            (tenant_id, detail["note_id"]),
        )
        note = await cur.fetchone()
        for named in await _mentioned(conn, tenant_id, note["body"] if note else ""):
            out.append(("mention", named, f"You were mentioned on {ref}: {subject}", {}))
    if kind in ("sla.warning", "sla.breach", "sla_warning", "sla_breach"):
        name = kind.replace(".", "_")
        word = "breached its SLA" if name == "sla_breach" else "is close to its SLA"
        out.append((name, ticket["assignee_id"], f"{ref} {word}: {subject}", dict(detail)))
    for name, target, title, extra in out:
        if target is not None and target == by:
            continue  # you do not need telling what you just did
        await _notify(conn, tenant_id, name, target, ticket_id, title, {**base, **extra})


async def _mentioned(conn: Any, tenant_id: uuid.UUID, body: str) -> list[uuid.UUID]:
    handles = {m.lower() for m in _MENTION.findall(body)}
    if not handles:
        return []
    cur = await conn.execute(
        "SELECT id, name, email FROM users WHERE tenant_id = %s AND active",
        (tenant_id,),
    )
    found = []
    for u in await cur.fetchall():
        names = {
            u["email"].split("@")[0].lower(),
            u["name"].split()[0].lower() if u["name"].split() else "",
            "".join(u["name"].split()).lower(),
        }
        if names & handles:
            found.append(u["id"])
    return found


async def _notify(
    conn: Any,
    tenant_id: uuid.UUID,
    kind: str,
    user_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None,
    title: str,
    payload: dict[str, Any],
) -> None:
    cur = await conn.execute(
        "INSERT INTO notifications (tenant_id, kind, user_id, ticket_id, title, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, created_at",
        (tenant_id, kind, user_id, ticket_id, title[:500], Jsonb(payload)),
    )
    row = await cur.fetchone()
    event = {
        "id": str(row["id"]),
        "type": kind,
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
        "title": title[:500],
        "user_id": str(user_id) if user_id else None,
        "data": payload,
    }
    await conn.execute(
        "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, notification_id, kind, body)"
        " SELECT tenant_id, id, %s, %s, %s FROM webhook_endpoints"
        " WHERE tenant_id = %s AND enabled AND (events = '{}' OR %s = ANY(events))",
        (row["id"], kind, json.dumps(event, separators=(",", ":")), tenant_id, kind),
    )


async def for_user(
    db: Db,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    unread_only: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The person's notifications (theirs and the desk's), newest first, without the kinds
    they turned off; an API key (``user_id`` None) sees the desk's only."""
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT n.id, n.kind, n.title, n.ticket_id, n.payload, n.created_at,
                   r.read_at IS NOT NULL AS read
            FROM notifications n
            LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.user_id = %(u)s
            WHERE n.tenant_id = %(t)s AND (n.user_id IS NULL OR n.user_id = %(u)s)
              AND NOT EXISTS (SELECT 1 FROM notification_preferences p WHERE p.user_id = %(u)s
                              AND p.kind = n.kind AND NOT p.in_app)
              AND (NOT %(unread)s OR r.read_at IS NULL)
            ORDER BY n.created_at DESC, n.id LIMIT %(limit)s
            """,
            {"t": tenant_id, "u": user_id, "unread": unread_only, "limit": limit},
        )
        return [dict(r) for r in await cur.fetchall()]


async def mark_read(
    db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> int:
    """Mark the person's notifications read (all of them when ``ids`` is None)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "INSERT INTO notification_reads (tenant_id, notification_id, user_id)"
            " SELECT tenant_id, id, %(u)s FROM notifications WHERE tenant_id = %(t)s"
            " AND (user_id IS NULL OR user_id = %(u)s)"
            " AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s))"
            " ON CONFLICT DO NOTHING",
            {"t": tenant_id, "u": user_id, "ids": ids},
        )
        return int(cur.rowcount)


async def preferences(db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    """Every kind with the person's ``in_app`` and ``email`` choice (the default where unset)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT kind, in_app, email FROM notification_preferences"
            " WHERE tenant_id = %s AND user_id = %s",
            (tenant_id, user_id),
        )
        chosen = {
            r["kind"]: {"in_app": r["in_app"], "email": r["email"]} for r in await cur.fetchall()
        }
    return {k: chosen.get(k, {"in_app": True, "email": False}) for k in KINDS}


async def set_preferences(
    db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID, choices: dict[str, dict[str, bool]]
) -> dict[str, Any]:
    """Store the person's choices for the kinds given (unknown kinds are refused upstream)."""
    async with connect(db) as conn:
        for kind, c in choices.items():
            await conn.execute(
                "INSERT INTO notification_preferences (tenant_id, user_id, kind, in_app, email)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, kind) DO UPDATE"
                " SET in_app = EXCLUDED.in_app, email = EXCLUDED.email",
                (tenant_id, user_id, kind, c.get("in_app", True), c.get("email", False)),
            )
    return await preferences(db, tenant_id, user_id)
