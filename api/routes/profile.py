"""The business profile over HTTP: admins read and edit it; the widget reads what it shows.

* ``GET /v1/admin/profile``: the current profile and its version (every field, defaults included).
* ``PUT /v1/admin/profile``: replace it whole; ``PATCH``: change some keys by dotted path
  (``{"set": {"contact.phone": "555-0100"}}``). Both name the version they edited
  (``based_on_version``): a save that lost a race is 409 ``version_conflict`` and saves nothing.
  A bad value is 422 ``invalid_profile`` naming every bad field, and saves nothing.
* ``GET /v1/admin/profile/versions``: who saved which version when.
* ``GET /v1/widget``: the business's name and greeting, for the chat widget (widget key).

Each save is a new version (``helpdesk.profile``), so an edit can be traced and undone by
saving an older one again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import AuthDep, ReaderCaller
from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import ProfileEditor
from api.schemas import _In
from helpdesk import audit
from helpdesk import profile as profiles
from helpdesk.errors import Conflict, InvalidInput
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["business profile"])
_AUTH = ("unauthenticated", "invalid_key", "forbidden")


class ProfileOut(BaseModel):
    """A tenant's business profile (see ``helpdesk/profile.py`` for every field)."""

    version: int = Field(description="0: never saved; the profile shown is the default.")
    profile: dict[str, Any]


class ProfileIn(_In):
    """A whole profile to save."""

    profile: dict[str, Any]
    based_on_version: int = Field(ge=0, description="The version this edit started from.")


class ProfileChanges(_In):
    """Keys to change, by dotted path, each to a JSON value."""

    set: dict[str, Any] = Field(min_length=1, examples=[{"contact.phone": "555-0100"}])
    based_on_version: int = Field(ge=0)


class ProfileVersion(BaseModel):
    """One saved version."""

    version: int
    saved_by: str
    saved_at: datetime


class WidgetConfig(BaseModel):
    """What the chat widget shows before the first message."""

    business: str
    greeting: str
    languages: list[str]
    default_language: str


async def _save(
    services: ServicesDep,
    auth: AuthDep,
    caller: ProfileEditor,
    profile: profiles.BusinessProfile,
    based_on: int,
) -> ProfileOut:
    tenant = caller.tenant
    try:
        async with tenant_scope(services.pool, tenant.id) as conn:
            version = await profiles.save_profile(
                conn, tenant.id, profile, based_on=based_on, saved_by=caller.name
            )
            await audit.record(
                conn,
                tenant.id,
                caller.actor,
                "profile.save",
                "profile",
                version,
                {"based_on": based_on},
            )
    except Conflict as exc:
        raise ApiError(409, "version_conflict", exc.message) from exc
    # This process answers from the new profile at once; others within their caches' few
    # seconds (Services.tenant_ttl_s, Settings.key_cache_s).
    services.forget_tenant(tenant.slug)
    auth.forget_tenant(tenant.id)
    return ProfileOut(version=version, profile=profiles.profile_json(profile))


def _parse(data: Any) -> profiles.BusinessProfile:
    try:
        return profiles.parse_profile(data)
    except InvalidInput as exc:
        raise ApiError(422, "invalid_profile", exc.message) from exc


async def _current(services: ServicesDep, caller: ProfileEditor) -> ProfileOut:
    """The stored profile, read now (the caller's tenant may be cached from before a save)."""
    tenant = caller.tenant
    async with tenant_scope(services.pool, tenant.id) as conn:
        stored = await profiles.current_profile(conn, tenant.id)
    if stored is None:
        default = profiles.BusinessProfile.default_for(tenant.name)
        return ProfileOut(version=0, profile=profiles.profile_json(default))
    return ProfileOut(version=stored[0], profile=stored[1])


@router.get("/v1/admin/profile", response_model=ProfileOut, responses=responses(*_AUTH))
async def get_profile(caller: ProfileEditor, services: ServicesDep) -> ProfileOut:
    """The current profile, every field shown (defaults included)."""
    return await _current(services, caller)


@router.put(
    "/v1/admin/profile",
    response_model=ProfileOut,
    responses=responses("invalid_request", "invalid_profile", "version_conflict", *_AUTH),
)
async def put_profile(
    body: ProfileIn, caller: ProfileEditor, services: ServicesDep, auth: AuthDep
) -> ProfileOut:
    """Replace the profile whole (validated whole: one bad field saves nothing)."""
    return await _save(services, auth, caller, _parse(body.profile), body.based_on_version)


@router.patch(
    "/v1/admin/profile",
    response_model=ProfileOut,
    responses=responses("invalid_request", "invalid_profile", "version_conflict", *_AUTH),
)
async def patch_profile(
    body: ProfileChanges, caller: ProfileEditor, services: ServicesDep, auth: AuthDep
) -> ProfileOut:
    """Change keys of the profile by dotted path (``hours.saturday``, ``chat.default_language``)."""
    current = profiles.parse_profile((await _current(services, caller)).profile)
    try:
        changed = profiles.with_changes(current, list(body.set.items()))
    except InvalidInput as exc:
        raise ApiError(422, "invalid_profile", exc.message) from exc
    return await _save(services, auth, caller, changed, body.based_on_version)


@router.get(
    "/v1/admin/profile/versions",
    response_model=list[ProfileVersion],
    responses=responses(*_AUTH),
)
async def profile_versions(caller: ProfileEditor, services: ServicesDep) -> list[ProfileVersion]:
    """Saved versions, newest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await profiles.profile_versions(conn, caller.tenant.id)
    return [ProfileVersion.model_validate(r) for r in rows]


@router.get("/v1/widget", response_model=WidgetConfig, responses=responses(*_AUTH))
async def widget_config(caller: ReaderCaller, services: ServicesDep) -> WidgetConfig:
    """The business's name and greeting in its own words, for the widget's first line."""
    business = caller.tenant.business
    return WidgetConfig(
        business=business.display_name,
        greeting=services.prompts.reply("greeting", business),
        languages=business.languages,
        default_language=business.chat.default_language,
    )
