"""Ticket commands in words, on either tier: the LLM parses into the same validated command as
the rules when the tenant's tier has a model (structured output), and the rules
(``helpdesk.ticket_commands.parse``) are the offline tier and the fallback when the model fails
or answers something that is not a valid command. What is parsed is never applied here: the
caller shows :func:`helpdesk.ticket_commands.describe` and applies on confirmation."""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import Field

from helpdesk.ticket_commands import EXAMPLES, Command, Question, parse

log = logging.getLogger(__name__)

SYSTEM = (
    "You turn a support agent's words into one ticket command. action: create (subject,"
    " priority, category), update (numbers, status, priority, category, note), show (numbers"
    " or filters: status, priority, category, open_only), close or resolve (numbers, note: the"
    " resolution summary). Ticket numbers are the digits of T-42. Priorities: low, normal,"
    " high, urgent. Statuses: new, triage, in_progress, waiting_customer, waiting_internal,"
    " pending_release, resolved, closed. Categories: {categories}. If the words are ambiguous"
    " or do not say what to do, set question to what you need to know and leave the rest"
    " empty. Never invent a ticket number. Examples: " + "; ".join(EXAMPLES)
)


class LlmCommand(Command):
    """A command, or a question back when the words do not say enough."""

    action: str | None = None  # type: ignore[assignment]
    question: str | None = Field(default=None, max_length=500)


async def understand(
    chat: BaseChatModel | None, text: str, *, categories: list[str] | None = None
) -> Command | Question:
    """The command ``text`` says: the LLM's reading with ``chat`` (the LLM tier), else the
    rules'."""
    rules = parse(text, categories=categories)
    if chat is None:
        return rules
    try:
        got = await chat.with_structured_output(LlmCommand).ainvoke(
            [
                SystemMessage(SYSTEM.format(categories=", ".join(categories or []) or "any")),
                HumanMessage(text),
            ]
        )
        reading = LlmCommand.model_validate(got)
        if reading.question:
            return Question(question=reading.question)
        command = Command.model_validate(reading.model_dump(exclude={"question"}))
    except Exception as exc:  # any failure or a reading that is not a command: the rules'
        log.warning("ticket command: the LLM's reading was not used (%s)", exc)
        return rules
    # A number the words do not contain is the model's invention: ask instead of acting on it.
    if any(str(n) not in text for n in command.numbers):
        return rules
    return command
