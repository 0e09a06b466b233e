"""Request and response bodies of the contact, organisation and lead routes
(``api/routes/contacts.py`` and ``POST /v1/conversations/{id}/contact``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from api.schemas import ConversationSummary, Ticket, _In
from helpdesk.contact_fields import domain_problem, email_problem, phone_problem

_CONTACT = "7c2e4b1a-3d5f-4e6a-9b8c-0d1e2f3a4b5c"
_WHEN = "2025-06-01T09:30:00Z"


def _email(value: str) -> str:
    problem = email_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _phone(value: str) -> str:
    problem = phone_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _domain(value: str) -> str:
    problem = domain_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


EmailText = Annotated[str, Field(max_length=254), AfterValidator(_email)]
"""An email address as typed (stored normalised: :mod:`helpdesk.contact_fields`)."""
PhoneText = Annotated[str, Field(max_length=40), AfterValidator(_phone)]
"""A phone number as typed (stored as digits: :mod:`helpdesk.contact_fields`)."""


# ---------------------------------------------------------------------------- customer


class ContactOffer(_In):
    """Contact details the customer offers: an email or a phone at least."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Ann Lee", "email": "ann@example.com"}]},
    )
    name: str | None = Field(default=None, max_length=200)
    email: EmailText | None = None
    phone: PhoneText | None = None

    @model_validator(mode="after")
    def _reachable(self) -> ContactOffer:
        if not (self.email or self.phone):
            raise ValueError("give an email or a phone")
        return self


class ContactOffered(BaseModel):
    """What offering details did (the contact's own id is staff business)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Ann Lee", "email": "ann@example.com", "phone": None, "lead": True}
            ]
        }
    )
    name: str
    email: str | None
    phone: str | None
    lead: bool = Field(description="The conversation's quote request is now a lead.")


# ------------------------------------------------------------------------------- staff


class Organization(BaseModel):
    """An organisation contacts belong to."""

    id: uuid.UUID
    name: str
    domain: str | None
    created_at: datetime


class OrganizationIn(_In):
    """A new organisation."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Acme", "domain": "acme.test"}]}
    )
    name: str = Field(min_length=1, max_length=200)
    domain: Annotated[str, Field(max_length=253), AfterValidator(_domain)] | None = None


class Contact(BaseModel):
    """A contact."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _CONTACT,
                    "name": "Ann Lee",
                    "email": "ann@example.com",
                    "phone": "+15550100123",
                    "organization_id": None,
                    "organization_name": None,
                    "external_ids": {"site": "user-42"},
                    "notes": "",
                    "verified_at": None,
                    "merged_into": None,
                    "created_at": _WHEN,
                    "updated_at": _WHEN,
                }
            ]
        }
    )
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    organization_id: uuid.UUID | None
    organization_name: str | None = None
    external_ids: dict[str, Any]
    notes: str
    verified_at: datetime | None = Field(
        description="When the business's site last vouched for this contact."
    )
    merged_into: uuid.UUID | None = Field(
        description="A merged duplicate: the contact that absorbed it."
    )
    created_at: datetime
    updated_at: datetime


class ContactList(BaseModel):
    """Contacts, most recently updated first."""

    items: list[Contact]


class ContactConversation(ConversationSummary):
    """One of the contact's conversations."""

    contact_verified: bool = False
    csat: int | None = None


class Lead(BaseModel):
    """A quote request with contact details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
                    "contact_id": _CONTACT,
                    "conversation_id": "0b6c5d1e-8f7a-4e2b-9c3d-5a1f2e3d4c5b",
                    "request": "How much would a new water heater cost?",
                    "status": "new",
                    "contact_name": "Ann Lee",
                    "contact_email": "ann@example.com",
                    "contact_phone": None,
                    "created_at": _WHEN,
                    "updated_at": _WHEN,
                }
            ]
        }
    )
    id: uuid.UUID
    contact_id: uuid.UUID
    conversation_id: uuid.UUID | None
    request: str = Field(description="What was asked: the quote request's text.")
    status: Literal["new", "contacted", "won", "lost"]
    contact_name: str
    contact_email: str | None
    contact_phone: str | None
    created_at: datetime
    updated_at: datetime


class LeadList(BaseModel):
    """Leads, newest first."""

    items: list[Lead]


class LeadPatch(_In):
    """A lead's new status."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "won"}]})
    status: Literal["new", "contacted", "won", "lost"]


class ContactDetail(BaseModel):
    """A contact with their organisation and history."""

    contact: Contact
    organization: Organization | None
    conversations: list[ContactConversation] = Field(description="Most recent first (50).")
    tickets: list[Ticket] = Field(description="Most recent first (50).")
    leads: list[Lead]
    conversation_count: int
    ticket_count: int
    average_csat: float | None = Field(
        description="Mean CSAT (1-5) over their rated conversations; null when none is rated."
    )
    csat_count: int


class ContactPatch(_In):
    """Fields of a contact to change; ``null`` clears email, phone or organisation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"phone": "+1 555 0100 123", "notes": "Prefers calls"}]},
    )
    name: str | None = Field(default=None, max_length=200)
    email: EmailText | None = None
    phone: PhoneText | None = None
    notes: str | None = Field(default=None, max_length=10000)
    organization_id: uuid.UUID | None = None
    external_ids: dict[str, str] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _no_null_text(self) -> ContactPatch:
        for field in ("name", "notes", "external_ids"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null (send an empty value instead)")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the request set, as :func:`helpdesk.contacts.update_contact` takes them."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class MergeBody(_In):
    """Which contact absorbs the one in the path."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"into": _CONTACT}]})
    into: uuid.UUID = Field(description="The surviving contact.")
