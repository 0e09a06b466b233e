"""Agent actions on a conversation, applied exactly once.

Every action runs while holding the conversation (:class:`desk.gate.ConversationGate`) and
first re-reads what the thread waits on. So when several agents act on one interrupt, the first
resumes it and every other one finds it gone (or, when it named the interrupt it saw, finds a
different one) and gets ``interrupt_conflict`` (HTTP 409): nothing is applied twice.

| action | thread waits on a hand-off / human turn | waits on a draft review | waits on nothing |
| --- | --- | --- | --- |
| takeover | the agent claims it | the agent claims it | the AI stops answering; the agent owns it |
| reply | resume: the agent answers | 409 | the agent answers (and owns it) |
| approve / edit / reject | 409 | resume with the review | 409 |
| release | resume: back to the AI | 409 | back to the AI if an agent owned it, else 409 |
| close | resume: closed | 409 (review the draft first) | closed |

Acting without an interrupt (take over a conversation the AI is handling, answer it, hand it
back) changes the thread's state with ``aupdate_state`` as if ``respond`` had run, so the
graph's routing sees the new owner on the customer's next message: while a person owns the
conversation the AI never answers.

Who acts: the request's ``actor`` (from the credential, never from a request field). Ownership
is compared by the credential's identity (``user:<id>`` or ``key:<id>``, kept in
``conversations.owner_id`` beside the name shown), so two credentials that share a name are
two agents: while one owns a conversation the other can neither take it over, reply, approve,
release nor close it (409 ``conversation_owned``), unless the role table lets it reassign
(``conversation.reassign``: managers and admins may take over, release or close it). Every
applied action appends an audit entry (:mod:`helpdesk.audit`), in the action's transaction when
it is one, right after the graph run when it resumes the thread.

All or nothing: a request is validated whole before anything is written (its text by
:mod:`helpdesk.text_policy`, when the :class:`ActionRequest` is built), and the writes of an
action without an interrupt (message, event, status, owner, ticket) commit in one transaction,
with the thread's update made last inside it, so a failure leaves the conversation as it was.
An action that resumes an interrupt is one graph run: its nodes write what they write, and the
ticket follows after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from desk.after_review import answer_pending
from desk.errors import (
    ActionFailed,
    ConversationBusy,
    ConversationClosed,
    ConversationOwned,
    InterruptConflict,
)
from desk.gate import ConversationGate
from desk.stream import Graph, thread_config
from desk.turns import resume_turn
from graph import events
from graph.events import Event
from graph.interrupts import AgentReply, Approve, Close, Edit, Reject, Release
from graph.services import Services
from helpdesk import audit, conversations, tickets
from helpdesk.audit import Actor
from helpdesk.tenancy import Db, tenant_scope
from helpdesk.tenants import Tenant
from helpdesk.text_policy import check_text
from helpdesk.tickets import TicketStatus

ActionName = Literal["takeover", "reply", "approve", "edit", "reject", "release", "close"]
_AGENT_WAITS = ("handoff", "human_turn")


_RESOLVED_BY = {
    "release": "Resolved by the agent, who handed the conversation back to the AI.",
    "close": "Resolved when the agent closed the conversation.",
}
"""The summary of the resolution a desk action records when it resolves the ticket."""


@dataclass(frozen=True)
class ActionRequest:
    """What an agent asked for (already validated by the route's body model)."""

    action: ActionName
    agent: str
    interrupt_id: str | None = None
    text: str | None = None
    reason: str | None = None
    then: Literal["redraft", "handoff"] = "redraft"
    actor: Actor | None = None
    """The credential acting (its identity decides ownership); None: known by ``agent`` only."""
    may_reassign: bool = False
    """The actor may take over, release or close a conversation another owns."""

    @property
    def identity(self) -> str:
        """Who owns what this actor takes (``user:<id>``, ``key:<id>``, ``name:<name>``)."""
        return (self.actor or Actor(self.agent)).identity

    def __post_init__(self) -> None:
        # Before anything is written: text the desk refuses never half-applies an action,
        # whoever builds the request (the HTTP route has already refused it; the CLI, later
        # email, may not have).
        for name in ("agent", "interrupt_id", "text", "reason"):
            value = getattr(self, name)
            if value is not None:
                check_text(value, name)


@dataclass
class ActionOutcome:
    """What an action did: the events it produced and the conversation afterwards."""

    action: ActionName
    events: list[Event]
    conversation: dict[str, Any]
    pending: dict[str, Any] | None


_REASSIGNING = ("takeover", "release", "close")


def _owns(conv: dict[str, Any], req: ActionRequest) -> bool:
    """Whether the request's actor is the conversation's owner: by identity when the owner's
    is known, else (an owner the graph named) by name."""
    if conv.get("owner_id"):
        return bool(conv["owner_id"] == req.identity)
    return bool(conv["owner_agent"] == req.agent)


def _conflict(message: str) -> InterruptConflict:
    return InterruptConflict(message)


def pending_view(interrupt: Any) -> dict[str, Any]:
    """The JSON view of a pending interrupt: its id, kind and typed payload."""
    value = dict(interrupt.value)
    return {"interrupt_id": interrupt.id, "kind": value.get("kind"), "payload": value}


class AgentDesk:
    """Applies agent actions to conversations."""

    def __init__(
        self, graph: Graph, services: Services, gate: ConversationGate, *, wait_s: float = 5.0
    ) -> None:
        self.graph = graph
        self.services = services
        self.gate = gate
        self.wait_s = wait_s

    async def waiting(
        self, conversation_id: uuid.UUID
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """What the thread waits on (:func:`pending_view`, or None) and the last hand-off's
        payload for the agent. The caller has checked the conversation is its tenant's."""
        snapshot = await self.graph.aget_state(thread_config(conversation_id))
        pending = pending_view(snapshot.interrupts[0]) if snapshot.interrupts else None
        handoff = (
            pending["payload"]
            if pending is not None and pending["kind"] == "handoff"
            else (snapshot.values or {}).get("handoff_request")
        )
        return pending, handoff

    async def act(
        self, tenant: Tenant, conversation_id: uuid.UUID, req: ActionRequest
    ) -> ActionOutcome:
        """Apply ``req`` once, or raise a :class:`helpdesk.errors.DeskError` saying why not
        (:mod:`desk.errors`; a conversation of another tenant is ``not_found``)."""
        busy = ConversationBusy("another action or turn on this conversation is running")
        # Not this tenant's conversation: 404 at once, before queueing for it.
        await conversations.get_conversation(self.services.pool, tenant.id, conversation_id)
        async with self.gate.hold(tenant.id, conversation_id, wait_s=self.wait_s, busy=busy):
            conv = await conversations.get_conversation(
                self.services.pool, tenant.id, conversation_id
            )
            if conv["status"] == "closed":
                raise ConversationClosed(f"conversation {conversation_id} is closed")
            snapshot = await self.graph.aget_state(thread_config(conversation_id))
            pending = snapshot.interrupts[0] if snapshot.interrupts else None
            if req.interrupt_id is not None and (pending is None or pending.id != req.interrupt_id):
                raise _conflict(
                    f"interrupt {req.interrupt_id} is no longer pending; someone acted on it first"
                )
            kind = pending.value.get("kind") if pending is not None else None
            owner = conv["owner_agent"]
            if owner and not _owns(conv, req):
                reassigns = req.may_reassign and req.action in _REASSIGNING
                if not reassigns:
                    raise ConversationOwned(f"{owner} owns this conversation")
            produced = await self._apply(tenant, conv, req, kind, dict(snapshot.values))
            if kind is not None or req.action in ("approve", "edit", "reject"):
                # The graph run committed its own writes: the owner's identity and the audit
                # entry follow right after it.
                async with tenant_scope(self.services.pool, tenant.id) as conn:
                    await self._record(conn, tenant, conv, req, kind)
            after = await conversations.get_conversation(
                self.services.pool, tenant.id, conversation_id
            )
            snapshot = await self.graph.aget_state(thread_config(conversation_id))
            now_pending = snapshot.interrupts[0] if snapshot.interrupts else None
        return ActionOutcome(
            action=req.action,
            events=produced,
            conversation={
                "id": after["id"],
                "status": after["status"],
                "escalation": after["escalation"],
                "owner_agent": after["owner_agent"],
            },
            pending=pending_view(now_pending) if now_pending is not None else None,
        )

    async def _record(
        self,
        db: Db,
        tenant: Tenant,
        conv: dict[str, Any],
        req: ActionRequest,
        kind: str | None,
    ) -> None:
        """Who now owns the conversation (by identity) and the audit entry of the action."""
        cid: uuid.UUID = conv["id"]
        if req.action in ("takeover", "reply", "close"):
            await conversations.set_owner_id(db, tenant.id, cid, req.identity)
        elif req.action == "release":
            await conversations.set_owner_id(db, tenant.id, cid, None)
        detail: dict[str, Any] = {"waiting_on": kind, "interrupt_id": req.interrupt_id}
        if conv["owner_agent"] and not _owns(conv, req):
            detail["reassigned_from"] = conv["owner_agent"]
        if req.action == "reject":
            detail.update(reason=req.reason, then=req.then)
        if req.text is not None:
            detail["chars"] = len(req.text)
        await audit.record(
            db,
            tenant.id,
            req.actor or Actor(req.agent),
            f"conversation.{req.action}",
            "conversation",
            cid,
            detail,
        )

    async def _apply(
        self,
        tenant: Tenant,
        conv: dict[str, Any],
        req: ActionRequest,
        kind: str | None,
        state: dict[str, Any],
    ) -> list[Event]:
        cid: uuid.UUID = conv["id"]
        pool = self.services.pool
        if req.action == "takeover":
            async with tenant_scope(pool, tenant.id) as conn:
                await conversations.set_status(
                    conn, tenant.id, cid, conv["status"], owner_agent=req.agent
                )
                await tickets.settle_open_ticket(
                    conn, tenant.id, cid, "in_progress", actor=req.actor or Actor(req.agent)
                )
                if kind is None:
                    await self._record(conn, tenant, conv, req, kind)
                    await self._update_thread(
                        tenant, cid, {"owner": "human", "agent_name": req.agent}
                    )
            return [("status", {"status": conv["status"], "owner_agent": req.agent})]

        if req.action in ("approve", "edit", "reject"):
            if kind != "approval":
                raise _conflict("no draft of this conversation waits for review")
            value: Any
            if req.action == "approve":
                value = Approve(action="approve", reviewer=req.agent)
            elif req.action == "edit":
                value = Edit(action="edit", text=req.text or "", reviewer=req.agent)
            else:
                value = Reject(
                    action="reject", reason=req.reason or "", then=req.then, reviewer=req.agent
                )
            produced = await self._resume(tenant, conv, value.model_dump())
            # The review is over: messages the customer sent meanwhile get their turns now.
            produced += [
                event
                async for event in answer_pending(
                    self.graph, self.services, tenant, cid, channel=conv["channel"]
                )
            ]
            return produced

        if kind == "approval":
            raise _conflict("a draft waits for review: approve, edit or reject it first")

        if req.action == "reply":
            if kind in _AGENT_WAITS:
                value = AgentReply(action="reply", text=req.text or "", agent=req.agent)
                produced = [
                    (name, {**data, "agent": req.agent} if name == "agent.message" else data)
                    for name, data in await self._resume(tenant, conv, value.model_dump())
                ]
                await self._settle(tenant, cid, "in_progress", req)
                return produced
            async with tenant_scope(pool, tenant.id) as conn:
                await conversations.set_status(
                    conn, tenant.id, cid, "active", owner_agent=req.agent
                )
                await tickets.settle_open_ticket(
                    conn, tenant.id, cid, "in_progress", actor=req.actor or Actor(req.agent)
                )
                await self._record(conn, tenant, conv, req, kind)
                return [await self._say(conn, tenant, cid, req.text or "", "agent", req.agent)]

        if req.action == "release":
            if kind in _AGENT_WAITS:
                value = Release(action="release", text=req.text, agent=req.agent)
                produced = await self._resume(tenant, conv, value.model_dump())
                await self._settle(tenant, cid, "resolved", req)
                return produced
            if not (state.get("owner") == "human" or conv["owner_agent"]):
                raise _conflict("the AI already answers this conversation; nothing to release")
            text = req.text or self.services.prompts.reply("released", tenant.business)
            async with tenant_scope(pool, tenant.id) as conn:
                await conversations.set_status(conn, tenant.id, cid, "active", owner_agent=None)
                await tickets.settle_open_ticket(
                    conn,
                    tenant.id,
                    cid,
                    "resolved",
                    actor=req.actor or Actor(req.agent),
                    summary=_RESOLVED_BY["release"],
                )
                await self._record(conn, tenant, conv, req, kind)
                streaks = {"low_confidence_streak": 0, "no_progress_streak": 0}
                return [
                    await self._say(conn, tenant, cid, text, "system", req.agent, extra=streaks)
                ]

        assert req.action == "close"
        if kind in _AGENT_WAITS:
            value = Close(action="close", text=req.text, agent=req.agent)
            produced = await self._resume(tenant, conv, value.model_dump())
            await self._settle(tenant, cid, "resolved", req)
            return produced
        text = req.text or self.services.prompts.reply("closed", tenant.business)
        async with tenant_scope(pool, tenant.id) as conn:
            await conversations.set_status(conn, tenant.id, cid, "closed", owner_agent=req.agent)
            await tickets.settle_open_ticket(
                conn,
                tenant.id,
                cid,
                "resolved",
                actor=req.actor or Actor(req.agent),
                summary=_RESOLVED_BY["close"],
            )
            await self._record(conn, tenant, conv, req, kind)
            return [await self._say(conn, tenant, cid, text, "system", req.agent)]

    async def _settle(
        self, tenant: Tenant, cid: uuid.UUID, status: TicketStatus, req: ActionRequest
    ) -> None:
        """The ticket follows an action that resumed the thread (after its graph run)."""
        async with tenant_scope(self.services.pool, tenant.id) as conn:
            await tickets.settle_open_ticket(
                conn,
                tenant.id,
                cid,
                status,
                actor=req.actor or Actor(req.agent),
                summary=_RESOLVED_BY.get(req.action, ""),
            )

    async def _resume(
        self, tenant: Tenant, conv: dict[str, Any], value: dict[str, Any]
    ) -> list[Event]:
        produced = [
            event
            async for event in resume_turn(
                self.graph, self.services, tenant, conv["id"], value, channel=conv["channel"]
            )
        ]
        failed = next((data for name, data in produced if name == "error"), None)
        if failed is not None:
            raise ActionFailed(failed["message"])
        return produced

    async def _update_thread(
        self, tenant: Tenant, conversation_id: uuid.UUID, values: dict[str, Any]
    ) -> None:
        # As if ``respond`` had just run: the thread ends there, and the next customer message
        # starts a fresh run that routes on the new owner. ``tenant`` binds a thread that has
        # not run yet (a conversation taken over before the customer wrote).
        await self.graph.aupdate_state(
            thread_config(conversation_id), {"tenant": tenant.slug, **values}, as_node="respond"
        )

    async def _say(
        self,
        conn: AsyncConnection[DictRow],
        tenant: Tenant,
        conversation_id: uuid.UUID,
        text: str,
        sender: Literal["agent", "system"],
        agent: str | None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> Event:
        """Send a message outside a graph run: into the transcript and the log (on ``conn``,
        in the caller's transaction), then into the thread, last: a thread update that fails
        rolls the rest back."""
        message_id = uuid.uuid4()
        owner = "human" if sender == "agent" else "ai"
        await conversations.add_message(
            conn,
            tenant.id,
            conversation_id,
            message_id=message_id,
            sender=sender,
            text=text,
            agent_name=agent,
        )
        sent = events.reply_sent(
            str(message_id),
            {"sender": sender, "text": text, "citations": [], "confidence": None},
            agent,
        )
        await conversations.append_event(
            conn, tenant.id, conversation_id, *sent, dedupe_key=f"reply:{message_id}"
        )
        await self._update_thread(
            tenant,
            conversation_id,
            {
                "messages": [
                    AIMessage(
                        content=text,
                        id=str(message_id),
                        name=sender,
                        additional_kwargs={"sender": sender, "citations": [], "confidence": None},
                    )
                ],
                "owner": owner,
                "agent_name": agent if sender == "agent" else None,
                **(extra or {}),
            },
        )
        return sent
