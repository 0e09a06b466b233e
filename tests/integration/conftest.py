"""The integration tests' fixtures: one fresh database per test session on the embedded
Postgres (or on the server of ``DATABASE_URL``), the demo tenant loaded, offline models, and the
API on a real socket. No mocked database. (The environment every test runs under is set in
``tests/conftest.py``.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from graph.graph import build_graph
from graph.runtime import open_checkpointer, open_services
from graph.services import Services
from helpdesk import db
from helpdesk.config import Settings
from helpdesk.tenants import Tenant
from nlp.models import Models, build_models

OFFICE_HOURS = datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
"""A Wednesday, 10:00 in Millbrook: the demo business is open."""


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(openai_api_key=None, openai_base_url=None)


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> str:
    """A fresh database for this test session, dropped at the end."""
    server = db.server_url(settings)
    name = f"deskgraph_test_{uuid.uuid4().hex[:10]}"
    url = db.with_database(server, name)
    db.ensure_database(url)
    yield url
    db.drop_database(url)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """For a CLI command run in this process: ``DATABASE_URL`` is the test database, and the
    settings cache is cleared before and after so that the command and later tests read it."""
    from helpdesk.config import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def offline_models(settings: Settings) -> Models:
    return build_models(settings)


@pytest.fixture(scope="session")
async def services(
    settings: Settings, offline_models: Models, database_url: str
) -> AsyncIterator[Services]:
    async with open_services(settings, offline_models, database_url=database_url) as svc:
        # Answers that depend on the clock (open now? after-hours hand-off) see a fixed one: a
        # Wednesday morning, inside the demo profile's office hours. Tests of those answers
        # set their own.
        svc.clock = lambda: OFFICE_HOURS
        yield svc


@pytest.fixture(scope="session")
async def demo(services: Services) -> Tenant:
    from cli.demo import ensure_demo

    tenant, _ = await ensure_demo(services)
    return tenant


@pytest.fixture(scope="session")
async def graph(services: Services, demo: Tenant) -> Any:
    return build_graph(services, await open_checkpointer(services))


@pytest.fixture(scope="session")
def live_api(settings: Settings, offline_models: Models, database_url: str, demo: Tenant) -> Any:
    """The HTTP API on a real socket (uvicorn in a thread), with keys for two tenants."""
    from tests.support.live_api import serve

    yield from serve(settings, offline_models, database_url)


# The real llama.cpp server's fixtures (only the tests marked llm_server use them).
from tests.support.llama_fixtures import llama_server, llm_models, llm_stack  # noqa: E402, F401
