"""respond: send this turn's reply, stream it, store it, update the counters.

The reply is streamed (``token`` events, :mod:`graph.events`) only here, after the judge and any
approval, so a customer never sees text that failed the guardrail or that a reviewer changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from graph import events
from graph.context import Context
from graph.nodes.guard_input import message_uuid
from graph.policy import SMALLTALK, hard_blocked
from graph.services import RunScope, Services
from graph.state import Reply, SupportState
from helpdesk import contacts, conversations, kb_misses, leads
from helpdesk.profile import BusinessProfile
from helpdesk.tenancy import tenant_scope

_PIECE = re.compile(r"\S+\s*")


def compose_reply(svc: Services, state: SupportState, business: BusinessProfile) -> Reply:
    """The reply of a turn that no human wrote or approved, in ``business``'s words."""
    intent = state.get("intent", "")
    guard: Mapping[str, Any] = state.get("guard") or {}
    draft = state.get("draft")
    if hard_blocked(guard):
        return Reply(
            text=svc.prompts.reply("blocked", business),
            sender="system",
            citations=[],
            confidence=None,
            declined=True,
        )
    if intent in SMALLTALK and draft is None:
        return Reply(
            text=svc.prompts.reply(intent, business),
            sender="ai",
            citations=[],
            confidence=1.0,
            declined=False,
        )
    assert draft is not None, "respond without a reply needs a draft"
    if draft["declined"] and intent == "out_of_scope":
        return Reply(
            text=svc.prompts.reply("out_of_scope", business),
            sender="ai",
            citations=[],
            confidence=draft["confidence"],
            declined=True,
        )
    return Reply(
        text=draft["text"],
        sender="ai",
        citations=draft["citations"],
        confidence=draft["confidence"],
        declined=draft["declined"],
    )


_PRICE = re.compile(r"\$\s?\d")


def with_disclaimer(reply: Reply, business: BusinessProfile) -> Reply:
    """An AI answer that quotes a price ends with the business's estimate disclaimer, if it has
    one ("Prices are estimates until a technician has seen the job."). Added here, after the
    judge (the disclaimer is the business's own words, not a claim from an article) and after
    any approval, so every AI answer with a price carries it, approved or not."""
    disclaimer = business.chat.estimate_disclaimer
    if not disclaimer or reply["sender"] != "ai" or not _PRICE.search(reply["text"]):
        return reply
    if disclaimer in reply["text"]:
        return reply
    return Reply(**{**reply, "text": f"{reply['text']}\n\n{disclaimer}"})


async def contact_before_quote(
    svc: Services, state: SupportState, scope: RunScope, reply: Reply
) -> bool:
    """Whether this AI answer is a price the profile wants contact details before
    (``chat.require_contact_before_quote``) from a customer who has given none. Then the price
    is held back, the customer is asked (a ``contact.request`` event, on which the widget shows
    its form) and, once they answer, the conversation's quote request becomes a lead
    (``desk.contacts.offer_contact``); asked again, they get the price.

    Only the AI's own answers are gated: a draft a person approved goes out as approved.
    """
    business = scope.tenant.business
    if not business.chat.require_contact_before_quote or reply["sender"] != "ai":
        return False
    if reply["declined"] or state.get("intent") not in leads.QUOTE_INTENTS:
        return False
    if not _PRICE.search(reply["text"]):
        return False  # "we quote on site, free": nothing to hold back
    tenant, conv = scope.tenant, scope.conversation_id
    async with tenant_scope(svc.pool, tenant.id) as db:
        row = await conversations.get_conversation(db, tenant.id, conv)
        if row.get("contact_id") is not None:
            return False
        await contacts.request_contact(
            db,
            tenant.id,
            conv,
            reason="before_quote",
            message=svc.prompts.reply("contact_request", business),
            dedupe_key=f"quote:{int(state.get('turn', 0))}",
        )
    return True


