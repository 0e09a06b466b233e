"""Staff accounts with nothing started: password rules and hashing, the role table and its doc,
and that every staff route checks the table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.routing import APIRoute

from api.app import create_app
from helpdesk import password_resets, throttle, users
from helpdesk.config import Settings
from helpdesk.errors import InvalidInput
from helpdesk.roles import PERMISSIONS, allows, markdown_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_emails_are_normalised_and_checked():
    assert users.normalise_email("  Alex.Kim@Example.COM ") == "alex.kim@example.com"
    for bad in ("alex", "a@b", "two@@example.com", "a b@example.com", "x\x00@example.com"):
        with pytest.raises(InvalidInput):
            users.normalise_email(bad)


def test_password_rules():
    assert users.check_password("ten chars!") == "ten chars!"
    for bad in ("short", "x" * 1001, "has a nul \x00 in it"):
        with pytest.raises(InvalidInput):
            users.check_password(bad)
    assert len(users.generate_password()) >= 16


def test_hashes_are_argon2id_salted_and_verify():
    cheap = PasswordHasher(time_cost=1, memory_cost=8192)
    one = asyncio.run(users.hash_password("correct horse battery", cheap))
    two = asyncio.run(users.hash_password("correct horse battery", cheap))
    assert one.startswith("$argon2id$") and one != two  # a salt per hash
    assert users._verify(cheap, one, "correct horse battery")
    assert not users._verify(cheap, one, "correct horse batterY")
    assert not users._verify(cheap, "not a hash", "correct horse battery")
    assert not users._verify(cheap, None, "anything at all")  # unknown email: same work, no


def test_a_hash_with_other_parameters_needs_a_rehash():
    cheap = PasswordHasher(time_cost=1, memory_cost=8192)
    stored = cheap.hash("correct horse battery")
    configured = users.hasher_for(Settings(password_time_cost=2, password_memory_kib=16384))
    assert configured.check_needs_rehash(stored)
    assert not cheap.check_needs_rehash(stored)


def test_throttle_retry_after_is_whole_seconds_at_least_one():
    assert throttle.retry_after(0.01) == 1
    assert throttle.retry_after(29.2) == 30


def test_reset_url_points_at_the_console_with_the_token_in_the_fragment():
    url = password_resets.reset_url("https://desk.example/", "demo", "pr_abc")
    # In the fragment, the token never reaches access logs or a Referer header.
    assert url == "https://desk.example/console?tenant=demo#reset=pr_abc"


def test_the_role_table_decides_as_documented():
    assert allows("agent", "conversation.reply") and allows("agent", "conversation.approve")
    assert allows("manager", "teams.manage") and allows("manager", "audit.read")
    assert allows("manager", "kb.ingest")
    assert not allows("manager", "users.manage") and not allows("manager", "keys.manage")
    for admin_only in ("users.manage", "keys.manage", "profile.edit"):
        assert not allows("agent", admin_only)
    assert all(allows("admin", action) for action in PERMISSIONS)


def test_docs_roles_md_shows_the_role_table_as_it_is():
    assert markdown_table() in (DOCS / "roles.md").read_text(encoding="utf-8")


# Routes open to any staff credential on purpose: who am I, and signing in and out.
_IDENTITY_ONLY = {
    ("GET", "/v1/agent/me"),
    ("POST", "/v1/auth/sign-in"),
    ("POST", "/v1/auth/sign-out"),
    ("POST", "/v1/auth/reset"),
}
# Widget or staff (the customer portal searches too): every staff role has kb.read.
_WIDGET_OR_STAFF = {("GET", "/v1/kb/search")}


def _permissions(dependant) -> set[str]:
    found = set()
    for sub in dependant.dependencies:
        action = getattr(sub.call, "permission", None)
        if action:
            found.add(action)
        found |= _permissions(sub)
    return found


def _flat(routes):
    """The app's API routes, through the routers it includes."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _flat(route.original_router.routes)


def test_every_staff_route_checks_the_role_table():
    app = create_app(Settings())
    checked = 0
    for route in _flat(app.routes):
        staff = route.path.startswith(("/v1/agent", "/v1/admin", "/v1/kb", "/v1/auth"))
        if not staff:
            continue
        for method in route.methods:
            if (method, route.path) in _IDENTITY_ONLY | _WIDGET_OR_STAFF:
                continue
            actions = _permissions(route.dependant)
            assert len(actions) == 1, f"{method} {route.path} checks {actions or 'no role'}"
            assert actions <= set(PERMISSIONS)
            checked += 1
    assert checked >= 25
