"""Ticket routes: the help desk's tickets for staff, and the customer's CSAT.

* ``/v1/tickets`` (staff credentials: a signed-in user, an agent or admin key): create, list
  with filters and cursor pages, read, edit fields, move through the lifecycle (resolving
  takes a resolution), internal notes, the timeline.
* ``/v1/agent/conversations/{id}/notes`` (staff): internal notes on a conversation.
* ``POST /v1/conversations/{id}/csat`` (customer token): the customer rates the resolution of
  their ticket, once.

Every route runs inside the caller's tenant scope; another tenant's ids are 404. The acting
person is the credential's; every change is on the ticket's timeline and in the audit log.
The lifecycle table and the rules: ``helpdesk/tickets.py``, ``docs/tickets.md``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from api import ticket_schemas as ts
from api.auth import CustomerWriter, Principal
from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import TicketCreator, TicketEditor, TicketNoter, TicketReader, may
from api.schemas import DeskText
from desk import ticket_commands as ticket_commands_llm
from helpdesk import conversations, feedback, ticket_commands, tickets
from helpdesk.tenancy import tenant_scope
from helpdesk.tickets import Priority, TicketStatus

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])
customer_router = APIRouter(prefix="/v1/conversations", tags=["customer"])
conversation_notes = APIRouter(prefix="/v1/agent/conversations", tags=["agent"])

_AUTH = ("unauthenticated", "invalid_key", "forbidden")
_WRITE = ("invalid_json", "invalid_request", *_AUTH, "not_found", "body_too_large")


@router.post(
    "", status_code=201, response_model=ts.TicketDetail, responses=responses(*_WRITE, "conflict")
)
async def create_ticket(
    body: ts.TicketCreate, caller: TicketCreator, services: ServicesDep
) -> ts.TicketDetail:
    """Open a ticket (status ``new``, the tenant's next number). Setting an assignee or a team
    also needs ``ticket.assign``; ids must be the tenant's (404 otherwise); 409 ``conflict``
    when the conversation already has an open ticket."""
    if (body.assignee_id or body.team_id) and not may(caller, "ticket.assign"):
        raise ApiError(403, "forbidden", "ticket.assign is needed to set an assignee or team")
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.create_ticket(
            conn,
            caller.tenant.id,
            actor=caller.actor,
            categories=caller.tenant.policy.ticket_categories,
            **body.model_dump(),
        )
    return ts.TicketDetail.model_validate(ts.Ticket.of(row, caller.tenant.business).model_dump())


_COMMAND_ACTIONS = {
    "create": "ticket.create", "show": "ticket.read", "update": "ticket.edit",
    "close": "ticket.edit", "resolve": "ticket.edit",
}  # fmt: skip


@router.post("/commands", response_model=ts.TicketCommandOut, responses=responses(*_WRITE))
async def ticket_command(
    body: ts.TicketCommandIn, caller: TicketReader, services: ServicesDep
) -> ts.TicketCommandOut:
    """A ticket command in words ("close T-42, T-43: fixed load balancer config"), parsed by
    rules (the LLM on its tier) into a validated command: without ``confirm`` the answer is
    the plan (``up``); with it, the command is applied as the caller through the same
    service as the other routes. Words that do not say enough are a question back (``up``,
    ``data.question``), never a guess that changes data. ``helpdesk/ticket_commands.py``."""
    tenant = caller.tenant
    categories = tenant.policy.ticket_categories
    parsed = await ticket_commands_llm.understand(
        services.models.chat, body.text, categories=list(categories) or None
    )
    if isinstance(parsed, ticket_commands.Question):
        return ts.TicketCommandOut(status="up", action=None, data={"question": parsed.question})
    plan = ticket_commands.describe(parsed)
    needed = _COMMAND_ACTIONS[parsed.action]
    if not may(caller, needed):
        raise ApiError(403, "forbidden", f"{parsed.action} needs {needed}")
    if not body.confirm and parsed.action != "show":
        return ts.TicketCommandOut(
            status="up", action=parsed.action, data={"plan": plan}, plan=plan
        )
    async with tenant_scope(services.pool, tenant.id) as conn:
        answer = await ticket_commands.apply(
            conn, tenant.id, parsed, actor=caller.actor, categories=categories
        )
    return ts.TicketCommandOut(**answer, plan=plan)


@router.get("", response_model=ts.TicketPage, responses=responses("invalid_request", *_AUTH))
async def list_tickets(
    caller: TicketReader,
    services: ServicesDep,
    status: Annotated[list[TicketStatus] | None, Query(description="Any of these.")] = None,
    priority: Annotated[list[Priority] | None, Query(description="Any of these.")] = None,
    assignee_id: uuid.UUID | None = None,
    unassigned: Annotated[bool, Query(description="Only tickets nobody is assigned.")] = False,
    team_id: uuid.UUID | None = None,
    sla: Annotated[
        Literal["warning", "breached"] | None,
        Query(description="Only tickets whose SLA is in warning, or breached (docs/sla.md)."),
    ] = None,
    q: Annotated[
        DeskText | None,
        Query(min_length=1, max_length=200, description="T-42 / 42, or words of subject or text."),
    ] = None,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of the last page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ts.TicketPage:
    """The tenant's tickets matching every filter, newest first, a page at a time."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await tickets.search_tickets(
            conn,
            caller.tenant.id,
            status=list(status) if status else None,
            priority=list(priority) if priority else None,
            assignee_id=assignee_id,
            unassigned=unassigned,
            team_id=team_id,
            sla=sla,
            q=q,
            before_number=int(cursor) if cursor else None,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return ts.TicketPage(
        items=[ts.Ticket.of(r, caller.tenant.business) for r in rows],
        next_cursor=str(rows[-1]["number"]) if more and rows else None,
    )


async def _detail(
    conn: AsyncConnection[DictRow], caller: Principal, row: dict[str, Any]
) -> ts.TicketDetail:
    resolution = await tickets.get_resolution(conn, caller.tenant.id, row["resolution_id"])
    return ts.TicketDetail.model_validate(
        {
            **ts.Ticket.of(row, caller.tenant.business).model_dump(),
            "resolution": ts.Resolution.model_validate(resolution) if resolution else None,
        }
    )


@router.get(
    "/{ticket_id}",
    response_model=ts.TicketDetail,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def get_ticket(
    ticket_id: uuid.UUID, caller: TicketReader, services: ServicesDep
) -> ts.TicketDetail:
    """One ticket, with its current resolution and the moves it may make."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.get_ticket(conn, caller.tenant.id, ticket_id)
        return await _detail(conn, caller, row)


@router.patch("/{ticket_id}", response_model=ts.TicketDetail, responses=responses(*_WRITE))
async def edit_ticket(
    ticket_id: uuid.UUID, body: ts.TicketPatch, caller: TicketEditor, services: ServicesDep
) -> ts.TicketDetail:
    """Change the fields sent (``null`` clears a nullable one). Changing the assignee or the
    team also needs ``ticket.assign``. The status moves by ``POST .../transition``."""
    changes = body.changes()
    if {"assignee_id", "team_id"} & set(changes) and not may(caller, "ticket.assign"):
        raise ApiError(403, "forbidden", "ticket.assign is needed to change assignee or team")
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.update_ticket(
            conn,
            caller.tenant.id,
            ticket_id,
            changes,
            actor=caller.actor,
            categories=caller.tenant.policy.ticket_categories,
        )
        return await _detail(conn, caller, row)


@router.post(
    "/{ticket_id}/transition",
    response_model=ts.TicketDetail,
    responses=responses(*_WRITE, "invalid_transition"),
)
async def transition_ticket(
    ticket_id: uuid.UUID, body: ts.Transition, caller: TicketEditor, services: ServicesDep
) -> ts.TicketDetail:
    """Move the ticket to ``to``. A move the lifecycle does not allow is 409
    ``invalid_transition``, whose message names the moves allowed from the current status.
    ``resolved`` needs a ``resolution`` (422 without one) and asks the customer for CSAT."""
    resolution = body.resolution.model_dump(mode="json") if body.resolution else None
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.transition(
            conn, caller.tenant.id, ticket_id, body.to, actor=caller.actor, resolution=resolution
        )
        return await _detail(conn, caller, row)


@router.post(
    "/{ticket_id}/notes", status_code=201, response_model=ts.Note, responses=responses(*_WRITE)
)
async def add_note(
    ticket_id: uuid.UUID, body: ts.NoteIn, caller: TicketNoter, services: ServicesDep
) -> ts.Note:
    """Add an internal note. Staff only: never in the customer's transcript or events, never
    in a prompt or the graph's state."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.add_note(
            conn, caller.tenant.id, ticket_id=ticket_id, body=body.body, actor=caller.actor
        )
    return ts.Note.model_validate(row)


@router.get(
    "/{ticket_id}/notes",
    response_model=ts.NoteList,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def list_notes(
    ticket_id: uuid.UUID, caller: TicketReader, services: ServicesDep
) -> ts.NoteList:
    """The ticket's internal notes (and its conversation's), oldest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.get_ticket(conn, caller.tenant.id, ticket_id)
        notes = await tickets.list_notes(
            conn, caller.tenant.id, ticket_id=ticket_id, conversation_id=row["conversation_id"]
        )
    return ts.NoteList(items=[ts.Note.model_validate(n) for n in notes])


@router.get(
    "/{ticket_id}/timeline",
    response_model=ts.Timeline,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def timeline(
    ticket_id: uuid.UUID, caller: TicketReader, services: ServicesDep
) -> ts.Timeline:
    """What happened, oldest first: the conversation's messages, notes, status moves, edits,
    resolutions, reopenings and CSAT, each with who did it."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        items = await tickets.timeline(conn, caller.tenant.id, ticket_id)
    return ts.Timeline(items=[ts.TimelineItem.model_validate(i) for i in items])


@customer_router.post(
    "/{conversation_id}/csat",
    response_model=ts.CsatOut,
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
    ),
)
async def post_csat(
    conversation_id: uuid.UUID, body: ts.CsatIn, caller: CustomerWriter, services: ServicesDep
) -> ts.CsatOut:
    """Rate the resolution of this conversation's ticket, 1 (bad) to 5 (great), once: the same
    score again is answered as the first time; another score is 409 ``conflict``, and so is
    rating before any ticket of the conversation was resolved."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        row = await feedback.rate_resolution(
            conn, caller.tenant.id, conversation_id, body.score, comment=body.comment
        )
    return ts.CsatOut(
        resolution_id=row["resolution_id"],
        ticket_number=row["ticket_number"],
        score=row["csat"],
        comment=row["comment"],
        created_at=row["created_at"],
    )


@conversation_notes.post(
    "/{conversation_id}/notes",
    status_code=201,
    response_model=ts.Note,
    responses=responses(*_WRITE),
)
async def add_conversation_note(
    conversation_id: uuid.UUID, body: ts.NoteIn, caller: TicketNoter, services: ServicesDep
) -> ts.Note:
    """Add an internal note to a conversation (staff only, like a ticket's notes); it shows on
    the timeline of the conversation's tickets."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        row = await tickets.add_note(
            conn,
            caller.tenant.id,
            conversation_id=conversation_id,
            body=body.body,
            actor=caller.actor,
        )
    return ts.Note.model_validate(row)


@conversation_notes.get(
    "/{conversation_id}/notes",
    response_model=ts.NoteList,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def list_conversation_notes(
    conversation_id: uuid.UUID, caller: TicketReader, services: ServicesDep
) -> ts.NoteList:
    """The conversation's internal notes (its tickets' included), oldest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        notes = await tickets.list_notes(conn, caller.tenant.id, conversation_id=conversation_id)
    return ts.NoteList(items=[ts.Note.model_validate(n) for n in notes])
