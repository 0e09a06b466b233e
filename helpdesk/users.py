"""Staff accounts: the people who sign in to the console (admin, manager, agent) of one tenant.

An email is unique per tenant, case-insensitively: it is stored lower-cased, and it is what a
user is called wherever the desk records an actor (``Principal.name``). Passwords are hashed with
argon2id (``argon2-cffi``); a stored hash made with other parameters than the configured ones is
redone at the next successful sign-in, so raising the cost reaches every account without a
reset. Hashing is deliberately slow (tens of milliseconds), so it runs in a worker thread and
never blocks the event loop that streams answers.

An unknown email costs the same hash as a wrong password, so response times do not tell which
emails have accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from helpdesk.config import Settings
from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect
from helpdesk.text_policy import check_text

Role = Literal["admin", "manager", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD = 10
MAX_PASSWORD = 1000  # argon2 takes any length; this bounds the work one request can ask for
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class User:
    """A staff account (never its password hash)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        """Build from a ``users`` row."""
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            email=row["email"],
            name=row["name"],
            role=row["role"],
            active=row["active"],
            created_at=row["created_at"],
            last_sign_in_at=row["last_sign_in_at"],
        )


def hasher_for(settings: Settings) -> PasswordHasher:
    """The argon2id hasher with the configured cost."""
    return PasswordHasher(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_kib
    )


_DEFAULT_HASHER = PasswordHasher()
# A hash to verify against when the email is unknown (same cost as a real one).
_DUMMY: dict[tuple[int, int, int], str] = {}


def normalise_email(email: str) -> str:
    """The stored form of an email (trimmed, lower-cased); refuse anything not shaped like one."""
    check_text(email, "email")
    text = email.strip().lower()
    if len(text) > 254 or not _EMAIL.match(text):
        raise InvalidInput(f"email: expected an address like name@example.com, got {email!r}")
    return text


def check_role(role: str) -> Role:
    """``role`` when it is one of :data:`ROLES`."""
    if role not in ROLES:
        raise InvalidInput(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def check_password(password: str) -> str:
    """``password`` when it is acceptable: 10 to 1000 characters of accepted text."""
    check_text(password, "password")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}"
        )
    return password


def generate_password() -> str:
    """A random password to hand over once (about 120 bits)."""
    return secrets.token_urlsafe(15)


async def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash of an acceptable password (computed off the event loop)."""
    check_password(password)
    return await asyncio.to_thread((hasher or _DEFAULT_HASHER).hash, password)


def _verify(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    if stored is None:
        params = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
        if params not in _DUMMY:
            _DUMMY[params] = hasher.hash(secrets.token_urlsafe(16))
        stored = _DUMMY[params]
        with contextlib.suppress(VerificationError):
            hasher.verify(stored, password)
        return False
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(
    db: Db,
    tenant_id: uuid.UUID,
    email: str,
    name: str,
    role: str,
    *,
    password: str | None = None,
    hasher: PasswordHasher | None = None,
) -> User:
    """Create an account; raise :class:`Conflict` when the email is taken in this tenant.

    Without a password the account cannot sign in until a reset link sets one.
    """
    address = normalise_email(email)
    check_text(name, "name")
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name: expected 1 to 200 characters")
    check_role(role)
    hashed = await hash_password(password, hasher) if password is not None else None
    async with connect(db) as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO users (tenant_id, email, name, role, password_hash)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING *",
                (tenant_id, address, name.strip(), role, hashed),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a user with email {address} already exists in this tenant") from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFound(f"no tenant {tenant_id}") from exc
        row = await cur.fetchone()
    assert row is not None
    return User.from_row(row)


async def get_user(db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """The tenant's user with this id; :class:`NotFound` otherwise (another tenant's too)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM users WHERE id = %s AND tenant_id = %s", (user_id, tenant_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no user {user_id} for this tenant")
    return User.from_row(row)


async def get_user_by_email(db: Db, tenant_id: uuid.UUID, email: str) -> User:
    """The tenant's user with this email (any case); :class:`NotFound` otherwise."""
    address = normalise_email(email)
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM users WHERE tenant_id = %s AND email = %s", (tenant_id, address)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no user {address} in this tenant")
    return User.from_row(row)


