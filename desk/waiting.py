"""A customer message while the conversation waits on a person: kept, never lost, no AI turn.

During a hand-off the message is the person's to answer; during a draft review it is also owed
its own AI turn after the review (:mod:`desk.after_review`). A customer in danger gets the
safety steps at once all the same (:func:`danger_while_waiting`).
"""

from __future__ import annotations

import logging
import uuid

from graph import events
from graph.events import Event
from graph.nodes.guard_input import message_uuid
from graph.safety import safety_reply
from graph.services import Services
from helpdesk import conversations, tickets
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant
from helpdesk.text_policy import check_text
from nlp.hazards import detect_hazard

log = logging.getLogger(__name__)


async def store_while_waiting(
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    text: str,
    *,
    message_id: str | None = None,
) -> Event:
    """Keep a customer message for the agent without waking the AI.

    ``message_id`` (from an Idempotency-Key) makes a retried store write nothing twice. While
    a draft is held for review the message also waits for its own AI turn after the review
    (``after_review`` in the event; :mod:`desk.after_review` runs it); during a hand-off it is
    the person's to answer. Text the desk refuses raises
    :class:`helpdesk.text_policy.InvalidText` before any write.
    """
    check_text(text, "text")
    key = message_id or str(uuid.uuid4())
    msg_id = message_uuid(conversation_id, key, 0)
    async with tenant_scope(services.pool, tenant.id) as db:
        conv = await conversations.get_conversation(db, tenant.id, conversation_id)
        after_review = conversations.waiting_on(conv["status"], conv["escalation"]) == "approval"
        await conversations.add_message(
            db,
            tenant.id,
            conversation_id,
            message_id=msg_id,
            sender="customer",
            text=text,
            pending_turn_key=key if after_review else None,
        )
        created = events.message_created(
            str(msg_id), text, queued_for_agent=True, after_review=after_review
        )
        await conversations.append_event(
            db, tenant.id, conversation_id, *created, dedupe_key=f"customer:{msg_id}"
        )
    return created


async def danger_while_waiting(
    services: Services, tenant: Tenant, conversation_id: uuid.UUID, stored: Event
) -> Event | None:
    """A customer in danger gets the safety steps at once, even while a person owns the
    conversation or a draft waits for review: nobody may have to wait on a reviewer or an
    agent's next look to read "leave the house, call the gas company". The steps are the same
    fixed, never-paraphrased reply the ``safety`` node sends (:func:`graph.safety.safety_reply`),
    and the conversation's open ticket becomes urgent, so it tops the queue. Keyed by the
    customer's message, so a retried store sends nothing twice. None when no hazard is named.
    """
    data = stored[1]
    alert = detect_hazard(data["text"])
    if alert is None:
        return None
    reply = await safety_reply(services, tenant, alert)
    question = uuid.UUID(data["message_id"])
    reply_id = uuid.uuid5(conversation_id, f"safety:{question}")
    sent = events.reply_sent(str(reply_id), {**reply, "in_reply_to": str(question)})
    async with tenant_scope(services.pool, tenant.id) as db:
        await conversations.add_message(
            db,
            tenant.id,
            conversation_id,
            message_id=reply_id,
            sender="ai",
            text=reply["text"],
            intent="emergency",
            citations=[dict(c) for c in reply["citations"]],
            in_reply_to=question,
        )
        await conversations.append_event(
            db, tenant.id, conversation_id, *sent, dedupe_key=f"reply:{reply_id}"
        )
        ticket = await tickets.open_ticket(db, tenant.id, conversation_id)
        if ticket is not None and ticket["priority"] != "urgent":
            await tickets.set_ticket_status(
                db, tenant.id, ticket["id"], ticket["status"], priority="urgent"
            )
    log.warning(
        "conversation %s: %s reported while waiting on a person", conversation_id, alert["hazard"]
    )
    return sent


def waiting_status(stored: Event) -> Event:
    """The ``status`` event after a message kept by :func:`store_while_waiting`: says what the
    conversation waits on, so a client can tell the customer the truth."""
    if stored[1].get("after_review"):
        return events.waiting_human(waiting_on="approval")
    return events.waiting_human()
