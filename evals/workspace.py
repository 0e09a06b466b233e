"""Where eval runs happen: their own database, and one tenant per knowledge base.

Suites that run the graph create real conversations, tickets and events. On the product's
database those would land in the agents' queue, so eval runs use a database of their own on the
same server, ``deskgraph_eval`` (created on first use; ``--database-url`` overrides it). Each
knowledge base is a tenant there: the demo KB is the ``demo`` tenant, a KB passed by path gets
``eval-<name>``, re-ingested idempotently on every run so that it always mirrors the file
(unchanged articles write nothing, articles gone from the file are removed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from evals.core import slug
from graph.graph import build_graph
from graph.runtime import open_checkpointer, open_services
from graph.services import Services
from helpdesk import db
from helpdesk.config import Settings, get_settings
from helpdesk.errors import NotFound
from helpdesk.tenants import Tenant, create_tenant, get_tenant
from kb_pipeline.index import IngestStats
from kb_pipeline.loaders import Article, demo_kb_path, load_directory
from nlp.models import Models

EVAL_DATABASE = "deskgraph_eval"
DEMO_SLUG = "demo"
DEMO_NAME = "Brightwater Home Services"


def eval_database_url(settings: Settings, database_url: str | None = None) -> str:
    """The eval database URL (created if missing): ``database_url`` or the server's
    ``deskgraph_eval`` database."""
    if database_url:
        return database_url
    url = db.with_database(db.server_url(settings), EVAL_DATABASE)
    try:
        db.ensure_database(url)
    except psycopg.Error as exc:
        raise ValueError(
            f"cannot create the eval database {EVAL_DATABASE!r} on the configured server"
            f" ({exc.__class__.__name__}: {str(exc).strip()}); pass --database-url to an"
            " existing database with pgvector"
        ) from exc
    return url


@contextlib.asynccontextmanager
async def eval_services(
    *,
    database_url: str | None = None,
    settings: Settings | None = None,
    models: Models | None = None,
) -> AsyncIterator[Services]:
    """Services on the eval database (see the module docstring)."""
    settings = settings or get_settings()
    url = await asyncio.to_thread(eval_database_url, settings, database_url)
    async with open_services(settings, models, database_url=url) as services:
        yield services


async def eval_graph(services: Services) -> Any:
    """The support graph with a Postgres checkpointer (interrupts need one)."""
    return build_graph(services, await open_checkpointer(services))


async def ensure_kb_tenant(
    services: Services, tenant_slug: str, name: str, articles: Sequence[Article]
) -> tuple[Tenant, IngestStats]:
    """Create the tenant if missing and make its knowledge base exactly ``articles``."""
    try:
        tenant = await get_tenant(services.pool, tenant_slug)
    except NotFound:
        tenant = await create_tenant(services.pool, tenant_slug, name)
    stats = await services.kb.ingest(tenant.id, list(articles), cleanup=True)
    return tenant, stats


async def ensure_demo_tenant(services: Services) -> tuple[Tenant, IngestStats]:
    """The demo tenant with the shipped demo knowledge base."""
    return await ensure_kb_tenant(services, DEMO_SLUG, DEMO_NAME, load_directory(demo_kb_path()))


def kb_tenant_slug(kb_path: Path) -> str:
    """``eval-<name>`` for a KB path: the folder name, or the parent folder of a file
    (``kb/galaxy_s10/sections.jsonl`` -> ``eval-galaxy-s10``)."""
    name = kb_path.name if kb_path.is_dir() else kb_path.resolve().parent.name
    return ("eval-" + slug(name))[:63]
