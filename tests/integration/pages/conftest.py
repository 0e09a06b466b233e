"""Fixtures of the page tests: the real app behind a proxy that can drop the network, the
tenants the pages use, and headless Chromium (one browser per module, a context per page)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from api.app import create_app
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import create_tenant
from tests.support.browser import CHROMIUM_ARGS, DroppingProxy, chromium_path
from tests.support.live_api import serve_app
from tests.support.pages import Desk, _desk, linked_articles


@pytest.fixture(scope="module")
def api_app(settings, offline_models, database_url, demo) -> Any:
    return create_app(settings, models=offline_models, database_url=database_url)


@pytest.fixture(scope="module")
def api_port(api_app: Any) -> Iterator[int]:
    with serve_app(api_app) as port:
        yield port


@pytest.fixture(scope="module")
def proxy(api_port: int) -> Iterator[DroppingProxy]:
    p = DroppingProxy(api_port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def base_url(proxy: DroppingProxy) -> str:
    """Where the browser goes: the proxy in front of the server."""
    return f"http://127.0.0.1:{proxy.port}"


@pytest.fixture(scope="module")
def direct_url(api_port: int) -> str:
    """The server itself, for actions a test makes outside the browser."""
    return f"http://127.0.0.1:{api_port}"


@pytest.fixture(scope="module")
async def demo_desk(services, demo) -> Desk:
    return await _desk(services, demo)


@pytest.fixture(scope="module")
async def review_desk(services) -> Desk:
    """A tenant whose policy holds every AI draft for a person's approval."""
    slug = f"review-{uuid.uuid4().hex[:8]}"
    tenant = await create_tenant(
        services.pool, slug, "Review Plumbing", TenantPolicy(review_all=True)
    )
    await services.kb.ingest(tenant.id, linked_articles())
    return await _desk(services, tenant)


@pytest.fixture(scope="module")
async def linked_desk(services) -> Desk:
    """A tenant whose pricing article names its web page (the others name none)."""
    slug = f"linked-{uuid.uuid4().hex[:8]}"
    tenant = await create_tenant(services.pool, slug, "Linked Plumbing")
    await services.kb.ingest(tenant.id, linked_articles())
    return await _desk(services, tenant)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def customer(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def agent(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()
