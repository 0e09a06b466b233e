"""The business profile: who a tenant is to its customers, and how its assistant speaks.

Where :class:`~helpdesk.policy.TenantPolicy` holds the rules of hand-off and approval, the profile
holds the facts a customer asks about (name, opening hours and closures in the business's own
time zone, service area, contact channels, languages) and the chat configuration of the SMB
first-line spec. The canned replies (``prompts/replies.json``) are templates filled from it, and a
tenant may override any of them here.

Profiles are versioned: every save is a new row of ``tenant_profiles`` (migration 0009), so a bad
edit can be seen and undone, and two editors cannot overwrite each other silently (a save names
the version it edited; a stale one is a :class:`~helpdesk.errors.Conflict`). Validation is whole:
a profile with one bad value is refused and nothing is saved; the message names the field.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import string
import uuid
from datetime import date, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from psycopg.types.json import Jsonb
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from helpdesk.errors import Conflict, InvalidInput
from helpdesk.tenancy import Db, connect

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_ZONES = frozenset(available_timezones()) | {"UTC"}
"""Every IANA zone name this machine knows, read once at import."""

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")

REPLY_KEYS = frozenset(
    {
        "greeting",
        "thanks",
        "goodbye",
        "decline",
        "out_of_scope",
        "blocked",
        "handoff",
        "handoff_after_hours",
        "handoff_nobody_online",
        "contact_request",
        "contact_before_quote",
        "released",
        "closed",
        "safety_article",
        "safety_handoff",
    }
)
"""The replies a tenant may override (the safety advice texts stay the shared, reviewed ones)."""

_TEMPLATE_FIELDS = {"business", "short_name", "topics", "phone", "email"}
"""What every reply template may name (:meth:`BusinessProfile.template_values`)."""
_REPLY_FIELDS = {
    "safety_article": {"title", "steps", "line"},
    "safety_handoff": {"advice", "line"},
    "handoff_after_hours": {"when"},
}
"""The values particular replies are given besides those."""


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(text: str, where: str) -> time:
    match = _HHMM.match(text)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{where}: expected HH:MM (00:00-24:00), got {text!r}")
    hour, minute = int(match.group(1)), int(match.group(2))
    return time.max if hour == 24 else time(hour, minute)


class Period(BaseModel):
    """One opening period of a day, local time. ``24:00`` closes at midnight."""

    model_config = ConfigDict(extra="forbid")

    opens: str
    closes: str

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if _clock(self.opens, "opens") >= _clock(self.closes, "closes"):
            raise ValueError(f"opens ({self.opens}) must be before closes ({self.closes})")
        return self

    @property
    def start(self) -> time:
        """Opening time."""
        return _clock(self.opens, "opens")

    @property
    def end(self) -> time:
        """Closing time (``time.max`` for 24:00)."""
        return _clock(self.closes, "closes")


class Closure(BaseModel):
    """A day (or run of days) the business is closed or keeps other hours: a holiday."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    start: date
    end: date | None = None
    """Last day of the closure (inclusive); None: one day."""
    hours: list[Period] = Field(default_factory=list)
    """Hours kept on those days instead (e.g. Christmas Eve until noon); empty: closed."""

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def covers(self, day: date) -> bool:
        """Whether ``day`` falls in this closure."""
        return self.start <= day <= (self.end or self.start)


class ServiceArea(BaseModel):
    """Where the business goes: a city and a radius, or a list of towns and postcodes."""

    model_config = ConfigDict(extra="forbid")

    city: str | None = Field(default=None, max_length=120)
    radius_km: float | None = Field(default=None, gt=0, le=1000)
    towns: list[str] = Field(default_factory=list)
    postcodes: list[str] = Field(default_factory=list)
    source: str | None = Field(
        default=None, description="The KB article (source id) that describes the area."
    )

    @model_validator(mode="after")
    def _radius_needs_city(self) -> ServiceArea:
        if self.radius_km is not None and not self.city:
            raise ValueError("radius_km needs a city to measure from")
        return self


