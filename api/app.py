"""The FastAPI application; the lifespan owns the pool, the checkpointer and the graph."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from api import errors
from api.routes import conversations, pages
from graph.graph import build_graph
from graph.models import Models
from graph.runtime import open_checkpointer, open_services
from helpdesk.config import Settings


def create_app(
    settings: Settings | None = None,
    *,
    models: Models | None = None,
    database_url: str | None = None,
    on_ready: Any = None,
) -> FastAPI:
    """Build the app. Arguments let tests pass models and a database; defaults read settings."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, models, database_url=database_url) as services:
            checkpointer = await open_checkpointer(services)
            app.state.services = services
            app.state.graph = build_graph(services, checkpointer)
            if on_ready is not None:
                await on_ready(services)
            yield

    app = FastAPI(
        title="deskgraph",
        version="0.1.0",
        summary="AI first-line customer support: streamed, grounded, with human hand-off.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(conversations.router)
    app.include_router(pages.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
