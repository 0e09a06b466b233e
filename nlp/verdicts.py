"""What the language pieces decide about a customer message, as the graph's state stores it.

Plain typed dicts (a checkpoint holds them as JSON), defined here rather than in
``graph.state`` so that the guard can return them without importing the graph.
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
