"""Customer routes: start a conversation, send messages (SSE or JSON), read the transcript,
subscribe to the conversation's events, give feedback.

A conversation is started with the tenant's widget key and answers with a customer token that
acts on that conversation only; every other route here takes that token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from api import schemas
from api.auth import CustomerCaller, CustomerWriter, Principal, WidgetCaller
from api.deps import EventHubDep, LimitsDep, RunnerDep, ServicesDep, SettingsDep
from api.errors import responses
from desk.contacts import identify
from desk.runner import TurnStream
from graph.graph import ENTRY
from graph.services import Services
from helpdesk import conversations, feedback
from helpdesk.auth import issue_customer_token
from helpdesk.contacts import CONTACT_REQUEST_EVENT
from helpdesk.notify import EventHub, Subscription
from helpdesk.tenancy import tenant_scope
from helpdesk.tickets import CSAT_REQUEST_EVENT

router = APIRouter(prefix="/v1/conversations", tags=["customer"])

CUSTOMER_EVENTS = frozenset(
    {
        "message.created",
        "message.completed",
        "agent.message",
        "status",
        "handoff",
        "approval.pending",
        CONTACT_REQUEST_EVENT,
        CSAT_REQUEST_EVENT,
    }
)
"""Logged event types a customer's subscription carries (reviewers' notes stay internal)."""

_EVENTS_PAGE = 200
_SAFETY_REREAD_S = 30.0  # re-read now and then even without a notification
_AUTH_ERRORS = ("unauthenticated", "invalid_token", "token_expired", "forbidden")
_SSE_EXAMPLE = (
    f'event: status\ndata: {{"node": "{ENTRY}"}}\n\n'
    'event: message.created\ndata: {"message_id": "...", "sender": "customer", "text": "..."}\n\n'
    'event: token\ndata: {"text": "On ", "message_id": "..."}\n\n'
    'event: message.completed\ndata: {"message_id": "...", "sender": "ai", "text": "...",'
    ' "citations": [{"source_id": "opening-hours", "title": "Opening hours"}],'
    ' "confidence": 0.81, "declined": false}\n\n'
    "event: done\ndata: {}\n\n"
)


def _sse_data(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)


async def _conversation(
    services: Services, caller: Principal, conversation_id: uuid.UUID
) -> dict[str, Any]:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return await conversations.get_conversation(conn, caller.tenant.id, conversation_id)


@router.post(
    "",
    status_code=201,
    response_model=schemas.ConversationCreated,
    responses=responses(
        "invalid_json",
        "invalid_request",
        "unauthenticated",
        "invalid_key",
        "forbidden",
        "origin_not_allowed",
        "invalid_identity",
        "identity_expired",
        "body_too_large",
        "rate_limited",
    ),
)
async def create_conversation(
    body: schemas.NewConversation,
    caller: WidgetCaller,
    services: ServicesDep,
    settings: SettingsDep,
    limits: LimitsDep,
    request: Request,
) -> schemas.ConversationCreated:
    """Start a conversation with the widget key's tenant; answers with its customer token.

    The conversation id is also the LangGraph thread id. Limited per client address (429
    ``rate_limited``, see ``api/ratelimit.py``). With ``identity`` the conversation starts
    linked to the signed-in customer's contact, verified; a refused identity creates nothing.
    """
    limits.check("conversation", caller, request)
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        cid = await conversations.create_conversation(
            conn, caller.tenant.id, channel=body.channel, customer=body.customer
        )
        if body.identity is not None:
            # Same transaction: a refused signature rolls the conversation back too.
            await identify(conn, caller.tenant.id, cid, body.identity.user, body.identity.signature)
    token, expires_at = issue_customer_token(
        request.app.state.auth.secret, caller.tenant.id, cid, settings.customer_token_ttl_s
    )
    return schemas.ConversationCreated(
        id=cid,
        tenant=caller.tenant.slug,
        channel=body.channel,
        status="active",
        customer_token=token,
        token_expires_at=datetime.fromtimestamp(expires_at, UTC),
    )


@router.post(
    "/{conversation_id}/messages",
    response_model=schemas.TurnResult,
    responses={
        200: {
            "description": "The turn: SSE with `Accept: text/event-stream`, JSON otherwise."
            " A replay of an earlier request with the same Idempotency-Key carries the header"
            " `Idempotent-Replayed: true`.",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": _SSE_EXAMPLE}
            },
        },
        **responses(
            "invalid_json",
            "invalid_request",
            "idempotency_key_reused",
            *_AUTH_ERRORS,
            "not_found",
            "conversation_closed",
            "turn_in_progress",
            "idempotency_key_in_progress",
            "body_too_large",
            "rate_limited",
        ),
    },
)
async def post_message(
    conversation_id: uuid.UUID,
    body: schemas.NewMessage,
    caller: CustomerWriter,
    runner: RunnerDep,
    settings: SettingsDep,
    limits: LimitsDep,
    request: Request,
    response: Response,
    accept: Annotated[str, Header()] = "application/json",
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Makes a retried POST return the first result instead of a second turn.",
        ),
    ] = None,
) -> Any:
    """Send a customer message; stream the turn as SSE, or return its events as JSON.

    One turn runs at a time per conversation (409 ``turn_in_progress`` after a short wait).
    While the conversation waits on a person the message is kept for the agent and the AI
    does not answer. A client that disconnects mid-stream does not stop the turn: the answer is
    stored, and ``GET .../events`` or a retry with the same Idempotency-Key delivers it.
    Limited per client address (429 ``rate_limited``, see ``api/ratelimit.py``).
    """
    limits.check("message", caller, request)
    # ``say`` reads the conversation as the caller's tenant: another tenant's is not_found.
    stream = await runner.say(
        caller.tenant, conversation_id, body.text, idempotency_key=idempotency_key
    )
    headers = {"Idempotent-Replayed": "true"} if stream.replayed else {}
    if "text/event-stream" in accept:
        return EventSourceResponse(_sse(stream), ping=settings.sse_ping_s, headers=headers)
    response.headers.update(headers)
    events = [{"event": name, "data": data} async for name, data in stream.events()]
    # The last answer: a turn may first answer messages owed from a review, or a turn cut off
    # by a crash; the answer to this message comes last.
    reply = next(
        (
            e["data"]
            for e in reversed(events)
            if e["event"] in ("message.completed", "agent.message")
        ),
        None,
    )
    return {"reply": reply, "events": events}


async def _sse(stream: TurnStream) -> AsyncIterator[ServerSentEvent]:
    async for name, data in stream.events():
        yield ServerSentEvent(data=_sse_data(data), event=name)


@router.get(
    "/{conversation_id}/messages",
    response_model=schemas.Transcript,
    responses=responses("invalid_request", *_AUTH_ERRORS, "not_found"),
)
async def transcript(
    conversation_id: uuid.UUID, caller: CustomerCaller, services: ServicesDep
) -> schemas.Transcript:
    """The conversation's messages the customer can see, oldest first."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        conv = await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        rows = await conversations.list_messages(conn, caller.tenant.id, conversation_id)
    return schemas.Transcript(
        conversation=schemas.ConversationSummary.model_validate(conv),
        messages=[
            schemas.TranscriptMessage.model_validate(r) for r in rows if r["visibility"] == "public"
        ],
    )