async def list_users(db: Db, tenant_id: uuid.UUID) -> list[User]:
    """The tenant's users, by email."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM users WHERE tenant_id = %s ORDER BY email", (tenant_id,)
        )
        return [User.from_row(r) for r in await cur.fetchall()]


async def update_user(
    db: Db,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    role: str | None = None,
    active: bool | None = None,
    name: str | None = None,
) -> User:
    """Change an account's role, active flag or name.

    Refused with :class:`Conflict`: leaving the tenant without an active admin (demoting or
    disabling the last one), since nobody could then manage users. Disabling an account ends
    its sessions at once.
    """
    if role is not None:
        check_role(role)
    if name is not None:
        check_text(name, "name")
        if not name.strip() or len(name) > 200:
            raise InvalidInput("name: expected 1 to 200 characters")
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT * FROM users WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (user_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no user {user_id} for this tenant")
        new_role = role or row["role"]
        new_active = row["active"] if active is None else active
        if row["role"] == "admin" and row["active"] and (new_role != "admin" or not new_active):
            cur = await conn.execute(
                "SELECT count(*) AS n FROM users WHERE tenant_id = %s AND role = 'admin'"
                " AND active AND id <> %s",
                (tenant_id, user_id),
            )
            others = await cur.fetchone()
            if others is not None and others["n"] == 0:
                raise Conflict("this is the tenant's last active admin; make another admin first")
        cur = await conn.execute(
            "UPDATE users SET role = %s, active = %s, name = %s"
            " WHERE id = %s AND tenant_id = %s RETURNING *",
            (new_role, new_active, (name or row["name"]).strip(), user_id, tenant_id),
        )
        updated = await cur.fetchone()
        if not new_active:
            await conn.execute(
                "DELETE FROM user_sessions WHERE tenant_id = %s AND user_id = %s",
                (tenant_id, user_id),
            )
    assert updated is not None
    return User.from_row(updated)


async def set_password(
    db: Db,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    password: str,
    hasher: PasswordHasher | None = None,
) -> None:
    """Replace an account's password."""
    hashed = await hash_password(password, hasher)
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s AND tenant_id = %s RETURNING id",
            (hashed, user_id, tenant_id),
        )
        if await cur.fetchone() is None:
            raise NotFound(f"no user {user_id} for this tenant")


async def authenticate(
    db: Db,
    tenant_id: uuid.UUID,
    email: str,
    password: str,
    hasher: PasswordHasher | None = None,
) -> User | None:
    """The active user with this email and password, or None (whichever of them was wrong).

    On success ``last_sign_in_at`` is set, and a hash made with other parameters than
    ``hasher``'s is replaced by a fresh one.
    """
    hasher = hasher or _DEFAULT_HASHER
    try:
        address = normalise_email(email)
    except InvalidInput:
        address = None
    row = None
    if address is not None and len(password) <= MAX_PASSWORD:
        async with connect(db) as conn:
            cur = await conn.execute(
                "SELECT * FROM users WHERE tenant_id = %s AND email = %s", (tenant_id, address)
            )
            row = await cur.fetchone()
    stored = row["password_hash"] if row is not None and row["active"] else None
    good = await asyncio.to_thread(_verify, hasher, stored, password[:MAX_PASSWORD])
    if not good or row is None:
        return None
    assert stored is not None
    fresh = (
        await asyncio.to_thread(hasher.hash, password)
        if hasher.check_needs_rehash(stored)
        else None
    )
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE users SET last_sign_in_at = now(),"
            " password_hash = COALESCE(%s, password_hash)"
            " WHERE id = %s AND tenant_id = %s RETURNING *",
            (fresh, row["id"], tenant_id),
        )
        updated = await cur.fetchone()
    assert updated is not None
    return User.from_row(updated)


async def password_hash_of(db: Db, tenant_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The stored hash (for tests of rehashing and for nothing else)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT password_hash FROM users WHERE id = %s AND tenant_id = %s",
            (user_id, tenant_id),
        )
        row = await cur.fetchone()
    return row["password_hash"] if row else None


async def password_matches(
    db: Db,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    password: str,
    hasher: PasswordHasher | None = None,
) -> bool:
    """Whether ``password`` is the account's (no sign-in is recorded)."""
    stored = await password_hash_of(db, tenant_id, user_id)
    if stored is None:
        return False
    return await asyncio.to_thread(_verify, hasher or _DEFAULT_HASHER, stored, password)
