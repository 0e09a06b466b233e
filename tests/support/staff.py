"""Staff accounts as the tests use them: a tenant with an admin, a manager and two agents, and
signing in over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from helpdesk import keys, users
from helpdesk.tenants import Tenant, create_tenant

PASSWORD = "correct horse battery"
ROLES = {"admin": "admin", "manager": "manager", "alice": "agent", "bob": "agent"}
"""The accounts of a staff tenant: name -> role."""


@dataclass
class StaffTenant:
    """A tenant with staff accounts (all with :data:`PASSWORD`) and an agent and admin key."""

    tenant: Tenant
    emails: dict[str, str]
    ids: dict[str, uuid.UUID]
    agent_key: str = ""
    admin_key: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.tenant.slug


async def make_staff(pool: Any, tenant: Tenant | None = None, prefix: str = "staff") -> StaffTenant:
    """Accounts for :data:`ROLES` (emails unique to this call) in ``tenant``, or a new one."""
    tag = uuid.uuid4().hex[:8]
    if tenant is None:
        tenant = await create_tenant(pool, f"{prefix}-{tag}", f"Staff test {tag}")
    emails, ids = {}, {}
    for name, role in ROLES.items():
        user = await users.create_user(
            pool, tenant.id, f"{name}-{tag}@staff.example", name.title(), role, password=PASSWORD
        )
        emails[name], ids[name] = user.email, user.id
    agent_key, _ = await keys.create_key(pool, tenant.id, "agent", name=f"agent-key-{tag}")
    admin_key, _ = await keys.create_key(pool, tenant.id, "admin", name=f"admin-key-{tag}")
    return StaffTenant(tenant, emails, ids, agent_key, admin_key)


def sign_in(
    client: httpx.Client, slug: str, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    """POST /v1/auth/sign-in (bearer mode unless ``session`` says otherwise)."""
    body = {"tenant": slug, "email": email, "password": password, "session": "bearer", **extra}
    return client.post("/v1/auth/sign-in", json=body)


def token_of(client: httpx.Client, staff: StaffTenant, name: str) -> str:
    """A session token of the account ``name`` (signed in once per test module)."""
    if name not in staff.tokens:
        r = sign_in(client, staff.slug, staff.emails[name])
        assert r.status_code == 200, r.text
        staff.tokens[name] = r.json()["token"]
    return staff.tokens[name]
