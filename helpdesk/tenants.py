"""Tenants: the businesses deskgraph serves, each with its own policy."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from helpdesk.db import DictPool
from helpdesk.errors import Conflict, NotFound
from helpdesk.policy import TenantPolicy, with_chat_config
from helpdesk.profile import BusinessProfile
from helpdesk.text_policy import check_text


@dataclass(frozen=True)
class Tenant:
    """A business using deskgraph."""

    id: uuid.UUID
    slug: str
    name: str
    policy: TenantPolicy = field(default_factory=TenantPolicy)
    profile: BusinessProfile | None = None
    """The newest business profile (None: never described; :attr:`business` fills in)."""
    profile_version: int = 0
    intents_saved_at: datetime | None = None
    """When the tenant's own intent examples were last saved (None: the shared ones only)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Tenant:
        """Build a tenant from a ``tenants`` row, with ``profile``/``profile_version`` when the
        query joined them (:data:`_SELECT`)."""
        stored = row.get("profile")
        return cls(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            policy=TenantPolicy.model_validate(row["policy"] or {}),
            # Stored profiles were validated when saved; a field added later gets its default.
            profile=BusinessProfile.model_validate(stored) if stored else None,
            profile_version=int(row.get("profile_version") or 0),
            intents_saved_at=row.get("intents_saved_at"),
        )

    @functools.cached_property
    def rules(self) -> TenantPolicy:
        """The policy the assistant applies: the stored one with the profile's chat
        configuration on top (:func:`helpdesk.policy.with_chat_config`). ``policy`` stays the
        stored one, which is what ``deskgraph tenant policy`` edits."""
        return with_chat_config(self.policy, self.profile.chat) if self.profile else self.policy

    @property
    def business(self) -> BusinessProfile:
        """The profile the assistant speaks from: the stored one, else the tenant's name."""
        return self.profile or BusinessProfile.default_for(self.name)


# The tenant with its newest profile, if any.
_SELECT = (
    "SELECT t.*, p.profile, p.version AS profile_version,"
    " (SELECT saved_at FROM tenant_intents WHERE tenant_id = t.id) AS intents_saved_at"
    " FROM tenants t"
    " LEFT JOIN LATERAL (SELECT profile, version FROM tenant_profiles"
    " WHERE tenant_id = t.id ORDER BY version DESC LIMIT 1) p ON true"
)


async def create_tenant(
    pool: DictPool, slug: str, name: str, policy: TenantPolicy | None = None
) -> Tenant:
    """Create a tenant; raise :class:`Conflict` if the slug is taken."""
    check_text(name, "name")
    policy_json = (policy or TenantPolicy()).model_dump(mode="json", exclude_defaults=True)
    async with pool.connection() as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO tenants (slug, name, policy) VALUES (%s, %s, %s) RETURNING *",
                (slug, name, Jsonb(policy_json)),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"tenant {slug!r} already exists") from exc
        except psycopg.errors.CheckViolation as exc:
            raise ValueError(
                f"tenant slug must be 2-63 lowercase letters, digits or dashes, got {slug!r}"
            ) from exc
        row = await cur.fetchone()
    assert row is not None
    return Tenant.from_row(row)


async def get_tenant(pool: DictPool, slug: str) -> Tenant:
    """Return the tenant with this slug; raise :class:`NotFound` if there is none."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"{_SELECT} WHERE t.slug = %s", (slug,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no tenant with slug {slug!r}")
    return Tenant.from_row(row)


async def get_tenant_by_id(pool: DictPool, tenant_id: uuid.UUID) -> Tenant:
    """Return the tenant with this id; raise :class:`NotFound` if there is none."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"{_SELECT} WHERE t.id = %s", (tenant_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    return Tenant.from_row(row)


async def set_policy(pool: DictPool, tenant_id: uuid.UUID, policy: TenantPolicy) -> None:
    """Replace a tenant's policy."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE tenants SET policy = %s WHERE id = %s",
            (Jsonb(policy.model_dump(mode="json", exclude_defaults=True)), tenant_id),
        )
