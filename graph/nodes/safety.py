"""safety: a customer in danger gets the safety steps at once, then a person, as urgent.

Runs right after ``guard_input`` when :func:`nlp.hazards.detect_hazard` recognised a hazard,
on both tiers and whoever owns the conversation, before classification, retrieval or any model:
the message is the tenant's safety article word for word or the fixed emergency message
(:func:`graph.safety.safety_reply`), sent through ``respond``'s :func:`deliver` so it is streamed,
stored and logged like any reply. It is never held for approval. Then the conversation goes to a
person: ``handoff`` (an urgent ticket, reason ``safety:<hazard>``) or, when an agent already owns
it, ``human_turn``.
"""

from __future__ import annotations

from typing import Any, cast

from langgraph.runtime import Runtime

from graph.context import Context
from graph.nodes.respond import deliver
from graph.safety import safety_reply
from graph.services import Services
from graph.state import SupportState
from nlp.verdicts import SafetyAlert

INTENT = "emergency"


def make(svc: Services) -> Any:
    """Build the node."""

    async def safety(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        alert = cast(SafetyAlert, state["safety"])
        tenant = (await svc.scope(state, runtime)).tenant
        reply = await safety_reply(svc, tenant, alert)
        update = {
            "intent": INTENT,
            "intent_confidence": 1.0,
            "intent_source": "safety",
            "intents_seen": [*(state.get("intents_seen") or []), INTENT][-20:],
            "handoff_reason": f"safety:{alert['hazard']}",
        }
        sent = await deliver(svc, cast(SupportState, {**state, **update}), runtime, reply)
        return update | sent

    return safety
