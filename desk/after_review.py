"""Customer messages that arrive while a draft is held for review: answered after it, in order.

While the thread waits on a reviewer, a new customer message cannot start a graph run (the
thread is interrupted), and it must not vanish either. What the desk does (issue 19, item 2):

* **Stored and shown.** :func:`desk.waiting.store_while_waiting` stores it at once, marks it as
  owed a turn (``messages.pending_turn_key``) and tells the customer the truth ("a team member
  is checking an answer; your new message will be answered after it"). The reviewer sees it in
  the transcript, and the queue card counts it ("N new messages since this draft").
* **The held answer first, tied to its question.** When the reviewer approves or edits, the
  held answer is sent with ``in_reply_to`` = the question it answers (the widget quotes that
  question), so it never reads as the answer to the later messages.
* **Then each later message, as its own turn.** :func:`answer_pending` runs the owed turns one
  by one, oldest first, exactly as if the customer had sent them then. A turn that is held for
  review again stops the run: the messages behind it wait for that review. A turn (or a
  rejection) that hands the conversation to a person leaves the rest with that person: they are
  in the transcript the agent answers from, and no longer owed an AI turn.

:func:`answer_pending` runs wherever a review can end or a turn can start, always while the
caller holds the conversation (:class:`desk.gate.ConversationGate`): after an agent's review
action (:class:`desk.actions.AgentDesk`, from the API or ``deskgraph chat``'s ``/approve``),
before a new customer turn, and after storing a message whose review ended while it was being
stored (so a message that races the end of a review is still answered).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from desk.stream import Graph
from desk.turns import run_turn
from graph.events import Event
from graph.services import Services
from helpdesk import conversations
from helpdesk.tenants import Tenant


async def review_ended(services: Services, tenant: Tenant, conversation_id: uuid.UUID) -> bool:
    """Whether the conversation no longer waits on a draft review (so owed turns can run)."""
    conv = await conversations.get_conversation(services.pool, tenant.id, conversation_id)
    return conversations.waiting_on(conv["status"], conv["escalation"]) != "approval"


async def answer_pending(
    graph: Graph,
    services: Services,
    tenant: Tenant,
    conversation_id: uuid.UUID,
    *,
    channel: str = "web",
) -> AsyncIterator[Event]:
    """Run the turns the AI owes messages stored during a review, oldest first; yield their
    events (without their ``done``: they are part of the caller's stream). The caller holds
    the conversation."""
    pool = services.pool
    while True:
        owed = await conversations.pending_turns(pool, tenant.id, conversation_id)
        if not owed:
            return
        conv = await conversations.get_conversation(pool, tenant.id, conversation_id)
        if conv["status"] != "active":
            if conversations.waiting_on(conv["status"], conv["escalation"]) != "approval":
                # Handed off (or closed): a person answers these now, from the transcript.
                await conversations.settle_pending_turns(pool, tenant.id, conversation_id)
            return  # still (or again) under review: answered after that review
        message = owed[0]
        try:
            async for event in run_turn(
                graph,
                services,
                tenant,
                conversation_id,
                message["text"],
                channel=channel,
                message_id=message["pending_turn_key"],
            ):
                if event[0] != "done":
                    yield event
        finally:
            # Whatever the turn did (answered, held, handed off, failed and said so), the
            # message had its turn; a crash before this line leaves it owed, to run again.
            await conversations.settle_pending_turns(
                pool, tenant.id, conversation_id, message["id"]
            )
