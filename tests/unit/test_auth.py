"""Credentials on their own: customer tokens (round trip, expiry, tampering, the secret), keys
(random, prefixed, hashed, derived) and the origins a widget key may name."""

from __future__ import annotations

import uuid

import pytest

from helpdesk import keys
from helpdesk.auth import (
    TokenError,
    TokenExpired,
    issue_customer_token,
    load_secret,
    verify_customer_token,
)
from helpdesk.config import Settings
from helpdesk.errors import InvalidInput

SECRET = b"unit-test-secret-0123456789"


# ------------------------------------------------------------------ customer tokens


def test_customer_token_round_trip_and_expiry():
    tenant, conv = uuid.uuid4(), uuid.uuid4()
    token, expires_at = issue_customer_token(SECRET, tenant, conv, 60, now=1000)
    assert expires_at == 1060
    claims = verify_customer_token(SECRET, token, now=1059)
    assert (claims.tenant_id, claims.conversation_id) == (tenant, conv)
    with pytest.raises(TokenExpired) as exc:
        verify_customer_token(SECRET, token, now=1060)
    assert exc.value.code == "token_expired" and exc.value.status == 401


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("ct_", "xx_", 1),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0],
        lambda t: "ct_" + "A" * 30 + "." + t.split(".")[1],
        lambda t: t + "é",
        lambda t: "ct_" + "x" * 2000,
    ],
)
def test_tampered_tokens_are_invalid(mangle):
    token, _ = issue_customer_token(SECRET, uuid.uuid4(), uuid.uuid4(), 60)
    with pytest.raises(TokenError) as exc:
        verify_customer_token(SECRET, mangle(token))
    assert exc.value.code == "invalid_token"


def test_a_token_signed_with_another_secret_is_invalid():
    token, _ = issue_customer_token(b"another-secret-entirely", uuid.uuid4(), uuid.uuid4(), 60)
    with pytest.raises(TokenError):
        verify_customer_token(SECRET, token)


def test_secret_is_generated_once_and_kept(tmp_path):
    settings = Settings(DESKGRAPH_DATA_DIR=tmp_path)
    first = load_secret(settings)
    assert len(first) >= 32 and load_secret(settings) == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    configured = Settings(DESKGRAPH_DATA_DIR=tmp_path, DESKGRAPH_SECRET_KEY="x" * 20)
    assert load_secret(configured) == b"x" * 20
    with pytest.raises(ValueError):
        load_secret(Settings(DESKGRAPH_DATA_DIR=tmp_path, DESKGRAPH_SECRET_KEY="short"))


# ------------------------------------------------------------------ keys


def test_keys_are_random_prefixed_and_hashed():
    a, b = keys.new_secret("agent"), keys.new_secret("agent")
    assert a != b and a.startswith("ak_") and len(a) > 40
    assert keys.kind_of(a) == "agent" and keys.kind_of("sk_x") == "admin"
    assert keys.kind_of("nope") is None
    assert keys.hash_key(a) == keys.hash_key(a) != keys.hash_key(b)
    assert a not in keys.hash_key(a)
    derived = keys.derived_secret("widget", SECRET, "demo")
    assert derived == keys.derived_secret("widget", SECRET, "demo")
    assert derived != keys.derived_secret("widget", b"other-secret-value-xx", "demo")
    assert derived.startswith("wk_")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("https://Shop.Example/", "https://shop.example"), ("http://a.b:8080", "http://a.b:8080")],
)
def test_origins_are_normalised(raw, normal):
    assert keys.normalise_origin(raw) == normal


@pytest.mark.parametrize("bad", ["shop.example", "https://shop.example/path", "ftp://x.y"])
def test_bad_origins_are_refused(bad):
    with pytest.raises(InvalidInput):
        keys.normalise_origin(bad)
