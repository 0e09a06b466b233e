"""Contact routes: a customer offering their details, and the staff's contacts, organisations
and leads.

* ``POST /v1/conversations/{id}/contact`` (customer token): name / email / phone offered in the
  chat (the widget's contact form); links the conversation and its tickets to the contact and
  records a lead for a quote request (:func:`desk.contacts.offer_contact`).
* ``/v1/agent/contacts``, ``/v1/agent/organizations``, ``/v1/agent/leads`` (agent or admin key):
  search, read with history, edit, merge; list and move leads.

Everything runs inside the caller's tenant scope; another tenant's ids are 404 (rules and data
model: ``docs/contacts.md``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from api import contact_schemas as cs
from api import schemas
from api.auth import CustomerWriter
from api.deps import DeskDep, LimitsDep, ServicesDep
from api.errors import responses
from api.permissions import ContactEditor, ContactMerger, ContactReader
from desk import contacts as desk_contacts
from helpdesk import audit, contact_history, contacts, leads, organizations
from helpdesk.tenancy import Db, tenant_scope

customer_router = APIRouter(prefix="/v1/conversations", tags=["customer"])
router = APIRouter(prefix="/v1/agent", tags=["contacts"])

_AUTH = ("unauthenticated", "invalid_key", "forbidden")
_WRITE = ("invalid_json", "invalid_request", *_AUTH, "not_found", "body_too_large")


@customer_router.post(
    "/{conversation_id}/contact",
    response_model=cs.ContactOffered,
    responses=responses(
        "invalid_json",
        "invalid_request",
        "unauthenticated",
        "invalid_token",
        "token_expired",
        "forbidden",
        "not_found",
        "conflict",
        "body_too_large",
        "rate_limited",
    ),
)
async def offer_contact(
    conversation_id: uuid.UUID,
    body: cs.ContactOffer,
    caller: CustomerWriter,
    services: ServicesDep,
    desk: DeskDep,
    limits: LimitsDep,
    request: Request,
) -> cs.ContactOffered:
    """The customer leaves their name and email (or phone) so the business can reach them.

    The conversation, and any ticket of it, is linked to the contact found by that email or
    phone (or a new one); a conversation that asked for a quote gets a lead (once). 422 names
    the field that is wrong; 409 ``conflict`` when the business's site already identified the
    customer of this conversation as someone else. Limited like messages.
    """
    limits.check("message", caller, request)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        out = await desk_contacts.offer_contact(
            conn,
            caller.tenant.id,
            conversation_id,
            name=body.name,
            email=body.email,
            phone=body.phone,
            graph=desk.graph,
        )
    return cs.ContactOffered(
        name=out.contact["name"],
        email=out.contact["email"],
        phone=out.contact["phone"],
        lead=out.lead is not None,
    )


# ------------------------------------------------------------------------------ contacts


@router.get(
    "/contacts", response_model=cs.ContactList, responses=responses("invalid_request", *_AUTH)
)
async def search_contacts(
    caller: ContactReader,
    services: ServicesDep,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Part of a name, an email or a phone."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> cs.ContactList:
    """Live contacts (merged duplicates left out) whose name or email contains ``q``, or whose
    phone contains its digits (3 or more), most recently updated first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await contacts.search_contacts(conn, caller.tenant.id, q, limit=limit)
    return cs.ContactList(items=[cs.Contact.model_validate(r) for r in rows])


