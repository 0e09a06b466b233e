"""Hand-off triggers: the tenant policy applied to one classified turn."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from graph.state import GuardVerdict, SupportState
from helpdesk.policy import TenantPolicy

SMALLTALK = frozenset({"greeting", "thanks", "goodbye"})


def hard_blocked(guard: Mapping[str, Any]) -> bool:
    """The input guard blocked the message and the knowledge base may not answer it either."""
    return bool(guard.get("blocked")) and not guard.get("kb_only")


def kb_only_verdict(guard: GuardVerdict, policy: TenantPolicy) -> GuardVerdict:
    """``guard`` with ``kb_only`` set when the policy lets the KB answer its category."""
    if guard["blocked"] and guard["category"] in policy.kb_only_guard_categories:
        return cast(GuardVerdict, {**guard, "kb_only": True})
    return guard


def handoff_trigger(state: SupportState, policy: TenantPolicy) -> str | None:
    """The reason this turn goes to a human before any drafting, or None.

    Checked in order: an explicit request, a blocked input, an always-human intent, a hand-off
    keyword, and M turns without progress.
    """
    intent = state.get("intent", "")
    guard: Mapping[str, Any] = state.get("guard") or {}
    question = state.get("question", "").lower()
    if intent == "human_request":
        return "explicit_request"
    if hard_blocked(guard):
        return f"blocked_input:{guard.get('category')}" if policy.handoff_on_blocked_input else None
    if intent in policy.always_human_intents and (
        float(state.get("intent_confidence", 1.0)) >= policy.always_human_min_confidence
    ):
        return f"intent:{intent}"
    for word in policy.handoff_keywords:
        if re.search(rf"\b{re.escape(word.lower())}\b", question):
            return f"keyword:{word}"
    streak = int(state.get("no_progress_streak", 0)) + (1 if state.get("is_repeat") else 0)
    if streak >= policy.max_turns_without_progress:
        return "no_progress"
    return None


def decline_trigger(state: SupportState, policy: TenantPolicy) -> str | None:
    """The reason a turn whose draft declined goes to a human instead, or None."""
    guard: Mapping[str, Any] = state.get("guard") or {}
    if guard.get("kb_only"):
        return f"blocked_input:{guard.get('category')}"  # flagged, and the KB does not answer it
    if state.get("intent") == "out_of_scope":
        return None  # off-topic chatter is answered politely, not escalated
    if int(state.get("low_confidence_streak", 0)) + 1 >= policy.low_confidence_turns:
        return "low_confidence"
    if int(state.get("no_progress_streak", 0)) + 1 >= policy.max_turns_without_progress:
        return "no_progress"
    return None
