"""Signed outbound webhooks: the tenant's endpoints get every notification they subscribe to
(``helpdesk.notifications`` queues one ``webhook_deliveries`` row per endpoint, in the
transaction of the event).

* **Signed**: ``X-Deskgraph-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>.<body>" with the endpoint's secret>`` (the receiver recomputes it and refuses an old
  ``t`` against replays); ``X-Deskgraph-Event`` the kind, ``X-Deskgraph-Delivery`` the
  delivery's id. :func:`verify` is the receiver's side, for integrators and the tests.
* **At least once**: a delivery row is locked (``FOR UPDATE SKIP LOCKED``, so workers share
  the work) while it is sent; a 2xx marks it delivered. Anything else (a refusal, a timeout,
  a reset) counts an attempt and waits ``30 s * 2^(attempts-1)`` (at most an hour); after
  :data:`MAX_ATTEMPTS` it is ``failed``. A worker killed mid-send leaves the row pending and
  it is sent again, so a receiver may see a delivery twice: the body's ``id`` (the
  notification's) is the same every time, to de-duplicate on.
* **Delivery log and replay**: every row keeps its attempts, last status and error;
  :func:`replay` makes a delivered or failed one pending again.
* **No internal targets**: an endpoint whose host resolves to a loopback, private or
  link-local address is refused at delivery (``last_error``) unless the settings allow it
  (``DESKGRAPH_WEBHOOK_ALLOW_PRIVATE``, for tests and single-machine setups).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from helpdesk.tenancy import Db, connect

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 20
TIMEOUT_S = 10.0
TOLERANCE_S = 300
"""How old a signature's timestamp :func:`verify` accepts."""


def sign(secret: str, body: str, at: int) -> str:
    """The ``X-Deskgraph-Signature`` value for ``body`` sent at ``at`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, body: str, header: str, *, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is recent (the receiver's check)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - at) > TOLERANCE_S:
        return False
    return hmac.compare_digest(sign(secret, body, at), f"t={at},v1={parts.get('v1', '')}")


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


async def _public(url: str) -> str | None:
    """None when ``url``'s host is a public address, else why not."""
    try:
        host = urlsplit(url).hostname or ""
        host.encode("idna")
    except (ValueError, UnicodeError) as exc:
        return f"not a host name one can send to: {exc}"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            return f"{host} is an internal address ({ip}); webhooks go to public hosts"
    return None


async def deliver_due(
    db: Db,
    *,
    client: httpx.AsyncClient | None = None,
    allow_private: bool = False,
    now: datetime | None = None,
    tenant_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """Send the deliveries that are due (one batch; every tenant's, run as the tables' owner,
    or one tenant's); return counts by outcome. One endpoint that cannot be reached, or whose
    address is malformed, never stops the others' deliveries."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    own = client is None
    http = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
    try:
        async with connect(db) as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT d.id, d.kind, d.body, d.attempts, e.url, e.secret"
                " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= %s"
                " AND (%s::uuid IS NULL OR d.tenant_id = %s)"
                " ORDER BY d.next_attempt_at LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                (now or datetime.now(UTC), tenant_id, tenant_id, BATCH),
            )
            for d in await cur.fetchall():
                outcome = await _send(http, d, allow_private)
                counts[outcome] += 1
                await _record(conn, d, outcome, now)
    finally:
        if own:
            await http.aclose()
    return counts


async def _send(http: httpx.AsyncClient, d: dict[str, Any], allow_private: bool) -> str:
    d["_status"], d["_error"] = None, None
    refused = None if allow_private else await _public(d["url"])
    if refused:
        d["_error"] = refused
        return "failed" if d["attempts"] + 1 >= MAX_ATTEMPTS else "retry"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "deskgraph-webhooks/1",
        "X-Deskgraph-Event": d["kind"],
        "X-Deskgraph-Delivery": str(d["id"]),
        "X-Deskgraph-Signature": sign(d["secret"], d["body"], int(time.time())),
    }
    try:
        r = await http.post(d["url"], content=d["body"].encode(), headers=headers)
    except Exception as exc:  # unreachable, refused, timed out, or a URL it cannot send to
        d["_error"] = f"{type(exc).__name__}: {exc}"[:500]
        return "failed" if d["attempts"] + 1 >= MAX_ATTEMPTS else "retry"
    d["_status"] = r.status_code
    if 200 <= r.status_code < 300:
        return "delivered"
    d["_error"] = f"HTTP {r.status_code}: {r.text[:200]}"
    return "failed" if d["attempts"] + 1 >= MAX_ATTEMPTS else "retry"


async def _record(conn: Any, d: dict[str, Any], outcome: str, now: datetime | None) -> None:
    at = now or datetime.now(UTC)
    status = {"delivered": "delivered", "retry": "pending", "failed": "failed"}[outcome]
    await conn.execute(
        "UPDATE webhook_deliveries SET status = %s, attempts = attempts + 1, last_status = %s,"
        " last_error = %s, next_attempt_at = %s,"
        " delivered_at = CASE WHEN %s = 'delivered' THEN %s END WHERE id = %s",
        (
            status, d["_status"], d["_error"], at + backoff(d["attempts"] + 1), status, at,
            d["id"],
        ),
    )  # fmt: skip


async def replay(db: Db, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> bool:
    """Send a delivery again (pending now, attempts from zero); False if it is not the
    tenant's."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,"
            " next_attempt_at = now(), delivered_at = NULL"
            " WHERE tenant_id = %s AND id = %s",
            (tenant_id, delivery_id),
        )
        return cur.rowcount == 1
