"""What the language pieces decide about a customer message, as the graph's state stores it.

Plain typed dicts (a checkpoint stores them as plain data), defined here rather than in
``graph.state`` so that the guard and the hazard rules return them without importing the graph.
"""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict


class GuardVerdict(TypedDict):
    """What the input guard decided about the customer's message."""

    blocked: bool
    category: str
    reason: str
    kb_only: NotRequired[bool]
    """Blocked in a category the tenant lets the knowledge base answer
    (``TenantPolicy.kb_only_guard_categories``): the turn goes on, but only a grounded,
    confident draft is sent; a declined one goes to a person."""


class SafetyAlert(TypedDict):
    """A hazard recognised in the customer's message (:mod:`nlp.hazards`)."""

    hazard: str
    """gas, carbon_monoxide, flooding, electrical, fire or injury (``helpdesk.policy.Hazard``)."""
    phrase: str
    """The words that matched, for the agent and the logs."""
