"""How the nodes call the LLM tier: every call through :class:`graph.llm.gate.LlmGate`
(deadline, circuit breaker, token budget, usage), structured output by the provider's method
(:mod:`graph.llm.structured`). A call that fails returns None and the node takes its offline
step, so no provider failure reaches the customer (docs/providers.md)."""
