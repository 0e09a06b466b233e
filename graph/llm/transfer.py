"""A model that says it is handing the customer over, instead of calling ``request_handoff``.

A known failure of LLM desks: the answer reads "I'm transferring you to an agent now" and
nothing happens, so the customer waits for nobody. A draft that says so is not sent; the turn
is handed off for real (reason ``transfer_in_text``).
"""

from __future__ import annotations

import re

_TRANSFER = re.compile(
    r"\b(i(?:'m| am| will|'ll)|let me|we(?:'re| are| will|'ll))\s+(?:now\s+)?"
    r"(transfer(?:ring)?|connect(?:ing)?|put(?:ting)? you through|pass(?:ing)? you|"
    r"hand(?:ing)? (?:you|this) (?:over|off)|escalat(?:e|ing))"
    r"|\b(an?|one of our) (agent|human|person|team member|representative|technician) will be"
    r" with you\b"
    r"|\btransferring you\b",
    re.IGNORECASE,
)


def promises_transfer(text: str) -> bool:
    """Whether ``text`` tells the customer they are being handed to a person."""
    return bool(_TRANSFER.search(text))
