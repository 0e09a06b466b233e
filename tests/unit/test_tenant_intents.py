"""A tenant's own intent examples are checked before they are stored."""

from __future__ import annotations

import pytest

from helpdesk.errors import InvalidInput
from helpdesk.intents import validate


def test_rows_are_trimmed_and_kept_in_order():
    assert validate([("  hi   there ", " greet_me "), ("price?", "prices")], "add") == [
        ("hi there", "greet_me"),
        ("price?", "prices"),
    ]


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ([], "no examples"),
        ([("ok", "Bad Label")], "row 1: intent 'Bad Label'"),
        ([("ok", "fine"), ("", "fine")], "row 2: the text"),
        ([("a\x00b", "fine")], "row 1: text"),
    ],
)
def test_a_bad_row_is_named(rows, named):
    with pytest.raises(InvalidInput, match=named):
        validate(rows, "add")


def test_a_replacing_set_needs_two_trainable_intents():
    with pytest.raises(InvalidInput, match="at least two intents"):
        validate([("a", "one"), ("b", "one"), ("c", "two")], "replace")
    assert len(validate([("a", "one"), ("b", "one"), ("c", "two"), ("d", "two")], "replace")) == 4
