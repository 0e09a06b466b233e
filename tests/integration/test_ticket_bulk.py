"""Bulk moves (helpdesk/ticket_bulk.py) and the ticket search (full-text, migration 0029) on
the real database with a fixed clock.

A bulk resolve must leave each ticket as the single move leaves its twin: the same status,
stamps and SLA columns, the same timeline kinds, an audit entry each, a breach recorded once
(and notified) for a target met late; illegal moves are refused with the single move's
message and another tenant's ids are missing, never moved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpdesk import contacts, ticket_bulk, tickets
from helpdesk.audit import Actor
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant, create_tenant

pytestmark = pytest.mark.integration

NOW = datetime(2021, 6, 1, 9, 0, tzinfo=UTC)
ANN = Actor("ann@desk.example")
FIX = {"type": "permanent_fix", "summary": "Fixed the load balancer config."}
SLA_COLUMNS = (
    "status",
    "resolved_at",
    "closed_at",
    "sla_paused_at",
    "sla_next_check_at",
    "first_response_due_at",
    "resolution_due_at",
    "first_response_warned",
    "first_response_breached",
    "resolution_warned",
    "resolution_breached",
)


async def _tenant(services: Any) -> Tenant:
    tag = uuid.uuid4().hex[:8]
    return await create_tenant(services.pool, f"bulk-{tag}", f"Bulk {tag}")


async def _ticket(services: Any, tenant: Tenant, subject: str, **kw: Any) -> dict[str, Any]:
    async with tenant_scope(services.pool, tenant.id) as conn:
        return await tickets.create_ticket(
            conn, tenant.id, subject=subject, actor=ANN, now=kw.pop("now", NOW), **kw
        )


async def _kinds(services: Any, tenant: Tenant, ticket_id: uuid.UUID) -> list[str]:
    async with tenant_scope(services.pool, tenant.id) as conn:
        cur = await conn.execute(
            "SELECT kind FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        )
        return [r["kind"] for r in await cur.fetchall()]


async def test_bulk_resolve_leaves_each_ticket_as_the_single_move_does(services: Any) -> None:
    tenant = await _tenant(services)
    later = NOW + timedelta(hours=5)  # past an urgent ticket's 4 h resolution target
    pairs = []
    for priority in ("urgent", "normal"):
        one = await _ticket(services, tenant, f"{priority} one", priority=priority)
        twin = await _ticket(services, tenant, f"{priority} twin", priority=priority)
        pairs.append((one, twin))
    async with tenant_scope(services.pool, tenant.id) as conn:
        for _, twin in pairs:
            await tickets.transition(
                conn, tenant.id, twin["id"], "resolved", actor=ANN, resolution=FIX, now=later
            )
        done = await ticket_bulk.transition(
            conn, tenant.id, [one["id"] for one, _ in pairs], "resolved", actor=ANN,
            resolution=FIX, now=later,
        )  # fmt: skip
    assert len(done.moved) == 2 and not done.refused and not done.missing
    for one, twin in pairs:
        a = await tickets.get_ticket(services.pool, tenant.id, one["id"])
        b = await tickets.get_ticket(services.pool, tenant.id, twin["id"])
        assert {k: a[k] for k in SLA_COLUMNS} == {k: b[k] for k in SLA_COLUMNS}
        assert a["resolution_id"] is not None and a["resolution_id"] != b["resolution_id"]
        assert await _kinds(services, tenant, one["id"]) == await _kinds(
            services, tenant, twin["id"]
        )
    urgent = pairs[0][0]["id"]
    kinds = await _kinds(services, tenant, urgent)
    assert kinds.count("sla.breach") == 2  # first response and resolution, both late
    async with tenant_scope(services.pool, tenant.id) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE ticket_id = %s AND kind = 'sla_breach'",
            (urgent,),
        )
        assert (await cur.fetchone())["n"] == 2  # type: ignore[index]
        cur = await conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE target_id = %s"
            " AND action = 'ticket.transition'",
            (str(urgent),),
        )
        assert (await cur.fetchone())["n"] == 1  # type: ignore[index]
        res = await tickets.list_resolutions(conn, tenant.id, urgent)
    assert [(r["type"], r["summary"], r["resolved_by_name"]) for r in res] == [
        ("permanent_fix", FIX["summary"], ANN.name)
    ]


async def test_bulk_moves_refuse_what_the_table_refuses_and_other_tenants_ids(
    services: Any,
) -> None:
    tenant, other = await _tenant(services), await _tenant(services)
    fresh = await _ticket(services, tenant, "fresh")
    resolved = await _ticket(services, tenant, "resolved")
    foreign = await _ticket(services, other, "not yours")
    async with tenant_scope(services.pool, tenant.id) as conn:
        await tickets.transition(
            conn, tenant.id, resolved["id"], "resolved", actor=ANN, resolution=FIX, now=NOW
        )
        done = await ticket_bulk.transition(
            conn, tenant.id, [fresh["id"], resolved["id"], foreign["id"], uuid.uuid4()],
            "closed", actor=ANN, now=NOW,
        )  # fmt: skip
    assert [r["id"] for r in done.moved] == [resolved["id"]]
    assert done.moved[0]["status"] == "closed" and done.moved[0]["closed_at"] == NOW
    assert "cannot move from new to closed" in done.refused[fresh["id"]]
    assert set(done.missing) - {foreign["id"]} and foreign["id"] in done.missing
    assert (await tickets.get_ticket(services.pool, other.id, foreign["id"]))["status"] == "new"
    # Closing twice changes nothing: the closed ticket is reported unchanged.
    async with tenant_scope(services.pool, tenant.id) as conn:
        again = await ticket_bulk.transition(
            conn, tenant.id, [resolved["id"]], "closed", actor=ANN, now=NOW
        )
    assert not again.moved and [r["id"] for r in again.unchanged] == [resolved["id"]]
    assert (await _kinds(services, tenant, resolved["id"])).count("status") == 2


async def test_finish_resolves_then_closes_in_one_go(services: Any) -> None:
    tenant = await _tenant(services)
    rows = [await _ticket(services, tenant, f"t{i}") for i in range(3)]
    async with tenant_scope(services.pool, tenant.id) as conn:
        out = await ticket_bulk.finish(
            conn, tenant.id, [r["id"] for r in rows], close=True, actor=ANN, resolution=FIX,
            now=NOW,
        )  # fmt: skip
    assert [r["status"] for r in out] == ["closed"] * 3
    assert await _kinds(services, tenant, rows[0]["id"]) == [
        "created",
        "status",
        "resolved",
        "status",
    ]


async def test_search_finds_words_prefixes_numbers_and_contact_emails(services: Any) -> None:
    tenant = await _tenant(services)
    contact, _ = await contacts.resolve_contact(
        services.pool, tenant.id, email="Alice.Smith@Example.com"
    )
    heating = await _ticket(
        services, tenant, "Heating broken", description="The boiler stopped.",
        contact_id=contact["id"],
    )  # fmt: skip
    other = await _ticket(services, tenant, "Invoice question", description="Refund for 42")
    numbered = await _ticket(services, tenant, "Third")

    async def found(q: str) -> list[uuid.UUID]:
        async with tenant_scope(services.pool, tenant.id) as conn:
            return [r["id"] for r in await tickets.search_tickets(conn, tenant.id, q=q)]

    elsewhere = await _tenant(services)  # same words, another business: never found here
    await _ticket(services, elsewhere, "Heating broken", description="The boiler stopped.")
    assert await found("heat") == [heating["id"]]  # the word being typed is a prefix
    assert await found("BOILER stop") == [heating["id"]]
    assert await found("boil stopped") == []  # earlier words are whole words
    assert await found("alice.smith@example.com") == [heating["id"]]
    assert await found("alice") == [heating["id"]]
    assert await found("example.com") == [heating["id"]]
    assert await found("refund") == [other["id"]]
    n = numbered["number"]
    assert await found(f"T-{n}") == [numbered["id"]]
    assert await found(str(n)) == [numbered["id"]]
    assert other["id"] in await found("42")  # a number written in the text
    assert await found("%%% ''") == []  # no word at all
    # A contact's new email finds their tickets; the old one no longer does.
    await contacts.update_contact(
        services.pool, tenant.id, contact["id"], {"email": "alice@new.example"}
    )
    assert await found("new.example") == [heating["id"]]
    assert await found("alice.smith") == []
    # An edited subject is searched as edited.
    async with tenant_scope(services.pool, tenant.id) as conn:
        await tickets.update_ticket(
            conn, tenant.id, other["id"], {"subject": "Radiator noise"}, actor=ANN
        )
    assert await found("radiator") == [other["id"]]