@router.post("/contacts", response_model=cs.Contact, responses=responses(*_WRITE))
async def add_contact(
    body: cs.ContactOffer, caller: ContactEditor, services: ServicesDep
) -> cs.Contact:
    """Find the contact with this email or phone, or create it (the same rules as a customer
    offering them: details only fill gaps)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row, created = await contacts.resolve_contact(
            conn, caller.tenant.id, email=body.email, phone=body.phone, name=body.name
        )
        if created:
            await audit.record(
                conn, caller.tenant.id, caller.actor, "contact.create", "contact", row["id"]
            )
        return await _contact(conn, caller.tenant.id, row["id"])


async def _contact(conn: Db, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> cs.Contact:
    row = await contacts.get_contact(conn, tenant_id, contact_id)
    org = None
    if row["organization_id"] is not None:
        org = await organizations.get_organization(conn, tenant_id, row["organization_id"])
    return cs.Contact.model_validate({**row, "organization_name": org["name"] if org else None})


@router.get(
    "/contacts/{contact_id}",
    response_model=cs.ContactDetail,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def contact_detail(
    contact_id: uuid.UUID, caller: ContactReader, services: ServicesDep
) -> cs.ContactDetail:
    """A contact with their organisation, conversations, tickets, leads and average CSAT.

    A merged duplicate answers too (``merged_into`` names the contact that absorbed it, and its
    history moved there)."""
    tenant_id = caller.tenant.id
    async with tenant_scope(services.pool, tenant_id) as conn:
        contact = await _contact(conn, tenant_id, contact_id)
        org = None
        if contact.organization_id is not None:
            org = await organizations.get_organization(conn, tenant_id, contact.organization_id)
        convs = await contact_history.contact_conversations(conn, tenant_id, contact_id)
        ticket_rows = await contact_history.contact_tickets(conn, tenant_id, contact_id)
        stats = await contact_history.contact_stats(conn, tenant_id, contact_id)
        lead_rows = await leads.list_leads(conn, tenant_id, contact_id=contact_id)
    return cs.ContactDetail(
        contact=contact,
        organization=cs.Organization.model_validate(org) if org else None,
        conversations=[cs.ContactConversation.model_validate(r) for r in convs],
        tickets=[schemas.Ticket.model_validate(r) for r in ticket_rows],
        leads=[cs.Lead.model_validate(r) for r in lead_rows],
        conversation_count=int(stats["conversations"]),
        ticket_count=int(stats["tickets"]),
        average_csat=stats["average_csat"],
        csat_count=int(stats["csat_count"]),
    )


@router.patch(
    "/contacts/{contact_id}",
    response_model=cs.Contact,
    responses=responses(*_WRITE, "conflict"),
)
async def update_contact(
    contact_id: uuid.UUID, body: cs.ContactPatch, caller: ContactEditor, services: ServicesDep
) -> cs.Contact:
    """Change a contact's name, email, phone, notes, organisation or external ids.

    409 ``conflict`` when another contact has that email or phone (merge them instead) or the
    contact was merged; 404 for an organisation that is not this tenant's."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        changes = body.changes()
        await contacts.update_contact(conn, caller.tenant.id, contact_id, changes)
        await audit.record(
            conn, caller.tenant.id, caller.actor, "contact.edit", "contact", contact_id,
            {"fields": sorted(changes)},
        )  # fmt: skip
        return await _contact(conn, caller.tenant.id, contact_id)


@router.post(
    "/contacts/{contact_id}/merge",
    response_model=cs.Contact,
    responses=responses(*_WRITE, "invalid_input", "conflict"),
)
async def merge_contact(
    contact_id: uuid.UUID, body: cs.MergeBody, caller: ContactMerger, services: ServicesDep
) -> cs.Contact:
    """Merge this contact (a duplicate) into ``into``; answers the survivor.

    Its conversations, tickets and leads move to the survivor, which keeps its own details and
    takes the duplicate's where it has none. The duplicate stays, ``merged_into`` the survivor.
    409 ``conflict`` when either was merged already; 422 ``invalid_input`` for itself."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await contacts.merge_contacts(conn, caller.tenant.id, contact_id, body.into)
        await audit.record(
            conn, caller.tenant.id, caller.actor, "contact.merge", "contact", contact_id,
            {"into": str(row["id"])},
        )  # fmt: skip
        return await _contact(conn, caller.tenant.id, row["id"])


# ------------------------------------------------------------------------- organisations


@router.get(
    "/organizations",
    response_model=list[cs.Organization],
    responses=responses("invalid_request", *_AUTH),
)
async def list_organizations(
    caller: ContactReader,
    services: ServicesDep,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[cs.Organization]:
    """The tenant's organisations (name or domain containing ``q``), by name."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await organizations.list_organizations(conn, caller.tenant.id, q, limit=limit)
    return [cs.Organization.model_validate(r) for r in rows]


@router.post(
    "/organizations",
    status_code=201,
    response_model=cs.Organization,
    responses=responses(*_WRITE, "conflict"),
)
async def create_organization(
    body: cs.OrganizationIn, caller: ContactEditor, services: ServicesDep
) -> cs.Organization:
    """Create an organisation (409 ``conflict`` when another has this domain)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await organizations.create_organization(
            conn, caller.tenant.id, body.name, body.domain
        )
        await audit.record(
            conn, caller.tenant.id, caller.actor, "organization.create", "organization", row["id"]
        )
    return cs.Organization.model_validate(row)


# --------------------------------------------------------------------------------- leads


@router.get("/leads", response_model=cs.LeadList, responses=responses("invalid_request", *_AUTH))
async def list_leads(
    caller: ContactReader,
    services: ServicesDep,
    status: Literal["new", "contacted", "won", "lost"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> cs.LeadList:
    """Quote requests with contact details, newest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await leads.list_leads(conn, caller.tenant.id, status=status, limit=limit)
    return cs.LeadList(items=[cs.Lead.model_validate(r) for r in rows])


@router.patch("/leads/{lead_id}", response_model=cs.Lead, responses=responses(*_WRITE))
async def update_lead(
    lead_id: uuid.UUID, body: cs.LeadPatch, caller: ContactEditor, services: ServicesDep
) -> cs.Lead:
    """Move a lead to ``new``, ``contacted``, ``won`` or ``lost``."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row: dict[str, Any] = await leads.set_lead_status(
            conn, caller.tenant.id, lead_id, body.status
        )
        await audit.record(
            conn, caller.tenant.id, caller.actor, "lead.status", "lead", lead_id,
            {"status": body.status},
        )  # fmt: skip
    return cs.Lead.model_validate(row)