class Contact(BaseModel):
    """How customers reach the business."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    address: str | None = Field(default=None, max_length=300)
    website: str | None = Field(default=None, max_length=300)
    source: str | None = Field(
        default=None, description="The KB article (source id) with the contact details."
    )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and len(re.sub(r"\D", "", value)) < 3:
            raise ValueError(f"a phone number needs digits, got {value!r}")
        return value


class ChatConfig(BaseModel):
    """The chat configuration of the SMB first-line spec."""

    model_config = ConfigDict(extra="forbid")

    default_language: str = "en"
    require_contact_before_quote: bool = False
    max_quote_without_handoff: float | None = Field(default=None, ge=0)
    allowed_discount_percent: float = Field(default=0.0, ge=0, le=100)
    estimate_disclaimer: str | None = Field(default=None, max_length=500)
    guardrail_profile: Literal["conservative", "standard"] = "standard"

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError(f"expected a language code like 'en' or 'pt-BR', got {value!r}")
        return value


class LearningConfig(BaseModel):
    """How the knowledge base learns from resolved tickets (desk/kb_learning.py)."""

    model_config = ConfigDict(extra="forbid")

    auto_publish_internal_at: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Publish a new learned draft whose confidence is at least this as an "
        "internal article at once (agents see it, customers never do); None: every draft "
        "waits for review.",
    )


class BusinessProfile(BaseModel):
    """Everything a tenant's assistant knows about the business it speaks for."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=120)
    short_name: str | None = Field(
        default=None,
        max_length=60,
        description="What the assistant calls the business in a sentence (\"Brightwater's "
        'virtual assistant"); None: display_name.',
    )
    industry: str | None = Field(default=None, max_length=120)
    topics: str = Field(
        default="our services, bookings, prices and billing",
        max_length=300,
        description="What customers may ask about, as the greeting and out-of-scope reply say it.",
    )
    timezone: str = "UTC"
    hours: dict[Weekday, list[Period]] = Field(
        default_factory=dict, description="Opening periods per weekday; a missing day is closed."
    )
    hours_source: str | None = Field(
        default=None, description="The KB article (source id) with the opening hours."
    )
    closures: list[Closure] = Field(default_factory=list)
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    contact: Contact = Field(default_factory=Contact)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    replies: dict[str, str] = Field(
        default_factory=dict, description="Reply texts that replace the shared templates."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        # A set look-up, no file read: profiles are validated in the event loop on every tenant
        # load, and langgraph dev refuses blocking calls there.
        if value not in _ZONES:
            raise ValueError(f"unknown time zone {value!r} (an IANA name like 'America/Chicago')")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _LANG.match(code):
                raise ValueError(f"expected language codes like 'en', got {code!r}")
        return value

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, value: dict[str, list[Period]]) -> dict[str, list[Period]]:
        for day, periods in value.items():
            ordered = sorted(periods, key=lambda p: p.start)
            for a, b in itertools.pairwise(ordered):
                if b.start < a.end:
                    raise ValueError(f"{day}: {a.opens}-{a.closes} overlaps {b.opens}-{b.closes}")
            value[day] = ordered
        return value

    @field_validator("replies")
    @classmethod
    def _known_replies(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            fields = _TEMPLATE_FIELDS | _REPLY_FIELDS.get(key, set())
            if key not in REPLY_KEYS:
                raise ValueError(f"unknown reply {key!r}; one of {', '.join(sorted(REPLY_KEYS))}")
            if not text.strip() or len(text) > 2000:
                raise ValueError(f"{key}: a reply is 1-2000 characters")
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            except ValueError as exc:
                raise ValueError(f"{key}: {exc} (write {{{{ and }}}} for braces)") from None
            if unknown := names - fields:
                raise ValueError(
                    f"{key}: unknown placeholder {{{sorted(unknown)[0]}}}; "
                    f"one of {', '.join('{' + f + '}' for f in sorted(fields))}"
                )
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The business's time zone (its first use per process reads the tz database: call
        it from a thread in async code, as the graph's nodes do)."""
        return _zone(self.timezone)

    @property
    def name_in_sentence(self) -> str:
        """``short_name``, else ``display_name``."""
        return self.short_name or self.display_name

    def template_values(self) -> dict[str, str]:
        """What a reply template may name."""
        return {
            "business": self.display_name,
            "short_name": self.name_in_sentence,
            "topics": self.topics,
            "phone": self.contact.phone or "",
            "email": str(self.contact.email or ""),
        }

    @classmethod
    def default_for(cls, name: str) -> BusinessProfile:
        """The profile of a tenant nobody has described yet: its name and nothing else."""
        return cls(display_name=name[:120] or "our team")


def validation_message(exc: ValidationError) -> str:
    """One line per problem, each naming its field by dotted path."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "profile"
        message = err["msg"].removeprefix("Value error, ")
        # a dict's validator names the entry it refused ("handoff: ..."): make it part of the path
        if (entry := re.match(r"^(\w+): ", message)) and err["loc"]:
            where, message = f"{where}.{entry.group(1)}", message[entry.end() :]
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_profile(data: Any) -> BusinessProfile:
    """Validate a whole profile; raise :class:`InvalidInput` naming every bad field."""
    try:
        return BusinessProfile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from exc


def with_changes(profile: BusinessProfile, changes: list[tuple[str, Any]]) -> BusinessProfile:
    """The profile with ``("a.b.c", value)`` changes applied, validated whole.

    A path may reach into nested objects (``contact.phone``, ``chat.guardrail_profile``,
    ``hours.saturday``, ``replies.greeting``); a path through something that is not an object is
    refused naming it.
    """
    data = profile.model_dump(mode="json")
    for path, value in changes:
        parts = [p for p in path.split(".") if p]
        if not parts:
            raise InvalidInput(f"empty key in {path!r}")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None and isinstance(node, dict) and part in ("hours", "replies"):
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InvalidInput(f"{'.'.join(parts[: i + 1])}: is not an object with keys")
            node = child
        node[parts[-1]] = value
    return parse_profile(data)


def profile_json(profile: BusinessProfile) -> dict[str, Any]:
    """The stored form: every field, so a later default change does not rewrite history."""
    return profile.model_dump(mode="json")


async def current_profile(db: Db, tenant_id: uuid.UUID) -> tuple[int, dict[str, Any]] | None:
    """``(version, stored profile)`` of the tenant's newest profile, or None if it has none."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT version, profile FROM tenant_profiles WHERE tenant_id = %s"
            " ORDER BY version DESC LIMIT 1",
            (tenant_id,),
        )
        row = await cur.fetchone()
    return (int(row["version"]), row["profile"]) if row else None


