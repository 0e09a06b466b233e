"""Why a conversation waits on a person, in people's words, each reason once.

The judge and the hand-off triggers record reasons as ``code: detail`` (``price_above_limit:
$1,400.00 > $500.00``), one per finding, so a draft naming one price four times carries four
of them. Those codes are data (filters, metrics, the labelled review pairs); an agent reading
the queue needs one sentence per kind of reason instead. Unknown codes (a reason added later)
still read sensibly: their detail, or the code with spaces.
"""

from __future__ import annotations

import re

from graph import money

_MONEY = re.compile(money.MONEY_TEXT, re.IGNORECASE)

HANDOFF_WORDS = {
    "explicit_request": "The customer asked for a person",
    "intent": "Needs a person",
    "keyword": "Sensitive word",
    "blocked_input": "Message blocked by the input check",
    "low_confidence": "The AI could not answer",
    "no_progress": "No progress in the conversation",
    "judge_failed": "The answer failed its check twice",
    "draft_rejected": "A reviewer rejected the draft",
    "quote_over_limit": "A quote above what the AI may give",
    "customer_replied": "The customer wrote again",
    "handoff": "Handed to a person",
}
"""Hand-off reasons (``graph/policy.py``) in words; a ``code:detail`` reason adds its detail."""


def _split(reason: str) -> tuple[str, str]:
    code, _, detail = reason.partition(":")
    return code.strip(), detail.strip()


def review_codes(reasons: list[str]) -> list[str]:
    """The distinct codes of ``code: detail`` reasons, in order (``price_above_limit``)."""
    return list(dict.fromkeys(_split(r)[0] for r in reasons if r.strip()))


def review_reason_texts(reasons: list[str]) -> list[str]:
    """Why a draft is held, one sentence per kind of reason (duplicates merged)."""
    grouped: dict[str, list[str]] = {}
    for reason in reasons:
        if reason.strip():
            code, detail = _split(reason)
            grouped.setdefault(code, []).append(detail)
    return [_review_text(code, list(dict.fromkeys(details))) for code, details in grouped.items()]


def _review_text(code: str, details: list[str]) -> str:
    if code == "price_above_limit":
        amounts = [_MONEY.findall(d) for d in details]
        prices = list(dict.fromkeys(a[0] for a in amounts if a))
        limit = next((a[-1] for a in amounts if len(a) > 1), None)
        above = f"above the {limit} limit" if limit else "above the price limit"
        named = f": {', '.join(prices)}" if prices else ""
        return f"It quotes a price {above}{named}"
    if code == "channel":
        channel = details[0].split()[0] if details and details[0] else "this channel's"
        return f"Answers by {channel} are always checked by a person"
    if code == "policy":
        return "Your policy: every answer is checked by a person"
    if code == "confidence":
        numbers = re.findall(r"\d+(?:\.\d+)?", details[0] if details else "")
        if len(numbers) >= 2:
            return (
                f"The AI is not sure enough to send it alone (confidence {numbers[0]},"
                f" sends alone from {numbers[1]})"
            )
        return "The AI is not sure enough to send it alone"
    text = "; ".join(d for d in details if d) or code.replace("_", " ")
    return text[:1].upper() + text[1:]


def handoff_reason_text(reason: str) -> str:
    """A hand-off reason (``explicit_request``, ``intent:billing_change``) in words."""
    code, detail = _split(reason)
    words = HANDOFF_WORDS.get(code)
    if words is None:
        return (reason.replace("_", " ") or "Handed to a person").capitalize()
    return f"{words}: {detail.replace('_', ' ')}" if detail else words
