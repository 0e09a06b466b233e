"""Customer tokens and the server secret that signs them.

A customer token lets the holder act on one conversation of one tenant until it expires:
``ct_<payload>.<signature>``, where the payload is base64url JSON ``{"c": conversation id,
"t": tenant id, "exp": unix seconds}`` and the signature is HMAC-SHA256 over the payload text
with the server secret. No database row is needed to check one, so every API process can
verify tokens the others issued, as long as they share the secret.

The secret comes from ``DESKGRAPH_SECRET_KEY``; when that is unset it is generated once and kept
in ``<data_dir>/secret_key`` (mode 0600), so restarts keep issued tokens valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpdesk.config import Settings
from helpdesk.errors import DeskError

TOKEN_PREFIX = "ct_"
_MIN_SECRET_BYTES = 16


class TokenError(DeskError):
    """A customer token that cannot be used."""

    code = "invalid_token"
    status = 401


class TokenExpired(TokenError):
    """A well-signed customer token past its expiry."""

    code = "token_expired"


@dataclass(frozen=True)
class CustomerClaims:
    """What a valid customer token grants."""

    conversation_id: uuid.UUID
    tenant_id: uuid.UUID
    expires_at: int


def load_secret(settings: Settings) -> bytes:
    """The secret that signs customer tokens (created under ``data_dir`` when not configured).

    Two processes starting at once on one data dir agree: the file is created exclusively and
    the loser of that race reads the winner's secret.
    """
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value().encode("utf-8")
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"DESKGRAPH_SECRET_KEY must be at least {_MIN_SECRET_BYTES} bytes")
        return secret
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text.encode("ascii")
            time.sleep(0.02)
        raise ValueError(f"{path} is empty; delete it to generate a new secret") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        text = secrets.token_urlsafe(48)
        f.write(text + "\n")
    return text.encode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def issue_customer_token(
    secret: bytes,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    ttl_s: int,
    *,
    now: float | None = None,
) -> tuple[str, int]:
    """Return ``(token, expires_at)`` for one conversation of one tenant."""
    expires_at = int(now if now is not None else time.time()) + int(ttl_s)
    claims = {"c": str(conversation_id), "t": str(tenant_id), "exp": expires_at}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    return f"{TOKEN_PREFIX}{payload}.{_sign(secret, payload)}", expires_at


def verify_customer_token(secret: bytes, token: str, *, now: float | None = None) -> CustomerClaims:
    """Check a customer token's signature and expiry and return its claims.

    Raises :class:`TokenError` (``invalid_token``) for anything malformed or badly signed and
    :class:`TokenExpired` (``token_expired``) for a good token past its time.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 1000:
        raise TokenError("a customer token starts with 'ct_'")
    payload, _, signature = token[len(TOKEN_PREFIX) :].partition(".")
    try:
        payload.encode("ascii")
        good = hmac.compare_digest(_sign(secret, payload), signature)
    except (UnicodeEncodeError, TypeError):
        good = False
    if not good:
        raise TokenError("the customer token's signature does not match")
    try:
        claims = json.loads(_unb64(payload))
        result = CustomerClaims(
            conversation_id=uuid.UUID(claims["c"]),
            tenant_id=uuid.UUID(claims["t"]),
            expires_at=int(claims["exp"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise TokenError("the customer token's payload is malformed") from exc
    if result.expires_at <= (now if now is not None else time.time()):
        raise TokenExpired("the customer token has expired; start a new conversation")
    return result
