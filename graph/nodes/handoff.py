"""handoff, await_agent and human_turn: where the graph waits for a human agent.

``handoff`` opens (or updates) the conversation's ticket, marks the conversation
``waiting_human``, logs a ``handoff`` event and prepares a :class:`HandoffRequest`;
``await_agent`` interrupts with it.
``human_turn`` runs when an agent already owns the conversation: the customer's message is
passed to the agent and the graph waits for the agent's answer.

Everything before ``interrupt()`` re-runs when the graph resumes, so the interrupting nodes do
only idempotent work before it; side effects are also keyed by the turn (the ticket by
``handoff_key``, the events by ``dedupe_key``) so a crashed and retried node writes nothing twice.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph import events
from graph.context import Context
from graph.interrupts import (
    AgentReply,
    Close,
    HandoffRequest,
    HumanTurnRequest,
    KbSnippet,
    Release,
    TranscriptLine,
    ask_human,
    parse_agent_action,
)
from graph.services import RunScope, Services
from graph.state import Reply, SupportState
from helpdesk import contacts, conversations, hours, teams, tickets, users
from helpdesk.profile import BusinessProfile
from helpdesk.tenancy import Db, tenant_scope
from helpdesk.tenants import Tenant

TRANSCRIPT_LINES = 30
_PRIORITY = {"emergency": "urgent", "legal": "high", "complaint": "high", "blocked": "high"}


def transcript(state: SupportState) -> list[TranscriptLine]:
    """The last messages of the conversation, for the agent."""
    lines = []
    for m in (state.get("messages") or [])[-TRANSCRIPT_LINES:]:
        if isinstance(m, HumanMessage):
            lines.append(TranscriptLine(speaker="customer", text=m.text))
        elif isinstance(m, AIMessage):
            sender = (m.additional_kwargs or {}).get("sender", "ai")
            lines.append(TranscriptLine(speaker=sender, text=m.text))
    return lines


def offline_summary(state: SupportState, reason: str) -> str:
    """A short, factual summary for the agent, built without a model."""
    question = state.get("question", "")
    intent = state.get("intent", "unknown")
    asked = [m.text for m in (state.get("messages") or []) if isinstance(m, HumanMessage)]
    earlier = f" Earlier this conversation: {' | '.join(asked[-4:-1])}." if len(asked) > 1 else ""
    return f"Hand-off ({reason}). Latest customer message ({intent}): {question!r}.{earlier}"


async def _summary(svc: Services, scope: RunScope, state: SupportState, reason: str) -> str:
    # A safety hand-off must not wait on (or fail with) a model: the agent needs it now.
    chat = svc.models.chat
    if chat is None or state.get("safety"):
        return offline_summary(state, reason)
    lines = "\n".join(f"{t.speaker}: {t.text}" for t in transcript(state))
    messages = [
        SystemMessage(svc.prompts.summary_system),
        HumanMessage(f"Reason: {reason}\n\n{lines}"),
    ]

    async def ask(config: RunnableConfig) -> str:
        return (await chat.ainvoke(messages, config)).text.strip()

    # a failed call or an empty answer: the agent still gets the facts
    return await svc.ask_llm(scope, state, "handoff", ask) or offline_summary(state, reason)


async def _snippets(svc: Services, tenant: Tenant, state: SupportState) -> list[KbSnippet]:
    # Agents see internal articles too, so search again with the agent's audience.
    hits = await svc.kb.search(
        tenant.id, state.get("question", "") or "help", k=3, audience="agent"
    )
    return [
        KbSnippet(source_id=h["source_id"], title=h["title"], text=h["text"][:600]) for h in hits
    ]


async def apply_agent_action(
    svc: Services, scope: RunScope, action: AgentReply | Release | Close
) -> dict[str, Any]:
    """Turn an agent's (validated) action into a state update."""
    tenant, conv = scope.tenant, scope.conversation_id
    if isinstance(action, AgentReply):
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.set_status(db, tenant.id, conv, "active", owner_agent=action.agent)
        reply = Reply(
            text=action.text, sender="agent", citations=[], confidence=None, declined=False
        )
        return {"owner": "human", "reply": reply, "agent_name": action.agent}
    if isinstance(action, Release):
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.set_status(db, tenant.id, conv, "active", owner_agent=None)
        text = action.text or svc.prompts.reply("released", tenant.business)
        return {
            "owner": "ai",
            "reply": Reply(
                text=text,
                sender="system",
                citations=[],
                confidence=None,
                declined=False,
                acted_by=action.agent,
            ),
            "low_confidence_streak": 0,
            "no_progress_streak": 0,
        }
    assert isinstance(action, Close)
    async with tenant_scope(svc.pool, tenant.id) as db:
        await conversations.set_status(db, tenant.id, conv, "closed", owner_agent=action.agent)
    text = action.text or svc.prompts.reply("closed", tenant.business)
    return {
        "owner": "ai",
        "reply": Reply(
            text=text,
            sender="system",
            citations=[],
            confidence=None,
            declined=False,
            acted_by=action.agent,
        ),
    }


