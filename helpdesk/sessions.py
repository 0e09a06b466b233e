"""Console sessions: what a signed-in user holds instead of a key.

A session token is ``us_`` plus 32 random bytes (base64url). Only its SHA-256 is stored, for the
reason API keys are (:mod:`helpdesk.keys`): 256 random bits cannot be enumerated, and a fast hash
keeps the per-request look-up cheap. The console gets it as an HttpOnly, SameSite=Strict cookie;
scripts and tests send it as ``Authorization: Bearer us_...``.

A session ends when the user signs out (the row is deleted), when it made no request for
``session_idle_s``, ``session_absolute_s`` after sign-in whatever happened, and when the account
is disabled or its password is reset. ``last_seen_at`` is written at most once a minute per
session (``touch_s``), so a busy console does not turn every read into a write; presence reads
it too (:mod:`helpdesk.teams`).

Look-ups run as the table owner, outside a tenant scope, like key look-ups: the token is what
tells which tenant the caller belongs to.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from helpdesk.keys import hash_key
from helpdesk.tenancy import Db, connect
from helpdesk.users import User

TOKEN_PREFIX = "us_"


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live."""

    idle_s: int = 4 * 3600
    absolute_s: int = 24 * 3600
    touch_s: int = 60


@dataclass(frozen=True)
class Session:
    """A live session and the user it signs in."""

    id: uuid.UUID
    user: User
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def new_token() -> str:
    """A fresh random session token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_session(
    db: Db, user: User, policy: SessionPolicy = SessionPolicy()
) -> tuple[str, Session]:
    """Start a session for ``user``; return ``(token, session)``. The token is never stored.

    The user's sessions that have ended are deleted on the way (no cleanup job needed).
    """
    token = new_token()
    async with connect(db) as conn:
        await conn.execute(
            "DELETE FROM user_sessions WHERE tenant_id = %s AND user_id = %s"
            " AND (expires_at <= now() OR last_seen_at <= now() - make_interval(secs => %s))",
            (user.tenant_id, user.id, policy.idle_s),
        )
        cur = await conn.execute(
            "INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING *",
            (user.tenant_id, user.id, hash_key(token), policy.absolute_s),
        )
        row = await cur.fetchone()
    assert row is not None
    return token, Session(
        row["id"], user, row["created_at"], row["last_seen_at"], row["expires_at"]
    )


async def lookup_session(
    db: Db, token: str, policy: SessionPolicy = SessionPolicy()
) -> Session | None:
    """The live session with this token (its user active), or None; touches ``last_seen_at``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT s.id AS session_id, s.created_at AS session_created_at, s.last_seen_at,"
            " s.expires_at, u.*"
            " FROM user_sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id"
            " WHERE s.token_hash = %s AND s.expires_at > now()"
            " AND s.last_seen_at > now() - make_interval(secs => %s) AND u.active",
            (hash_key(token), policy.idle_s),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute(
            "UPDATE user_sessions SET last_seen_at = now() WHERE id = %s"
            " AND last_seen_at <= now() - make_interval(secs => %s) RETURNING last_seen_at",
            (row["session_id"], policy.touch_s),
        )
        touched = await cur.fetchone()
    return Session(
        row["session_id"],
        User.from_row(row),
        row["session_created_at"],
        touched["last_seen_at"] if touched else row["last_seen_at"],
        row["expires_at"],
    )


async def end_session(db: Db, token: str) -> bool:
    """Delete the session with this token (sign-out); return whether there was one."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "DELETE FROM user_sessions WHERE token_hash = %s RETURNING id", (hash_key(token),)
        )
        return await cur.fetchone() is not None


async def end_user_sessions(
    db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """End every session of a user (but ``keep``); return how many ended."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "DELETE FROM user_sessions WHERE tenant_id = %s AND user_id = %s"
            " AND id IS DISTINCT FROM %s RETURNING id",
            (tenant_id, user_id, keep),
        )
        return len(await cur.fetchall())


async def end_session_id(db: Db, tenant_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Delete one session by id (sign-out of the session a request came with)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "DELETE FROM user_sessions WHERE id = %s AND tenant_id = %s RETURNING id",
            (session_id, tenant_id),
        )
        return await cur.fetchone() is not None
