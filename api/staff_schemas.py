"""Request and response bodies of the staff routes (sign-in, sessions, users, teams, audit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import _In
from helpdesk.audit import Entry
from helpdesk.teams import Presence, Team
from helpdesk.users import Role, User

_EMAIL = Field(min_length=3, max_length=254, examples=["alex@brightwater.example"])
_PASSWORD = Field(min_length=1, max_length=1000)


class SignIn(_In):
    """Tenant slug, email and password. ``session: "cookie"`` (the console) sets an HttpOnly
    cookie; ``"bearer"`` (scripts) returns the token in the body instead."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tenant": "demo", "email": "alex@brightwater.example", "password": "..."}]
        },
    )
    tenant: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    email: str = _EMAIL
    password: str = _PASSWORD
    session: Literal["cookie", "bearer"] = "cookie"


class StaffUser(BaseModel):
    """A staff account."""

    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    teams: list[uuid.UUID] = Field(default_factory=list)
    presence: Presence | None = None

    @classmethod
    def of(
        cls, user: User, *, teams: list[uuid.UUID] | None = None, presence: Presence | None = None
    ) -> StaffUser:
        """From the domain's user."""
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            active=user.active,
            created_at=user.created_at,
            last_sign_in_at=user.last_sign_in_at,
            teams=teams or [],
            presence=presence,
        )


class SignedIn(BaseModel):
    """A new session."""

    user: StaffUser
    tenant: str
    expires_at: datetime
    token: str | None = Field(
        default=None, description="The session token (``us_...``), only for ``session: bearer``."
    )


class ResetPassword(_In):
    """Consume a one-time reset link: its token and the new password."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TeamRef(BaseModel):
    """A team by id and name."""

    id: uuid.UUID
    name: str


class Me(BaseModel):
    """Who the credential acts as: the name every action records and the customer sees (no
    request field can change it), the role the role table checks, and for a signed-in user
    their account, teams and presence."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "alex@brightwater.example",
                    "kind": "user",
                    "role": "agent",
                    "tenant": "demo",
                }
            ]
        }
    )
    name: str
    kind: Literal["agent", "admin", "user"]
    role: Role
    tenant: str
    user: StaffUser | None = None
    teams: list[TeamRef] = Field(default_factory=list)
    presence: Presence | None = None
    permissions: list[str] = Field(
        default_factory=list, description="The actions of the role table this role may do."
    )


class PresenceBody(_In):
    """Set one's presence."""

    status: Presence


class NewUser(_In):
    """A staff account to create. Without a password, the answer carries a one-time link that
    lets the person choose one."""

    email: str = _EMAIL
    name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str | None = Field(default=None, min_length=1, max_length=1000)
    teams: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class CreatedUser(BaseModel):
    """A created account, with its reset link when it was created without a password."""

    user: StaffUser
    reset_url: str | None = None


class UserUpdate(_In):
    """Change an account: role, active flag, name, teams (the whole list)."""

    role: Role | None = None
    active: bool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    teams: list[uuid.UUID] | None = Field(default=None, max_length=100)


class ResetLink(BaseModel):
    """A one-time password reset link (shown once)."""

    url: str
    expires_in_s: int


class TeamOut(BaseModel):
    """A team and its members' user ids."""

    id: uuid.UUID
    name: str
    created_at: datetime
    members: list[uuid.UUID]

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        """From the domain's team."""
        return cls(
            id=team.id, name=team.name, created_at=team.created_at, members=list(team.members)
        )


class NewTeam(_In):
    """A team to create."""

    name: str = Field(min_length=1, max_length=100)
    members: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class TeamUpdate(_In):
    """Rename a team and/or replace its members."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    members: list[uuid.UUID] | None = Field(default=None, max_length=500)


class AuditEntry(BaseModel):
    """One audit log entry."""

    id: int
    actor_user_id: uuid.UUID | None
    actor_key_id: uuid.UUID | None
    actor_name: str
    action: str
    target_type: str
    target_id: str | None
    detail: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, e: Entry) -> AuditEntry:
        """From the domain's entry."""
        return cls(
            id=e.id,
            actor_user_id=e.actor_user_id,
            actor_key_id=e.actor_key_id,
            actor_name=e.actor_name,
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            detail=e.detail,
            at=e.at,
        )


class AuditPage(BaseModel):
    """Entries newest first; pass ``before`` = the last id to read older ones."""

    items: list[AuditEntry]