def handoff_message(
    svc: Services, business: BusinessProfile, now: datetime, *, nobody_online: bool = False
) -> tuple[str, bool]:
    """What the customer is told on a hand-off, and whether nobody can answer soon.

    A person replies shortly; or, when the profile's hours say the business is closed, when it
    opens again; or, in hours with staff accounts none of whom is online, as soon as someone can.
    The flag says to ask the customer how to reach them (they may not wait on the page).
    """
    if business.hours:
        status = hours.status_at(business, now)
        if not status.open and status.next_opens_at is not None:
            opens = status.next_opens_at
            when = f"{hours.day_label(opens.date(), status.local.date())} at "
            when += f"{hours.clock_text(opens)} ({opens.tzname()})"
            return svc.prompts.reply("handoff_after_hours", business, when=when), True
    if nobody_online:
        return svc.prompts.reply("handoff_nobody_online", business), True
    return svc.prompts.reply("handoff", business), False


async def _nobody_online(svc: Services, db: Db, tenant_id: uuid.UUID) -> bool:
    """Staff accounts exist and none of them is online now. A desk run with API keys only has
    no presence to read, so it is never said to be empty."""
    if not await users.list_users(db, tenant_id):
        return False
    online = await teams.online_count(
        db, tenant_id, away_after_s=svc.presence_away_after_s, idle_s=svc.presence_idle_s
    )
    return online == 0


def make_handoff(svc: Services) -> Any:
    """Build the ``handoff`` node: prepare everything the agent needs, once."""

    async def handoff(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        scope = await svc.scope(state, runtime)
        tenant, conv = scope.tenant, scope.conversation_id
        reason = state.get("handoff_reason") or "explicit_request"
        key = f"handoff:{state.get('turn', 0)}"
        summary = await _summary(svc, scope, state, reason)
        intents = list(dict.fromkeys(state.get("intents_seen") or []))
        async with tenant_scope(svc.pool, tenant.id) as db:
            ticket = await tickets.open_or_update_ticket(
                db,
                tenant.id,
                conv,
                handoff_key=key,
                subject=(state.get("question") or "Conversation")[:120],
                reason=reason,
                summary=summary,
                intents=intents,
                priority=(
                    "urgent"
                    if state.get("safety")
                    else _PRIORITY.get(state.get("intent", ""), "normal")
                ),
            )
            await conversations.set_status(
                db,
                tenant.id,
                conv,
                "waiting_human",
                escalation={"kind": "handoff", "reason": reason, "ticket_id": str(ticket["id"])},
            )
            info = {
                "reason": reason,
                "ticket_id": str(ticket["id"]),
                "ticket_number": int(ticket["number"]),
            }
            nobody = await _nobody_online(svc, db, tenant.id)
            # in a thread: the first use of a time zone reads the tz database from disk
            message, wait = await asyncio.to_thread(
                handoff_message, svc, tenant.business, svc.clock(), nobody_online=nobody
            )
            logged = events.handoff(reason, str(ticket["id"]), int(ticket["number"]), message)
            await conversations.append_event(db, tenant.id, conv, *logged, dedupe_key=key)
            row = await conversations.get_conversation(db, tenant.id, conv)
            if wait and row.get("contact_id") is None:
                # Nobody will answer while the customer waits: ask how to reach them, once per
                # hand-off (the node re-runs on resume; the dedupe key keeps it one event).
                await contacts.request_contact(
                    db,
                    tenant.id,
                    conv,
                    reason="nobody_online",
                    message=svc.prompts.reply("contact_request", tenant.business),
                    dedupe_key=f"contact:{key}",
                )
        request = HandoffRequest(
            reason=reason,
            summary=summary,
            intents=intents,
            kb_snippets=await _snippets(svc, tenant, state),
            suggested_next_steps=svc.prompts.next_steps.get(
                state.get("intent", ""), svc.prompts.next_steps["default"]
            ),
            transcript=transcript(state),
            ticket_id=str(ticket["id"]),
            ticket_number=int(ticket["number"]),
            message=message,
        )
        return {"handoff": info, "handoff_request": request.model_dump(mode="json")}

    return handoff


def make_await_agent(svc: Services) -> Any:
    """Build the ``await_agent`` node: the hand-off interrupt itself.

    It holds no side effect before ``interrupt()``: the summary (an LLM call on the LLM tier),
    the ticket and the event are made once by ``handoff``, not again on every resume.
    """

    async def await_agent(
        state: SupportState, runtime: Runtime[Context]
    ) -> Command[Literal["respond"]]:
        request = HandoffRequest.model_validate(state["handoff_request"])
        action = ask_human(request, parse_agent_action)
        scope = await svc.scope(state, runtime)
        return Command(goto="respond", update=await apply_agent_action(svc, scope, action))

    return await_agent


def make_human_turn(svc: Services) -> Any:
    """Build the ``human_turn`` node."""

    async def human_turn(
        state: SupportState, runtime: Runtime[Context]
    ) -> Command[Literal["respond"]]:
        scope = await svc.scope(state, runtime)
        async with tenant_scope(svc.pool, scope.tenant.id) as db:
            await conversations.set_status(
                db,
                scope.tenant.id,
                scope.conversation_id,
                "waiting_human",
                escalation={"kind": "human_turn"},
                owner_agent=state.get("agent_name"),
            )
        request = HumanTurnRequest(message=state.get("question", ""), transcript=transcript(state))
        action = ask_human(request, parse_agent_action)
        update = await apply_agent_action(svc, scope, action)
        return Command(goto="respond", update=update)

    return human_turn
