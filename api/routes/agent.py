"""Agent routes (a signed-in user, or an agent or admin key; each route checks the role
table): the queue, conversation detail, actions, tickets, and live streams for the console.

Actions (take over, reply, approve / edit / reject a held draft, release, close) are applied
exactly once (:mod:`desk.actions`): two agents acting on one interrupt get one success and one
``409 interrupt_conflict``. Pass the ``interrupt_id`` you saw in the detail view to make sure
you act on exactly that interrupt.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from api import schemas
from api.auth import Principal
from api.deps import DeskDep, EventHubDep, ServicesDep, SettingsDep
from api.errors import responses
from api.permissions import (
    ConversationReader,
    ConversationReplier,
    ConversationReviewer,
    TicketUpdater,
    may,
)
from api.routes.conversations import follow_events
from desk.actions import ActionName, ActionOutcome, ActionRequest
from graph.reasons import handoff_reason_text, review_codes, review_reason_texts
from helpdesk import audit, contact_history, conversations, teams, tickets
from helpdesk.notify import EventHub
from helpdesk.tenancy import tenant_scope

router = APIRouter(prefix="/v1/agent", tags=["agent"])
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])

_AUTH = ("unauthenticated", "invalid_key", "invalid_session", "forbidden")
_ACTION_ERRORS = responses(
    "invalid_json",
    "invalid_request",
    *_AUTH,
    "not_found",
    "interrupt_conflict",
    "conversation_busy",
    "conversation_owned",
    "conversation_closed",
    "body_too_large",
)
# Event types after which the queue may look different.
_QUEUE_TYPES = frozenset({"status", "handoff", "approval.pending", "message.created"})
_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events.",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": "event: ready\ndata: {}\n\n"
                'event: conversation.event\ndata: {"conversation_id": "0b6c...", "seq": 3,'
                ' "type": "handoff"}\n\n'
                'event: queue.changed\ndata: {"conversation_id": "0b6c..."}\n\n',
            }
        },
    }
}


def _queue_item(row: dict[str, Any]) -> schemas.QueueItem:
    escalation = row["escalation"] or {}
    kind: Literal["handoff", "approval", "human_turn"] = "handoff"
    if escalation.get("kind") == "approval":
        kind = "approval"
    elif escalation.get("kind") == "human_turn":
        kind = "human_turn"
    last = row["last_customer_message"] or ""
    question = None
    new_messages = 0
    if kind == "approval":
        reasons = (row["approval"] or {}).get("review_reasons") or []
        reason = ", ".join(review_codes(reasons)) or "review"
        reason_text = "; ".join(review_reason_texts(reasons)) or "A drafted answer waits for review"
        # The question under review, not the latest message: those sent since wait behind it.
        question = row["held_question"] or last
        new_messages = int(row["pending_count"] or 0)
        summary = f"A drafted answer waits for review. Customer asked: {question!r}"
        if new_messages:
            plural = "s" if new_messages > 1 else ""
            summary += f" {new_messages} new message{plural} since this draft."
    elif kind == "human_turn":
        reason = "customer_replied"
        reason_text = handoff_reason_text(reason)
        summary = f"The customer wrote in a conversation {row['owner_agent'] or 'an agent'} owns."
    else:
        reason = row["ticket_reason"] or escalation.get("reason") or "handoff"
        reason_text = handoff_reason_text(reason)
        summary = row["ticket_summary"] or f"Customer asked: {last!r}"
    return schemas.QueueItem(
        conversation_id=row["id"],
        kind=kind,
        reason=reason,
        reason_text=reason_text,
        summary=summary,
        question=question,
        new_messages=new_messages,
        waiting_since=row["waiting_since"] or row["updated_at"],
        channel=row["channel"],
        owner=row["owner_agent"],
        ticket_id=row["ticket_id"],
        ticket_number=row["ticket_number"],
        priority=row["ticket_priority"],
        last_customer_message=row["last_customer_message"],
        last_customer_at=row["last_customer_at"],
    )


@router.get(
    "/queue",
    response_model=schemas.Queue,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def queue(
    caller: ConversationReader,
    services: ServicesDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    team: Annotated[
        uuid.UUID | None,
        Query(description="Only what nobody owns yet or a member of this team owns."),
    ] = None,
) -> schemas.Queue:
    """Conversations waiting on a person, oldest wait first: hand-offs, held drafts, and
    customers writing in conversations an agent owns; ``people_online`` says how many staff
    (of ``team``) are online now.

    Conversations are not assigned to teams yet (that waits for triage rules), so a team's
    view is the unowned work plus what its members own."""
    away, idle = settings.presence_away_after_s, settings.session_idle_s
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        members: set[str] | None = None
        if team is not None:
            found = await teams.get_team(conn, caller.tenant.id, team)  # 404 if not ours
            members = {f"user:{m}" for m in found.members}
        rows = await conversations.waiting_queue(
            conn, caller.tenant.id, limit=limit if members is None else 500
        )
        online = await teams.online_count(
            conn, caller.tenant.id, away_after_s=away, idle_s=idle, team_id=team
        )
    if members is not None:
        rows = [r for r in rows if not r["owner_agent"] or r.get("owner_id") in members][:limit]
    return schemas.Queue(items=[_queue_item(r) for r in rows], people_online=online)


@router.get(
    "/conversations",
    response_model=list[schemas.ConversationSummary],
    responses=responses("invalid_request", *_AUTH),
)
async def list_conversations(
    caller: ConversationReader,
    services: ServicesDep,
    status: Literal["active", "waiting_human", "closed"] | None = None,
    owner: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only conversations this agent owns; ``me``: the caller's own.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[schemas.ConversationSummary]:
    """The tenant's conversations, most recently active first (the console's "Recent"); with
    ``owner=me`` the caller's own (its "Mine"), also after they left the queue."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await conversations.list_conversations(
            conn,
            caller.tenant.id,
            status=status,
            owner=caller.name if owner == "me" else owner,
            limit=limit,
        )
    return [schemas.ConversationSummary.model_validate(r) for r in rows]


