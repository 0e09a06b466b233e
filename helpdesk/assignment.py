"""Assignment: by hand, round-robin among a team's online members, or to the least loaded.

* By hand: ``PATCH /v1/tickets/{id}`` with ``assignee_id`` (a user of the tenant, 404
  otherwise); :func:`helpdesk.tickets.update_ticket` records it.
* :func:`assign` with ``round_robin``: the team's members who are online now (presence, as
  the console reads it: :func:`helpdesk.teams.presence_of`), in a fixed order (by user id),
  take turns after the member assigned last. The cursor is the team's ``team_assignment``
  row, locked for the transaction, so concurrent assignments to one team queue on it and
  rotate correctly.
* ``least_loaded``: the online member with the fewest open tickets (ties: the round-robin
  order after the cursor). Same lock.
* Nobody of the team online: :class:`NoAgentOnline` (409 ``no_agent_online``) for a request,
  the ticket left unassigned (an ``assignment_skipped`` event) for an automatic assignment.
* A team's ``auto_assign`` (``off``, ``round_robin``, ``least_loaded``) runs when a ticket
  gets the team (by hand or by a triage rule) and has no assignee.

Every assignee change is an ``assigned`` ticket event (from, to, by, mode): the reassignment
history on the timeline. See docs/tickets.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk import audit, teams, triage
from helpdesk.audit import Actor
from helpdesk.errors import DeskError, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect

Mode = Literal["round_robin", "least_loaded"]
AutoAssign = Literal["off", "round_robin", "least_loaded"]
MODES: tuple[Mode, ...] = get_args(Mode)
AUTO_ASSIGN: tuple[AutoAssign, ...] = get_args(AutoAssign)

AWAY_AFTER_S = 5 * 60
"""Presence windows used when the caller gives none (the defaults of
``Settings.presence_away_after_s`` and ``Settings.session_idle_s``)."""
IDLE_S = 4 * 3600

_OPEN = ("new", "triage", "waiting_customer", "waiting_internal", "in_progress", "pending_release")


class NoAgentOnline(DeskError):
    """Nobody of the team is online to take the ticket (409 ``no_agent_online``)."""

    code = "no_agent_online"
    status = 409


async def _cursor(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, team_id: uuid.UUID
) -> dict[str, Any]:
    """The team's assignment row, locked for this transaction (created when absent)."""
    await conn.execute(
        "INSERT INTO team_assignment (tenant_id, team_id) VALUES (%s, %s)"
        " ON CONFLICT (tenant_id, team_id) DO NOTHING",
        (tenant_id, team_id),
    )
    cur = await conn.execute(
        "SELECT * FROM team_assignment WHERE tenant_id = %s AND team_id = %s FOR UPDATE",
        (tenant_id, team_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


def _after(order: list[uuid.UUID], last: uuid.UUID | None) -> list[uuid.UUID]:
    """``order`` rotated to start after ``last`` (the round-robin order from the cursor)."""
    if last is None:
        return order
    later = [u for u in order if u > last]
    return later + [u for u in order if u <= last]


async def pick(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    team_id: uuid.UUID,
    mode: str,
    *,
    away_after_s: int = AWAY_AFTER_S,
    idle_s: int = IDLE_S,
) -> uuid.UUID | None:
    """The member of the team to assign next by ``mode``, None when nobody is online; moves
    the team's cursor. Call inside a transaction (the cursor row stays locked to its end)."""
    if mode not in MODES:
        raise InvalidInput(f"mode: expected one of {', '.join(MODES)}; got {mode!r}")
    team = await teams.get_team(conn, tenant_id, team_id)  # 404 when not ours
    state = await _cursor(conn, tenant_id, team_id)
    if not team.members:
        return None
    presence = await teams.presence_of(
        conn, tenant_id, list(team.members), away_after_s=away_after_s, idle_s=idle_s
    )
    online = sorted(u for u in team.members if presence.get(u) == "online")
    if not online:
        return None
    order = _after(online, state["last_user_id"])
    if mode == "least_loaded":
        cur = await conn.execute(
            "SELECT assignee_id, count(*) AS n FROM tickets WHERE tenant_id = %s"
            " AND assignee_id = ANY(%s) AND status = ANY(%s) GROUP BY assignee_id",
            (tenant_id, online, list(_OPEN)),
        )
        load = {r["assignee_id"]: r["n"] for r in await cur.fetchall()}
        chosen = min(order, key=lambda u: load.get(u, 0))  # min keeps the first of ties
    else:
        chosen = order[0]
    await conn.execute(
        "UPDATE team_assignment SET last_user_id = %s, updated_at = now()"
        " WHERE tenant_id = %s AND team_id = %s",
        (chosen, tenant_id, team_id),
    )
    return chosen


async def _set_assignee(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket: dict[str, Any],
    assignee: uuid.UUID,
    team_id: uuid.UUID,
    at: datetime,
) -> dict[str, Any]:
    cur = await conn.execute(
        "UPDATE tickets SET assignee_id = %s, team_id = %s, updated_at = %s"
        " WHERE id = %s AND tenant_id = %s RETURNING *",
        (assignee, team_id, at, ticket["id"], tenant_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def assign(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    mode: str,
    *,
    actor: Actor | None,
    team_id: uuid.UUID | None = None,
    away_after_s: int = AWAY_AFTER_S,
    idle_s: int = IDLE_S,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Assign the ticket to a member of ``team_id`` (else the ticket's team) by ``mode``;
    the ticket takes that team. Return the ticket row. :class:`NoAgentOnline` when nobody of
    the team is online (nothing changes); :class:`InvalidInput` without a team."""
    at = now if now is not None else datetime.now(UTC)
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (ticket_id, tenant_id),
        )
        ticket = await cur.fetchone()
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id} for this tenant")
        team = team_id or ticket["team_id"]
        if team is None:
            raise InvalidInput("team_id: the ticket has no team; name the team to assign from")
        chosen = await pick(conn, tenant_id, team, mode, away_after_s=away_after_s, idle_s=idle_s)
        if chosen is None:
            name = (await teams.get_team(conn, tenant_id, team)).name
            raise NoAgentOnline(
                f"nobody of team {name!r} is online to take the ticket; assign someone by"
                " hand (PATCH assignee_id) or try again when someone is online"
            )
        after = await _set_assignee(conn, tenant_id, dict(ticket), chosen, team, at)
        if chosen != ticket["assignee_id"]:
            await triage.record_assignment(
                conn,
                tenant_id,
                ticket_id,
                ticket["assignee_id"],
                chosen,
                actor,
                mode,
                at,
                team_id=team,
            )
            await triage.notify_changes(
                conn, tenant_id, ticket_id, actor, {"assignee_id": (ticket["assignee_id"], chosen)}
            )
        if actor is not None:
            await audit.record(
                conn,
                tenant_id,
                actor,
                "ticket.assign",
                "ticket",
                ticket_id,
                {"mode": mode, "team_id": str(team), "assignee_id": str(chosen)},
            )
    return after


async def auto_assign(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket: dict[str, Any],
    at: datetime,
    *,
    away_after_s: int = AWAY_AFTER_S,
    idle_s: int = IDLE_S,
) -> dict[str, Any]:
    """Inside the caller's transaction: when the ticket has a team with ``auto_assign`` on and
    no assignee, assign it (an ``assigned`` event) or, nobody online, leave it unassigned (an
    ``assignment_skipped`` event). Return the ticket row as it is now."""
    team_id = ticket.get("team_id")
    if team_id is None or ticket.get("assignee_id") is not None:
        return ticket
    if ticket.get("status") in ("resolved", "closed"):
        return ticket
    cur = await conn.execute(
        "SELECT auto_assign FROM team_assignment WHERE tenant_id = %s AND team_id = %s",
        (tenant_id, team_id),
    )
    row = await cur.fetchone()
    if row is None or row["auto_assign"] == "off":
        return ticket
    mode = row["auto_assign"]
    chosen = await pick(conn, tenant_id, team_id, mode, away_after_s=away_after_s, idle_s=idle_s)
    if chosen is None:
        await conn.execute(
            "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail,"
            " created_at) VALUES (%s, %s, 'assignment_skipped', 'system', %s, %s)",
            (
                tenant_id,
                ticket["id"],
                Jsonb({"mode": mode, "team_id": str(team_id), "reason": "nobody online"}),
                at,
            ),
        )
        return ticket
    after = await _set_assignee(conn, tenant_id, ticket, chosen, team_id, at)
    await triage.record_assignment(
        conn, tenant_id, ticket["id"], None, chosen, None, f"auto_{mode}", at, team_id=team_id
    )
    await triage.notify_changes(
        conn, tenant_id, ticket["id"], None, {"assignee_id": (None, chosen)}
    )
    return after


async def get_settings(db: Db, tenant_id: uuid.UUID, team_id: uuid.UUID) -> dict[str, Any]:
    """The team's assignment settings: ``{"team_id", "auto_assign", "last_user_id"}``."""
    async with connect(db) as conn:
        await teams.get_team(conn, tenant_id, team_id)  # 404 when not ours
        cur = await conn.execute(
            "SELECT * FROM team_assignment WHERE tenant_id = %s AND team_id = %s",
            (tenant_id, team_id),
        )
        row = await cur.fetchone()
    if row is None:
        return {"team_id": team_id, "auto_assign": "off", "last_user_id": None}
    return {
        "team_id": team_id,
        "auto_assign": row["auto_assign"],
        "last_user_id": row["last_user_id"],
    }


async def set_auto_assign(
    db: Db, tenant_id: uuid.UUID, team_id: uuid.UUID, auto: str
) -> dict[str, Any]:
    """Turn the team's auto-assignment ``off`` or to ``round_robin`` / ``least_loaded``."""
    if auto not in AUTO_ASSIGN:
        raise InvalidInput(f"auto_assign: expected one of {', '.join(AUTO_ASSIGN)}; got {auto!r}")
    async with connect(db) as conn, conn.transaction():
        await teams.get_team(conn, tenant_id, team_id)
        await conn.execute(
            "INSERT INTO team_assignment (tenant_id, team_id, auto_assign) VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant_id, team_id) DO UPDATE SET auto_assign = EXCLUDED.auto_assign,"
            " updated_at = now()",
            (tenant_id, team_id, auto),
        )
    return await get_settings(db, tenant_id, team_id)
