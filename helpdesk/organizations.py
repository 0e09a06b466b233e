"""Organisations: the companies a business's contacts belong to (name, and a web domain that is
unique per tenant). Tenant-scoped like every repository (:mod:`helpdesk.tenancy`)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from helpdesk.contact_fields import contains_pattern, normalize_domain
from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect


async def create_organization(
    db: Db, tenant_id: uuid.UUID, name: str, domain: str | None = None
) -> dict[str, Any]:
    """Create an organisation; :class:`Conflict` when another one has this domain."""
    name = name.strip()
    if not name:
        raise InvalidInput("name must not be empty")
    stored_domain = normalize_domain(domain) if domain else None
    async with connect(db) as conn:
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO organizations (tenant_id, name, domain) VALUES (%s, %s, %s)"
                    " RETURNING *",
                    (tenant_id, name, stored_domain),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"an organisation with domain {stored_domain!r} exists") from exc
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def get_organization(
    db: Db, tenant_id: uuid.UUID, organization_id: uuid.UUID
) -> dict[str, Any]:
    """One organisation of the tenant; :class:`NotFound` otherwise."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM organizations WHERE id = %s AND tenant_id = %s",
            (organization_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no organisation {organization_id} for this tenant")
    return dict(row)


async def list_organizations(
    db: Db, tenant_id: uuid.UUID, q: str | None = None, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The tenant's organisations (whose name or domain contains ``q``), by name."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM organizations WHERE tenant_id = %(t)s AND (%(q)s::text IS NULL"
            " OR name ILIKE %(like)s OR domain ILIKE %(like)s) ORDER BY name, id LIMIT %(n)s",
            {"t": tenant_id, "q": q, "like": contains_pattern(q or ""), "n": limit},
        )
        return [dict(r) for r in await cur.fetchall()]
