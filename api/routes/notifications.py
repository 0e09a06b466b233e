"""Notifications to staff and the tenant's webhooks (issue 15 item 10;
``helpdesk/notifications.py``, ``desk/webhooks.py``).

* ``GET /v1/agent/notifications[?unread=true]``: the caller's (theirs and the desk's), newest
  first, without the kinds they turned off; ``POST /v1/agent/notifications/read``
  ``{"ids"?}`` marks them read (all without ``ids``).
* ``GET/PUT /v1/agent/me/notification-preferences``: per kind, ``in_app`` and ``email``.
  A person's (an API key has none: 403).
* ``/v1/admin/webhooks`` (admins, ``webhooks.manage``): add (the signing secret is shown once),
  list, remove; ``GET .../{id}/deliveries``: the delivery log; ``POST
  /v1/admin/webhooks/deliveries/{id}/replay``: send one again.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field

from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import NotificationsReader, WebhooksManager
from api.schemas import _In
from desk import webhooks
from helpdesk import audit, notifications
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["notifications"])
_AUTH = ("unauthenticated", "invalid_key", "forbidden")
_WRITE = ("invalid_json", "invalid_request", *_AUTH, "not_found", "body_too_large")


class Notification(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    ticket_id: uuid.UUID | None
    payload: dict[str, Any]
    created_at: datetime
    read: bool


class ReadIn(_In):
    ids: list[uuid.UUID] | None = Field(default=None, max_length=500)


class Choice(_In):
    in_app: bool = True
    email: bool = False


class PreferencesIn(_In):
    preferences: dict[str, Choice] = Field(max_length=len(notifications.KINDS))


def _sendable(url: str) -> str:
    """An http(s) URL with a host name DNS can carry (IDNA) and no credentials in it."""
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"not a URL a webhook can be sent to: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.host:
        raise ValueError("a webhook URL is http:// or https:// with a host")
    if parts.userinfo:
        raise ValueError("put no credentials in the URL: the signature authenticates the desk")
    return url


class WebhookIn(_In):
    url: Annotated[str, AfterValidator(_sendable)] = Field(min_length=8, max_length=2000)
    events: list[str] = Field(default_factory=list, max_length=len(notifications.KINDS))


class Webhook(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    secret: str | None = Field(default=None, description="Only in the answer that created it.")


class Delivery(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    body: str


def _person(caller: Any) -> uuid.UUID:
    if caller.user_id is None:
        raise ApiError(403, "forbidden", "notification preferences belong to a signed-in person")
    return uuid.UUID(str(caller.user_id))


def _kinds(names: list[str] | dict[str, Any]) -> None:
    unknown = [k for k in names if k not in notifications.KINDS]
    if unknown:
        raise ApiError(
            422, "invalid_request", f"{unknown[0]}: one of {', '.join(notifications.KINDS)}"
        )


@router.get(
    "/v1/agent/notifications",
    response_model=list[Notification],
    responses=responses("invalid_request", *_AUTH),
)
async def list_notifications(
    caller: NotificationsReader,
    services: ServicesDep,
    unread: Annotated[bool, Query(description="Only those not read yet.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return await notifications.for_user(
            conn, caller.tenant.id, caller.user_id, unread_only=unread, limit=limit
        )


@router.post("/v1/agent/notifications/read", responses=responses(*_WRITE))
async def read_notifications(
    body: ReadIn, caller: NotificationsReader, services: ServicesDep
) -> dict[str, int]:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        n = await notifications.mark_read(conn, caller.tenant.id, _person(caller), body.ids)
    return {"marked": n}


@router.get("/v1/agent/me/notification-preferences", responses=responses(*_AUTH))
async def get_preferences(caller: NotificationsReader, services: ServicesDep) -> dict[str, Any]:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return await notifications.preferences(conn, caller.tenant.id, _person(caller))


@router.put("/v1/agent/me/notification-preferences", responses=responses(*_WRITE))
async def put_preferences(
    body: PreferencesIn, caller: NotificationsReader, services: ServicesDep
) -> dict[str, Any]:
    _kinds(body.preferences)
    choices = {k: v.model_dump() for k, v in body.preferences.items()}
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return await notifications.set_preferences(conn, caller.tenant.id, _person(caller), choices)


@router.post(
    "/v1/admin/webhooks", status_code=201, response_model=Webhook, responses=responses(*_WRITE)
)
async def add_webhook(body: WebhookIn, caller: WebhooksManager, services: ServicesDep) -> Any:
    """Add an endpoint; the answer carries its signing secret, shown this once."""
    _kinds(body.events)
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        cur = await conn.execute(
            "INSERT INTO webhook_endpoints (tenant_id, url, secret, events) VALUES (%s,%s,%s,%s)"
            " RETURNING id, url, events, enabled, created_at",
            (caller.tenant.id, body.url, secret, body.events),
        )
        row = dict(await cur.fetchone() or {})
        await audit.record(
            conn, caller.tenant.id, caller.actor, "webhook.add", "webhook", row["id"],
            {"url": body.url, "events": body.events},
        )  # fmt: skip
    return {**row, "secret": secret}


@router.get("/v1/admin/webhooks", response_model=list[Webhook], responses=responses(*_AUTH))
async def list_webhooks(caller: WebhooksManager, services: ServicesDep) -> Any:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT id, url, events, enabled, created_at FROM webhook_endpoints"
            " WHERE tenant_id = %s ORDER BY created_at",
            (caller.tenant.id,),
        )
        return [dict(r) for r in await cur.fetchall()]


@router.delete(
    "/v1/admin/webhooks/{webhook_id}",
    status_code=204,
    responses=responses("not_found", *_AUTH),
)
async def remove_webhook(
    webhook_id: uuid.UUID, caller: WebhooksManager, services: ServicesDep
) -> Response:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        cur = await conn.execute(
            "DELETE FROM webhook_endpoints WHERE tenant_id = %s AND id = %s",
            (caller.tenant.id, webhook_id),
        )
        if cur.rowcount == 0:
            raise ApiError(404, "not_found", f"no webhook {webhook_id}")
        await audit.record(
            conn, caller.tenant.id, caller.actor, "webhook.remove", "webhook", webhook_id
        )
    return Response(status_code=204)


@router.get(
    "/v1/admin/webhooks/{webhook_id}/deliveries",
    response_model=list[Delivery],
    responses=responses("not_found", "invalid_request", *_AUTH),
)
async def deliveries(
    webhook_id: uuid.UUID,
    caller: WebhooksManager,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """The endpoint's delivery log, newest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        cur = await conn.execute(
            "SELECT 1 FROM webhook_endpoints WHERE tenant_id = %s AND id = %s",
            (caller.tenant.id, webhook_id),
        )
        if await cur.fetchone() is None:
            raise ApiError(404, "not_found", f"no webhook {webhook_id}")
        cur = await conn.execute(
            "SELECT id, kind, status, attempts, next_attempt_at, last_status, last_error,"
            " delivered_at, created_at, body FROM webhook_deliveries"
            " WHERE tenant_id = %s AND endpoint_id = %s ORDER BY created_at DESC LIMIT %s",
            (caller.tenant.id, webhook_id, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


@router.post(
    "/v1/admin/webhooks/deliveries/{delivery_id}/replay",
    status_code=202,
    responses=responses("not_found", *_AUTH),
)
async def replay(
    delivery_id: uuid.UUID, caller: WebhooksManager, services: ServicesDep
) -> dict[str, str]:
    """Send a delivery again (within a quarter of a minute, by the queue)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        if not await webhooks.replay(conn, caller.tenant.id, delivery_id):
            raise ApiError(404, "not_found", f"no delivery {delivery_id}")
        await audit.record(
            conn, caller.tenant.id, caller.actor, "webhook.replay", "delivery", delivery_id
        )
    return {"status": "pending"}
