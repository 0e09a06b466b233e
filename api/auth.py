"""Who is calling: widget keys, customer tokens, agent and admin keys (FastAPI dependencies).

* widget key ``wk_`` (``X-Widget-Key``, or ``?key=`` on GET): start conversations, search the
  external knowledge base;
* customer token ``ct_`` (``Authorization: Bearer``, or ``?token=`` on GET): act on its one
  conversation;

A credential in the query string on a POST is refused (422): URLs end up in access logs, which
redact ``token`` and ``key`` anyway (:mod:`api.logs`).
* agent key ``ak_`` (``Authorization: Bearer``): the agent API of its tenant, the whole KB;
* admin key ``sk_`` (``Authorization: Bearer``): all of the above plus KB ingestion;
* a staff user's session (:mod:`helpdesk.sessions`): the ``deskgraph_session`` cookie the
  console gets at sign-in, or the same token as ``Authorization: Bearer us_...``.

Staff callers carry a role (a user's own; an agent key acts as an ``agent``, an admin key as an
``admin``) and every staff route checks it against the one role table (:mod:`helpdesk.roles`,
through :mod:`api.permissions`). A cookie only rides on requests from the console's own origin
(SameSite=Strict); a state-changing request that carries one and names another ``Origin`` is
refused anyway.

Every route resolves its caller to a :class:`Principal` bound to one tenant; nothing a route
reads or writes is reached by an id alone. Key look-ups are cached for a few seconds per process
(``key_cache_s``): a revoked key stops working within that time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request, Security
from fastapi.security import (
    APIKeyHeader,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBearer,
)

from api.errors import ApiError
from helpdesk import keys as keys_repo
from helpdesk import sessions as sessions_repo
from helpdesk.audit import Actor
from helpdesk.auth import verify_customer_token
from helpdesk.db import DictPool
from helpdesk.errors import NotFound
from helpdesk.keys import ApiKey
from helpdesk.sessions import Session, SessionPolicy
from helpdesk.tenants import Tenant, get_tenant_by_id
from helpdesk.users import Role

PrincipalKind = Literal["widget", "customer", "agent", "admin", "user"]
SESSION_COOKIE = "deskgraph_session"
_KEY_ROLES: dict[str, Role] = {"agent": "agent", "admin": "admin"}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, always bound to one tenant."""

    tenant: Tenant
    kind: PrincipalKind
    name: str
    """The key's name or the user's email (the actor of every agent action: no request field
    overrides it), or ``customer``."""
    key_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    """The one conversation a customer token grants."""
    user_id: uuid.UUID | None = None
    """The signed-in user (a session), else None."""
    role: Role | None = None
    """What a staff caller may do (:mod:`helpdesk.roles`); None for widgets and customers."""
    session: Session | None = None
    """The session a user signed in with."""

    @property
    def is_staff(self) -> bool:
        """An agent or admin key, or a signed-in user."""
        return self.kind in ("agent", "admin", "user")

    @property
    def actor(self) -> Actor:
        """Who this caller is in the audit log and in ownership checks."""
        return Actor(self.name, user_id=self.user_id, key_id=self.key_id)


