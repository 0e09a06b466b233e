"""Routers: pure functions of the state.

The nodes that know the tenant policy (classify, judge) write ``handoff_reason``; the routers
only read the state, so they are trivially testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from graph.policy import SMALLTALK, hard_blocked
from graph.state import SupportState


def route_after_guard(state: SupportState) -> Literal["safety", "classify"]:
    """A customer in danger is answered by ``safety`` before anything else decides."""
    return "safety" if state.get("safety") else "classify"


def route_after_safety(state: SupportState) -> Literal["human_turn", "handoff"]:
    """After the safety steps, a person: the agent who owns the conversation, or a hand-off."""
    return "human_turn" if state.get("owner") == "human" else "handoff"


def route_after_classify(
    state: SupportState,
) -> Literal["human_turn", "handoff", "respond", "retrieve"]:
    """Who handles this turn: the agent who owns it, a hand-off, a canned reply, or RAG."""
    if state.get("owner") == "human":
        return "human_turn"
    if state.get("handoff_reason"):
        return "handoff"
    guard: Mapping[str, Any] = state.get("guard") or {}
    if state.get("intent") in SMALLTALK or hard_blocked(guard):
        return "respond"
    return "retrieve"


def route_after_judge(state: SupportState) -> Literal["handoff", "draft", "approve", "respond"]:
    """Send, hold for approval, redraft once, or hand off."""
    if state.get("handoff_reason"):
        return "handoff"
    verdict: Mapping[str, Any] = state.get("verdict") or {}
    draft: Mapping[str, Any] = state.get("draft") or {}
    if not verdict.get("passed", False):
        return "draft"
    if verdict.get("review_reasons") and not draft.get("declined"):
        return "approve"
    return "respond"
