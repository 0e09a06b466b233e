"""Teams of staff, their members, and presence (online, away, offline).

Presence is what the console set (``PUT /v1/agent/me/presence``), read through the user's
sessions: a user with no live session is offline whatever was set, and an online user whose
sessions made no request for ``away_after_s`` reads as away. It is computed when read, from
``user_sessions.last_seen_at``: no background job flips anyone. A user who never set anything
and holds a live session reads as online (signing in is being at the desk).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg

from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect
from helpdesk.text_policy import check_text

Presence = Literal["online", "away", "offline"]
PRESENCES: tuple[Presence, ...] = get_args(Presence)


@dataclass(frozen=True)
class Team:
    """A team and its members' user ids."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    created_at: datetime
    members: tuple[uuid.UUID, ...]


def _check_name(name: str) -> str:
    check_text(name, "name")
    text = name.strip()
    if not 1 <= len(text) <= 100:
        raise InvalidInput("name: expected 1 to 100 characters")
    return text


async def _team(conn: Any, tenant_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    cur = await conn.execute(
        "SELECT t.*, COALESCE(array_agg(m.user_id ORDER BY m.user_id)"
        " FILTER (WHERE m.user_id IS NOT NULL), '{}') AS members"
        " FROM teams t LEFT JOIN team_members m ON m.team_id = t.id AND m.tenant_id = t.tenant_id"
        " WHERE t.id = %s AND t.tenant_id = %s GROUP BY t.id",
        (team_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no team {team_id} for this tenant")
    return Team(row["id"], row["tenant_id"], row["name"], row["created_at"], tuple(row["members"]))


async def create_team(db: Db, tenant_id: uuid.UUID, name: str) -> Team:
    """Create a team; :class:`Conflict` when the name (any case) is taken."""
    text = _check_name(name)
    async with connect(db) as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO teams (tenant_id, name) VALUES (%s, %s) RETURNING id",
                (tenant_id, text),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a team named {text!r} already exists") from exc
        row = await cur.fetchone()
        assert row is not None
        return await _team(conn, tenant_id, row["id"])


async def get_team(db: Db, tenant_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    """The tenant's team with this id; :class:`NotFound` otherwise."""
    async with connect(db) as conn:
        return await _team(conn, tenant_id, team_id)


async def list_teams(db: Db, tenant_id: uuid.UUID) -> list[Team]:
    """The tenant's teams, by name."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT id FROM teams WHERE tenant_id = %s ORDER BY lower(name)", (tenant_id,)
        )
        ids = [r["id"] for r in await cur.fetchall()]
        return [await _team(conn, tenant_id, i) for i in ids]


async def _check_users(conn: Any, tenant_id: uuid.UUID, user_ids: list[uuid.UUID]) -> None:
    cur = await conn.execute(
        "SELECT id FROM users WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, user_ids)
    )
    found = {r["id"] for r in await cur.fetchall()}
    missing = [str(u) for u in user_ids if u not in found]
    if missing:
        raise NotFound(f"no user {missing[0]} for this tenant")


async def update_team(
    db: Db,
    tenant_id: uuid.UUID,
    team_id: uuid.UUID,
    *,
    name: str | None = None,
    members: list[uuid.UUID] | None = None,
) -> Team:
    """Rename a team and/or replace its members (all of the tenant's users, else NotFound)."""
    async with connect(db) as conn, conn.transaction():
        await _team(conn, tenant_id, team_id)
        if name is not None:
            try:
                await conn.execute(
                    "UPDATE teams SET name = %s WHERE id = %s AND tenant_id = %s",
                    (_check_name(name), team_id, tenant_id),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"a team named {name.strip()!r} already exists") from exc
        if members is not None:
            await _check_users(conn, tenant_id, members)
            await conn.execute(
                "DELETE FROM team_members WHERE tenant_id = %s AND team_id = %s",
                (tenant_id, team_id),
            )
            for user_id in dict.fromkeys(members):
                await conn.execute(
                    "INSERT INTO team_members (tenant_id, team_id, user_id) VALUES (%s, %s, %s)",
                    (tenant_id, team_id, user_id),
                )
        return await _team(conn, tenant_id, team_id)


async def delete_team(db: Db, tenant_id: uuid.UUID, team_id: uuid.UUID) -> None:
    """Delete a team (its memberships go with it)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "DELETE FROM teams WHERE id = %s AND tenant_id = %s RETURNING id", (team_id, tenant_id)
        )
        if await cur.fetchone() is None:
            raise NotFound(f"no team {team_id} for this tenant")


async def teams_of(db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[Team]:
    """The teams ``user_id`` belongs to, by name."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT t.id FROM teams t JOIN team_members m ON m.team_id = t.id"
            " WHERE m.tenant_id = %s AND m.user_id = %s ORDER BY lower(t.name)",
            (tenant_id, user_id),
        )
        ids = [r["id"] for r in await cur.fetchall()]
        return [await _team(conn, tenant_id, i) for i in ids]


async def set_user_teams(
    db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID, team_ids: list[uuid.UUID]
) -> None:
    """Make ``team_ids`` (all of the tenant's, else NotFound) exactly the user's teams."""
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id FROM teams WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, team_ids)
        )
        found = {r["id"] for r in await cur.fetchall()}
        missing = [str(t) for t in team_ids if t not in found]
        if missing:
            raise NotFound(f"no team {missing[0]} for this tenant")
        await conn.execute(
            "DELETE FROM team_members WHERE tenant_id = %s AND user_id = %s", (tenant_id, user_id)
        )
        for team_id in dict.fromkeys(team_ids):
            await conn.execute(
                "INSERT INTO team_members (tenant_id, team_id, user_id) VALUES (%s, %s, %s)",
                (tenant_id, team_id, user_id),
            )


async def set_presence(db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID, status: str) -> None:
    """Record what the user set (``online``, ``away`` or ``offline``)."""
    if status not in PRESENCES:
        raise InvalidInput(f"status: expected one of {', '.join(PRESENCES)}, got {status!r}")
    async with connect(db) as conn:
        await conn.execute(
            "INSERT INTO user_presence (tenant_id, user_id, status) VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant_id, user_id) DO UPDATE SET status = EXCLUDED.status,"
            " updated_at = now()",
            (tenant_id, user_id, status),
        )


async def presence_of(
    db: Db,
    tenant_id: uuid.UUID,
    user_ids: list[uuid.UUID] | None = None,
    *,
    away_after_s: int,
    idle_s: int,
) -> dict[uuid.UUID, Presence]:
    """Each user's presence as others should read it (all the tenant's users when None)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT u.id, p.status,"
            " (SELECT max(s.last_seen_at) FROM user_sessions s"
            "   WHERE s.tenant_id = u.tenant_id AND s.user_id = u.id AND s.expires_at > now()"
            "   AND s.last_seen_at > now() - make_interval(secs => %(idle)s)) AS seen,"
            " now() - make_interval(secs => %(away)s) AS away_before"
            " FROM users u LEFT JOIN user_presence p"
            "   ON p.user_id = u.id AND p.tenant_id = u.tenant_id"
            " WHERE u.tenant_id = %(tenant)s AND u.active"
            " AND (%(ids)s::uuid[] IS NULL OR u.id = ANY(%(ids)s))",
            {"tenant": tenant_id, "ids": user_ids, "idle": idle_s, "away": away_after_s},
        )
        rows = await cur.fetchall()
    out: dict[uuid.UUID, Presence] = {}
    for r in rows:
        status: Presence = r["status"] or "online"
        if r["seen"] is None:
            status = "offline"
        elif status == "online" and r["seen"] < r["away_before"]:
            status = "away"
        out[r["id"]] = status
    return out


async def online_count(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    away_after_s: int,
    idle_s: int,
    team_id: uuid.UUID | None = None,
) -> int:
    """How many people (of ``team_id``, when given) are online now: whether a hand-off can
    promise a person."""
    presence = await presence_of(db, tenant_id, away_after_s=away_after_s, idle_s=idle_s)
    if team_id is not None:
        members = set((await get_team(db, tenant_id, team_id)).members)
        presence = {u: p for u, p in presence.items() if u in members}
    return sum(1 for p in presence.values() if p == "online")
