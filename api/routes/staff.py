"""Staff routes: sign-in and sign-out, password reset, who am I and presence, and the admin API
for users, teams and the audit log.

Sign-in is per tenant (slug + email + password). Failed attempts are throttled per (tenant,
email) and per (tenant, client address) in Postgres (:mod:`helpdesk.throttle`): 429
``too_many_attempts`` with ``Retry-After``. A session is an HttpOnly SameSite=Strict cookie for
the console, or (``"session": "bearer"``) a ``us_`` token for scripts. Every state change here
writes an audit entry in its own transaction. The session design and its numbers:
``docs/decisions/console-sessions.md``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials

from api import staff_schemas as s
from api.auth import SESSION_COOKIE, AuthDep, StaffCaller, staff_bearer
from api.deps import ServicesDep, SettingsDep
from api.errors import ApiError, responses
from api.permissions import (
    AuditReader,
    PresenceSetter,
    TeamsManager,
    TeamsReader,
    UsersManager,
    UsersReader,
)
from helpdesk import audit, password_resets, sessions, teams, throttle, users
from helpdesk.config import Settings
from helpdesk.errors import NotFound
from helpdesk.roles import PERMISSIONS
from helpdesk.tenancy import Db, tenant_scope
from helpdesk.tenants import get_tenant

router = APIRouter(tags=["staff"])

_AUTH = ("unauthenticated", "invalid_key", "invalid_session", "forbidden")
_WRITE = ("invalid_json", "invalid_request", *_AUTH, "body_too_large")


def _rules(settings: Settings) -> dict[throttle.Scope, throttle.ThrottleRule]:
    return {
        "email": throttle.ThrottleRule(settings.sign_in_max_failures, settings.sign_in_lock_s),
        "address": throttle.ThrottleRule(
            settings.sign_in_address_max_failures, settings.sign_in_lock_s
        ),
    }


def _policy(settings: Settings) -> sessions.SessionPolicy:
    return sessions.SessionPolicy(settings.session_idle_s, settings.session_absolute_s)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bad_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "the tenant, email or password is wrong")


@router.post(
    "/v1/auth/sign-in",
    response_model=s.SignedIn,
    responses=responses(
        "invalid_json", "invalid_request", "invalid_credentials", "too_many_attempts"
    ),
)
async def sign_in(
    body: s.SignIn,
    request: Request,
    response: Response,
    services: ServicesDep,
    settings: SettingsDep,
) -> s.SignedIn:
    """Sign in to one tenant with email and password. A locked account or address is refused
    before its password is checked."""
    try:
        tenant = await get_tenant(services.pool, body.tenant)
    except NotFound as exc:
        raise _bad_credentials() from exc
    email = body.email.strip().lower()
    address = _address(request)
    rules = _rules(settings)
    hasher = users.hasher_for(settings)
    user = None
    async with tenant_scope(services.pool, tenant.id) as conn:
        wait = await throttle.locked_for(conn, tenant.id, [("email", email), ("address", address)])
        if wait <= 0:
            user = await users.authenticate(conn, tenant.id, email, body.password, hasher)
            if user is None:
                subjects: list[tuple[throttle.Scope, str]] = [
                    ("email", email),
                    ("address", address),
                ]
                for scope, subject in subjects:
                    await throttle.record_failure(conn, tenant.id, scope, subject, rules[scope])
                await audit.record(
                    conn,
                    tenant.id,
                    audit.Actor(email),
                    "auth.sign_in_failed",
                    "user",
                    None,
                    {"email": email, "address": address},
                )
            else:
                await throttle.clear(conn, tenant.id, "email", email)
                token, session = await sessions.create_session(conn, user, _policy(settings))
                await audit.record(
                    conn,
                    tenant.id,
                    audit.Actor(user.email, user_id=user.id),
                    "auth.sign_in",
                    "user",
                    user.id,
                    {"address": address, "session": body.session},
                )
    if wait > 0:
        raise ApiError(
            429,
            "too_many_attempts",
            "too many failed sign-ins for this account or address; try again in"
            f" {throttle.retry_after(wait)} s",
            headers={"Retry-After": str(throttle.retry_after(wait))},
        )
    if user is None:
        raise _bad_credentials()
    if body.session == "cookie":
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=settings.session_absolute_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return s.SignedIn(
        user=s.StaffUser.of(user),
        tenant=tenant.slug,
        expires_at=session.expires_at,
        token=token if body.session == "bearer" else None,
    )


@router.post(
    "/v1/auth/sign-out", status_code=204, responses=responses("invalid_request", "forbidden")
)
async def sign_out(
    request: Request,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(staff_bearer)] = None,
) -> Response:
    """End the session this request comes with (cookie or ``us_`` bearer) and clear the
    cookie. Signing out of a session that already ended is not an error."""
    token = bearer.credentials if bearer is not None else request.cookies.get(SESSION_COOKIE)
    if token and not token.startswith(sessions.TOKEN_PREFIX):
        raise ApiError(
            422,
            "invalid_request",
            "sign-out ends a session (us_...); API keys are revoked with `deskgraph keys revoke`",
        )
    if token:
        found = await auth.session(token)
        if found is not None:
            tenant_id = found.user.tenant_id
            async with tenant_scope(auth.pool, tenant_id) as conn:
                await sessions.end_session_id(conn, tenant_id, found.id)
                actor = audit.Actor(found.user.email, user_id=found.user.id)
                await audit.record(conn, tenant_id, actor, "auth.sign_out", "user", found.user.id)
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return out


@router.post(
    "/v1/auth/reset",
    status_code=204,
    responses=responses("invalid_json", "invalid_request", "invalid_reset_token"),
)
async def reset_password(
    body: s.ResetPassword, services: ServicesDep, settings: SettingsDep
) -> Response:
    """Consume a one-time reset link: set the new password and end the user's sessions (sign
    in again afterwards). A used or expired link is refused."""
    user = await password_resets.consume_reset(
        services.pool, body.token, body.password, users.hasher_for(settings)
    )
    async with tenant_scope(services.pool, user.tenant_id) as conn:
        actor = audit.Actor(user.email, user_id=user.id)
        await audit.record(conn, user.tenant_id, actor, "user.password_reset", "user", user.id)
    return Response(status_code=204)


async def _presence(
    conn: Db, settings: Settings, tenant_id: uuid.UUID
) -> dict[uuid.UUID, teams.Presence]:
    return await teams.presence_of(
        conn,
        tenant_id,
        away_after_s=settings.presence_away_after_s,
        idle_s=settings.session_idle_s,
    )


@router.get("/v1/agent/me", response_model=s.Me, responses=responses(*_AUTH))
async def me(caller: StaffCaller, services: ServicesDep, settings: SettingsDep) -> s.Me:
    """Who this credential acts as: its name is the actor every action records and the
    customer sees (no request field can change it); its role decides what it may do."""
    assert caller.role is not None
    permitted = [a for a, (roles, _) in PERMISSIONS.items() if caller.role in roles]
    kind: Literal["agent", "admin", "user"] = "user" if caller.user_id else "agent"
    if caller.kind == "admin":
        kind = "admin"
    out = s.Me(
        name=caller.name,
        kind=kind,
        role=caller.role,
        tenant=caller.tenant.slug,
        permissions=permitted,
    )
    if caller.user_id is None:
        return out
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        user = await users.get_user(conn, caller.tenant.id, caller.user_id)
        mine = await teams.teams_of(conn, caller.tenant.id, caller.user_id)
        presence = (await _presence(conn, settings, caller.tenant.id)).get(user.id, "offline")
    out.user = s.StaffUser.of(user, teams=[t.id for t in mine], presence=presence)
    out.teams = [s.TeamRef(id=t.id, name=t.name) for t in mine]
    out.presence = presence
    return out


@router.put("/v1/agent/me/presence", response_model=s.Me, responses=responses(*_WRITE))
async def set_presence(
    body: s.PresenceBody, caller: PresenceSetter, services: ServicesDep, settings: SettingsDep
) -> s.Me:
    """Set one's presence: ``online``, ``away`` or ``offline`` (a quiet session reads as away
    by itself)."""
    if caller.user_id is None:
        raise ApiError(
            403, "forbidden", "presence belongs to a signed-in user; an API key has none"
        )
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await teams.set_presence(conn, caller.tenant.id, caller.user_id, body.status)
    return await me(caller, services, settings)


# ------------------------------------------------------------------ users


async def _staff_user(conn: Db, settings: Settings, user: users.User) -> s.StaffUser:
    mine = await teams.teams_of(conn, user.tenant_id, user.id)
    presence = (await _presence(conn, settings, user.tenant_id)).get(user.id, "offline")
    return s.StaffUser.of(user, teams=[t.id for t in mine], presence=presence)


@router.get("/v1/admin/users", response_model=list[s.StaffUser], responses=responses(*_AUTH))
async def list_users(
    caller: UsersReader, services: ServicesDep, settings: SettingsDep
) -> list[s.StaffUser]:
    """The tenant's staff accounts, by email, with their teams and presence."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        found = await users.list_users(conn, caller.tenant.id)
        presence = await _presence(conn, settings, caller.tenant.id)
        all_teams = await teams.list_teams(conn, caller.tenant.id)
    return [
        s.StaffUser.of(
            u,
            teams=[t.id for t in all_teams if u.id in t.members],
            presence=presence.get(u.id, "offline"),
        )
        for u in found
    ]