def question_id(conv: uuid.UUID, state: SupportState) -> uuid.UUID | None:
    """The database id of the customer message this turn answers (the thread's last customer
    message, stored by ``guard_input`` under this id), or None before the customer wrote."""
    question = next(
        (m for m in reversed(state.get("messages") or []) if isinstance(m, HumanMessage)), None
    )
    if question is None:
        return None
    return message_uuid(conv, question.id, int(state.get("turn", 0)))


async def deliver(
    svc: Services, state: SupportState, runtime: Runtime[Context], reply: Reply
) -> dict[str, Any]:
    """Stream, store and log ``reply``; return the state update (reply, transcript, counters).

    ``respond`` sends every ordinary reply through it; the ``safety`` node sends its message
    the same way before the hand-off, so a customer in danger reads the steps at once.
    """
    scope = await svc.scope(state, runtime)
    tenant, conv = scope.tenant, scope.conversation_id
    turn = int(state.get("turn", 0))
    message_id = uuid.uuid5(conv, f"reply:{turn}:{reply['sender']}")
    # An answer may go out after later customer messages (a held draft approved once the
    # customer wrote again): it names its question, so it never reads as answering those.
    in_reply_to = question_id(conv, state)
    reply = Reply(**{**reply, "in_reply_to": str(in_reply_to) if in_reply_to else None})
    reply = with_disclaimer(reply, tenant.business)

    # The agent who answered, so transcripts and events can name them.
    # A release or close names the agent who did it (``acted_by``), as the desk's own do.
    agent = state.get("agent_name") if reply["sender"] == "agent" else reply.get("acted_by")
    for piece in _PIECE.findall(reply["text"]):
        events.token(runtime.stream_writer, piece, str(message_id))

    sent = events.reply_sent(str(message_id), reply, agent)
    declined = reply["declined"] and reply["sender"] == "ai"
    counted = declined and state.get("intent") != "out_of_scope"
    async with tenant_scope(svc.pool, tenant.id) as db:
        await conversations.add_message(
            db,
            tenant.id,
            conv,
            message_id=message_id,
            sender=reply["sender"],
            text=reply["text"],
            intent=state.get("intent"),
            confidence=reply["confidence"],
            citations=[dict(c) for c in reply["citations"]],
            agent_name=agent,
            in_reply_to=in_reply_to,
        )
        await conversations.append_event(
            db, tenant.id, conv, *sent, dedupe_key=f"reply:{message_id}"
        )
        if counted and state.get("audience", "customer") == "customer":
            # A knowledge gap: the question the knowledge base had nothing good for, logged
            # once per reply (its id), in the reply's transaction.
            hits = state.get("retrieved") or []
            await kb_misses.record(
                db,
                tenant.id,
                source="chat",
                query=state.get("question", ""),
                top_score=float(hits[0]["score"]) if hits else None,
                conversation_id=conv,
                miss_id=message_id,
            )
    events.emit(runtime.stream_writer, sent)

    update: dict[str, Any] = {
        "reply": reply,
        "messages": [
            AIMessage(
                content=reply["text"],
                id=str(message_id),
                name=reply["sender"],
                additional_kwargs={
                    "sender": reply["sender"],
                    "citations": reply["citations"],
                    "confidence": reply["confidence"],
                    "declined": reply["declined"],
                },
            )
        ],
    }
    if state.get("owner", "ai") == "ai" and reply["sender"] == "ai":
        update["low_confidence_streak"] = (
            int(state.get("low_confidence_streak", 0)) + 1 if counted else 0
        )
        no_progress = counted or bool(state.get("is_repeat"))
        update["no_progress_streak"] = (
            int(state.get("no_progress_streak", 0)) + 1 if no_progress else 0
        )
    return update


def make(svc: Services) -> Any:
    """Build the node."""

    async def respond(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        reply = state.get("reply")
        if reply is None:
            scope = await svc.scope(state, runtime)
            reply = compose_reply(svc, state, scope.tenant.business)
            if await contact_before_quote(svc, state, scope, reply):
                reply = Reply(
                    text=svc.prompts.reply("contact_before_quote", scope.tenant.business),
                    sender="ai",
                    citations=[],
                    confidence=None,
                    declined=False,
                )
        return await deliver(svc, state, runtime, reply)

    return respond
