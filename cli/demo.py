"""The demo tenant: Brightwater Home Services, its knowledge base, its API keys and its two
staff accounts (an admin and an agent)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from graph.services import Services
from helpdesk import keys, users
from helpdesk import profile as profiles
from helpdesk.config import Settings
from helpdesk.errors import Conflict, NotFound
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import Tenant, create_tenant, get_tenant
from kb_pipeline.index import IngestStats
from kb_pipeline.loaders import demo_kb_path, load_directory

DEMO_SLUG = "demo"
DEMO_NAME = "Brightwater Home Services"
DEMO_FILE = "demo.json"
DEMO_PROFILE = Path(__file__).with_name("demo_profile.json")
"""Brightwater's business profile (hours, area, contact), written for the demo like its KB."""

DEMO_USERS: dict[str, tuple[str, str]] = {
    "admin": ("admin@brightwater.example", "Morgan Reyes"),
    "agent": ("agent@brightwater.example", "Alex Kim"),
}
"""Role -> (email, name) of the demo's staff accounts."""
DEMO_POLICY = TenantPolicy(
    # The safety steps are the demo KB's own words (kb_pipeline/demo_kb/): see graph/safety.py.
    safety_mode="article",
    emergency_line="911",
    safety_lines={
        "gas": "Tri-County Gas's 24-hour emergency line, 555-0160, or 911",
        "flooding": "our 24/7 emergency line, 555-0142 (press 1)",
    },
    safety_articles={
        "gas": ["gas-leak-safety#Leave first, then call the gas utility"],
        "carbon_monoxide": ["gas-leak-safety#Carbon monoxide"],
        "flooding": [
            "water-leak-first-steps#1. Stop the water",
            "water-leak-first-steps#2. Stay safe around electricity",
        ],
    },
)


async def ensure_demo(services: Services) -> tuple[Tenant, IngestStats]:
    """Create the demo tenant if missing and (re-)ingest its knowledge base idempotently.

    Only the demo's own articles (the files of ``demo_kb``, by source id) are written, and
    nothing is ever deleted: an admin may add articles to the demo tenant (upload,
    ``deskgraph ingest``) and they must survive every restart. The loader cannot tell an
    article it wrote in an older release from one an admin added, so a demo article dropped
    from a later release stays until an admin deletes it.
    """
    try:
        tenant = await get_tenant(services.pool, DEMO_SLUG)
    except NotFound:
        try:
            tenant = await create_tenant(services.pool, DEMO_SLUG, DEMO_NAME, DEMO_POLICY)
        except Conflict:  # another process created it just now
            tenant = await get_tenant(services.pool, DEMO_SLUG)
    if tenant.profile_version == 0:  # an admin's later edits are never overwritten
        demo_profile = profiles.parse_profile(json.loads(DEMO_PROFILE.read_text("utf-8")))
        with contextlib.suppress(Conflict):  # another process saved it just now
            await profiles.save_profile(
                services.pool, tenant.id, demo_profile, based_on=0, saved_by="demo set-up"
            )
        services.forget_tenant(tenant.slug)
        tenant = await get_tenant(services.pool, DEMO_SLUG)
    stats = await services.kb.ingest(tenant.id, load_directory(demo_kb_path()))
    return tenant, stats


async def ensure_demo_keys(services: Services, tenant: Tenant, secret: bytes) -> dict[str, str]:
    """The demo tenant's widget, agent and admin keys, created if missing.

    Keys are stored hashed, so the demo keys are derived from the server secret instead of
    drawn at random: every start finds the same keys (and scripts keep working) without the
    server ever storing a key in clear. Returns ``{"tenant", "widget_key", "agent_key",
    "admin_key"}``.
    """
    out: dict[str, str] = {"tenant": tenant.slug}
    kinds: tuple[keys.KeyKind, ...] = ("widget", "agent", "admin")
    for kind in kinds:
        text = keys.derived_secret(kind, secret, f"demo:{tenant.id}")
        await keys.create_key(services.pool, tenant.id, kind, name=f"demo-{kind}", secret=text)
        out[f"{kind}_key"] = text
    return out


def read_demo_file(data_dir: Path) -> dict[str, Any]:
    """What ``<data_dir>/demo.json`` holds ({} when it is missing or unreadable)."""
    try:
        data = json.loads((data_dir / DEMO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def ensure_demo_users(
    services: Services, tenant: Tenant, data_dir: Path, settings: Settings | None = None
) -> dict[str, dict[str, str]]:
    """The demo admin and agent, created if missing; returns ``{role: {"email", "name",
    "password", "role"}}`` for ``demo.json``.

    Passwords are stored hashed, so the ones handed out are kept in ``demo.json``: a second run
    finds them there and keeps them (idempotent). An account whose password is not in the file
    (the file was deleted, or someone changed the password) gets a fresh one, printed again.
    """
    hasher = users.hasher_for(settings) if settings is not None else None
    known = read_demo_file(data_dir).get("users") or {}
    out: dict[str, dict[str, str]] = {}
    for role, (email, name) in DEMO_USERS.items():
        entry = known.get(role) if isinstance(known, dict) else None
        password: str | None = None
        if isinstance(entry, dict) and entry.get("email") == email:
            kept = entry.get("password")
            password = kept if isinstance(kept, str) else None
        try:
            user = await users.get_user_by_email(services.pool, tenant.id, email)
        except NotFound:
            password = password or users.generate_password()
            try:
                await users.create_user(
                    services.pool, tenant.id, email, name, role, password=password, hasher=hasher
                )
            except Conflict:  # another process created it just now: make the password ours
                user = await users.get_user_by_email(services.pool, tenant.id, email)
                await users.set_password(services.pool, tenant.id, user.id, password, hasher)
        else:
            good = password is not None and await users.password_matches(
                services.pool, tenant.id, user.id, password, hasher
            )
            if not good:
                password = users.generate_password()
                await users.set_password(services.pool, tenant.id, user.id, password, hasher)
        assert password is not None
        out[role] = {"email": email, "name": name, "password": password, "role": role}
    return out


def write_demo_file(data_dir: Path, demo_keys: dict[str, Any]) -> Path:
    """Write ``<data_dir>/demo.json`` (owner-only: it holds an admin key and the demo users'
    passwords) and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEMO_FILE
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(demo_keys, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