class Authenticator:
    """Resolves credentials, with short per-process caches of keys and tenants."""

    def __init__(
        self,
        pool: DictPool,
        secret: bytes,
        *,
        key_cache_s: float = 10.0,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.pool = pool
        self.secret = secret
        self.sessions = sessions or SessionPolicy()
        self._key_cache_s = key_cache_s
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self._tenants: dict[uuid.UUID, tuple[float, Tenant]] = {}

    async def key(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or None."""
        now = time.monotonic()
        hit = self._keys.get(secret)
        if hit is not None and now - hit[0] < self._key_cache_s:
            return hit[1]
        found = await keys_repo.lookup_key(self.pool, secret)
        if len(self._keys) > 10_000:  # bounded even under a flood of made-up keys
            self._keys.clear()
        self._keys[secret] = (now, found)
        return found

    async def tenant(self, tenant_id: uuid.UUID) -> Tenant:
        """The tenant with this id (cached a few seconds)."""
        now = time.monotonic()
        hit = self._tenants.get(tenant_id)
        if hit is not None and now - hit[0] < self._key_cache_s:
            return hit[1]
        tenant = await get_tenant_by_id(self.pool, tenant_id)
        self._tenants[tenant_id] = (now, tenant)
        return tenant

    def forget_tenant(self, tenant_id: uuid.UUID) -> None:
        """Drop a cached tenant (after its profile or policy changed in this process)."""
        self._tenants.pop(tenant_id, None)

    async def session(self, token: str) -> Session | None:
        """The live session with this token (never cached: sign-out must end it at once)."""
        return await sessions_repo.lookup_session(self.pool, token, self.sessions)

    def forget(self) -> None:
        """Drop the caches (after keys were revoked in this process)."""
        self._keys.clear()
        self._tenants.clear()


def get_authenticator(request: Request) -> Authenticator:
    """The process's authenticator (built by the lifespan)."""
    auth: Authenticator = request.app.state.auth
    return auth


AuthDep = Annotated[Authenticator, Depends(get_authenticator)]

_widget_header = APIKeyHeader(
    name="X-Widget-Key",
    scheme_name="widgetKey",
    description="A tenant's public widget key (`wk_...`).",
    auto_error=False,
)
_widget_query = APIKeyQuery(
    name="key",
    scheme_name="widgetKeyQuery",
    description="The widget key as a query parameter, for GET requests from a browser.",
    auto_error=False,
)
_customer_bearer = HTTPBearer(
    scheme_name="customerToken",
    bearerFormat="ct_...",
    description="The customer token returned by POST /v1/conversations.",
    auto_error=False,
)
_token_query = APIKeyQuery(
    name="token",
    scheme_name="customerTokenQuery",
    description="The customer token as a query parameter (EventSource cannot send headers).",
    auto_error=False,
)
staff_bearer = HTTPBearer(
    scheme_name="staffKey",
    bearerFormat="ak_... | sk_... | us_...",
    description="An agent key (`ak_...`), an admin key (`sk_...`) or a session (`us_...`).",
    auto_error=False,
)


def _unauthenticated(what: str) -> ApiError:
    return ApiError(401, "unauthenticated", f"expected {what}; none was sent")


async def _staff_key(auth: Authenticator, secret: str, kinds: tuple[str, ...]) -> Principal:
    key = await auth.key(secret)
    if key is None:
        raise ApiError(401, "invalid_key", "the API key is unknown or revoked")
    if key.kind not in kinds:
        raise ApiError(
            403, "forbidden", f"this needs an {' or '.join(kinds)} key, got a {key.kind} key"
        )
    tenant = await auth.tenant(key.tenant_id)
    return Principal(
        tenant, key.kind, key.name or key.kind, key_id=key.id, role=_KEY_ROLES[key.kind]
    )


async def _session_user(auth: Authenticator, token: str) -> Principal:
    found = await auth.session(token)
    if found is None:
        raise ApiError(
            401, "invalid_session", "the session is unknown, expired or signed out; sign in again"
        )
    tenant = await auth.tenant(found.user.tenant_id)
    return Principal(
        tenant,
        "user",
        found.user.email,
        user_id=found.user.id,
        role=found.user.role,
        session=found,
    )


def _check_cookie_origin(request: Request) -> None:
    """A state-changing request authenticated by the cookie must come from this origin."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("origin")
    if origin is None:
        return
    hosts = {
        h.strip().lower()
        for h in (request.headers.get("host", ""), request.headers.get("x-forwarded-host", ""))
        if h.strip()
    }
    if origin.split("://", 1)[-1].rstrip("/").lower() not in hosts:
        raise ApiError(403, "forbidden", f"a session cookie is not accepted from origin {origin!r}")


async def _staff(
    auth: Authenticator,
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    kinds: tuple[str, ...],
) -> Principal:
    """A staff caller by bearer (key or session) or by the console's session cookie."""
    if bearer is not None and bearer.credentials:
        secret = bearer.credentials
        if secret.startswith(sessions_repo.TOKEN_PREFIX):
            return await _session_user(auth, secret)
        return await _staff_key(auth, secret, kinds)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        _check_cookie_origin(request)
        return await _session_user(auth, cookie)
    raise _unauthenticated("a session (sign in) or an agent or admin key (Bearer ak_...)")


async def _widget_key(auth: Authenticator, request: Request, secret: str) -> Principal:
    key = await auth.key(secret)
    if key is None:
        raise ApiError(401, "invalid_key", "the widget key is unknown or revoked")
    if key.kind != "widget":
        raise ApiError(403, "forbidden", f"expected a widget key, got a {key.kind} key")
    origin = request.headers.get("origin")
    # Browsers always send Origin on cross-site requests; other clients could forge it anyway,
    # so a missing Origin is not refused. The check keeps other sites' pages off the key.
    if (
        key.allowed_origins
        and origin is not None
        and origin.rstrip("/").lower() not in key.allowed_origins
    ):
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin!r} is not allowed for this widget key"
        )
    tenant = await auth.tenant(key.tenant_id)
    return Principal(tenant, "widget", key.name or "widget", key_id=key.id)


