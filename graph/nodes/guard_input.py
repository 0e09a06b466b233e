"""guard_input: start a turn, store the customer's message, screen it.

The offline guard is rule-based: prompt injection and jailbreak phrasing, requests for clearly
harmful content, and malformed input. What it blocks is never drafted for; by default the
conversation goes to a person (``TenantPolicy.handoff_on_blocked_input``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.services import Services, conversation_id
from graph.state import GuardVerdict, SupportState
from helpdesk import conversations

MAX_MESSAGE_CHARS = 4000

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "prompt_injection",
        re.compile(
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|"
            r"your|the)\b.{0,30}\b(instructions?|prompts?|rules|guidelines|directions)\b"
            r"|\b(system|developer|hidden|initial)\s+(prompt|message|instructions?)\b"
            r"|\b(reveal|print|show|repeat|leak)\b.{0,30}\b(your|the)\s+(instructions|prompt|"
            r"configuration|rules)\b"
            r"|\byou\s+are\s+now\b|\bfrom\s+now\s+on\s+you\b|\bnew\s+instructions?\s*:"
            r"|\bpretend\s+(to\s+be|you\s+are)\b|\bact\s+as\s+(an?\s+)?(unrestricted|unfiltered|"
            r"evil|jailbroken|dan)\b|\b(jailbreak|jailbroken|developer\s+mode|dan\s+mode|do\s+anything"
            r"\s+now)\b|\bno\s+(restrictions|filters|rules|limits)\b",
            re.IGNORECASE | re.DOTALL,
        ),
    ),
    (
        "harmful",
        re.compile(
            r"\b(how\s+(do\s+i|to|can\s+i)|help\s+me|instructions\s+(for|to))\b.{0,40}\b(make|build|"
            r"synthesi[sz]e|cook|buy|get)\b.{0,30}\b(bomb|explosives?|weapon|gun|meth|"
            r"drugs?|poison|malware|ransomware|virus)\b"
            r"|\b(kill|murder|hurt|poison|stalk)\s+(someone|somebody|him|her|them|my|a\s+person|people)\b"
            r"|\b(child\s+(porn|sexual)|csam)\b",
            re.IGNORECASE | re.DOTALL,
        ),
    ),
    (
        "self_harm",
        re.compile(
            r"\b(kill\s+myself|suicide|end\s+my\s+life|hurt\s+myself|self[- ]harm)\b", re.IGNORECASE
        ),
    ),
]


def screen(text: str) -> GuardVerdict:
    """Return the guard's verdict on one customer message."""
    stripped = text.strip()
    if not stripped:
        return GuardVerdict(blocked=True, category="invalid", reason="empty message")
    if len(stripped) > MAX_MESSAGE_CHARS:
        return GuardVerdict(
            blocked=True,
            category="invalid",
            reason=f"message is {len(stripped)} characters; the limit is {MAX_MESSAGE_CHARS}",
        )
    for category, pattern in _RULES:
        m = pattern.search(stripped)
        if m:
            return GuardVerdict(blocked=True, category=category, reason=f"matched {m.group(0)!r}")
    return GuardVerdict(blocked=False, category="ok", reason="")


def message_uuid(conversation: uuid.UUID, message_id: str | None, turn: int) -> uuid.UUID:
    """A stable database id for a transcript message."""
    return uuid.uuid5(conversation, f"msg:{message_id or turn}")


def make(svc: Services) -> Any:
    """Build the node."""

    async def guard_input(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        question = last.text if isinstance(last, HumanMessage) else ""
        turn = int(state.get("turn", 0)) + 1
        verdict = screen(question)

        ctx = runtime.context or Context()
        if state.get("tenant") and state["tenant"] != ctx.tenant:
            raise PermissionError(
                f"thread belongs to tenant {state['tenant']!r}, not {ctx.tenant!r}"
            )
        tenant = await svc.tenant(ctx.tenant)
        conv = conversation_id()
        await conversations.ensure_conversation(svc.pool, tenant.id, conv, ctx.channel)
        if last is not None and question:
            msg_id = message_uuid(conv, last.id, turn)
            await conversations.add_message(
                svc.pool, tenant.id, conv, message_id=msg_id, sender="customer", text=question
            )
            await conversations.append_event(
                svc.pool,
                tenant.id,
                conv,
                "message.created",
                {"message_id": str(msg_id), "sender": "customer", "text": question},
                dedupe_key=f"customer:{msg_id}",
            )
        return {
            "tenant": ctx.tenant,
            "channel": ctx.channel,
            "audience": ctx.audience,
            "question": question,
            "guard": verdict,
            "turn": turn,
            "retrieved": [],
            "draft": None,
            "verdict": None,
            "attempts": 0,
            "feedback": "",
            "handoff_reason": None,
            "reply": None,
            "handoff": None,
            "handoff_request": None,
            "owner": state.get("owner", "ai"),
        }

    return guard_input
