"""Article drafts over HTTP: the knowledge base's review queue (issue 17 item 5).

* ``POST /v1/kb/drafts`` ``{"conversation_id"}``: a draft from a resolved conversation (one per
  conversation; asking again returns it), ``{"cluster_id"}``: one for a top-questions cluster
  (a knowledge gap), or ``{"title", "body"}`` written by hand.
* ``GET /v1/kb/drafts[?state=...]``, ``GET /v1/kb/drafts/{id}``, ``PATCH /v1/kb/drafts/{id}``
  ``{"title"?, "body"?}`` (while a draft or in review).
* ``POST /v1/kb/drafts/{id}/move`` ``{"to": "in_review"|"approved"|"published"|...}``: a move
  the state table does not allow is 409 ``invalid_transition`` naming the allowed ones;
  approving, publishing and rejecting are a manager's (403 ``forbidden`` for an agent).
  ``published`` indexes the article at once (``desk.kb_learning.publish``).

Anyone on the desk (``kb.draft``) reads, writes and submits; ``helpdesk/kb_drafts.py`` has the
table of moves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.errors import ApiError, responses
from api.permissions import KbDrafter, may
from api.schemas import _In
from desk import kb_learning
from helpdesk import audit, kb_drafts
from helpdesk.errors import Conflict
from helpdesk.tenancy import tenant_scope

router = APIRouter(tags=["knowledge base"])
_AUTH = ("unauthenticated", "invalid_key", "forbidden")


class Draft(BaseModel):
    id: uuid.UUID
    state: str
    kind: str = Field(description="new: a new article; update: a section for target_source_id.")
    target_source_id: str | None
    similarity: float | None
    title: str
    body: str
    visibility: str
    source_conversations: list[uuid.UUID]
    source_tickets: list[uuid.UUID]
    ai_generated: bool
    created_by: str
    reviewed_by: str | None
    published_source_id: str | None
    confidence: float | None = Field(
        description="What a learned draft rests on, 0-1 (docs/metrics.md); None: by hand."
    )
    created_at: datetime
    updated_at: datetime
    moves: list[str] = Field(
        default_factory=list,
        description="The states this caller may move the draft to now (the console's buttons).",
    )


def _shown(caller: Any, draft: dict[str, Any]) -> dict[str, Any]:
    """The draft with the moves the caller's role allows from its state."""
    allowed = kb_drafts.MOVES.get(draft["state"], {})
    return {**draft, "moves": [to for to, action in allowed.items() if may(caller, action)]}


class DraftIn(_In):
    conversation_id: uuid.UUID | None = None
    cluster_id: uuid.UUID | None = Field(
        default=None, description="A top-questions cluster (a knowledge gap) to write up."
    )
    title: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=50_000)


class DraftEdit(_In):
    title: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=50_000)


class DraftMove(_In):
    to: kb_drafts.State


@router.post(
    "/v1/kb/drafts",
    response_model=Draft,
    status_code=201,
    responses=responses("invalid_request", "not_found", *_AUTH),
)
async def create_draft(body: DraftIn, caller: KbDrafter, services: ServicesDep) -> dict[str, Any]:
    """A draft from a conversation (``conversation_id``), from a top-questions cluster
    (``cluster_id``: the "draft an article" action of a knowledge gap), or written by hand
    (title and body)."""
    tenant = caller.tenant
    if body.cluster_id is not None:
        return _shown(
            caller,
            await kb_learning.draft_from_cluster(
                services,
                tenant.id,
                body.cluster_id,
                created_by=caller.name,
                business=tenant.business,
            ),
        )
    if body.conversation_id is not None:
        return _shown(
            caller,
            await kb_learning.draft_from_conversation(
                services,
                tenant.id,
                body.conversation_id,
                created_by=caller.name,
                business=tenant.business,
            ),
        )
    if not body.title or not body.body:
        raise ApiError(
            422, "invalid_request", "give a conversation_id, a cluster_id, or a title and a body"
        )
    async with tenant_scope(services.pool, tenant.id) as conn:
        made = await kb_drafts.create(
            conn, tenant.id, title=body.title, body=body.body, created_by=caller.name,
            ai_generated=False,
        )  # fmt: skip
    return _shown(caller, made)


@router.get(
    "/v1/kb/drafts", response_model=list[Draft], responses=responses("invalid_request", *_AUTH)
)
async def list_drafts(
    caller: KbDrafter, services: ServicesDep, state: kb_drafts.State | None = None
) -> list[dict[str, Any]]:
    """The review queue, oldest first (of one state when given)."""
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        found = await kb_drafts.list_drafts(conn, caller.tenant.id, state)
    return [_shown(caller, d) for d in found]


@router.get(
    "/v1/kb/drafts/{draft_id}", response_model=Draft, responses=responses("not_found", *_AUTH)
)
async def get_draft(
    draft_id: uuid.UUID, caller: KbDrafter, services: ServicesDep
) -> dict[str, Any]:
    async with tenant_scope(services.pool, caller.tenant.id) as conn:
        return _shown(caller, await kb_drafts.get(conn, caller.tenant.id, draft_id))


@router.patch(
    "/v1/kb/drafts/{draft_id}",
    response_model=Draft,
    responses=responses("invalid_request", "not_found", "invalid_transition", *_AUTH),
)
async def edit_draft(
    draft_id: uuid.UUID, body: DraftEdit, caller: KbDrafter, services: ServicesDep
) -> dict[str, Any]:
    """Change the text (a person's edit: the draft is no longer the AI's alone)."""
    try:
        async with tenant_scope(services.pool, caller.tenant.id) as conn:
            edited = await kb_drafts.edit(
                conn, caller.tenant.id, draft_id, title=body.title, body=body.body
            )
    except Conflict as exc:
        raise ApiError(409, "invalid_transition", exc.message) from exc
    return _shown(caller, edited)


@router.post(
    "/v1/kb/drafts/{draft_id}/move",
    response_model=Draft,
    responses=responses("invalid_request", "not_found", "invalid_transition", *_AUTH),
)
async def move_draft(
    draft_id: uuid.UUID, body: DraftMove, caller: KbDrafter, services: ServicesDep
) -> dict[str, Any]:
    """Move the draft through review; ``published`` indexes it first."""
    tenant = caller.tenant
    async with tenant_scope(services.pool, tenant.id) as conn:
        current = await kb_drafts.get(conn, tenant.id, draft_id)
    try:
        action = kb_drafts.check_move(current["state"], body.to)
        if not may(caller, action):
            raise ApiError(403, "forbidden", f"moving a draft to {body.to} needs {action}")
        if body.to == "published":
            moved = await kb_learning.publish(services, tenant.id, draft_id, by=caller.name)
        else:
            async with tenant_scope(services.pool, tenant.id) as conn:
                moved = await kb_drafts.move(conn, tenant.id, draft_id, body.to, by=caller.name)
    except Conflict as exc:
        raise ApiError(409, "invalid_transition", exc.message) from exc
    async with tenant_scope(services.pool, tenant.id) as conn:
        await audit.record(
            conn, tenant.id, caller.actor, f"kb_draft.{body.to}", "kb_draft", draft_id,
            {"from": current["state"], "article": moved["published_source_id"]},
        )  # fmt: skip
    return _shown(caller, moved)