def _refuse_query_credential(request: Request, name: str, instead: str) -> None:
    """A credential in the query string only on GET (EventSource and links cannot send
    headers): anywhere else it is refused, since URLs end up in logs and browser history."""
    if name in request.query_params:
        raise ApiError(
            422,
            "invalid_request",
            f"query.{name}: a credential in the query string is accepted on GET only;"
            f" send {instead}",
        )


async def widget_principal(
    request: Request,
    auth: AuthDep,
    header_key: Annotated[str | None, Security(_widget_header)] = None,
) -> Principal:
    """A caller with the tenant's widget key (in the header: this is for POST routes)."""
    _refuse_query_credential(request, "key", "the X-Widget-Key header")
    secret = header_key
    if not secret:
        raise _unauthenticated("a widget key in X-Widget-Key")
    return await _widget_key(auth, request, secret)


async def customer_principal(
    conversation_id: uuid.UUID,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_customer_bearer)] = None,
    query_token: Annotated[str | None, Security(_token_query)] = None,
) -> Principal:
    """The customer of the conversation in the path (by its customer token; on GET routes,
    also ``?token=``)."""
    token = bearer.credentials if bearer is not None else query_token
    return await _customer(auth, conversation_id, token)


async def customer_writer(
    conversation_id: uuid.UUID,
    request: Request,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_customer_bearer)] = None,
) -> Principal:
    """The customer of the conversation in the path, for POST routes: the token in the
    ``Authorization`` header only (``?token=`` is refused)."""
    _refuse_query_credential(request, "token", "Authorization: Bearer ct_...")
    return await _customer(auth, conversation_id, bearer.credentials if bearer else None)


async def _customer(
    auth: Authenticator, conversation_id: uuid.UUID, token: str | None
) -> Principal:
    if not token:
        raise _unauthenticated("a customer token (Authorization: Bearer ct_...)")
    claims = verify_customer_token(auth.secret, token)
    if claims.conversation_id != conversation_id:
        raise ApiError(403, "forbidden", "the customer token is for another conversation")
    try:
        tenant = await auth.tenant(claims.tenant_id)
    except NotFound as exc:  # the tenant was deleted after the token was issued
        raise ApiError(401, "invalid_token", "the token's tenant no longer exists") from exc
    return Principal(tenant, "customer", "customer", conversation_id=conversation_id)


async def staff_principal(
    request: Request,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(staff_bearer)] = None,
) -> Principal:
    """A staff member of the tenant: a signed-in user, or an agent or admin key. What they may
    do is checked by the route (:mod:`api.permissions`)."""
    return await _staff(auth, request, bearer, ("agent", "admin"))


async def reader_principal(
    request: Request,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(staff_bearer)] = None,
    header_key: Annotated[str | None, Security(_widget_header)] = None,
    query_key: Annotated[str | None, Security(_widget_query)] = None,
) -> Principal:
    """A widget (customer portal) or staff caller: who may search the knowledge base."""
    if (bearer is not None and bearer.credentials) or (
        request.cookies.get(SESSION_COOKIE) and not (header_key or query_key)
    ):
        return await _staff(auth, request, bearer, ("agent", "admin"))
    secret = header_key or query_key
    if not secret:
        raise _unauthenticated("a widget key (X-Widget-Key) or an agent key (Bearer)")
    return await _widget_key(auth, request, secret)


WidgetCaller = Annotated[Principal, Depends(widget_principal)]
CustomerCaller = Annotated[Principal, Depends(customer_principal)]
CustomerWriter = Annotated[Principal, Depends(customer_writer)]
StaffCaller = Annotated[Principal, Depends(staff_principal)]
ReaderCaller = Annotated[Principal, Depends(reader_principal)]
