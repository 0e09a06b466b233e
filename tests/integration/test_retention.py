"""Retention (``helpdesk/retention.py``, ``deskgraph purge``, ``deskgraph tenant policy``) on the
real database and the real checkpointer: old conversations go with everything that hangs off
them; work in progress stays, however old."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from desk.stream import thread_config
from graph.services import Services
from helpdesk import conversations
from helpdesk.policy import TenantPolicy
from helpdesk.retention import purge_all, purge_conversations
from helpdesk.tenants import Tenant, create_tenant, get_tenant, set_policy
from tests.support.turns import new_conversation, turn

pytestmark = pytest.mark.integration


async def _tenant(services: Services, policy: TenantPolicy | None = None) -> Tenant:
    slug = f"keep-{uuid.uuid4().hex[:8]}"
    return await create_tenant(services.pool, slug, "Retention Co", policy or TenantPolicy())


async def _sql(services: Services, query: str, *params: Any) -> list[dict[str, Any]]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(query, params)
        return [dict(r) for r in await cur.fetchall()] if cur.description else []


async def _age(services: Services, cid: uuid.UUID, days: int) -> None:
    await _sql(
        services,
        "UPDATE conversations SET updated_at = now() - make_interval(days => %s) WHERE id = %s",
        days,
        cid,
    )


async def _ticket(services: Services, tenant: Tenant, cid: uuid.UUID, status: str) -> None:
    await _sql(
        services,
        "INSERT INTO tickets (tenant_id, conversation_id, status, summary) VALUES (%s, %s, %s, %s)",
        tenant.id,
        cid,
        status,
        "Customer Jane Roe, jane@example.com, wants a refund",
    )


async def _desk_with_history(graph: Any, services: Services, tenant: Tenant) -> dict[str, Any]:
    """Conversations of every kind the purge must tell apart, with real graph threads."""
    c: dict[str, uuid.UUID] = {}
    for name in ("old_closed", "old_idle", "old_waiting", "old_open_ticket", "recent"):
        c[name] = await new_conversation(services, tenant)
        await turn(graph, services, tenant, c[name], "Do you fix leaking taps?")
    await conversations.set_status(services.pool, tenant.id, c["old_closed"], "closed")
    await _ticket(services, tenant, c["old_closed"], "resolved")
    await _sql(
        services,
        "UPDATE conversations SET status = 'waiting_human' WHERE id = %s",
        c["old_waiting"],
    )
    await _ticket(services, tenant, c["old_open_ticket"], "in_progress")
    for name in c:
        if name != "recent":
            await _age(services, c[name], 40)
    await _age(services, c["recent"], 5)
    return c


async def _thread_exists(graph: Any, cid: uuid.UUID) -> bool:
    return await graph.checkpointer.aget_tuple(thread_config(cid)) is not None


async def test_purge_deletes_old_conversations_with_their_history_and_keeps_work_in_progress(
    graph: Any, services: Services
) -> None:
    tenant = await _tenant(services)
    c = await _desk_with_history(graph, services, tenant)
    assert all([await _thread_exists(graph, cid) for cid in c.values()])
    gone = {c["old_closed"], c["old_idle"]}
    month = timedelta(days=30)

    dry = await purge_conversations(
        services.pool, graph.checkpointer, tenant.id, month, dry_run=True
    )
    assert dry.conversations == 2
    assert await _thread_exists(graph, c["old_idle"])  # a dry run deletes nothing

    stats = await purge_conversations(services.pool, graph.checkpointer, tenant.id, month)
    assert (stats.conversations, stats.tickets, stats.threads) == (2, 1, 2)
    left = {
        r["id"]
        for r in await _sql(
            services, "SELECT id FROM conversations WHERE tenant_id = %s", tenant.id
        )
    }
    assert left == set(c.values()) - gone
    for cid in c.values():
        assert await _thread_exists(graph, cid) == (cid not in gone), cid
    for table in ("messages", "conversation_events"):
        rows = await _sql(
            services, f"SELECT 1 FROM {table} WHERE conversation_id = ANY(%s)", list(gone)
        )
        assert rows == [], table
    # the resolved ticket (with the customer's details in its summary) went too; the open one
    # keeps its conversation
    tickets = await _sql(services, "SELECT status FROM tickets WHERE tenant_id = %s", tenant.id)
    assert [t["status"] for t in tickets] == ["in_progress"]
    # nothing more to do, and another tenant's old conversations were never looked at
    again = await purge_conversations(services.pool, graph.checkpointer, tenant.id, month)
    assert again.conversations == 0


async def test_the_sweep_applies_each_tenants_retention_days_and_only_theirs(
    graph: Any, services: Services
) -> None:
    keeping = await _tenant(services, TenantPolicy(retention_days=30))
    forever = await _tenant(services)  # retention_days unset: keep everything
    kept_forever = await new_conversation(services, forever)
    await _age(services, kept_forever, 4000)
    old = await new_conversation(services, keeping)
    await _age(services, old, 31)
    young = await new_conversation(services, keeping)
    await _age(services, young, 29)

    done = await purge_all(services.pool, graph.checkpointer)
    assert done[keeping.slug].conversations == 1
    assert forever.slug not in done
    ids = {r["id"] for r in await _sql(services, "SELECT id FROM conversations")}
    assert old not in ids and young in ids and kept_forever in ids


async def test_tenant_policy_and_purge_commands(
    services: Services, cli_database: str, graph: Any
) -> None:
    tenant = await _tenant(services)
    runner = CliRunner()

    async def deskgraph(*args: str) -> Any:  # the command runs its own event loop: a thread
        return await asyncio.to_thread(runner.invoke, app, list(args))

    shown = await deskgraph("tenant", "policy", tenant.slug)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["retention_days"] is None

    refused = await deskgraph("purge", "--tenant", tenant.slug)
    assert refused.exit_code == 2 and "has no retention_days" in refused.output

    bad = await deskgraph("tenant", "policy", tenant.slug, "--set", "retention_days=0")
    assert bad.exit_code == 2 and "nothing was saved" in bad.output
    assert (await get_tenant(services.pool, tenant.slug)).policy.retention_days is None

    unknown = await deskgraph("tenant", "policy", tenant.slug, "--set", "retention_dayz=3")
    assert unknown.exit_code == 2 and "retention_dayz" in unknown.output
    changed = await deskgraph(
        "tenant", "policy", tenant.slug, "--set", "retention_days=30", "--set", "review_all=true"
    )
    assert changed.exit_code == 0, changed.output
    saved = (await get_tenant(services.pool, tenant.slug)).policy
    assert (saved.retention_days, saved.review_all) == (30, True)

    old = await new_conversation(services, tenant)
    await _age(services, old, 45)
    dry = await deskgraph("purge", "--tenant", tenant.slug, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)[tenant.slug]["conversations"] == 1
    done = await deskgraph("purge", "--tenant", tenant.slug, "--older-than-days", "40")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[tenant.slug] == {"conversations": 1, "tickets": 0, "threads": 1}
    await set_policy(services.pool, tenant.id, TenantPolicy())


async def test_an_api_process_with_a_queue_worker_applies_retention_when_it_starts(
    services: Services, settings: Any, offline_models: Any, database_url: str, graph: Any
) -> None:
    """The sweep is a task-queue job (desk/queue.py): queued when a worker starts, then hourly.
    An API process without a worker leaves it to the workers (``deskgraph worker``)."""
    from api.app import create_app

    tenant = await _tenant(services, TenantPolicy(retention_days=7))
    quiet = create_app(settings, models=offline_models, database_url=database_url)
    again = await new_conversation(services, tenant)
    await _age(services, again, 8)
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.queue_worker is None
    assert await _sql(services, "SELECT 1 FROM conversations WHERE id = %s", again)
    old = await new_conversation(services, tenant)
    await _age(services, old, 8)
    fast = settings.model_copy(update={"queue_shutdown_s": 2.0})
    app = create_app(fast, models=offline_models, database_url=database_url, queue_worker=1)
    async with app.router.lifespan_context(app):
        deadline = asyncio.get_running_loop().time() + 60
        while await _sql(services, "SELECT 1 FROM conversations WHERE id = ANY(%s)", [old, again]):
            assert asyncio.get_running_loop().time() < deadline, "the sweep never ran"
            await asyncio.sleep(0.05)
    await set_policy(services.pool, tenant.id, TenantPolicy())
