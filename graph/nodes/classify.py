"""classify: rules, then the embedding classifier, then (only when unsure) the LLM.

Rules catch what must never be missed or needs no model: explicit requests for a person and
short greetings / thanks / goodbyes. The classifier gives intent, confidence and out-of-scope.
With the LLM tier, the model is asked only when the classifier's confidence is below
``LLM_BELOW``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from graph.context import Context
from graph.llm.structured import structured
from graph.policy import handoff_trigger, hard_blocked, informational_intent
from graph.services import RunScope, Services
from graph.state import SupportState
from nlp.classifier import OUT_OF_SCOPE
from nlp.text import jaccard

LLM_BELOW = 0.6
REPEAT_SIMILARITY = 0.6

_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect|put)\b.{0,25}\b(to|with|me\s+through\s+to)\b.{0,20}"
    r"\b(person|human|agent|someone|somebody|representative|rep|operator|manager|staff|"
    r"real\s+people|live\s+(agent|person))\b"
    r"|\b(human|live|real)\s+(agent|person|being|support)\b"
    r"|\b(call\s+me(\s+back)?|callback|phone\s+me)\b"
    r"|^\s*(agent|human|representative|operator)\s*[.!?]*\s*$",
    re.IGNORECASE,
)
_SMALLTALK = [
    (
        "greeting",
        re.compile(
            r"^\s*(hi+|hello+|hey+|hiya|good\s+(morning|afternoon|evening)|"
            r"greetings|howdy|yo)\b[\s!.,]*(there|team|folks)?[\s!.,]*$",
            re.I,
        ),
    ),
    (
        "thanks",
        re.compile(
            r"^\s*(thanks?( you)?|thank\s*u|thx|ty|cheers|much appreciated|"
            r"great,? thanks?|perfect,? thanks?|that helps?(ed)?)\b[\s!.,]*"
            r"(so much|a lot|very much)?[\s!.,]*$",
            re.I,
        ),
    ),
    (
        "goodbye",
        re.compile(
            r"^\s*(bye+|goodbye|see (you|ya)|that'?s all|have a (good|nice) "
            r"(day|one))\b[\s!.,]*$",
            re.I,
        ),
    ),
]


class _LlmIntent(BaseModel):
    """The intent of a customer message."""

    intent: str = Field(
        max_length=60, description="One of the allowed intent labels, or out_of_scope."
    )
    confidence: float = Field(ge=0, le=1)


def rule_intent(text: str) -> str | None:
    """The intent decided by rules alone, if any."""
    if _HUMAN.search(text):
        return "human_request"
    for intent, pattern in _SMALLTALK:
        if pattern.match(text):
            return intent
    return None


def make(svc: Services) -> Any:
    """Build the node."""

    async def classify(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        question = state.get("question", "")
        previous = [
            m.text for m in (state.get("messages") or [])[:-1] if isinstance(m, HumanMessage)
        ]
        is_repeat = bool(previous) and jaccard(previous[-1], question) >= REPEAT_SIMILARITY
        update: dict[str, Any] = {"is_repeat": is_repeat, "kb_only_reason": None}
        scope = await svc.scope(state, runtime)
        tenant = scope.tenant
        policy = tenant.rules
        guard: Mapping[str, Any] = state.get("guard") or {}
        if hard_blocked(guard):
            update |= {"intent": "blocked", "intent_confidence": 1.0, "intent_source": "guard"}
            return update | {
                "handoff_reason": handoff_trigger(cast(SupportState, {**state, **update}), policy)
            }

        ruled = rule_intent(question)
        if ruled:
            intent, confidence, source = ruled, 1.0, "rules"
        else:
            # the embedding cache: the guard embedded this text already, retrieval reuses it
            vector = (await svc.sentence_cache.embed([question]))[0]
            classifier = await svc.classifier_for(tenant)
            pred = await classifier.apredict(question, vector)
            intent, confidence, source = pred.intent, pred.confidence, "classifier"
            if svc.models.chat is not None and confidence < LLM_BELOW:
                llm = await _ask_llm(svc, scope, state, question, classifier.labels)
                if llm is not None:
                    intent, confidence, source = llm.intent, llm.confidence, "llm"
        seen = [*(state.get("intents_seen") or []), intent]
        update |= {
            "intent": intent,
            "intent_confidence": confidence,
            "intent_source": source,
            "intents_seen": seen[-20:],
        }
        if state.get("owner") == "human":
            return update  # the agent who owns the conversation decides, not the triggers
        turn = cast(SupportState, {**state, **update})
        return update | {
            "handoff_reason": handoff_trigger(turn, policy),
            "kb_only_reason": informational_intent(turn, policy),
        }

    return classify


async def _ask_llm(
    svc: Services, scope: RunScope, state: SupportState, question: str, intents: list[str]
) -> _LlmIntent | None:
    """The model's intent, or None (a failed call, or a label outside the set): then the
    classifier's answer stands."""
    chat = svc.models.chat
    assert chat is not None
    labels = [*intents, OUT_OF_SCOPE]
    messages = [
        SystemMessage(
            svc.prompts.classify_system.format(
                labels=", ".join(labels), **svc.prompts.business_values(scope.tenant.business)
            )
        ),
        HumanMessage(question),
    ]

    async def ask(config: RunnableConfig) -> _LlmIntent:
        return await structured(chat, _LlmIntent, messages, svc.models.llm.structured, config)

    result = await svc.ask_llm(scope, state, "classify", ask)
    if result is None or result.intent not in labels:
        return None  # an answer outside the label set is ignored, the classifier's stands
    return result
