"""A live API for tests: uvicorn serving the app on a real socket, with keys for two tenants.

Used by the ``live_api`` session fixture (``tests/integration/conftest.py``), so every HTTP test
module shares one server (the models are loaded once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from httpx_sse import connect_sse
from pydantic import SecretStr

from api.app import create_app
from cli.demo import ensure_demo_keys
from helpdesk import keys
from helpdesk.config import Settings
from helpdesk.errors import NotFound
from helpdesk.tenants import create_tenant, get_tenant
from nlp.models import Models

TEST_SECRET = "test-secret-key-for-customer-tokens"
OTHER_SLUG = "othertenant"
AGENT_NAMES = ("alex", "sam", "kim", "lee", "pat", "jamie", "alice", "bob")
"""The demo tenant's named agent keys: an action's actor is its key's name."""


@dataclass
class TenantKeys:
    """One tenant's keys."""

    slug: str
    widget_key: str
    agent_key: str
    admin_key: str
    named_agents: dict[str, str] = field(default_factory=dict)
    """Agent keys by their name (the actor of every action taken with them)."""

    def agent_named(self, name: str) -> str:
        """The agent key named ``name`` (one of :data:`AGENT_NAMES`)."""
        return self.named_agents[name]


@dataclass
class LiveApi:
    """A running API and the keys to call it with."""

    base_url: str
    demo: TenantKeys
    other: TenantKeys
    app: Any = field(repr=False)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client on the API."""
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 60), **kwargs)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_settings(settings: Settings, **overrides: Any) -> Settings:
    """The session settings with a fixed token secret (tests never touch the dev secret)."""
    return settings.model_copy(update={"secret_key": SecretStr(TEST_SECRET), **overrides})


def serve(settings: Settings, models: Models, database_url: str) -> Iterator[LiveApi]:
    """Start the API in a thread, yield it once it serves, stop it afterwards."""
    made: dict[str, TenantKeys] = {}

    async def on_ready(services: Any) -> None:
        secret = TEST_SECRET.encode()
        demo = await get_tenant(services.pool, "demo")
        k = await ensure_demo_keys(services, demo, secret)
        named = {
            name: (await keys.create_key(services.pool, demo.id, "agent", name=name))[0]
            for name in AGENT_NAMES
        }
        made["demo"] = TenantKeys("demo", k["widget_key"], k["agent_key"], k["admin_key"], named)
        try:
            other = await get_tenant(services.pool, OTHER_SLUG)
        except NotFound:
            other = await create_tenant(services.pool, OTHER_SLUG, "Other Business")
        created = {}
        for kind in ("widget", "agent", "admin"):
            created[kind], _ = await keys.create_key(services.pool, other.id, kind)  # type: ignore[arg-type]
        made["other"] = TenantKeys(
            OTHER_SLUG, created["widget"], created["agent"], created["admin"]
        )

    app = create_app(
        api_settings(settings), models=models, database_url=database_url, on_ready=on_ready
    )
    with serve_app(app) as port:
        yield LiveApi(f"http://127.0.0.1:{port}", made["demo"], made["other"], app)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[int]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield the port once it
    serves (its lifespan has run), stop the server on exit."""
    port = free_port()
    # Open SSE streams would hold a graceful shutdown forever (sse-starlette watches signals,
    # and a server in a thread installs none): cut them after a few seconds.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def start_conversation(client: httpx.Client, widget_key: str, **body: Any) -> dict[str, Any]:
    """POST /v1/conversations with a widget key; return the created conversation."""
    r = client.post("/v1/conversations", json=body, headers={"X-Widget-Key": widget_key})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def sse_turn(
    client: httpx.Client, conv: dict[str, Any], text: str, **headers: str
) -> list[tuple[str, dict[str, Any]]]:
    """Send a message as SSE; return the (event, data) pairs of the turn."""
    with connect_sse(
        client,
        "POST",
        f"/v1/conversations/{conv['id']}/messages",
        json={"text": text},
        headers={**bearer(conv["customer_token"]), **headers},
    ) as source:
        assert source.response.status_code == 200, source.response.read()
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def json_turn(client: httpx.Client, conv: dict[str, Any], text: str) -> httpx.Response:
    """Send a message in JSON mode; return the response."""
    return client.post(
        f"/v1/conversations/{conv['id']}/messages",
        json={"text": text},
        headers=bearer(conv["customer_token"]),
    )
