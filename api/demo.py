"""The demo tenant: Brightwater Home Services and its knowledge base."""

from __future__ import annotations

from graph.services import Services
from helpdesk.errors import NotFound
from helpdesk.tenants import Tenant, create_tenant, get_tenant
from kb_pipeline.index import IngestStats
from kb_pipeline.loaders import demo_kb_path, load_directory

DEMO_SLUG = "demo"
DEMO_NAME = "Brightwater Home Services"


async def ensure_demo(services: Services) -> tuple[Tenant, IngestStats]:
    """Create the demo tenant if missing and (re-)ingest its knowledge base idempotently."""
    try:
        tenant = await get_tenant(services.pool, DEMO_SLUG)
    except NotFound:
        tenant = await create_tenant(services.pool, DEMO_SLUG, DEMO_NAME)
    stats = await services.kb.ingest(tenant.id, load_directory(demo_kb_path()), cleanup=True)
    return tenant, stats