async def save_profile(
    db: Db,
    tenant_id: uuid.UUID,
    profile: BusinessProfile,
    *,
    based_on: int | None,
    saved_by: str,
) -> int:
    """Store ``profile`` as the tenant's next version and return that version.

    ``based_on`` is the version the editor started from (0 for a tenant without a profile);
    if another save came in between, nothing is stored and :class:`Conflict` says which version
    is current. None skips the check (the CLI and the demo set-up, where one writer acts).
    """
    async with connect(db) as conn:
        # The primary key (tenant_id, version) makes two concurrent saves of the same next
        # version fail one of them, so the check below cannot be raced.
        cur = await conn.execute(
            "SELECT coalesce(max(version), 0) AS v FROM tenant_profiles WHERE tenant_id = %s",
            (tenant_id,),
        )
        row = await cur.fetchone()
        current = int(row["v"]) if row else 0
        if based_on is not None and based_on != current:
            raise Conflict(
                f"the profile changed since version {based_on}: version {current} is current;"
                " reload it and apply your change again"
            )
        cur = await conn.execute(
            "INSERT INTO tenant_profiles (tenant_id, version, profile, saved_by)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING version",
            (tenant_id, current + 1, Jsonb(profile_json(profile)), saved_by[:200]),
        )
        if await cur.fetchone() is None:
            raise Conflict("another save of the profile came in at the same time; try again")
    return current + 1


async def profile_versions(db: Db, tenant_id: uuid.UUID, limit: int = 50) -> list[dict[str, Any]]:
    """The newest versions first: ``{version, saved_by, saved_at}``."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT version, saved_by, saved_at FROM tenant_profiles WHERE tenant_id = %s"
            " ORDER BY version DESC LIMIT %s",
            (tenant_id, limit),
        )
        return list(await cur.fetchall())


def dumps(profile: BusinessProfile) -> str:
    """Pretty JSON of a profile (what the CLI prints and reads back with --file)."""
    return json.dumps(profile_json(profile), indent=2, ensure_ascii=False)
