"""The slash commands of ``deskgraph chat``: one table, the help made from it, and parsing.

The terminal chat plays both sides of a conversation: a plain line is the customer's message, a
line starting with ``/`` is a command. ``/help`` works at any time; the agent's actions work
when the conversation waits for one: ``/reply``, ``/release`` and ``/close`` once it has been
handed to a person, ``/approve``, ``/edit`` and ``/reject`` while a draft waits for review.
Anything else gets one clear line and the list, never a validation error and never a message
sent to the assistant by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from graph.interrupts import parse_agent_action, parse_review

Waiting = Literal["agent", "review"]
"""What the conversation waits for: an agent's action (hand-off) or a review of a held draft."""


@dataclass(frozen=True)
class ChatCommand:
    """One slash command of the terminal chat."""

    name: str
    args: str
    """Its argument as the help shows it; upper case = required, ``[...]`` = optional."""
    help: str
    waits: Waiting | None
    """When it applies: ``None`` = always."""

    @property
    def needs_text(self) -> bool:
        """Whether the command is useless without its argument."""
        return bool(self.args) and not self.args.startswith("[")

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


COMMANDS = (
    ChatCommand("help", "", "show these commands", None),
    ChatCommand("reply", "TEXT", "answer the customer as the agent", "agent"),
    ChatCommand("release", "[TEXT]", "hand the conversation back to the assistant", "agent"),
    ChatCommand("close", "[TEXT]", "close the conversation", "agent"),
    ChatCommand("approve", "", "send the held draft as it is", "review"),
    ChatCommand("edit", "TEXT", "send this text instead of the held draft", "review"),
    ChatCommand("reject", "[REASON]", "do not send the draft; the assistant redrafts", "review"),
)
_BY_NAME = {c.name: c for c in COMMANDS}
_WHEN = {
    "agent": "once the conversation is handed to a person",
    "review": "while a draft waits for review",
}


@dataclass(frozen=True)
class Resume:
    """A validated agent action: the resume value for the waiting thread."""

    value: dict[str, Any]
    speaker: Literal["agent", "assistant"]
    """Whose words the customer gets next: the agent's text, or the assistant's draft."""


def waiting_for(interrupt_kind: str | None) -> Waiting | None:
    """What a pending interrupt (``handoff``, ``human_turn``, ``approval``) waits for."""
    if interrupt_kind is None:
        return None
    return "review" if interrupt_kind == "approval" else "agent"


def help_text() -> str:
    """The command list, grouped by when the commands apply."""
    width = max(len(c.usage) for c in COMMANDS)
    lines = ["commands (anything else you type is the customer's message):"]
    for waits in (None, "agent", "review"):
        if waits is not None:
            lines.append(f"{_WHEN[waits]}:")
        lines += [f"  {c.usage:<{width}}  {c.help}" for c in COMMANDS if c.waits == waits]
    return "\n".join(lines)


def parse_command(line: str, waiting: Waiting | None, agent: str) -> Resume | str:
    """Turn a ``/...`` line into an agent action, or into the text to show instead.

    Args:
        line: what was typed, starting with ``/``.
        waiting: what the conversation waits for now (``None``: nothing).
        agent: the agent's name, recorded on the action.

    Returns:
        A :class:`Resume` to resume the thread with, or a message for the terminal (the help,
        or one line saying what is wrong followed by the help).
    """
    verb, _, rest = line.strip()[1:].partition(" ")
    rest = rest.strip()
    command = _BY_NAME.get(verb.lower())
    if command is None:
        return f"unknown command /{verb}\n{help_text()}"
    if command.waits is None:
        return help_text()
    if waiting is None:
        return f"/{command.name} works {_WHEN[command.waits]}; nothing waits for an agent now"
    if command.waits != waiting:
        fitting = ", ".join(f"/{c.name}" for c in COMMANDS if c.waits == waiting)
        return f"/{command.name} works {_WHEN[command.waits]}; here use {fitting}"
    if command.needs_text and not rest:
        return f"/{command.name} needs its text: {command.usage}"
    return _validated(command.name, rest, agent)


def _validated(verb: str, rest: str, agent: str) -> Resume | str:
    raw: dict[str, Any] = {"action": verb}
    if verb in ("reply", "release", "close", "edit") and rest:
        raw["text"] = rest
    if verb == "reject":
        raw["reason"] = rest or "rejected by the agent"
    try:
        if verb in ("approve", "edit", "reject"):
            value = parse_review({**raw, "reviewer": agent}).model_dump()
        else:
            value = parse_agent_action({**raw, "agent": agent}).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        return f"/{verb}: {error['loc'][-1]}: {error['msg']}"
    speaker: Literal["agent", "assistant"] = (
        "assistant" if verb in ("approve", "reject") else "agent"
    )
    return Resume(value, speaker)