@router.get(
    "/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events; each `id` is the event's sequence number.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'id: 7\nevent: agent.message\ndata: {"message_id": "...",'
                    ' "sender": "agent", "text": "Hi, Alex here."}\n\n',
                }
            },
        },
        **responses("invalid_request", *_AUTH_ERRORS, "not_found"),
    },
)
async def events(
    conversation_id: uuid.UUID,
    caller: CustomerCaller,
    services: ServicesDep,
    hub: EventHubDep,
    settings: SettingsDep,
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID", ge=0, description="Resume after this event (set by EventSource)."
        ),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, description="Resume after this event (when no header is sent).")
    ] = None,
) -> EventSourceResponse:
    """Subscribe to the conversation's events: agent replies, status changes, answers.

    Resumable: every event's ``id`` is its sequence number in the conversation's log, and
    ``Last-Event-ID`` (or ``?last_event_id=``) resumes right after it, with no gaps and no
    duplicates, across API processes. A client that also streams its own turns sees those
    turns' ``message.created`` / ``message.completed`` here too: de-duplicate by ``message_id``.
    """
    await _conversation(services, caller, conversation_id)
    start = last_event_id_header if last_event_id_header is not None else (last_event_id or 0)
    return EventSourceResponse(
        follow_events(services, hub, caller.tenant.id, conversation_id, start, CUSTOMER_EVENTS),
        ping=settings.sse_ping_s,
    )


async def follow_events(
    services: Services,
    hub: EventHub,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    after_seq: int,
    types: frozenset[str] | None,
) -> AsyncIterator[ServerSentEvent]:
    """Replay the log after ``after_seq``, then follow it live (until the client leaves).

    Subscribing before the first read means an event committed in between wakes the loop, and
    reading by sequence number means nothing is delivered twice.
    """
    last = after_seq
    async with hub.conversation(conversation_id) as sub:
        while True:
            async with tenant_scope(services.pool, tenant_id) as conn:
                rows = await conversations.list_events(
                    conn, tenant_id, conversation_id, after_seq=last, limit=_EVENTS_PAGE
                )
            for row in rows:
                last = int(row["seq"])
                if types is None or row["type"] in types:
                    yield ServerSentEvent(
                        id=str(last), event=row["type"], data=_sse_data(row["data"])
                    )
            if len(rows) == _EVENTS_PAGE:
                continue  # more to replay
            while await sub.wait(_SAFETY_REREAD_S) and not _news(sub, last):
                pass  # only announcements of events already delivered: no read needed


def _news(sub: Subscription, last: int) -> bool:
    """Whether the announcements received say there may be events after ``last``."""
    news = False
    while not sub.notices.empty():
        notice = sub.notices.get_nowait()
        news = news or notice.resync or notice.seq > last
    return news


@router.post(
    "/{conversation_id}/feedback",
    response_model=schemas.FeedbackOut,
    responses=responses(
        "invalid_json",
        "invalid_request",
        "invalid_input",
        *_AUTH_ERRORS,
        "not_found",
        "body_too_large",
    ),
)
async def post_feedback(
    conversation_id: uuid.UUID,
    body: schemas.MessageRating | schemas.Csat,
    caller: CustomerWriter,
    services: ServicesDep,
) -> schemas.FeedbackOut:
    """Rate one answer (thumbs up/down) or the whole conversation (CSAT 1-5).

    Rating again replaces the earlier rating.
    """
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        await conversations.get_conversation(conn, caller.tenant.id, conversation_id)
        if isinstance(body, schemas.MessageRating):
            row = await feedback.rate_message(
                conn,
                caller.tenant.id,
                conversation_id,
                body.message_id,
                body.rating,
                comment=body.comment,
            )
        else:
            row = await feedback.rate_conversation(
                conn, caller.tenant.id, conversation_id, body.csat, comment=body.comment
            )
    return schemas.FeedbackOut.model_validate(row)
