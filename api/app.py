"""The FastAPI application; the lifespan owns the pool, the checkpointer, the graph, the event
listener and the running turns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors, logs, openapi
from api.auth import Authenticator
from api.dbfaults import DatabaseFaults
from api.deps import accepted_parameters
from api.middleware import BodyLimit
from api.ratelimit import RateLimits
from api.routes import (
    agent,
    contacts,
    conversations,
    kb,
    kb_drafts,
    metrics,
    notifications,
    pages,
    profile,
    sla,
    staff,
    tickets,
    triage,
)
from api.schemas import Health
from desk import queue
from desk.service import Desk
from graph.graph import build_graph
from graph.runtime import open_checkpointer, open_services
from helpdesk import db
from helpdesk.auth import load_secret
from helpdesk.config import Settings, get_settings
from helpdesk.notify import EventHub
from helpdesk.sessions import SessionPolicy
from kb_pipeline import jobs
from nlp.models import Models

log = logging.getLogger(__name__)

DESCRIPTION = """\
AI first-line customer support: streamed, grounded answers with citations, and a human hand-off
inside the same checkpointed conversation.

* **Customers** (widget key, then the customer token it returns) start conversations, send
  messages (Server-Sent Events or JSON), subscribe to the conversation's events and give feedback.
* **Agents** (agent or admin key) work the queue: take over, reply, approve / edit / reject held
  drafts, hand back to the AI, close.
* **Admins** (admin key) ingest knowledge-base files.
* **Staff** sign in (`POST /v1/auth/sign-in`) with a role (admin, manager, agent); what each
  role may do is one table (`docs/roles.md`), checked on every staff route.

Errors are JSON `{"code", "message"}` with stable codes. The full contract, with the SSE event
vocabulary, is `docs/http-api.md`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    models: Models | None = None,
    database_url: str | None = None,
    on_ready: Any = None,
    queue_worker: int = 0,
) -> FastAPI:
    """Build the app. Arguments let tests pass models and a database; defaults read settings.

    Args:
        queue_worker: run a task-queue worker in this process with that concurrency
            (``deskgraph serve`` does; 0: none, the jobs wait for ``deskgraph worker``).
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database_url:
            url = database_url
        else:
            url = await asyncio.to_thread(db.app_database_url, settings)
        async with open_services(settings, models, database_url=url) as services:
            checkpointer = await open_checkpointer(services)
            graph = build_graph(services, checkpointer)
            hub = EventHub(url)
            await hub.start()
            desk = Desk.build(graph, services, lease_ttl_s=settings.turn_lease_s)
            app.state.services = services
            app.state.graph = graph
            app.state.hub = hub
            runner = app.state.runner = desk.turns
            app.state.desk = desk.actions
            app.state.auth = Authenticator(
                services.pool,
                await asyncio.to_thread(load_secret, settings),
                sessions=SessionPolicy(settings.session_idle_s, settings.session_absolute_s),
            )
            app.state.background_tasks = set()
            # This process's claim on the ingestion jobs it queues (see jobs.JobOwner).
            app.state.job_owner = jobs.JobOwner(url)
            # Jobs left running or queued by a process that died (this one before a crash, or
            # another); a job of another live process holds its lock and is left alone.
            await jobs.reap_dead_jobs(services.pool)
            worker: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
            if queue_worker > 0:
                # Periodic work (retention, auto-close, nightly top questions) and queued
                # jobs, on the task queue (desk/queue.py); a sweep of retention at start.
                context = {"services": services, "checkpointer": checkpointer}
                worker = queue.in_process_worker(url, settings, context, concurrency=queue_worker)
            try:
                async with worker as app.state.queue_worker:
                    if on_ready is not None:
                        await on_ready(services)
                    yield
            finally:
                # Turns in flight finish (their answers are stored); ingestion jobs are
                # cancelled, which marks them failed rather than leaving them "running".
                await runner.drain(timeout_s=30)
                for task in list(app.state.background_tasks):
                    task.cancel()
                if app.state.background_tasks:
                    await asyncio.wait(app.state.background_tasks, timeout=10)
                await app.state.job_owner.close()
                await hub.stop()

    app = FastAPI(
        title="deskgraph",
        version="0.1.0",
        summary="AI first-line customer support: streamed, grounded, with human hand-off.",
        description=DESCRIPTION,
        lifespan=lifespan,
        # One rule for the text of every route's query and path parameters (bodies: schemas).
        dependencies=[Depends(accepted_parameters)],
    )
    app.state.settings = settings
    app.state.limits = RateLimits.per_minute(
        settings.rate_conversations_per_minute,
        settings.rate_messages_per_minute,
        settings.rate_searches_per_minute,
    )
    errors.install(app)
    openapi.install(app)
    logs.install()
    app.include_router(conversations.router)
    app.include_router(staff.router)
    app.include_router(agent.router)
    app.include_router(contacts.customer_router)
    app.include_router(contacts.router)
    app.include_router(triage.router)
    app.include_router(tickets.router)
    app.include_router(tickets.customer_router)
    app.include_router(tickets.conversation_notes)
    app.include_router(kb.router)
    app.include_router(kb_drafts.router)
    app.include_router(profile.router)
    app.include_router(metrics.router)
    app.include_router(sla.router)
    app.include_router(notifications.router)
    app.include_router(pages.router)

    # Innermost: a read that lost the database is re-run once, anything else that did gets a 503.
    app.add_middleware(DatabaseFaults)
    upload_path = "/v1/kb/ingest"
    app.add_middleware(
        BodyLimit,
        limit_for=lambda path: (
            settings.max_upload_bytes if path == upload_path else settings.max_body_bytes
        ),
    )
    # Added last, so outermost: even a 413 carries CORS headers and the widget can read it.
    # Any origin may call: credentials are bearer tokens and keys, and widget keys check their
    # own allowed origins. The console's session cookie is SameSite=Strict and CORS never
    # allows credentials, so another site's page can neither send it nor read an answer.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Accept",
            "X-Widget-Key",
            "Idempotency-Key",
            "Last-Event-ID",
        ],
        expose_headers=["Idempotent-Replayed"],
        max_age=600,
    )

    @app.get("/healthz", tags=["ops"], response_model=Health)
    async def healthz() -> Health:
        """Liveness, and whether this process listens for other processes' events."""
        hub: EventHub | None = getattr(app.state, "hub", None)
        listening = hub is not None and hub.listening.is_set()
        return Health(status="ok", events="listening" if listening else "reconnecting")

    return app
