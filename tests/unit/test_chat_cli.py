"""``deskgraph chat``'s slash commands on their own: their help, the answer to an unknown or
misplaced command, and the resume value each one becomes."""

from __future__ import annotations

import pytest

from cli.chat_commands import COMMANDS, Resume, help_text, parse_command


def test_help_lists_every_agent_command() -> None:
    text = help_text()
    for name in ("help", "reply", "release", "close", "approve", "edit", "reject"):
        assert f"/{name}" in text
    assert len(text.splitlines()) == len(COMMANDS) + 3  # a title, two group headings


@pytest.mark.parametrize("waiting", [None, "agent", "review"])
def test_help_and_unknown_commands_answer_in_plain_words(waiting) -> None:
    assert parse_command("/help", waiting, "sam") == help_text()
    unknown = parse_command("/frobnicate now", waiting, "sam")
    assert isinstance(unknown, str)
    assert unknown.splitlines()[0] == "unknown command /frobnicate"
    assert help_text() in unknown


def test_agent_commands_say_when_they_apply() -> None:
    assert parse_command("/approve", None, "sam") == (
        "/approve works while a draft waits for review; nothing waits for an agent now"
    )
    assert parse_command("/approve", "agent", "sam") == (
        "/approve works while a draft waits for review; here use /reply, /release, /close"
    )
    assert parse_command("/reply hi", "review", "sam") == (
        "/reply works once the conversation is handed to a person; here use /approve, /edit,"
        " /reject"
    )
    assert parse_command("/reply", "agent", "sam") == "/reply needs its text: /reply TEXT"
    assert parse_command("/edit  ", "review", "sam") == "/edit needs its text: /edit TEXT"
    too_long = parse_command("/reply " + "x" * 9000, "agent", "sam")
    assert isinstance(too_long, str) and too_long == (
        "/reply: text: String should have at most 8000 characters"
    )


def test_agent_commands_become_resume_values() -> None:
    assert parse_command("/reply  Hi there ", "agent", "sam") == Resume(
        {"action": "reply", "text": "Hi there", "agent": "sam"}, "agent"
    )
    assert parse_command("/release", "agent", "sam") == Resume(
        {"action": "release", "text": None, "agent": "sam"}, "agent"
    )
    assert parse_command("/APPROVE", "review", "sam") == Resume(
        {"action": "approve", "reviewer": "sam"}, "assistant"
    )
    assert parse_command("/reject", "review", "sam") == Resume(
        {
            "action": "reject",
            "reason": "rejected by the agent",
            "then": "redraft",
            "reviewer": "sam",
        },
        "assistant",
    )
