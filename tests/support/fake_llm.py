"""langchain-core fake chat models for the LLM tier's tests (no network)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class ToolCallingFake(GenericFakeChatModel):
    """GenericFakeChatModel that accepts ``bind_tools``, so ``with_structured_output`` works:
    the scripted AIMessage carries the tool call the structured-output parser reads."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def tool_call(tool: str, **args: Any) -> AIMessage:
    """A scripted structured answer: the tool call ``with_structured_output(tool)`` reads."""
    return AIMessage(content="", tool_calls=[{"name": tool, "args": args, "id": "call-1"}])


class Script:
    """The fake model's answers in order; an exception in the list is raised by that call
    (and the script goes on: a generator would end at its first raise)."""

    def __init__(self) -> None:
        self.items: list[AIMessage | Exception] = []

    def __iter__(self) -> Script:
        return self

    def __next__(self) -> AIMessage:
        if not self.items:
            raise AssertionError("the model was called more often than scripted")
        item = self.items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item
