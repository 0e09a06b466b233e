"""What every test runs under, unit or integration: no test reaches the network, and the
per-address rate limits are off. The Postgres fixtures are in ``tests/integration/conftest.py``
so that ``pytest tests/unit`` starts no database."""

from __future__ import annotations

import os

# No test reaches the network: the LLM tier is exercised only with fake chat models.
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
    os.environ.pop(var, None)
os.environ["LANGSMITH_TRACING"] = "false"
# Every test client shares 127.0.0.1, so the per-address rate limits are off here (also in the
# API processes tests start); tests/integration/test_ratelimit.py checks them on apps of its own.
for var in ("CONVERSATIONS", "MESSAGES", "SEARCHES"):
    os.environ[f"DESKGRAPH_RATE_{var}_PER_MINUTE"] = "0"
