"""API keys: widget (public), agent and admin keys of a tenant.

A key is ``<prefix><random>``: ``wk_`` widget, ``ak_`` agent, ``sk_`` admin, followed by 32
random bytes (base64url). Only its SHA-256 is stored. A fast hash is the right tool here, unlike
for passwords: the key has 256 bits of entropy, so nobody can enumerate candidates against a
leaked hash, and a fast hash keeps the per-request look-up cheap. The first characters are kept
in clear (``prefix``) so that an admin can tell keys apart in listings.

Widget keys are public by design (they sit in a web page); what protects a tenant is that a
widget key can only start conversations and search the external knowledge base, and, when the
key lists allowed origins, browsers on other sites are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

from helpdesk.errors import InvalidInput, NotFound
from helpdesk.tenancy import Db, connect
from helpdesk.text_policy import check_text

KeyKind = Literal["widget", "agent", "admin"]
PREFIXES: dict[KeyKind, str] = {"widget": "wk_", "agent": "ak_", "admin": "sk_"}
_SHOWN_CHARS = 10  # prefix + a few characters, enough to tell keys apart in a listing


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: KeyKind
    name: str
    prefix: str
    allowed_origins: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiKey:
        """Build from an ``api_keys`` row."""
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            kind=row["kind"],
            name=row["name"],
            prefix=row["prefix"],
            allowed_origins=tuple(row["allowed_origins"] or ()),
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )


def hash_key(secret: str) -> str:
    """The stored form of a key: hex SHA-256 of its text."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def kind_of(secret: str) -> KeyKind | None:
    """The kind a key's prefix announces (None for anything else)."""
    for kind, prefix in PREFIXES.items():
        if secret.startswith(prefix):
            return kind
    return None


def new_secret(kind: KeyKind) -> str:
    """A fresh random key of this kind."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def derived_secret(kind: KeyKind, master: bytes, label: str) -> str:
    """A key derived from the server secret and a label: the same inputs give the same key.

    Used for the demo tenant, whose keys must survive restarts although only hashes are stored.
    """
    digest = hmac.new(master, f"deskgraph-key:{kind}:{label}".encode(), hashlib.sha256).digest()
    return PREFIXES[kind] + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it in ``Origin``."""
    text = origin.strip().rstrip("/").lower()
    if not text.startswith(("http://", "https://")) or "/" in text.split("://", 1)[1]:
        raise InvalidInput(f"an origin is scheme://host[:port], got {origin!r}")
    return text


async def create_key(
    db: Db,
    tenant_id: uuid.UUID,
    kind: KeyKind,
    *,
    name: str = "",
    origins: list[str] | None = None,
    secret: str | None = None,
) -> tuple[str, ApiKey]:
    """Create a key and return ``(secret, key)``; the secret is never retrievable again.

    ``secret`` stores a given key (derived demo keys); storing the same one twice returns the
    existing row.
    """
    if kind not in PREFIXES:
        raise InvalidInput(f"key kind must be widget, agent or admin, got {kind!r}")
    check_text(name, "name")  # an agent key's name is the agent customers see
    if origins and kind != "widget":
        raise InvalidInput("allowed origins apply to widget keys only")
    allowed = sorted({normalise_origin(o) for o in origins or []})
    text = secret or new_secret(kind)
    if kind_of(text) != kind:
        raise InvalidInput(f"a {kind} key starts with {PREFIXES[kind]!r}")
    async with connect(db) as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO api_keys (tenant_id, kind, name, prefix, key_hash, allowed_origins)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (key_hash) DO UPDATE SET key_hash = EXCLUDED.key_hash"
                " WHERE api_keys.tenant_id = EXCLUDED.tenant_id RETURNING *",
                (tenant_id, kind, name, text[:_SHOWN_CHARS], hash_key(text), allowed),
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFound(f"no tenant {tenant_id}") from exc
        row = await cur.fetchone()
    if row is None:  # the same secret is stored for another tenant: never share a key
        raise InvalidInput("this key is already in use")
    return text, ApiKey.from_row(row)


async def lookup_key(db: Db, secret: str) -> ApiKey | None:
    """The live (not revoked) key with this secret, or None."""
    if kind_of(secret) is None or len(secret) > 200:
        return None
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (hash_key(secret),),
        )
        row = await cur.fetchone()
    return ApiKey.from_row(row) if row else None


async def list_keys(db: Db, tenant_id: uuid.UUID) -> list[ApiKey]:
    """The tenant's keys, oldest first (revoked ones included)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM api_keys WHERE tenant_id = %s ORDER BY created_at, id", (tenant_id,)
        )
        return [ApiKey.from_row(r) for r in await cur.fetchall()]


async def revoke_key(db: Db, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key of the tenant (idempotent); raise :class:`NotFound` if absent."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())"
            " WHERE id = %s AND tenant_id = %s RETURNING *",
            (key_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no key {key_id} for this tenant")
    return ApiKey.from_row(row)
