"""FastAPI app, SSE streaming, CLI."""
