"""One-time password reset links.

A reset token is ``pr_`` plus 32 random bytes; only its SHA-256 is stored, with an expiry
(``password_reset_ttl_s``). Consuming one, in a single transaction: marks it used (a second use
finds it used and fails), sets the new password, and ends every session of the user, since
whoever knew the old password may hold one. Issuing a new link voids the user's earlier unused
ones. The link is printed by ``deskgraph users reset-link`` and returned by the admin API; once
the email channel exists it is to be e-mailed.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from argon2 import PasswordHasher

from helpdesk.errors import DeskError
from helpdesk.keys import hash_key
from helpdesk.tenancy import Db, connect
from helpdesk.users import User, hash_password

TOKEN_PREFIX = "pr_"


class ResetTokenInvalid(DeskError):
    """A reset token that is unknown, used or expired."""

    code = "invalid_reset_token"
    status = 400


async def issue_reset(db: Db, user: User, ttl_s: int) -> str:
    """A fresh one-time reset token for ``user`` (earlier unused ones stop working)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with connect(db) as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM password_resets WHERE tenant_id = %s AND user_id = %s",
            (user.tenant_id, user.id),
        )
        await conn.execute(
            "INSERT INTO password_resets (tenant_id, user_id, token_hash, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
            (user.tenant_id, user.id, hash_key(token), ttl_s),
        )
    return token


def reset_url(base_url: str, tenant_slug: str, token: str) -> str:
    """The console URL that consumes ``token``."""
    return f"{base_url.rstrip('/')}/console?tenant={quote(tenant_slug)}#reset={token}"


async def consume_reset(
    db: Db, token: str, new_password: str, hasher: PasswordHasher | None = None
) -> User:
    """Use ``token`` once: set the password, end the user's sessions; return the user.

    Raises :class:`ResetTokenInvalid` for an unknown, used or expired token and
    :class:`helpdesk.errors.InvalidInput` for an unacceptable password (the token stays
    usable then).
    """
    hashed = await hash_password(new_password, hasher)
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise ResetTokenInvalid("the reset link is not valid")
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE password_resets SET used_at = now() WHERE token_hash = %s"
            " AND used_at IS NULL AND expires_at > now() RETURNING tenant_id, user_id",
            (hash_key(token),),
        )
        row = await cur.fetchone()
        if row is None:
            raise ResetTokenInvalid("the reset link is unknown, already used or expired")
        cur = await conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s AND tenant_id = %s AND active"
            " RETURNING *",
            (hashed, row["user_id"], row["tenant_id"]),
        )
        user_row = await cur.fetchone()
        if user_row is None:
            raise ResetTokenInvalid("the account of this reset link is disabled")
        await conn.execute(
            "DELETE FROM user_sessions WHERE tenant_id = %s AND user_id = %s",
            (row["tenant_id"], row["user_id"]),
        )
    return User.from_row(user_row)