@router.post(
    "/v1/admin/users",
    status_code=201,
    response_model=s.CreatedUser,
    responses=responses(*_WRITE, "not_found", "conflict"),
)
async def create_user(
    body: s.NewUser, caller: UsersManager, services: ServicesDep, settings: SettingsDep
) -> s.CreatedUser:
    """Create a staff account. Without a password the answer carries a one-time link (valid
    ``password_reset_ttl_s``) with which the person sets theirs."""
    tenant = caller.tenant
    reset = None
    async with tenant_scope(services.pool, tenant.id) as conn:
        user = await users.create_user(
            conn,
            tenant.id,
            body.email,
            body.name,
            body.role,
            password=body.password,
            hasher=users.hasher_for(settings),
        )
        if body.teams:
            await teams.set_user_teams(conn, tenant.id, user.id, body.teams)
        if body.password is None:
            reset = await password_resets.issue_reset(conn, user, settings.password_reset_ttl_s)
        await audit.record(
            conn,
            tenant.id,
            caller.actor,
            "user.create",
            "user",
            user.id,
            {"email": user.email, "role": user.role, "teams": [str(t) for t in body.teams]},
        )
        out = await _staff_user(conn, settings, user)
    url = password_resets.reset_url(settings.public_url, tenant.slug, reset) if reset else None
    return s.CreatedUser(user=out, reset_url=url)


