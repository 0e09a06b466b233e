"""Identity verification: a business's site vouches for its signed-in customer.

As Intercom's identity verification does, the business's *server* signs who the customer is
with a secret only it and deskgraph know, and its page passes the signed identity when it starts
a conversation. A customer can change what their browser sends, but not sign it.

* The user object: a flat JSON object whose keys are lower-case names (``[a-z][a-z0-9_]*``,
  at most 40 characters, at most 20 keys) and whose values are strings of at most 500
  characters, except ``iat``: the signing time, an integer of unix seconds. ``email`` or
  ``phone`` is required (that is what the contact is resolved by); ``name`` and ``user_id`` (the
  site's own id, kept as the contact's ``external_ids.site``) are optional; other keys are
  signed and otherwise ignored.
* The canonical form: the object as JSON with its keys sorted, no whitespace (``,`` and ``:``
  as separators), non-ASCII characters as themselves, UTF-8 encoded. Python's
  ``json.dumps(user, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` and a
  JavaScript ``JSON.stringify`` of the same object with its keys sorted produce the same bytes,
  because every value is a string or an integer.
* The signature: HMAC-SHA256 of the canonical form, keyed with the tenant's identity secret
  (its UTF-8 bytes), as lower-case hex (64 characters).
* Freshness: ``iat`` may be at most :data:`MAX_AGE_S` old and at most :data:`MAX_SKEW_S` in the
  future (clock drift between the two servers); otherwise ``identity_expired``. A signature is
  checked before its age, so an old forgery is ``invalid_identity``, not ``identity_expired``.

The secret is made on demand (``deskgraph tenant identity-secret SLUG``) and stored as it is:
checking an HMAC needs the key itself. Rotating replaces it at once; identities signed with
the old one are refused from then on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helpdesk.errors import DeskError
from helpdesk.tenancy import Db, connect

MAX_AGE_S = 600
"""How old a signed identity may be (10 minutes): long enough for a page to load and the
customer to start typing, short enough that a copied one soon stops working."""
MAX_SKEW_S = 60
"""How far in the future ``iat`` may be: the two servers' clocks may differ a little."""
SECRET_PREFIX = "ids_"
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MAX_KEYS = 20
_MAX_VALUE = 500


class InvalidIdentity(DeskError):
    """The identity is malformed, or its signature does not match the tenant's secret."""

    code = "invalid_identity"
    status = 401


class IdentityExpired(DeskError):
    """A well-signed identity signed too long ago, or in the future."""

    code = "identity_expired"
    status = 401


@dataclass(frozen=True)
class VerifiedUser:
    """What a good signature vouches for."""

    email: str | None
    phone: str | None
    name: str | None
    user_id: str | None
    issued_at: int


def canonical_user(user: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers; raises :class:`InvalidIdentity` for a user object that
    is not of the documented shape (so nothing ambiguous is ever signed)."""
    if not isinstance(user, Mapping):
        raise InvalidIdentity("identity.user must be a JSON object")
    if len(user) > _MAX_KEYS:
        raise InvalidIdentity(f"identity.user has {len(user)} keys; at most {_MAX_KEYS}")
    for key, value in user.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidIdentity(
                f"identity.user key {key!r} must be lower-case letters, digits and _"
            )
        if key == "iat":
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidIdentity("identity.user.iat must be an integer (unix seconds)")
        elif not isinstance(value, str) or len(value) > _MAX_VALUE:
            raise InvalidIdentity(
                f"identity.user.{key} must be a string of at most {_MAX_VALUE} characters"
            )
    if "iat" not in user:
        raise InvalidIdentity("identity.user.iat (the signing time, unix seconds) is missing")
    text = json.dumps(dict(user), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def sign_user(secret: str, user: Mapping[str, Any]) -> str:
    """The signature of ``user`` with ``secret``, as the business's server computes it."""
    return hmac.new(secret.encode("utf-8"), canonical_user(user), hashlib.sha256).hexdigest()


def verify_identity(
    secret: str | None,
    user: Mapping[str, Any],
    signature: str,
    *,
    now: float | None = None,
) -> VerifiedUser:
    """Check a signed identity and return what it vouches for.

    Raises :class:`InvalidIdentity` when the tenant has no secret, the object is malformed or
    the signature does not match; :class:`IdentityExpired` when it matches but ``iat`` is out
    of :data:`MAX_AGE_S` / :data:`MAX_SKEW_S`.
    """
    if secret is None:
        raise InvalidIdentity(
            "this business has not set up identity verification"
            " (deskgraph tenant identity-secret SLUG)"
        )
    expected = sign_user(secret, user)
    if not isinstance(signature, str) or not hmac.compare_digest(
        expected, signature.strip().lower()
    ):
        raise InvalidIdentity("the identity signature does not match")
    issued_at = int(user["iat"])
    clock = time.time() if now is None else now
    if issued_at < clock - MAX_AGE_S:
        raise IdentityExpired(
            f"the identity was signed {int(clock - issued_at)} s ago; at most {MAX_AGE_S} s"
            " are accepted: sign it when the page is served"
        )
    if issued_at > clock + MAX_SKEW_S:
        raise IdentityExpired(
            f"the identity's iat is {int(issued_at - clock)} s in the future; check the clock"
            " of the server that signs it"
        )
    if not user.get("email") and not user.get("phone"):
        raise InvalidIdentity("identity.user needs an email or a phone")
    return VerifiedUser(
        email=user.get("email") or None,
        phone=user.get("phone") or None,
        name=user.get("name") or None,
        user_id=user.get("user_id") or None,
        issued_at=issued_at,
    )


def new_secret() -> str:
    """A fresh identity secret: ``ids_`` and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def load_identity_secret(db: Db, tenant_id: uuid.UUID) -> str | None:
    """The tenant's identity secret, or None when it has none."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT secret FROM identity_secrets WHERE tenant_id = %s", (tenant_id,)
        )
        row = await cur.fetchone()
    return str(row["secret"]) if row else None


async def ensure_identity_secret(
    db: Db, tenant_id: uuid.UUID, *, rotate: bool = False
) -> tuple[str, bool]:
    """The tenant's identity secret, made when it has none or when ``rotate``; returns
    ``(secret, made)``. Two first calls at once agree on one secret."""
    async with connect(db) as conn:
        if rotate:
            cur = await conn.execute(
                "INSERT INTO identity_secrets (tenant_id, secret) VALUES (%s, %s)"
                " ON CONFLICT (tenant_id) DO UPDATE SET secret = EXCLUDED.secret,"
                " created_at = now() RETURNING secret",
                (tenant_id, new_secret()),
            )
            row = await cur.fetchone()
            assert row is not None
            return str(row["secret"]), True
        cur = await conn.execute(
            "INSERT INTO identity_secrets (tenant_id, secret) VALUES (%s, %s)"
            " ON CONFLICT (tenant_id) DO NOTHING RETURNING secret",
            (tenant_id, new_secret()),
        )
        row = await cur.fetchone()
        if row is not None:
            return str(row["secret"]), True
    existing = await load_identity_secret(db, tenant_id)
    assert existing is not None
    return existing, False
