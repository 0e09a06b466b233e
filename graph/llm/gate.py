"""The one way a node calls the LLM tier: :meth:`LlmGate.call`.

Around every call: the tenant's monthly token budget (spent: no call), the provider's circuit
breaker (open: no call), a wall-clock deadline over the call and the openai client's own
retries (``Settings.llm_call_budget_s``), usage recorded from the answer's usage metadata, and
LangSmith metadata (tenant, conversation, node) that a trace carries when tracing is on. Any
failure, a provider's (timeout, 429, 5xx, reset) or the answer's (malformed or schema-breaking
JSON), is logged and returns None: the node then takes its offline step. Only provider failures
count towards the breaker; a provider that answers badly is up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig

from graph.llm.breaker import Breakers
from helpdesk import llm_usage
from helpdesk.db import DictPool
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant
from nlp.models import LlmOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Usage(AsyncCallbackHandler):
    """Sums the usage metadata of the answers of one call (a tool loop makes several)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.model = ""

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                if not isinstance(generation, ChatGeneration):
                    continue
                message = generation.message
                usage = getattr(message, "usage_metadata", None)
                if usage:
                    self.input_tokens += int(usage.get("input_tokens", 0))
                    self.output_tokens += int(usage.get("output_tokens", 0))
                self.model = self.model or str(
                    (message.response_metadata or {}).get("model_name", "")
                )


def provider_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the provider is failing (not that its answer was unusable)."""
    import httpx
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(
        exc, openai.APIConnectionError | TimeoutError | httpx.TransportError | ConnectionError
    )


@dataclass
class LlmGate:
    """Budget, breaker, deadline and usage around the model calls of one process."""

    pool: DictPool
    options: LlmOptions = field(default_factory=LlmOptions)
    breakers: Breakers = field(default_factory=Breakers)

    def __post_init__(self) -> None:
        self.breakers.failures = self.options.breaker_failures
        self.breakers.open_s = self.options.breaker_open_s

    @property
    def breaker_open(self) -> bool:
        return self.breakers.get(self.options.provider).is_open

    async def budget_spent(self, tenant: Tenant) -> bool:
        """Whether the tenant has used its monthly tokens (the policy's llm_monthly_tokens)."""
        limit = tenant.rules.llm_monthly_tokens
        if limit is None:
            return False
        async with tenant_scope(self.pool, tenant.id) as db:
            return await llm_usage.month_tokens(db, tenant.id) >= limit

    async def call(
        self,
        tenant: Tenant,
        node: str,
        fn: Callable[[RunnableConfig], Awaitable[T]],
        *,
        conversation_id: uuid.UUID | None = None,
        turn: int | None = None,
    ) -> T | None:
        """``fn(config)``'s result, or None when the call is not made or fails.

        ``fn`` must pass ``config`` to its model calls (the usage handler and the trace
        metadata ride on it).
        """
        if await self.budget_spent(tenant):
            log.info("tenant %s: monthly LLM tokens spent; %s runs offline", tenant.slug, node)
            return None
        breaker = self.breakers.get(self.options.provider)
        if not breaker.allow():
            log.info("LLM breaker open for %s; %s runs offline", self.options.provider, node)
            return None
        usage = _Usage()
        config: RunnableConfig = {
            "callbacks": [usage],
            "metadata": {
                "tenant": tenant.slug,
                "conversation_id": str(conversation_id) if conversation_id else None,
                "node": node,
            },
            "tags": [f"node:{node}"],
        }
        try:
            result = await asyncio.wait_for(fn(config), self.options.call_budget_s)
        except asyncio.CancelledError:
            breaker.failure()  # a probe must not stay in flight forever
            raise
        except Exception as exc:
            if provider_failure(exc):
                breaker.failure()
            else:
                breaker.success()
            log.warning(
                "LLM call of %s failed (%s: %s); offline step", node, type(exc).__name__, exc
            )
            result = None
        else:
            breaker.success()
        if result is not None or usage.input_tokens or usage.output_tokens:
            # every answered call is counted; its tokens are 0 where the provider reports
            # none (llama.cpp's server sends no usage in a stream)
            async with tenant_scope(self.pool, tenant.id) as db:
                await llm_usage.record(
                    db,
                    tenant.id,
                    node=node,
                    model=usage.model,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    conversation_id=conversation_id,
                    turn=turn,
                )
        return result
