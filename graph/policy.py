"""Hand-off triggers: the tenant policy applied to one classified turn."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from graph.state import SupportState
from helpdesk.policy import TenantPolicy
from nlp.verdicts import GuardVerdict

SMALLTALK = frozenset({"greeting", "thanks", "goodbye"})


def hard_blocked(guard: Mapping[str, Any]) -> bool:
    """The input guard blocked the message and the knowledge base may not answer it either."""
    return bool(guard.get("blocked")) and not guard.get("kb_only")


def kb_only_verdict(guard: GuardVerdict, policy: TenantPolicy) -> GuardVerdict:
    """``guard`` with ``kb_only`` set when the policy lets the KB answer its category."""
    if guard["blocked"] and guard["category"] in policy.kb_only_guard_categories:
        return cast(GuardVerdict, {**guard, "kb_only": True})
    return guard


_QUESTION_START = re.compile(
    r"^(what|what's|whats|how|how's|when|where|which|who|whom|whose|why|is|are|am|was|were|"
    r"do|does|did|can|could|may|should|will|would|has|have|if|in what|for how)\b"
)
_ACT_START = re.compile(
    r"^(please|pls|plz|kindly|cancel|refund|stop|change|update|remove|delete|close|end|"
    r"terminate|reverse|undo|fix|correct|send|put|switch|transfer|charge|bill|give)\b"
)
_ASKS_TO_ACT = re.compile(
    r"\b(please|pls|plz|i want|i wanna|i'd like|i would like|i need you|i need to|i have to|"
    r"i must|i demand|i expect|i insist|i'm going to|i am going to|i'll|i will|we want|"
    r"we'd like|we need to|can you|could you|would you|will you|can u|could u)\b"
)
_GRIEVANCE = re.compile(
    r"\b(you|your \w+|the \w+ you sent)\s+(guys\s+)?(charged|billed|overcharged|damaged|broke|"
    r"ruined|flooded|scratched|lost|hurt|injured|ignored|lied|never|didn't|did not|won't|"
    r"refused|failed)\b|\b(twice|double charged|unacceptable|ridiculous|scam|liable|"
    r"compensation|negligen\w*)\b|\bdid (you|your \w+) (\w+ )?(charge|bill|overcharge|damage|"
    r"break|ruin|flood|scratch|lose|hurt|ignore|cancel)\b"
)


def asks_for_information(text: str) -> bool:
    """Whether a message asks how things work rather than asking the desk to act on a case.

    "How much is the cancellation fee?", "Is there a small claims court?", "how do I cancel my
    appointment?" ask for what a knowledge base can say. "Cancel my visit tomorrow", "I want a
    refund", "can you change the name on my invoice" and "you charged me twice?" ask a person to
    do something, or report a grievance, and stay with a person. A question is a message that
    starts like one or ends with a question mark; a request names an action in the imperative,
    asks someone to act ("I want", "can you", "please"), or complains of something done to the
    customer. Unsure reads as a request: the cost of handing an informational question to a
    person is a wait, the cost of answering a request with an article is a customer ignored.
    """
    t = re.sub(r"\s+", " ", text.lower().replace("\u2019", "'")).strip()
    if not t:
        return False
    is_question = bool(_QUESTION_START.match(t)) or t.rstrip().endswith("?")
    if not is_question or _ACT_START.match(t):
        return False
    return not (_ASKS_TO_ACT.search(t) or _GRIEVANCE.search(t))


def informational_intent(state: SupportState, policy: TenantPolicy) -> str | None:
    """``intent:<name>`` when an always-human intent arrives as an informational question.

    Such a turn is answered only if the knowledge base answers it (grounded and confident, as
    for the guard's KB-only categories); a declined draft hands off with this reason
    (:func:`decline_trigger`). ``TenantPolicy.answer_informational_questions`` turns it off.
    """
    intent = state.get("intent", "")
    if (
        policy.answer_informational_questions
        and _always_human(state, policy)
        and asks_for_information(state.get("question", ""))
    ):
        return f"intent:{intent}"
    return None


def _sure(state: SupportState, policy: TenantPolicy) -> bool:
    # the rules' explicit phrasings ("talk to a person") come with confidence 1.0
    return float(state.get("intent_confidence", 1.0)) >= policy.always_human_min_confidence


def _always_human(state: SupportState, policy: TenantPolicy) -> bool:
    return state.get("intent", "") in policy.always_human_intents and _sure(state, policy)


def handoff_trigger(state: SupportState, policy: TenantPolicy) -> str | None:
    """The reason this turn goes to a human before any drafting, or None.

    Checked in order: an explicit request (a classifier's guess at one needs
    ``always_human_min_confidence``, like the always-human intents), a blocked input, an
    always-human intent (unless it is asked as an informational question,
    :func:`informational_intent`), a hand-off keyword, and M turns without progress.
    """
    intent = state.get("intent", "")
    guard: Mapping[str, Any] = state.get("guard") or {}
    question = state.get("question", "").lower()
    if intent == "human_request" and _sure(state, policy):
        return "explicit_request"
    if hard_blocked(guard):
        return f"blocked_input:{guard.get('category')}" if policy.handoff_on_blocked_input else None
    if _always_human(state, policy) and informational_intent(state, policy) is None:
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
    if state.get("kb_only_reason"):
        return state.get("kb_only_reason")  # an always-human topic the KB does not answer
    if state.get("intent") == "out_of_scope":
        return None  # off-topic chatter is answered politely, not escalated
    if int(state.get("low_confidence_streak", 0)) + 1 >= policy.low_confidence_turns:
        return "low_confidence"
    if int(state.get("no_progress_streak", 0)) + 1 >= policy.max_turns_without_progress:
        return "no_progress"
    return None
