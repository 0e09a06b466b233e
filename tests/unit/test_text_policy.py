"""The text rule of every field a customer or an agent sends (``helpdesk/text_policy.py``):
printable Unicode, right-to-left scripts and bidi marks pass as they are; NUL, lone surrogates
and control characters are refused, and the offending field is named."""

from __future__ import annotations

import pytest

from helpdesk.text_policy import InvalidText, check_text, find_bad_text, text_problem
from tests.support.texts import ACCEPTED


@pytest.mark.parametrize("text", ACCEPTED)
def test_printable_unicode_rtl_and_bidi_marks_are_accepted_as_they_are(text: str) -> None:
    assert text_problem(text) is None
    assert check_text(text) == text


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff", "\x01", "\x1b[31m", "\x7f", "\x0b"])
def test_nul_lone_surrogates_and_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidText) as err:
        check_text(f"ok {bad}", "text")
    assert err.value.code == "invalid_input" and err.value.message.startswith("text: contains")
    assert find_bad_text({"customer": {f"k{bad}": "v"}}) is not None
    assert find_bad_text({"customer": {"k": ["x", bad]}})[0] == "customer.k[1]"