@router.patch(
    "/v1/admin/users/{user_id}",
    response_model=s.StaffUser,
    responses=responses(*_WRITE, "not_found", "conflict"),
)
async def update_user(
    user_id: uuid.UUID,
    body: s.UserUpdate,
    caller: UsersManager,
    services: ServicesDep,
    settings: SettingsDep,
) -> s.StaffUser:
    """Change an account's role, active flag, name or teams. Disabling ends its sessions; the
    tenant's last active admin cannot be demoted or disabled (409)."""
    changed = body.model_dump(exclude_unset=True, mode="json")
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        user = await users.update_user(
            conn, caller.tenant.id, user_id, role=body.role, active=body.active, name=body.name
        )
        if body.teams is not None:
            await teams.set_user_teams(conn, caller.tenant.id, user_id, body.teams)
        await audit.record(
            conn, caller.tenant.id, caller.actor, "user.update", "user", user_id, changed
        )
        return await _staff_user(conn, settings, user)


@router.post(
    "/v1/admin/users/{user_id}/reset-link",
    response_model=s.ResetLink,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def reset_link(
    user_id: uuid.UUID, caller: UsersManager, services: ServicesDep, settings: SettingsDep
) -> s.ResetLink:
    """A one-time link that sets a new password (earlier links of the user stop working)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        user = await users.get_user(conn, caller.tenant.id, user_id)
        token = await password_resets.issue_reset(conn, user, settings.password_reset_ttl_s)
        await audit.record(conn, caller.tenant.id, caller.actor, "user.reset_link", "user", user_id)
    return s.ResetLink(
        url=password_resets.reset_url(settings.public_url, caller.tenant.slug, token),
        expires_in_s=settings.password_reset_ttl_s,
    )


@router.get(
    "/v1/admin/audit", response_model=s.AuditPage, responses=responses("invalid_request", *_AUTH)
)
async def read_audit(
    caller: AuditReader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
    action: Annotated[str | None, Query(pattern=r"^[a-z_]+(\.[a-z_]*)*$", max_length=80)] = None,
    target_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> s.AuditPage:
    """The audit log, newest first. ``action`` filters exactly, or by prefix when it ends in
    a dot (``conversation.``); ``target_id`` to one thing (a conversation, a user)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await audit.list_entries(
            conn, caller.tenant.id, limit=limit, before=before, action=action, target_id=target_id
        )
    return s.AuditPage(items=[s.AuditEntry.of(e) for e in rows])


# ------------------------------------------------------------------ teams


@router.get("/v1/admin/teams", response_model=list[s.TeamOut], responses=responses(*_AUTH))
async def list_teams(caller: TeamsReader, services: ServicesDep) -> list[s.TeamOut]:
    """The tenant's teams, by name, with their members."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        found = await teams.list_teams(conn, caller.tenant.id)
    return [s.TeamOut.of(t) for t in found]


@router.post(
    "/v1/admin/teams",
    status_code=201,
    response_model=s.TeamOut,
    responses=responses(*_WRITE, "not_found", "conflict"),
)
async def create_team(body: s.NewTeam, caller: TeamsManager, services: ServicesDep) -> s.TeamOut:
    """Create a team (names are unique per tenant, any case)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        team = await teams.create_team(conn, caller.tenant.id, body.name)
        if body.members:
            team = await teams.update_team(conn, caller.tenant.id, team.id, members=body.members)
        await audit.record(
            conn,
            caller.tenant.id,
            caller.actor,
            "team.create",
            "team",
            team.id,
            {"name": team.name, "members": [str(m) for m in team.members]},
        )
    return s.TeamOut.of(team)


@router.get(
    "/v1/admin/teams/{team_id}",
    response_model=s.TeamOut,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def get_team(team_id: uuid.UUID, caller: TeamsReader, services: ServicesDep) -> s.TeamOut:
    """One team."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return s.TeamOut.of(await teams.get_team(conn, caller.tenant.id, team_id))


@router.patch(
    "/v1/admin/teams/{team_id}",
    response_model=s.TeamOut,
    responses=responses(*_WRITE, "not_found", "conflict"),
)
async def update_team(
    team_id: uuid.UUID, body: s.TeamUpdate, caller: TeamsManager, services: ServicesDep
) -> s.TeamOut:
    """Rename a team and/or replace its members."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        team = await teams.update_team(
            conn, caller.tenant.id, team_id, name=body.name, members=body.members
        )
        await audit.record(
            conn,
            caller.tenant.id,
            caller.actor,
            "team.update",
            "team",
            team_id,
            body.model_dump(exclude_unset=True, mode="json"),
        )
    return s.TeamOut.of(team)


@router.delete(
    "/v1/admin/teams/{team_id}",
    status_code=204,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def delete_team(team_id: uuid.UUID, caller: TeamsManager, services: ServicesDep) -> Response:
    """Delete a team (its members stay, in their other teams)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await teams.delete_team(conn, caller.tenant.id, team_id)
        await audit.record(conn, caller.tenant.id, caller.actor, "team.delete", "team", team_id)
    return Response(status_code=204)
