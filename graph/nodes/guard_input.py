"""guard_input: start a turn, store the customer's message, screen it.

The screening is :mod:`nlp.guard`: validity, normalisation and rule families, then an
embedding detector trained on ``prompts/guard_examples.csv``. What it blocks is never drafted
for; by default the conversation goes to a person (``TenantPolicy.handoff_on_blocked_input``),
otherwise the customer gets the ``blocked`` reply. The exception is the categories the tenant
lets the knowledge base answer (``TenantPolicy.kb_only_guard_categories``: privacy,
misinformation, professional advice, questions about the assistant itself): those turns go on
to retrieval, and only a grounded, confident answer from the knowledge base is sent, never free
text; when the knowledge base does not answer, a person does. A question a business's own
articles answer ("who should get a flu jab?") is then answered, while "write a post saying
vaccines are poison" still reaches nobody but an agent.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from graph import events
from graph.context import Context
from graph.policy import kb_only_verdict
from graph.services import Services
from graph.state import SupportState
from helpdesk import conversations
from helpdesk.tenancy import tenant_scope
from nlp.guard import MAX_MESSAGE_CHARS, load_guard, screen_rules
from nlp.hazards import detect_hazard
from nlp.verdicts import GuardVerdict

__all__ = ["MAX_MESSAGE_CHARS", "make", "message_uuid", "screen"]


def screen(text: str) -> GuardVerdict:
    """The verdict of the model-free layers (validity and rules) on one customer message.

    The node adds the embedding detector (:class:`nlp.guard.InputGuard`); this is the part
    that needs no model, for callers that must stay cheap.
    """
    return screen_rules(text).verdict


def message_uuid(conversation: uuid.UUID, message_id: str | None, turn: int) -> uuid.UUID:
    """A stable database id for a transcript message."""
    return uuid.uuid5(conversation, f"msg:{message_id or turn}")


def make(svc: Services) -> Any:
    """Build the node (trains the guard's detector once per process, see :func:`load_guard`)."""
    guard = load_guard(svc.prompts.root)
    # One embedding of the message for the guard, the classifier and retrieval, when they share
    # the model (the offline tier; OpenAI embeddings feed the KB, MiniLM the guard).
    same_model = guard.detector is not None and guard.detector.embeddings is svc.models.embeddings
    embed = svc.sentence_cache.embed if same_model else None

    async def guard_input(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        question = last.text if isinstance(last, HumanMessage) else ""
        turn = int(state.get("turn", 0)) + 1
        verdict = (await guard.ascreen(question, embed)).verdict

        ctx = runtime.context or Context()
        if state.get("tenant") and state["tenant"] != ctx.tenant:
            raise PermissionError(
                f"thread belongs to tenant {state['tenant']!r}, not {ctx.tenant!r}"
            )
        scope = await svc.scope(state, runtime)
        tenant, conv = scope.tenant, scope.conversation_id
        verdict = kb_only_verdict(verdict, tenant.rules)
        created = None
        async with tenant_scope(svc.pool, tenant.id) as db:
            await conversations.ensure_conversation(db, tenant.id, conv, ctx.channel)
            if last is not None and question:
                msg_id = str(message_uuid(conv, last.id, turn))
                created = events.message_created(msg_id, question)
                await conversations.add_message(
                    db,
                    tenant.id,
                    conv,
                    message_id=uuid.UUID(msg_id),
                    sender="customer",
                    text=question,
                )
                await conversations.append_event(
                    db, tenant.id, conv, *created, dedupe_key=f"customer:{msg_id}"
                )
        if created is not None:
            events.emit(runtime.stream_writer, created)
        return {
            "tenant": ctx.tenant,
            "channel": ctx.channel,
            "audience": ctx.audience,
            "question": question,
            "guard": verdict,
            # model-free, before anything else decides: see nlp/hazards.py
            "safety": detect_hazard(question),
            "turn": turn,
            "retrieved": [],
            "draft": None,
            "verdict": None,
            "attempts": 0,
            "feedback": "",
            "rejected": [],
            "handoff_reason": None,
            "reply": None,
            "handoff": None,
            "handoff_request": None,
            "owner": state.get("owner", "ai"),
        }

    return guard_input
