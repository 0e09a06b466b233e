"""The drafter's tool loop: the model answers or calls tools, a bounded number of times.

Each tool call is run with the run injected (:mod:`graph.tools.catalog`); a refused or failed
call goes back to the model as an error :class:`ToolMessage`, never up to the customer. Past
``max_calls`` tool calls in the turn, or once a tool asked for a hand-off, the model is not
asked again: the loop ends with what it has (the draft node then answers offline or hands off).
The model's text is only collected here; the customer sees it after the judge, in ``respond``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from graph.tools.catalog import BY_NAME, TOOLS, ToolRefused
from graph.tools.run import ToolRun
from helpdesk.errors import DeskError

log = logging.getLogger(__name__)


async def _answer(
    model: BaseChatModel, messages: Sequence[BaseMessage], config: RunnableConfig | None
) -> AIMessage:
    """One streamed answer, its chunks (text and tool-call pieces) put together."""
    full: AIMessageChunk | None = None
    async for chunk in model.astream(list(messages), config):
        full = chunk if full is None else full + chunk
    if full is None:
        return AIMessage(content="")
    return AIMessage(
        content=full.content,
        tool_calls=full.tool_calls,
        usage_metadata=full.usage_metadata,
        response_metadata=full.response_metadata,
    )


def tool_name(name: str) -> str:
    """The tool a streamed call names. llama.cpp's server repeats the name in every chunk of
    a streamed tool call and langchain's chunk merge concatenates them
    ("get_business_profileget_business_profile"); a name that is one tool's name repeated is
    that tool."""
    if name in BY_NAME:
        return name
    for known in BY_NAME:
        if len(name) % len(known) == 0 and name == known * (len(name) // len(known)):
            return known
    return name


async def run_tool(run: ToolRun, name: str, args: dict[str, object], call_id: str) -> ToolMessage:
    """One tool call as its tool message; a refusal or a failure is an error message."""
    name = tool_name(name)
    chosen = BY_NAME.get(name)
    if chosen is None:
        return ToolMessage(f"error: no tool named {name!r}", tool_call_id=call_id, status="error")
    try:
        # ``run`` is always the loop's: a model that names it is overridden
        out = await chosen.ainvoke({**args, "run": run})
    except (ToolRefused, DeskError, ValidationError, ValueError, TypeError) as exc:
        return ToolMessage(f"error: {exc}", tool_call_id=call_id, status="error")
    except Exception as exc:  # a tool's own failure is the model's problem to work around
        log.exception("tool %s failed", name)
        return ToolMessage(
            f"error: {name} failed ({type(exc).__name__})", tool_call_id=call_id, status="error"
        )
    return ToolMessage(str(out), tool_call_id=call_id, name=name)


async def draft_with_tools(
    model: BaseChatModel,
    messages: list[BaseMessage],
    run: ToolRun,
    *,
    max_calls: int,
    config: RunnableConfig | None = None,
) -> str:
    """The model's final text after at most ``max_calls`` tool calls ("" when it gave none)."""
    bound = model.bind_tools(TOOLS) if max_calls > 0 else model
    calls = 0
    while True:
        answer = await _answer(bound, messages, config)  # type: ignore[arg-type]
        if not answer.tool_calls:
            return answer.text.strip()
        # langchain sends an empty text beside tool calls as ``content: null``, which
        # llama.cpp's server refuses (500, "content: Input should be a valid string")
        messages.append(AIMessage(content=answer.text or " ", tool_calls=answer.tool_calls))
        for call in answer.tool_calls:
            calls += 1
            if calls > max_calls:
                messages.append(
                    ToolMessage(
                        "error: no more tool calls this turn",
                        tool_call_id=call["id"] or "",
                        status="error",
                    )
                )
                continue
            messages.append(await run_tool(run, call["name"], call["args"], call["id"] or ""))
        if run.handoff_reason is not None:
            return ""
        if calls >= max_calls:
            # the last answer may use what the tools found, but calls no more of them
            final = await _answer(model, messages, config)
            return final.text.strip()