@router.get(
    "/conversations/{conversation_id}",
    response_model=schemas.ConversationDetail,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def conversation_detail(
    conversation_id: uuid.UUID, caller: ConversationReader, services: ServicesDep, desk: DeskDep
) -> schemas.ConversationDetail:
    """The transcript (including messages queued while waiting), what the thread waits on (with
    its ``interrupt_id``), the last hand-off's payload and the open ticket."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        conv = await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        rows = await conversations.list_messages(conn, caller.tenant.id, conversation_id)
        ticket_rows = await tickets.list_tickets(conn, caller.tenant.id, conversation_id)
        card = await contact_history.contact_card(conn, caller.tenant.id, conversation_id)
    # The thread is read only after the conversation proved to be this tenant's.
    pending, handoff = await desk.waiting(conversation_id)
    open_tickets = [t for t in ticket_rows if t["status"] not in ("resolved", "closed")]
    latest = open_tickets or ticket_rows
    ticket = latest[-1] if latest else None
    return schemas.ConversationDetail(
        conversation=schemas.ConversationSummary.model_validate(conv),
        messages=[schemas.TranscriptMessage.model_validate(r) for r in rows],
        pending=schemas.PendingInterrupt.model_validate(pending) if pending else None,
        handoff=handoff,
        ticket=schemas.Ticket.model_validate(ticket) if ticket else None,
        held_because=review_reason_texts(pending["payload"].get("review_reasons") or [])
        if pending is not None and pending["kind"] == "approval"
        else [],
        contact=schemas.ContactCard.model_validate(card) if card else None,
    )


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses={**_SSE_RESPONSE, **responses("invalid_request", *_AUTH, "not_found")},
)
async def conversation_events(
    conversation_id: uuid.UUID,
    caller: ConversationReader,
    services: ServicesDep,
    hub: EventHubDep,
    settings: SettingsDep,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> EventSourceResponse:
    """Every logged event of one conversation (reviewers' notes included), resumable like the
    customer's subscription (``Last-Event-ID`` / ``?last_event_id=``)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
    return EventSourceResponse(
        follow_events(services, hub, caller.tenant.id, conversation_id, last_event_id or 0, None),
        ping=settings.sse_ping_s,
    )


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={**_SSE_RESPONSE, **responses(*_AUTH)},
)
async def tenant_events(
    caller: ConversationReader, hub: EventHubDep, settings: SettingsDep
) -> EventSourceResponse:
    """Live changes of the tenant for the console: ``conversation.event`` for every logged
    event (``{"conversation_id", "seq", "type"}``) and ``queue.changed`` when the queue may have
    changed (``{"conversation_id"}``, or ``{"resync": true}`` after a gap: refetch everything).
    Not resumable: on reconnect, refetch the queue."""
    return EventSourceResponse(_tenant_stream(hub, caller), ping=settings.sse_ping_s)


async def _tenant_stream(hub: EventHub, caller: Principal) -> AsyncIterator[ServerSentEvent]:
    async with hub.tenant(caller.tenant.id) as sub:
        yield ServerSentEvent(event="ready", data="{}")
        while True:
            await sub.wait(30.0)
            while True:
                try:
                    notice = sub.notices.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if notice.resync:
                    yield ServerSentEvent(event="queue.changed", data='{"resync": true}')
                    continue
                cid = str(notice.conversation_id)
                yield ServerSentEvent(
                    event="conversation.event",
                    data=json.dumps(
                        {"conversation_id": cid, "seq": notice.seq, "type": notice.type}
                    ),
                )
                if notice.type in _QUEUE_TYPES:
                    yield ServerSentEvent(
                        event="queue.changed", data=json.dumps({"conversation_id": cid})
                    )


def _outcome(out: ActionOutcome) -> schemas.ActionResult:
    return schemas.ActionResult(
        action=out.action,
        conversation=schemas.ConversationSummary.model_validate(out.conversation),
        pending=schemas.PendingInterrupt.model_validate(out.pending) if out.pending else None,
        events=[schemas.StreamEvent(event=name, data=data) for name, data in out.events],
    )


async def _act(
    desk: DeskDep,
    caller: Principal,
    conversation_id: uuid.UUID,
    action: ActionName,
    body: schemas._Action,
) -> schemas.ActionResult:
    """Apply one agent action: every action route goes through here, so they all answer the
    same way (the 409 rules live in :meth:`desk.actions.AgentDesk.act`). The body's own fields
    (``text``, ``reason``, ``then``) go into the request as they are; the actor is the
    credential (a user's email, a key's name, and their ids), never a field of the request."""
    req = ActionRequest(
        action=action,
        agent=caller.name,
        interrupt_id=body.interrupt_id,
        actor=caller.actor,
        may_reassign=may(caller, "conversation.reassign"),
        **body.model_dump(exclude={"interrupt_id"}),
    )
    return _outcome(await desk.act(caller.tenant, conversation_id, req))


def _action_route(action: ActionName) -> Callable[[_Endpoint], _Endpoint]:
    """Declare ``POST /conversations/{conversation_id}/<action>`` with the shared result model
    and error responses."""
    return router.post(
        f"/conversations/{{conversation_id}}/{action}",
        response_model=schemas.ActionResult,
        responses=_ACTION_ERRORS,
    )


@_action_route("takeover")
async def takeover(
    conversation_id: uuid.UUID,
    body: schemas.TakeoverBody,
    caller: ConversationReplier,
    desk: DeskDep,
) -> schemas.ActionResult:
    """Take the conversation over: the agent owns it and the AI stops answering."""
    return await _act(desk, caller, conversation_id, "takeover", body)


@_action_route("reply")
async def reply(
    conversation_id: uuid.UUID, body: schemas.ReplyBody, caller: ConversationReplier, desk: DeskDep
) -> schemas.ActionResult:
    """Answer the customer (answering a hand-off, or in a conversation the agent owns)."""
    return await _act(desk, caller, conversation_id, "reply", body)


@_action_route("approve")
async def approve(
    conversation_id: uuid.UUID,
    body: schemas.ApproveBody,
    caller: ConversationReviewer,
    desk: DeskDep,
) -> schemas.ActionResult:
    """Send the held draft as it is."""
    return await _act(desk, caller, conversation_id, "approve", body)


@_action_route("edit")
async def edit(
    conversation_id: uuid.UUID, body: schemas.EditBody, caller: ConversationReviewer, desk: DeskDep
) -> schemas.ActionResult:
    """Send an edited text instead of the held draft (the pair is kept as labelled data)."""
    return await _act(desk, caller, conversation_id, "edit", body)


@_action_route("reject")
async def reject(
    conversation_id: uuid.UUID,
    body: schemas.RejectBody,
    caller: ConversationReviewer,
    desk: DeskDep,
) -> schemas.ActionResult:
    """Reject the held draft: redraft once with the reason as feedback, or hand off."""
    return await _act(desk, caller, conversation_id, "reject", body)


@_action_route("release")
async def release(
    conversation_id: uuid.UUID,
    body: schemas.ReleaseBody,
    caller: ConversationReplier,
    desk: DeskDep,
) -> schemas.ActionResult:
    """Hand the conversation back to the AI."""
    return await _act(desk, caller, conversation_id, "release", body)


@_action_route("close")
async def close(
    conversation_id: uuid.UUID, body: schemas.CloseBody, caller: ConversationReplier, desk: DeskDep
) -> schemas.ActionResult:
    """Close the conversation; the customer can no longer write in it."""
    return await _act(desk, caller, conversation_id, "close", body)


@router.get(
    "/tickets", response_model=schemas.TicketList, responses=responses("invalid_request", *_AUTH)
)
async def list_tickets(
    caller: ConversationReader,
    services: ServicesDep,
    status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.TicketList:
    """The tenant's tickets, oldest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        rows = await tickets.list_tickets(conn, caller.tenant.id, status=status, limit=limit)
    return schemas.TicketList(items=[schemas.Ticket.model_validate(r) for r in rows])


@router.get(
    "/tickets/{ticket_id}",
    response_model=schemas.Ticket,
    responses=responses("invalid_request", *_AUTH, "not_found"),
)
async def get_ticket(
    ticket_id: uuid.UUID, caller: ConversationReader, services: ServicesDep
) -> schemas.Ticket:
    """One ticket."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.get_ticket(conn, caller.tenant.id, ticket_id)
    return schemas.Ticket.model_validate(row)


@router.patch(
    "/tickets/{ticket_id}",
    response_model=schemas.Ticket,
    responses=responses(
        "invalid_json",
        "invalid_request",
        *_AUTH,
        "not_found",
        "conflict",
        "invalid_transition",
        "body_too_large",
    ),
)
async def update_ticket(
    ticket_id: uuid.UUID, body: schemas.TicketUpdate, caller: TicketUpdater, services: ServicesDep
) -> schemas.Ticket:
    """Change a ticket's status and/or priority. The status moves by the lifecycle table
    (409 ``invalid_transition`` names the allowed moves); resolving needs a resolution, so it
    goes through ``POST /v1/tickets/{id}/transition``."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        row = await tickets.get_ticket(conn, caller.tenant.id, ticket_id)
        if body.status is not None or body.priority is not None:
            before = {"status": row["status"], "priority": row["priority"]}
            row = await tickets.set_ticket_status(
                conn,
                caller.tenant.id,
                ticket_id,
                body.status or row["status"],
                priority=body.priority,
                actor=caller.actor,
                audited=False,  # one entry, below
            )
            await audit.record(
                conn,
                caller.tenant.id,
                caller.actor,
                "ticket.update",
                "ticket",
                ticket_id,
                {
                    "before": before,
                    "after": {"status": row["status"], "priority": row["priority"]},
                    "conversation_id": str(row["conversation_id"]),
                },
            )
    return schemas.Ticket.model_validate(row)
