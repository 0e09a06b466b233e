"""Ticket commands in words, parsed by rules: the issue's four examples, priority words, bulk
lists, and a question back (never a guess) for words that do not say enough. The LLM's
reading is used only when it is a valid command naming no ticket the words do not."""

from __future__ import annotations

import pytest

from desk.ticket_commands import understand
from helpdesk.ticket_commands import Command, Question, describe, parse
from tests.support.fake_llm import Script, ToolCallingFake, tool_call


def test_the_four_examples() -> None:
    c = parse("create ticket: API timeout in production, high priority")
    assert c == Command(action="create", subject="API timeout in production", priority="high")
    c = parse("update T-42 to in progress, checking the load balancer")
    assert c == Command(
        action="update", numbers=[42], status="in_progress", note="checking the load balancer"
    )
    c = parse("show open high priority tickets")
    assert c == Command(action="show", priority="high", open_only=True)
    assert describe(c) == "Show open high priority tickets"
    c = parse("close T-42, T-43: fixed load balancer config")
    assert c == Command(action="close", numbers=[42, 43], note="fixed load balancer config")
    assert describe(c) == 'Resolve and close T-42, T-43: "fixed load balancer config"'


@pytest.mark.parametrize(
    ("words", "priority"),
    [
        ("create ticket: boiler out, asap", "urgent"),
        ("new ticket: heating down URGENT", "urgent"),
        ("open a ticket: repaint the sign, low priority", "low"),
        ("create ticket: invoice typo", None),
    ],
)
def test_priority_words(words: str, priority: str | None) -> None:
    c = parse(words)
    assert isinstance(c, Command) and c.priority == priority, c
    assert c.subject and "asap" not in c.subject.lower() and "urgent" not in c.subject.lower()


def test_a_category_named_in_the_words_is_taken_from_the_tenants_list() -> None:
    c = parse("create a ticket for the billing page being slow", categories=["billing", "outage"])
    assert isinstance(c, Command) and (c.category, c.subject) == (
        "billing",
        "the billing page being slow",
    )


@pytest.mark.parametrize(
    ("words", "asks"),
    [
        ("", "What should I do?"),
        ("frobnicate the thing", "I did not understand"),
        ("update T-42", "What should change on T-42"),
        ("close the ticket: done", "Which ticket?"),
        ("resolve T-5", "How was it resolved?"),
        ("create ticket: urgent but low priority thing", "Which priority: urgent or low?"),
        ("update T-7 to in progress and on hold", "Which status"),
        ("create ticket:", "What is the ticket about?"),
        ("create T-9", "Create a new ticket, or update T-9?"),
    ],
)
def test_words_that_do_not_say_enough_get_a_question(words: str, asks: str) -> None:
    q = parse(words)
    assert isinstance(q, Question) and q.question.startswith(asks), q


def test_reopen_and_bulk_lists() -> None:
    assert parse("reopen T-9") == Command(action="update", numbers=[9], status="in_progress")
    c = parse("close #3, T-4 and ticket 5: duplicates")
    assert isinstance(c, Command) and c.numbers == [3, 4, 5]


async def test_the_llm_reading_is_used_only_when_it_is_valid_and_invents_no_ticket() -> None:
    script = Script()
    chat = ToolCallingFake(messages=script)
    script.items.append(tool_call("LlmCommand", action="close", numbers=[42], note="fixed"))
    assert await understand(chat, "please shut T-42, it's fixed") == Command(
        action="close", numbers=[42], note="fixed"
    )
    # a ticket the words never name: the rules' reading (here a question) instead
    script.items.append(tool_call("LlmCommand", action="close", numbers=[41], note="x"))
    assert isinstance(await understand(chat, "close it: fixed"), Question)
    # a question from the model is asked
    script.items.append(tool_call("LlmCommand", question="Which ticket do you mean?"))
    assert await understand(chat, "do the thing") == Question(question="Which ticket do you mean?")
    # a broken answer or a provider error: the rules
    script.items += [tool_call("LlmCommand", action="explode"), ConnectionError("reset")]
    for _ in range(2):
        got = await understand(chat, "update T-3 to in progress")
        assert got == Command(action="update", numbers=[3], status="in_progress")
    # the offline tier: the rules, no model
    assert await understand(None, "reopen T-9") == parse("reopen T-9")
