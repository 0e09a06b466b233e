"""Tickets in the domain layer (helpdesk/tickets.py) on the real database, with a fixed clock:
every move of the lifecycle table, resolutions, reopening and follow-up tickets, auto-close,
first-response stamps, numbering under concurrency, row-level security of the new tables, and
the hand-off tickets of an older database carried over by migration 0020."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from helpdesk import conversations, db, tickets
from helpdesk.audit import Actor
from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.policy import TenantPolicy
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant, create_tenant
from helpdesk.tickets import STATUSES, TRANSITIONS, InvalidTransition

pytestmark = pytest.mark.integration

NOW = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
"""The fixed clock of these tests (far from the real one, so :func:`close_stale` runs with
an earlier clock never touch tickets other tests resolved today)."""
ANN = Actor("ann@desk.example")
RESOLUTION = {"type": "answered_question", "summary": "Explained the opening hours."}


async def _tenant(services: Any, **policy: Any) -> Tenant:
    tag = uuid.uuid4().hex[:8]
    return await create_tenant(
        services.pool, f"tickets-{tag}", f"Tickets {tag}", TenantPolicy(**policy)
    )


async def _force(services: Any, ticket_id: uuid.UUID, status: str, at: datetime = NOW) -> None:
    """Put a ticket in ``status`` directly (as the owner), stamps included."""
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE tickets SET status = %s,"
            " resolved_at = CASE WHEN %s IN ('resolved', 'closed') THEN %s END,"
            " closed_at = CASE WHEN %s = 'closed' THEN %s END WHERE id = %s",
            (status, status, at, status, at, ticket_id),
        )


async def _conversation_ticket(services: Any, tenant: Tenant) -> tuple[uuid.UUID, dict[str, Any]]:
    cid = await conversations.create_conversation(services.pool, tenant.id)
    ticket = await tickets.open_or_update_ticket(
        services.pool,
        tenant.id,
        cid,
        handoff_key="h1",
        subject="Boiler leaking",
        reason="explicit_request",
        summary="wants a person",
        intents=["emergency"],
    )
    return cid, ticket


async def _say(services: Any, tenant: Tenant, cid: uuid.UUID, sender: str, **kw: Any) -> None:
    await conversations.add_message(
        services.pool, tenant.id, cid, message_id=uuid.uuid4(), sender=sender, text="hi", **kw
    )


def test_the_table_names_every_status_and_moves_only_to_statuses() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    for moves in TRANSITIONS.values():
        assert set(moves) <= set(STATUSES)
    assert TRANSITIONS["closed"] == ()
    # The blueprint's main path is walkable.
    path = ["new", "triage", "in_progress", "pending_release", "resolved", "closed"]
    for a, b in itertools.pairwise(path):
        assert b in TRANSITIONS[a], (a, b)


async def test_every_move_of_the_table_legal_and_illegal(services: Any) -> None:
    tenant = await _tenant(services)
    pairs = [(a, b) for a in STATUSES for b in STATUSES if a != b]
    for current, to in pairs:
        row = await tickets.create_ticket(
            services.pool, tenant.id, subject=f"{current}->{to}", actor=ANN, now=NOW
        )
        await _force(services, row["id"], current, NOW - timedelta(days=1))
        resolution = RESOLUTION if to == "resolved" else None
        later = NOW + timedelta(hours=1)
        if to in TRANSITIONS[current]:
            moved = await tickets.transition(
                services.pool,
                tenant.id,
                row["id"],
                to,
                actor=ANN,
                resolution=resolution,
                now=later,
            )
            assert moved["status"] == to, (current, to)
            assert moved["updated_at"] == later
            if to == "resolved":
                assert moved["resolved_at"] == later and moved["resolution_id"] is not None
            elif to == "closed":
                assert moved["closed_at"] == later
                assert moved["resolved_at"] == NOW - timedelta(days=1)
            else:
                assert moved["resolved_at"] is None and moved["closed_at"] is None
            reopened = (current, to) == ("resolved", tickets.REOPEN_STATUS)
            assert moved["reopen_count"] == int(reopened), (current, to)
        else:
            with pytest.raises(InvalidTransition) as err:
                await tickets.transition(
                    services.pool,
                    tenant.id,
                    row["id"],
                    to,
                    actor=ANN,
                    resolution=resolution,
                    now=later,
                )
            assert err.value.code == "invalid_transition" and err.value.status == 409
            message = err.value.message
            assert f"from {current} to {to}" in message
            for allowed in TRANSITIONS[current]:
                assert allowed in message.split("may move to ")[1], (current, to, message)
            if current == "closed":
                assert "closed is final" in message
            stored = await tickets.get_ticket(services.pool, tenant.id, row["id"])
            assert stored["status"] == current, "a refused move wrote"


async def test_a_move_to_the_same_status_changes_nothing(services: Any) -> None:
    tenant = await _tenant(services)
    row = await tickets.create_ticket(services.pool, tenant.id, subject="s", actor=ANN, now=NOW)
    same = await tickets.transition(
        services.pool, tenant.id, row["id"], "new", actor=ANN, now=NOW + timedelta(days=1)
    )
    assert same["updated_at"] == NOW


async def test_resolving_needs_a_resolution_and_stores_it(services: Any) -> None:
    tenant = await _tenant(services)
    row = await tickets.create_ticket(services.pool, tenant.id, subject="s", actor=ANN, now=NOW)
    with pytest.raises(InvalidInput, match="needs a resolution"):
        await tickets.transition(services.pool, tenant.id, row["id"], "resolved", actor=ANN)
    with pytest.raises(InvalidInput, match="resolution type"):
        await tickets.transition(
            services.pool,
            tenant.id,
            row["id"],
            "resolved",
            actor=ANN,
            resolution={"type": "fixed_it", "summary": "x"},
        )
    with pytest.raises(InvalidInput, match="only when moving to resolved"):
        await tickets.transition(
            services.pool, tenant.id, row["id"], "triage", actor=ANN, resolution=RESOLUTION
        )
    with pytest.raises(NotFound, match="article_id"):
        await tickets.transition(
            services.pool,
            tenant.id,
            row["id"],
            "resolved",
            actor=ANN,
            resolution={**RESOLUTION, "article_id": uuid.uuid4()},
        )
    assert (await tickets.get_ticket(services.pool, tenant.id, row["id"]))["status"] == "new"
    done = await tickets.transition(
        services.pool,
        tenant.id,
        row["id"],
        "resolved",
        actor=ANN,
        now=NOW,
        resolution={
            "type": "workaround",
            "summary": "Restart the router.",
            "steps": "1. unplug 2. wait",
            "root_cause": "firmware",
            "references": [{"kind": "url", "ref": "https://example.com/fw", "title": "FW"}],
        },
    )
    [res] = await tickets.list_resolutions(services.pool, tenant.id, row["id"])
    assert done["resolution_id"] == res["id"]
    assert (res["type"], res["summary"], res["steps"], res["root_cause"]) == (
        "workaround",
        "Restart the router.",
        "1. unplug 2. wait",
        "firmware",
    )
    assert (res["resolved_by"], res["resolved_by_name"], res["ai_generated"]) == (
        "user",
        ANN.name,
        False,
    )
    assert res["refs"] == [{"kind": "url", "ref": "https://example.com/fw", "title": "FW"}]
    # The AI resolving (no actor): resolved by the AI, AI-generated.
    other = await tickets.create_ticket(services.pool, tenant.id, subject="t", actor=None)
    await tickets.transition(
        services.pool, tenant.id, other["id"], "resolved", actor=None, resolution=RESOLUTION
    )
    [ai] = await tickets.list_resolutions(services.pool, tenant.id, other["id"])
    assert (ai["resolved_by"], ai["ai_generated"]) == ("ai", True)


async def test_resolving_a_conversation_ticket_asks_for_csat_once(services: Any) -> None:
    tenant = await _tenant(services)
    cid, ticket = await _conversation_ticket(services, tenant)
    await tickets.transition(
        services.pool, tenant.id, ticket["id"], "resolved", actor=ANN, resolution=RESOLUTION
    )
    events = await conversations.list_events(services.pool, tenant.id, cid)
    asks = [e for e in events if e["type"] == tickets.CSAT_REQUEST_EVENT]
    assert len(asks) == 1 and asks[0]["data"]["ticket_number"] == f"T-{ticket['number']}"


async def test_a_customer_message_reopens_a_resolved_ticket(services: Any) -> None:
    tenant = await _tenant(services)
    cid, ticket = await _conversation_ticket(services, tenant)
    for round_ in (1, 2):
        await tickets.transition(
            services.pool, tenant.id, ticket["id"], "resolved", actor=ANN, resolution=RESOLUTION
        )
        await _say(services, tenant, cid, "ai")  # the AI talking reopens nothing
        assert (await tickets.get_ticket(services.pool, tenant.id, ticket["id"]))[
            "status"
        ] == "resolved"
        await _say(services, tenant, cid, "customer")
        now = await tickets.get_ticket(services.pool, tenant.id, ticket["id"])
        assert (now["status"], now["reopen_count"], now["resolved_at"]) == (
            tickets.REOPEN_STATUS,
            round_,
            None,
        )
    assert len(await tickets.list_tickets(services.pool, tenant.id, cid)) == 1
    kinds = [i["kind"] for i in await tickets.timeline(services.pool, tenant.id, ticket["id"])]
    assert kinds.count("reopened") == 2


async def test_a_customer_message_on_a_closed_ticket_opens_a_linked_one(services: Any) -> None:
    tenant = await _tenant(services)
    cid, ticket = await _conversation_ticket(services, tenant)
    await tickets.transition(
        services.pool, tenant.id, ticket["id"], "resolved", actor=ANN, resolution=RESOLUTION
    )
    await tickets.transition(services.pool, tenant.id, ticket["id"], "closed", actor=ANN)
    await _say(services, tenant, cid, "customer")
    await _say(services, tenant, cid, "customer")  # the second message finds it open
    old, new = await tickets.list_tickets(services.pool, tenant.id, cid)
    assert old["id"] == ticket["id"] and old["status"] == "closed" and old["reopen_count"] == 0
    assert (new["status"], new["parent_ticket_id"], new["number"]) == (
        "new",
        ticket["id"],
        ticket["number"] + 1,
    )
    assert new["subject"] == ticket["subject"] and new["channel"] == "web"
    # A later hand-off in the conversation updates the follow-up, not a third ticket.
    again = await tickets.open_or_update_ticket(
        services.pool,
        tenant.id,
        cid,
        handoff_key="h2",
        subject="x",
        reason="explicit_request",
        summary="",
        intents=[],
    )
    assert again["id"] == new["id"]


async def test_close_stale_closes_after_the_tenants_days_without_a_reply(services: Any) -> None:
    t0 = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)
    default = await _tenant(services)
    quick = await _tenant(services, auto_close_days=2)
    rows = {}
    for name, tenant in (("default", default), ("quick", quick), ("replied", default)):
        cid, ticket = await _conversation_ticket(services, tenant)
        await tickets.transition(
            services.pool,
            tenant.id,
            ticket["id"],
            "resolved",
            actor=ANN,
            resolution=RESOLUTION,
            now=t0,
        )
        rows[name] = (tenant, cid, ticket)
    tenant, cid, _ = rows["replied"]
    await _say(services, tenant, cid, "customer")  # reopened: never auto-closed

    def status(name: str) -> Any:
        tenant, _, ticket = rows[name]
        return tickets.get_ticket(services.pool, tenant.id, ticket["id"])

    assert (
        await tickets.close_stale(services.pool, t0 + timedelta(days=2) - timedelta(seconds=1)) == 0
    )
    assert await tickets.close_stale(services.pool, t0 + timedelta(days=2)) == 1
    assert (await status("quick"))["status"] == "closed"
    assert (await status("quick"))["closed_at"] == t0 + timedelta(days=2)
    assert (await status("default"))["status"] == "resolved"
    assert await tickets.close_stale(services.pool, t0 + timedelta(days=6, hours=23)) == 0
    assert await tickets.close_stale(services.pool, t0 + timedelta(days=7)) == 1
    assert (await status("default"))["status"] == "closed"
    assert (await status("replied"))["status"] == tickets.REOPEN_STATUS
    assert await tickets.close_stale(services.pool, t0 + timedelta(days=30)) == 0  # idempotent
    timeline = await tickets.timeline(services.pool, default.id, rows["default"][2]["id"])
    [closing] = [i for i in timeline if i["detail"].get("by") == "auto_close"]
    assert (closing["kind"], closing["at"]) == ("status", t0 + timedelta(days=7))


async def test_close_stale_runs_at_once_close_each_ticket_once(services: Any) -> None:
    # Between the clocks of the other close_stale test and of the table test: neither run
    # touches these tickets, and these runs touch none of theirs.
    t0 = datetime(2020, 6, 1, tzinfo=UTC)
    tenant = await _tenant(services)
    ids = []
    for i in range(12):
        row = await tickets.create_ticket(services.pool, tenant.id, subject=f"#{i}", actor=ANN)
        await tickets.transition(
            services.pool,
            tenant.id,
            row["id"],
            "resolved",
            actor=ANN,
            resolution=RESOLUTION,
            now=t0,
        )
        ids.append(row["id"])
    counts = await asyncio.gather(
        *(tickets.close_stale(services.pool, t0 + timedelta(days=8)) for _ in range(4))
    )
    assert sum(counts) == 12
    for tid in ids:
        items = await tickets.timeline(services.pool, tenant.id, tid)
        assert [i["detail"].get("by") for i in items].count("auto_close") == 1


@pytest.mark.parametrize(("first", "ai"), [("ai", True), ("agent", False)])
async def test_the_first_public_reply_stamps_first_response(
    services: Any, first: str, ai: bool
) -> None:
    tenant = await _tenant(services)
    cid, ticket = await _conversation_ticket(services, tenant)
    await _say(services, tenant, cid, "system")
    await _say(services, tenant, cid, first, visibility="internal")
    assert (await tickets.get_ticket(services.pool, tenant.id, ticket["id"]))[
        "first_response_at"
    ] is None
    await _say(services, tenant, cid, first)
    stamped = await tickets.get_ticket(services.pool, tenant.id, ticket["id"])
    assert stamped["first_response_at"] is not None and stamped["ai_first_response"] is ai
    await _say(services, tenant, cid, "agent" if ai else "ai")
    again = await tickets.get_ticket(services.pool, tenant.id, ticket["id"])
    assert (again["first_response_at"], again["ai_first_response"]) == (
        stamped["first_response_at"],
        ai,
    )
    kinds = [i["kind"] for i in await tickets.timeline(services.pool, tenant.id, ticket["id"])]
    assert kinds.count("first_response") == 1


async def test_numbers_are_per_tenant_and_unique_under_concurrency(services: Any) -> None:
    a, b = await _tenant(services), await _tenant(services)

    async def make(tenant: Tenant, i: int) -> int:
        async with tenant_scope(services.pool, tenant.id) as conn:
            row = await tickets.create_ticket(conn, tenant.id, subject=f"#{i}", actor=ANN)
        return int(row["number"])

    numbers = await asyncio.gather(*(make(t, i) for i in range(25) for t in (a, b)))
    assert sorted(numbers[0::2]) == list(range(1, 26))
    assert sorted(numbers[1::2]) == list(range(1, 26))


async def test_created_tickets_check_their_references_and_categories(services: Any) -> None:
    tenant = await _tenant(services, ticket_categories={"billing": ["refund"], "outage": []})
    other = await _tenant(services)
    foreign = await tickets.create_ticket(services.pool, other.id, subject="x", actor=ANN)
    with pytest.raises(NotFound, match="parent_ticket_id"):
        await tickets.create_ticket(
            services.pool, tenant.id, subject="x", actor=ANN, parent_ticket_id=foreign["id"]
        )
    cats = tenant.policy.ticket_categories
    with pytest.raises(InvalidInput, match="billing, outage"):
        await tickets.create_ticket(
            services.pool, tenant.id, subject="x", actor=ANN, category="misc", categories=cats
        )
    with pytest.raises(InvalidInput, match="refund"):
        await tickets.create_ticket(
            services.pool,
            tenant.id,
            subject="x",
            actor=ANN,
            category="billing",
            sub_category="tax",
            categories=cats,
        )
    ok = await tickets.create_ticket(
        services.pool,
        tenant.id,
        subject="x",
        actor=ANN,
        category="outage",
        sub_category="anything",
        categories=cats,
        tags=["VIP", " vip ", "api"],
    )
    assert (ok["category"], ok["sub_category"], ok["tags"]) == (
        "outage",
        "anything",
        ["vip", "api"],
    )
    cid, _ = await _conversation_ticket(services, tenant)
    with pytest.raises(Conflict, match="open ticket"):
        await tickets.create_ticket(
            services.pool, tenant.id, subject="x", actor=ANN, conversation_id=cid
        )


async def test_new_tables_are_under_row_level_security(services: Any) -> None:
    mine, theirs = await _tenant(services), await _tenant(services)
    _cid, ticket = await _conversation_ticket(services, theirs)
    await tickets.add_note(
        services.pool, theirs.id, ticket_id=ticket["id"], body="secret", actor=ANN
    )
    await tickets.transition(
        services.pool, theirs.id, ticket["id"], "resolved", actor=ANN, resolution=RESOLUTION
    )
    async with tenant_scope(services.pool, mine.id) as conn:
        for table in (
            "tickets",
            "resolutions",
            "internal_notes",
            "ticket_events",
            "ticket_counters",
        ):
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
            row = await cur.fetchone()
            assert row is not None and row["n"] == 0, table
    async with tenant_scope(services.pool, theirs.id) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM internal_notes")
        row = await cur.fetchone()
        assert row is not None and row["n"] == 1


@pytest.fixture
def database_before_tickets(settings: Any) -> Iterator[str]:
    """A fresh database migrated up to the last migration before 0020_tickets."""
    server = db.server_url(settings)
    url = db.with_database(server, f"deskgraph_tk_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    try:
        assert db.upgrade(url, target="0019_kb_drafts")[-1] == "0019_kb_drafts"
        yield url
    finally:
        db.drop_database(url)


def test_hand_off_tickets_of_an_older_database_are_renumbered_per_tenant_and_keep_working(
    database_before_tickets: str,
) -> None:
    url = database_before_tickets
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        tenants = [
            conn.execute(
                "INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug)
            ).fetchone()[0]  # type: ignore[index]
            for slug in ("old-a", "old-b")
        ]
        made = []  # (tenant, status, created_at), interleaved across tenants
        for i, (tenant, status) in enumerate(
            [(0, "new"), (1, "resolved"), (0, "closed"), (1, "in_progress"), (0, "resolved")]
        ):
            cid = uuid.uuid4()
            conn.execute(
                "INSERT INTO conversations (id, tenant_id, channel) VALUES (%s, %s, 'email')",
                (cid, tenants[tenant]),
            )
            at = t0 + timedelta(hours=i)
            conn.execute(
                "INSERT INTO tickets (tenant_id, conversation_id, status, subject, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (tenants[tenant], cid, status, f"old {i}", at, at),
            )
            made.append((tenant, status, at))

    db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tenant_id, number, status, channel, resolved_at, closed_at, subject"
            " FROM tickets ORDER BY created_at"
        ).fetchall()
        assert [(r[0], r[1], r[2]) for r in rows] == [
            (tenants[0], 1, "new"),
            (tenants[1], 1, "resolved"),
            (tenants[0], 2, "closed"),
            (tenants[1], 2, "in_progress"),
            (tenants[0], 3, "resolved"),
        ]
        assert {r[3] for r in rows} == {"email"}
        for (_, status, at), r in zip(made, rows, strict=True):
            assert r[4] == (at if status in ("resolved", "closed") else None), r
            assert r[5] == (at if status == "closed" else None), r
        # The counters continue where the old tickets end.
        (number,) = conn.execute(
            "INSERT INTO tickets (tenant_id, subject) VALUES (%s, 'new one') RETURNING number",
            (tenants[0],),
        ).fetchone()  # type: ignore[misc]
        assert number == 4
