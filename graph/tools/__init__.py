"""The tools the LLM drafter may call (:mod:`graph.tools.catalog`) and the bounded loop that
runs them (:mod:`graph.tools.loop`). Who a call acts for (tenant, conversation, contact) is
injected from the run (:class:`graph.tools.run.ToolRun`), never chosen by the model."""
