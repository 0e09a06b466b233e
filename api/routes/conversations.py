"""Customer routes: start a conversation, send a message (SSE or JSON), read the transcript.

Keys, customer tokens and the agent API come with the HTTP-contract issue; until then the
tenant is named in the body of ``POST /v1/conversations`` and the conversation id is the
capability.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import GraphDep, ServicesDep
from api.errors import ApiError
from api.streaming import run_turn
from graph.services import Services
from helpdesk import conversations
from helpdesk.errors import NotFound
from helpdesk.tenants import Tenant, get_tenant

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


class NewConversation(BaseModel):
    """Start a conversation with a tenant's assistant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"tenant": "demo"}]})
    tenant: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]+$")
    channel: Literal["web", "email", "api"] = "web"


class ConversationOut(BaseModel):
    """A conversation."""

    id: uuid.UUID
    tenant: str
    channel: str
    status: str


class NewMessage(BaseModel):
    """A customer message."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "When are you open?"}]}
    )
    text: str = Field(min_length=1, max_length=4000)


async def _conversation(
    services: Services, conversation_id: uuid.UUID
) -> tuple[Tenant, dict[str, Any]]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT t.slug FROM conversations c JOIN tenants t ON t.id = c.tenant_id"
            " WHERE c.id = %s",
            (conversation_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    tenant = await get_tenant(services.pool, row["slug"])
    return tenant, await conversations.get_conversation(services.pool, tenant.id, conversation_id)


@router.post("", status_code=201, response_model=ConversationOut)
async def create(body: NewConversation, services: ServicesDep) -> ConversationOut:
    """Start a conversation; its id is also the LangGraph thread id."""
    tenant = await get_tenant(services.pool, body.tenant)
    cid = await conversations.create_conversation(services.pool, tenant.id, channel=body.channel)
    return ConversationOut(id=cid, tenant=tenant.slug, channel=body.channel, status="active")


@router.post(
    "/{conversation_id}/messages",
    responses={200: {"content": {"text/event-stream": {}, "application/json": {}}}},
)
async def post_message(
    conversation_id: uuid.UUID,
    body: NewMessage,
    services: ServicesDep,
    graph: GraphDep,
    accept: Annotated[str, Header()] = "application/json",
) -> Any:
    """Send a customer message; stream the turn as SSE, or return its events as JSON."""
    tenant, conv = await _conversation(services, conversation_id)
    if conv["status"] == "closed":
        raise ApiError(409, "conversation_closed", f"conversation {conversation_id} is closed")
    events = run_turn(graph, services, tenant, conversation_id, body.text, channel=conv["channel"])
    if "text/event-stream" in accept:

        async def sse() -> AsyncIterator[ServerSentEvent]:
            async for name, data in events:
                yield ServerSentEvent(data=json.dumps(data, default=str), event=name)

        return EventSourceResponse(sse(), ping=15)
    collected = [{"event": name, "data": data} async for name, data in events]
    completed = next((e["data"] for e in collected if e["event"] == "message.completed"), None)
    return {"reply": completed, "events": collected}


@router.get("/{conversation_id}/messages")
async def transcript(conversation_id: uuid.UUID, services: ServicesDep) -> dict[str, Any]:
    """The conversation's stored messages, oldest first."""
    tenant, conv = await _conversation(services, conversation_id)
    rows = await conversations.list_messages(services.pool, tenant.id, conversation_id)
    return {
        "conversation": {"id": conv["id"], "status": conv["status"]},
        "messages": [
            {
                k: r[k]
                for k in ("id", "sender", "text", "intent", "confidence", "citations", "created_at")
            }
            for r in rows
        ],
    }
