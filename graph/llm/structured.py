"""Structured output (classify's intent, the judge's verdict) by the provider's method.

``auto`` leaves the choice to langchain (``with_structured_output(schema)``: for ``ChatOpenAI``
a JSON schema ``response_format``; for other chat models their own tool-call way).
``json_schema``, ``json_mode`` and ``function_calling`` are langchain's methods by name.
``json_object_schema`` is llama.cpp's: its server refuses ``{"type": "json_schema"}`` but takes
``{"type": "json_object", "schema": ...}`` and constrains the output to that schema with a
grammar, while langchain's ``json_mode`` sends no schema at all. The answer is parsed and
validated here with pydantic; a reply that breaks the schema raises, and the caller's gate
turns that into the node's offline step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from nlp.models import StructuredMethod

T = TypeVar("T", bound=BaseModel)


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """llama.cpp's grammar-constrained JSON: the schema inside a ``json_object`` format."""
    return {"type": "json_object", "schema": schema.model_json_schema()}


async def structured(
    model: BaseChatModel,
    schema: type[T],
    messages: Sequence[BaseMessage],
    method: StructuredMethod,
    config: RunnableConfig | None = None,
) -> T:
    """The model's answer as ``schema``; raises (pydantic ``ValidationError``, langchain's
    ``OutputParserException``, ``ValueError``) when the answer is not one."""
    if method == "json_object_schema":
        message = await model.bind(response_format=response_format(schema)).ainvoke(
            list(messages), config
        )
        return schema.model_validate_json(message.text)
    if method == "auto":
        runnable = model.with_structured_output(schema)
    else:
        runnable = model.with_structured_output(schema, method=method)
    result = await runnable.ainvoke(list(messages), config)
    if result is None:
        raise ValueError("the model gave no structured answer")
    return result if isinstance(result, schema) else schema.model_validate(result)
