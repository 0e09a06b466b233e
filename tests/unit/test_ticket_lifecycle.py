"""The ticket lifecycle table and its messages, with nothing started (the moves on the real
database are in tests/integration/test_tickets.py)."""

from __future__ import annotations

import pytest

from helpdesk.errors import InvalidInput
from helpdesk.tickets import (
    OPEN_STATUSES,
    REOPEN_STATUS,
    STATUSES,
    TRANSITIONS,
    InvalidTransition,
    allowed_moves,
    check_transition,
)


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("to", STATUSES)
def test_check_transition_follows_the_table(current: str, to: str) -> None:
    if to in TRANSITIONS[current]:
        check_transition(current, to)
        return
    with pytest.raises(InvalidTransition) as err:
        check_transition(current, to)
    allowed = ", ".join(TRANSITIONS[current]) or "none (closed is final)"
    assert err.value.message == (
        f"a ticket cannot move from {current} to {to}; from {current} it may move to {allowed}"
    )


def test_every_open_ticket_may_be_resolved_and_only_resolved_reopens() -> None:
    for status in OPEN_STATUSES:
        assert "resolved" in allowed_moves(status), status
    back = [s for s in STATUSES if s not in OPEN_STATUSES and REOPEN_STATUS in allowed_moves(s)]
    assert back == ["resolved"]
    assert allowed_moves("closed") == ()


def test_an_unknown_status_is_invalid_input_not_a_transition() -> None:
    with pytest.raises(InvalidInput, match="status is one of"):
        check_transition("new", "lost")
    assert allowed_moves("lost") == ()
