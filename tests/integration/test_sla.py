"""SLAs on the real database with a fixed clock (helpdesk/sla.py, docs/sla.md): due times over
opening-hours boundaries, a lunch break, a weekend and a closure day, a DST change, the pause
while waiting on the customer, a first response met and one late, warning then breach recorded
once each even with two sweeps at once, the rule chosen again on a priority change, a disabled
configuration, row-level security of the new tables; then the HTTP side: /v1/admin/sla,
the ticket's SLA state, the sla= list filter, /v1/metrics/sla and another tenant's ids.

The clock is in 2019, before every other test's: the sweeps here run for all tenants (as the
queue's does) and touch no ticket another test made."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from helpdesk import conversations, sla, teams, tickets
from helpdesk.audit import Actor
from helpdesk.profile import BusinessProfile, save_profile
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant, create_tenant
from tests.support.live_api import bearer
from tests.support.staff import make_staff, token_of

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
ANN = Actor("ann@desk.example")
DAY = [{"opens": "09:00", "closes": "12:00"}, {"opens": "13:00", "closes": "17:00"}]
WEEK = {d: DAY for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN)


MON = (2019, 6, 3)


async def _tenant(services: Any, **profile: Any) -> Tenant:
    tag = uuid.uuid4().hex[:8]
    tenant = await create_tenant(services.pool, f"sla-{tag}", f"SLA {tag}")
    data: dict[str, Any] = {"display_name": "Shop", "timezone": "Europe/Berlin", "hours": WEEK}
    data.update(profile)
    await save_profile(
        services.pool,
        tenant.id,
        BusinessProfile.model_validate(data),
        based_on=None,
        saved_by="test",
    )
    return tenant


async def _ticket(services: Any, tenant: Tenant, when: datetime, **kw: Any) -> dict[str, Any]:
    kw.setdefault("priority", "urgent")
    return await tickets.create_ticket(
        services.pool, tenant.id, subject="Heating down", actor=ANN, now=when, **kw
    )


async def _events(services: Any, tenant: Tenant, ticket_id: uuid.UUID) -> list[tuple[str, str]]:
    items = await tickets.timeline(services.pool, tenant.id, ticket_id)
    return [(i["kind"], i["detail"]["target"]) for i in items if i["kind"].startswith("sla.")]


async def _state(services: Any, tenant: Tenant, ticket_id: uuid.UUID, now: datetime) -> Any:
    row = await tickets.get_ticket(services.pool, tenant.id, ticket_id)
    return sla.ticket_state(row, now, await sla.load_profile(services.pool, tenant.id))


async def test_due_times_over_lunch_the_weekend_and_a_closure_day(services: Any) -> None:
    # Whit Monday 2019-06-10 is a closure: Friday 16:30 + 1 business hour is Tuesday 9:30.
    tenant = await _tenant(services, closures=[{"name": "Whit Monday", "start": "2019-06-10"}])
    ticket = await _ticket(services, tenant, at(2019, 6, 7, 16, 30))
    assert ticket["first_response_due_at"] == at(2019, 6, 11, 9, 30)
    # 4 business hours: Friday 30 min, Tuesday 9:00-12:00, lunch, 13:00-13:30.
    assert ticket["resolution_due_at"] == at(2019, 6, 11, 13, 30)
    assert ticket["sla_policy"]["source"] == "default"
    state = await _state(services, tenant, ticket["id"], at(2019, 6, 10, 12))
    assert state["state"] == "ok"
    assert state["first_response"]["remaining_minutes"] == 30  # the closure counts nothing


async def test_due_times_over_a_dst_change(services: Any) -> None:
    # Berlin moved to summer time on Sunday 2019-03-31. Friday 16:00 CET + 8 business hours
    # (normal: one business day) is Monday 17:00 CEST, 15:00 UTC.
    tenant = await _tenant(services)
    ticket = await _ticket(services, tenant, at(2019, 3, 29, 16), priority="normal")
    assert ticket["first_response_due_at"] == datetime(2019, 4, 1, 15, tzinfo=UTC)


async def test_the_clock_stops_while_waiting_on_the_customer(services: Any) -> None:
    tenant = await _tenant(services)
    ticket = await _ticket(services, tenant, at(*MON, 9))
    tid = ticket["id"]
    assert ticket["first_response_due_at"] == at(*MON, 10)
    await tickets.transition(
        services.pool, tenant.id, tid, "triage", actor=ANN, now=at(*MON, 9, 10)
    )
    row = await tickets.transition(
        services.pool, tenant.id, tid, "waiting_customer", actor=ANN, now=at(*MON, 9, 20)
    )
    assert row["sla_paused_at"] == at(*MON, 9, 20) and row["sla_next_check_at"] is None
    # Past the original due time, nothing is recorded: the clock is stopped.
    await sla.sweep(services.pool, at(*MON, 11))
    assert await _events(services, tenant, tid) == []
    state = await _state(services, tenant, tid, at(*MON, 11))
    assert state["state"] == "paused" and state["paused"]
    assert state["first_response"]["remaining_minutes"] == 40
    # Back at 14:20: paused 9:20-12:00 and 13:00-14:20, 4 business hours; due times move by it.
    row = await tickets.transition(
        services.pool, tenant.id, tid, "in_progress", actor=ANN, now=at(*MON, 14, 20)
    )
    assert row["sla_paused_s"] == 4 * 3600 and row["sla_paused_at"] is None
    assert row["first_response_due_at"] == at(*MON, 15)
    assert row["resolution_due_at"] == at(2019, 6, 4, 10)  # 9-12, 13-17, then Tuesday 9-10
    state = await _state(services, tenant, tid, at(*MON, 14, 50))
    assert state["state"] == "warning" and state["first_response"]["remaining_minutes"] == 10
    # Resolved then reopened: the time resolved does not count either.
    await tickets.transition(
        services.pool,
        tenant.id,
        tid,
        "resolved",
        actor=ANN,
        resolution={"type": "answered_question", "summary": "Reset it."},
        now=at(*MON, 14, 55),
    )
    state = await _state(services, tenant, tid, at(*MON, 16))
    assert state["resolution"]["state"] == "met"
    row = await tickets.transition(
        services.pool, tenant.id, tid, "in_progress", actor=ANN, now=at(*MON, 15, 55)
    )
    assert row["sla_paused_s"] == 5 * 3600
    assert row["resolution_due_at"] == at(2019, 6, 4, 11)


async def test_warning_then_breach_once_each_with_sweeps_at_once(services: Any) -> None:
    tenant = await _tenant(services)
    ticket = await _ticket(services, tenant, at(*MON, 9))
    tid = ticket["id"]
    assert ticket["first_response_warn_at"] == at(*MON, 9, 48)  # 80% of 60 minutes
    await sla.sweep(services.pool, at(*MON, 9, 47))
    assert await _events(services, tenant, tid) == []
    await asyncio.gather(*(sla.sweep(services.pool, at(*MON, 9, 48)) for _ in range(2)))
    assert await _events(services, tenant, tid) == [("sla.warning", "first_response")]
    state = await _state(services, tenant, tid, at(*MON, 9, 50))
    assert state["state"] == "warning"

    # One sweep holds its rows (not committed yet) while the other runs: the second skips
    # them, the first records the breach once.
    async with (
        services.pool.connection() as first,
        services.pool.connection() as second,
        first.transaction(),
    ):
        await first.execute(
            sla._SWEEP, {"now": at(*MON, 10), "batch": sla.SWEEP_BATCH, "window": sla.NOTIFY_WINDOW}
        )
        await sla.sweep(second, at(*MON, 10))
        assert await _events(services, tenant, tid) == [("sla.warning", "first_response")]
    assert await _events(services, tenant, tid) == [
        ("sla.warning", "first_response"),
        ("sla.breach", "first_response"),
    ]
    # A sweep that missed the flags (as if it read the ticket before the first committed)
    # meets the dedupe key and records nothing twice.
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE tickets SET first_response_warned = false, first_response_breached = false,"
            " sla_next_check_at = %s WHERE id = %s",
            (at(*MON, 9), tid),
        )
    await asyncio.gather(*(sla.sweep(services.pool, at(*MON, 10, 1)) for _ in range(3)))
    assert len(await _events(services, tenant, tid)) == 2
    state = await _state(services, tenant, tid, at(*MON, 10, 5))
    assert state["state"] == "breached" and state["first_response"]["remaining_minutes"] == -5

    # The resolution target: warning at 80% (13:12), breach at 14:00, again once each.
    await sla.sweep(services.pool, at(*MON, 13, 30))
    await asyncio.gather(*(sla.sweep(services.pool, at(*MON, 14, 5)) for _ in range(2)))
    await sla.sweep(services.pool, at(*MON, 15), batch=1)  # in batches of one: the same
    assert await _events(services, tenant, tid) == [
        ("sla.warning", "first_response"),
        ("sla.breach", "first_response"),
        ("sla.warning", "resolution"),
        ("sla.breach", "resolution"),
    ]
    # Each event the sweep recorded became one notification to staff (helpdesk.notifications),
    # none twice; the first-response breach was recorded by the bare statement above, which
    # leaves notifying to sla.sweep.
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, payload->>'target' AS target FROM notifications WHERE ticket_id = %s"
            " AND kind LIKE 'sla%%' ORDER BY created_at, kind",
            (tid,),
        )
        sent = [(r["kind"], r["target"]) for r in await cur.fetchall()]
    assert sorted(sent) == sorted(
        [
            ("sla_warning", "first_response"),
            ("sla_warning", "resolution"),
            ("sla_breach", "resolution"),
        ]
    ), sent
    row = await tickets.get_ticket(services.pool, tenant.id, tid)
    assert row["first_response_breached"] and row["resolution_breached"]
    assert row["sla_next_check_at"] is None
    # A warning whose breach is due as well is not sent: the breach alone is.
    late = await _ticket(services, tenant, at(*MON, 9))
    await sla.sweep(services.pool, at(*MON, 10, 30))
    assert await _events(services, tenant, late["id"]) == [("sla.breach", "first_response")]
    # Recorded hours after its instant (the workers were down): on the timeline, no notification.
    stale = await _ticket(services, tenant, at(2019, 6, 10, 9))
    await sla.sweep(services.pool, at(2019, 6, 10, 12, 30))
    assert await _events(services, tenant, stale["id"]) == [("sla.breach", "first_response")]
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE ticket_id = ANY(%s)"
            " AND kind = 'sla_breach'",
            ([late["id"], stale["id"]],),
        )
        assert (await cur.fetchone())["n"] == 1  # the late one's, within the hour


async def test_first_response_met_and_one_late(services: Any) -> None:
    tenant = await _tenant(services)
    cids = []
    for key in ("a", "b"):
        cid = await conversations.create_conversation(services.pool, tenant.id)
        await tickets.open_or_update_ticket(
            services.pool,
            tenant.id,
            cid,
            handoff_key=key,
            subject="Boiler",
            reason="explicit_request",
            summary="wants a person",
            intents=[],
            priority="urgent",
        )
        cids.append(cid)
    # The hand-off tickets were made "now" (the database clock): move their start to Monday 9.
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE tickets SET created_at = %s, sla_started_at = NULL WHERE tenant_id = %s",
            (at(*MON, 9), tenant.id),
        )
    rows = []
    for cid in cids:
        t = await tickets.open_ticket(services.pool, tenant.id, cid)
        assert t is not None
        async with services.pool.connection() as conn:
            rows.append(await sla.refresh(conn, tenant.id, t, at(*MON, 9), created=True))
    on_time, late = rows
    assert on_time["first_response_due_at"] == at(*MON, 10)
    async with services.pool.connection() as conn:  # no sweep sees the late one in time
        await conn.execute(
            "UPDATE tickets SET sla_next_check_at = NULL WHERE id = %s", (late["id"],)
        )
    assert await tickets.stamp_first_response(
        services.pool, tenant.id, cids[0], by_ai=True, now=at(*MON, 9, 30)
    )
    await sla.sweep(services.pool, at(*MON, 10, 5))
    assert await _events(services, tenant, on_time["id"]) == []
    state = await _state(services, tenant, on_time["id"], at(*MON, 10, 5))
    assert state["first_response"]["state"] == "met" and state["state"] == "ok"
    # Stamped late with no sweep in between: the breach is recorded at the stamp, once.
    await tickets.stamp_first_response(
        services.pool, tenant.id, cids[1], by_ai=False, now=at(*MON, 10, 30)
    )
    assert await _events(services, tenant, late["id"]) == [("sla.breach", "first_response")]
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE ticket_id = %s AND kind = 'sla_breach'",
            (late["id"],),
        )
        assert (await cur.fetchone())["n"] == 1  # recorded at the stamp: notified there
    state = await _state(services, tenant, late["id"], at(*MON, 10, 40))
    assert state["first_response"]["state"] == "breached"
    figures = await sla.compliance(
        services.pool, tenant.id, at(*MON, 0), at(2019, 6, 4, 0), as_of=at(*MON, 10, 40)
    )
    assert figures["by_priority"]["urgent"]["first_response"] == {
        "met": 1,
        "breached": 1,
        "pending": 0,
        "rate": 0.5,
    }


async def test_priority_and_category_choose_the_rule_again(services: Any) -> None:
    tenant = await _tenant(services)
    config = sla.parse_config(
        {
            "warn_before": {"minutes": 10},
            "policies": [
                {"priority": "high", "first_response_minutes": 120, "resolution_minutes": 480},
                {
                    "priority": "high",
                    "category": "outage",
                    "first_response_minutes": 15,
                    "resolution_minutes": 60,
                },
            ],
        }
    )
    await sla.save_config(services.pool, tenant.id, config, by="ann")
    ticket = await _ticket(services, tenant, at(*MON, 9), priority="high", category="outage")
    assert ticket["first_response_due_at"] == at(*MON, 9, 15)
    assert ticket["first_response_warn_at"] == at(*MON, 9, 5)  # 10 minutes before
    row = await tickets.update_ticket(
        services.pool, tenant.id, ticket["id"], {"category": "billing"}, actor=ANN,
        now=at(*MON, 9, 10),
    )  # fmt: skip
    assert row["first_response_due_at"] == at(*MON, 11)
    row = await tickets.update_ticket(
        services.pool, tenant.id, ticket["id"], {"priority": "low"}, actor=ANN, now=at(*MON, 9, 11)
    )
    assert row["sla_policy"] is None and row["first_response_due_at"] is None  # no low rule
    off = sla.parse_config({"enabled": False})
    await sla.save_config(services.pool, tenant.id, off, by="ann")
    assert (await _ticket(services, tenant, at(*MON, 9), priority="high"))["sla_policy"] is None
    got = await sla.get_config(services.pool, tenant.id)
    assert got.source == "tenant" and not got.enabled


async def test_row_level_security_on_the_sla_tables(services: Any) -> None:
    mine, theirs = await _tenant(services), await _tenant(services)
    await sla.save_config(
        services.pool,
        theirs.id,
        sla.parse_config(
            {
                "policies": [
                    {"priority": "low", "first_response_minutes": 5, "resolution_minutes": 9}
                ]
            }
        ),
        by="eve",
    )
    async with tenant_scope(services.pool, mine.id) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM sla_policies")
        assert (await cur.fetchone())["n"] == 0
        cur = await conn.execute("SELECT count(*) AS n FROM sla_settings")
        assert (await cur.fetchone())["n"] == 0
        assert (await sla.get_config(conn, theirs.id)).source == "default"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(services.pool, mine.id) as conn:
            await conn.execute(
                "INSERT INTO sla_settings (tenant_id, enabled) VALUES (%s, false)", (theirs.id,)
            )


# ------------------------------------------------------------------------------ HTTP


async def test_the_admin_sla_routes_the_ticket_state_and_compliance(
    live_api: Any, services: Any
) -> None:
    staff = await make_staff(services.pool, prefix="sla")
    other = await make_staff(services.pool, prefix="sla-other")
    with live_api.client() as client:
        manager = bearer(token_of(client, staff, "manager"))
        agent = bearer(staff.agent_key)
        r = client.get("/v1/admin/sla", headers=manager)
        assert r.status_code == 200 and r.json()["source"] == "default", r.text
        assert r.json()["warn_before"] == {"percent": 80}
        assert client.get("/v1/admin/sla", headers=agent).status_code == 403
        bad = {"policies": [{"priority": "urgent", "first_response_minutes": 0,
                             "resolution_minutes": 5}]}  # fmt: skip
        r = client.put("/v1/admin/sla", json=bad, headers=manager)
        assert r.status_code == 422 and "policies.0.first_response_minutes" in r.json()["message"]
        twice = {"policies": [{"priority": "urgent", "first_response_minutes": 5,
                               "resolution_minutes": 50}] * 2}  # fmt: skip
        r = client.put("/v1/admin/sla", json=twice, headers=manager)
        assert r.status_code == 422 and r.json()["message"].startswith("policies.1:"), r.text
        # Text the desk refuses, deep in a rule, is 422 invalid_input naming it (the fuzz
        # test's hostile-text pass reaches top-level fields only).
        for hostile in ("a\x00b", "a\x1b[31mb"):
            rule = {"priority": "urgent", "category": hostile}
            nested = {"policies": [{**rule, "first_response_minutes": 5, "resolution_minutes": 50}]}
            r = client.put("/v1/admin/sla", json=nested, headers=manager)
            assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
            assert "policies[0].category" in r.json()["message"], r.text
        good = {
            "warn_before": {"percent": 50},
            "policies": [
                {"priority": "urgent", "first_response_minutes": 30, "resolution_minutes": 120},
                {"priority": "high", "first_response_minutes": 60, "resolution_minutes": 480},
            ],
        }
        r = client.put("/v1/admin/sla", json=good, headers=manager)
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "tenant" and len(r.json()["policies"]) == 2
        assert (
            client.get("/v1/admin/sla", headers=manager).json()["policies"] == r.json()["policies"]
        )

        made = []
        for priority in ("urgent", "high", "low"):
            r = client.post(
                "/v1/tickets", json={"subject": f"SLA {priority}", "priority": priority},
                headers=agent,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            made.append(r.json())
        urgent, high, low = made
        assert urgent["sla"]["state"] == "ok" and urgent["sla"]["first_response"]["due_at"]
        assert urgent["sla"]["first_response"]["target_minutes"] == 30
        assert low["sla"] is None  # no rule for low
        # Push the urgent one past its due time and the high one into its warning.
        async with services.pool.connection() as conn:
            await conn.execute(
                "UPDATE tickets SET first_response_due_at = now() - interval '1 minute',"
                " first_response_warn_at = now() - interval '20 minutes' WHERE id = %s",
                (urgent["id"],),
            )
            await conn.execute(
                "UPDATE tickets SET first_response_warn_at = now() - interval '1 minute'"
                " WHERE id = %s",
                (high["id"],),
            )

        def listed(state: str) -> list[str]:
            r = client.get("/v1/tickets", params={"sla": state}, headers=agent)
            assert r.status_code == 200, r.text
            return [t["id"] for t in r.json()["items"]]

        assert listed("breached") == [urgent["id"]]
        assert listed("warning") == [high["id"]]
        assert client.get("/v1/tickets", params={"sla": "late"}, headers=agent).status_code == 422
        r = client.get(f"/v1/tickets/{urgent['id']}", headers=agent)
        assert r.json()["sla"]["state"] == "breached"
        assert r.json()["sla"]["first_response"]["remaining_minutes"] < 0

        r = client.get("/v1/metrics/sla", headers=manager)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["whole"]["tickets"] == 2
        assert body["by_priority"]["urgent"]["first_response"]["breached"] == 1
        assert body["by_priority"]["high"]["first_response"]["pending"] == 1
        assert client.get("/v1/metrics/sla", headers=agent).status_code == 403
        r = client.get("/v1/metrics/sla", params={"from": "soon"}, headers=manager)
        assert r.status_code == 422 and r.json()["code"] == "invalid_period"
        # One team's tickets (the dashboard's team filter): none of these is the team's; and a
        # team that is not this business's is 404, not an empty answer.
        heating = await teams.create_team(services.pool, staff.tenant.id, "Heating")
        r = client.get("/v1/metrics/sla", params={"team": str(heating.id)}, headers=manager)
        assert r.status_code == 200 and r.json()["whole"]["tickets"] == 0, r.text
        theirs_team = await teams.create_team(services.pool, other.tenant.id, "Heating")
        r = client.get("/v1/metrics/sla", params={"team": str(theirs_team.id)}, headers=manager)
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text

        # Another tenant sees none of it.
        theirs = bearer(other.agent_key)
        assert client.get(f"/v1/tickets/{urgent['id']}", headers=theirs).status_code == 404
        assert (
            client.get("/v1/tickets", params={"sla": "breached"}, headers=theirs).json()["items"]
            == []
        )
        r = client.get("/v1/admin/sla", headers=bearer(other.admin_key))
        assert r.json()["source"] == "default"
    now = datetime.now(UTC)
    assert now - timedelta(days=1) < now  # the real clock: the routes run on it
