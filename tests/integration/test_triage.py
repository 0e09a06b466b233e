"""Triage rules and the AI's suggestion (helpdesk/triage.py) on the real database, with a fixed
clock: each condition, ordering (the first rule wins, tags add up), rules applied on create and
on a change of the fields they read, never looping, every application on the timeline, the
blueprint's "outage + site_down -> urgent, on-call team", validation naming the field, the
suggestion stored but not applied, the routes, and row-level security of the new tables."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from helpdesk import conversations, organizations, teams, tickets, triage
from helpdesk.audit import Actor
from helpdesk.contacts import resolve_contact
from helpdesk.errors import InvalidInput
from helpdesk.policy import TenantPolicy
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant, create_tenant
from tests.support.live_api import bearer
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration

NOW = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
ANN = Actor("ann@desk.example")
CATEGORIES = {"outage": [], "billing": ["refund", "invoice"], "plumbing": []}


async def _tenant(services: Any, **policy: Any) -> Tenant:
    tag = uuid.uuid4().hex[:8]
    return await create_tenant(
        services.pool, f"triage-{tag}", f"Triage {tag}", TenantPolicy(**policy)
    )


async def _rules(services: Any, tenant: Tenant, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    return await triage.replace_rules(services.pool, tenant.id, list(rules), now=NOW)


async def _create(services: Any, tenant: Tenant, **kw: Any) -> dict[str, Any]:
    kw.setdefault("subject", "Something")
    return await tickets.create_ticket(
        services.pool,
        tenant.id,
        actor=ANN,
        categories=tenant.policy.ticket_categories,
        now=NOW,
        **kw,
    )


async def _events(services: Any, tenant: Tenant, ticket_id: uuid.UUID, kind: str) -> list[Any]:
    items = await tickets.timeline(services.pool, tenant.id, ticket_id)
    return [i["detail"] for i in items if i["kind"] == kind]


async def test_the_blueprint_example_site_down_outage_is_urgent_for_on_call(
    services: Any,
) -> None:
    tenant = await _tenant(services, ticket_categories=CATEGORIES)
    on_call = await teams.create_team(services.pool, tenant.id, "On-call")
    [rule] = await _rules(
        services,
        tenant,
        {
            "name": "Site down",
            "conditions": {"impact": ["site_down"], "category": ["outage"]},
            "actions": {"priority": "urgent", "team_id": str(on_call.id)},
        },
    )
    hit = await _create(
        services, tenant, subject="Shop is down", impact="site_down", category="outage"
    )
    assert hit["priority"] == "urgent" and hit["team_id"] == on_call.id
    [event] = await _events(services, tenant, hit["id"], "triage")
    assert event["rule_id"] == str(rule["id"]) and event["rule_name"] == "Site down"
    assert event["changes"] == {
        "priority": {"before": "normal", "after": "urgent"},
        "team_id": {"before": None, "after": str(on_call.id)},
    }
    # Half the conditions is no match.
    miss = await _create(
        services, tenant, subject="Slow page", impact="several_users", category="outage"
    )
    assert miss["priority"] == "normal" and miss["team_id"] is None
    assert await _events(services, tenant, miss["id"], "triage") == []


async def test_each_condition_matches_what_it_names_and_nothing_else(services: Any) -> None:
    tenant = await _tenant(services, ticket_categories=CATEGORIES)
    contact, _ = await resolve_contact(services.pool, tenant.id, email="c@example.com")
    other, _ = await resolve_contact(services.pool, tenant.id, email="d@example.com")
    org = await organizations.create_organization(services.pool, tenant.id, "Acme")
    org2 = await organizations.create_organization(services.pool, tenant.id, "Other")
    cases: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
        ({"category": ["billing"]}, {"category": "billing"}, {"category": "outage"}),
        ({"impact": ["all_users"]}, {"impact": "all_users"}, {"impact": "single_user"}),
        ({"priority": ["high"]}, {"priority": "high"}, {"priority": "low"}),
        ({"channel": ["email"]}, {"channel": "email"}, {"channel": "phone"}),
        (
            {"keywords": ["leak", "no heat"]},
            {"description": "There is NO   HEAT in flat 3"},
            {"description": "the leakage report"},  # whole words only
        ),
        (
            {"contact_id": [str(contact["id"])]},
            {"contact_id": contact["id"]},
            {"contact_id": other["id"]},
        ),
        (
            {"organization_id": [str(org["id"])]},
            {"organization_id": org["id"]},
            {"organization_id": org2["id"]},
        ),
    ]
    for conditions, match, miss in cases:
        await _rules(
            services,
            tenant,
            {"name": "r", "conditions": conditions, "actions": {"add_tags": ["hit"]}},
        )
        hit = await _create(services, tenant, **match)
        assert hit["tags"] == ["hit"], conditions
        no = await _create(services, tenant, **miss)
        assert no["tags"] == [], conditions
        assert (await _create(services, tenant))["tags"] == [], conditions  # nothing set


async def test_intent_condition_reads_the_hand_off_intents(services: Any) -> None:
    tenant = await _tenant(services)
    await _rules(
        services,
        tenant,
        {
            "name": "Emergencies",
            "conditions": {"intent": ["emergency"]},
            "actions": {"priority": "urgent"},
        },
    )
    for intents, expected in ((["emergency"], "urgent"), (["billing_question"], "normal")):
        cid = await conversations.create_conversation(services.pool, tenant.id)
        ticket = await tickets.open_or_update_ticket(
            services.pool,
            tenant.id,
            cid,
            handoff_key="h1",
            subject="Help",
            reason="explicit_request",
            summary="",
            intents=intents,
        )
        assert ticket["priority"] == expected


async def test_rules_apply_in_order_the_first_wins_and_tags_add_up(services: Any) -> None:
    tenant = await _tenant(services)
    await _rules(
        services,
        tenant,
        {
            "name": "first",
            "conditions": {"keywords": ["refund"]},
            "actions": {"priority": "high", "add_tags": ["money"]},
        },
        {
            "name": "second",
            "conditions": {"keywords": ["refund"]},
            "actions": {"priority": "low", "add_tags": ["money", "refund"]},
        },
    )
    t = await _create(services, tenant, subject="Refund please")
    assert t["priority"] == "high" and t["tags"] == ["money", "refund"]
    events = await _events(services, tenant, t["id"], "triage")
    assert [e["rule_name"] for e in events] == ["first", "second"]
    assert events[1]["changes"] == {"tags": {"before": ["money"], "after": ["money", "refund"]}}


async def test_rules_never_loop_and_rerun_only_on_a_change_of_what_they_read(
    services: Any,
) -> None:
    tenant = await _tenant(services)
    await _rules(
        services,
        tenant,
        {
            "name": "high is urgent",
            "conditions": {"priority": ["high"]},
            "actions": {"priority": "urgent"},
        },
        {
            "name": "urgent is low",
            "conditions": {"priority": ["urgent"]},
            "actions": {"priority": "low"},
        },
    )
    t = await _create(services, tenant, priority="high")
    # The first rule's change does not trigger the second (nor itself again).
    assert t["priority"] == "urgent"
    assert len(await _events(services, tenant, t["id"], "triage")) == 1
    # A change of a field no rule reads runs no rule.
    t = await tickets.update_ticket(
        services.pool, tenant.id, t["id"], {"subject": "New"}, actor=ANN, now=NOW
    )
    assert t["priority"] == "urgent"
    assert len(await _events(services, tenant, t["id"], "triage")) == 1
    # The agent sets priority: the rules that read it run once on that change.
    t = await tickets.update_ticket(
        services.pool, tenant.id, t["id"], {"priority": "urgent"}, actor=ANN, now=NOW
    )
    assert t["priority"] == "urgent"  # no change at all: nothing runs
    t = await tickets.update_ticket(
        services.pool, tenant.id, t["id"], {"priority": "high"}, actor=ANN, now=NOW
    )
    assert t["priority"] == "urgent"
    assert len(await _events(services, tenant, t["id"], "triage")) == 2


async def test_a_change_of_the_text_applies_a_keyword_rule(services: Any) -> None:
    tenant = await _tenant(services)
    await _rules(
        services,
        tenant,
        {
            "name": "leaks",
            "conditions": {"keywords": ["leak"]},
            "actions": {"priority": "urgent", "add_tags": ["water"]},
        },
    )
    t = await _create(services, tenant, subject="Kitchen")
    assert t["priority"] == "normal"
    t = await tickets.update_ticket(
        services.pool,
        tenant.id,
        t["id"],
        {"description": "A leak under the sink"},
        actor=ANN,
        now=NOW,
    )
    assert t["priority"] == "urgent" and t["tags"] == ["water"]
    [event] = await _events(services, tenant, t["id"], "triage")
    assert event["rule_name"] == "leaks"


async def test_disabled_rules_do_nothing(services: Any) -> None:
    tenant = await _tenant(services)
    await _rules(
        services, tenant, {"name": "off", "enabled": False, "actions": {"priority": "urgent"}}
    )
    assert (await _create(services, tenant))["priority"] == "normal"


async def test_bad_rules_are_refused_naming_the_field(services: Any) -> None:
    tenant, other = await _tenant(services, ticket_categories=CATEGORIES), await _tenant(services)
    foreign = await teams.create_team(services.pool, other.id, "Theirs")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "actions": {"priority": "asap"}}, "rules[0].actions.priority"),
        ({"name": "x", "actions": {"team_id": str(foreign.id)}}, "rules[0].actions.team_id"),
        ({"name": "x", "actions": {}}, "rules[0].actions"),
        ({"name": "", "actions": {"priority": "low"}}, "rules[0].name"),
        (
            {"name": "x", "conditions": {"impact": ["huge"]}, "actions": {"priority": "low"}},
            "rules[0].conditions.impact",
        ),
        (
            {"name": "x", "conditions": {"colour": ["red"]}, "actions": {"priority": "low"}},
            "rules[0].conditions.colour",
        ),
        (
            {"name": "x", "conditions": {"keywords": []}, "actions": {"priority": "low"}},
            "rules[0].conditions.keywords",
        ),
        (
            {"name": "x", "conditions": {"category": ["hr"]}, "actions": {"priority": "low"}},
            "rules[0].conditions.category",
        ),
        (
            {"name": "x", "actions": {"add_tags": ["ok"], "apply_suggestion": 2}},
            "rules[0].actions.apply_suggestion",
        ),
        (
            {"name": "x", "actions": {"assignee_id": "not-an-id"}},
            "rules[0].actions.assignee_id",
        ),
    ]
    for rule, field in bad:
        with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]")):
            await triage.replace_rules(
                services.pool, tenant.id, [rule], categories=CATEGORIES, now=NOW
            )
    assert await triage.list_rules(services.pool, tenant.id) == []


async def test_replacing_rules_keeps_ids_and_order(services: Any) -> None:
    tenant = await _tenant(services)
    a, b = await _rules(
        services,
        tenant,
        {"name": "a", "actions": {"priority": "low"}},
        {"name": "b", "actions": {"priority": "high"}},
    )
    again = await _rules(
        services,
        tenant,
        {"id": str(b["id"]), "name": "b", "actions": {"priority": "high"}},
        {"name": "c", "actions": {"priority": "low"}},
    )
    assert [r["name"] for r in again] == ["b", "c"] and again[0]["id"] == b["id"]
    assert again[1]["id"] != a["id"]


def test_the_suggestion_reads_urgency_words_and_the_category_list() -> None:
    s = triage.suggest("Water leak under the sink", "please come asap", CATEGORIES)
    assert s.priority == "urgent" and s.category == "plumbing" and 0.5 < s.confidence <= 1
    s = triage.suggest("Question about my invoice", "no rush", CATEGORIES)
    assert s.priority == "low" and s.category == "billing"
    s = triage.suggest("The checkout is not working", "", CATEGORIES, ["outage_report"])
    assert s.priority == "high" and s.category == "outage"
    s = triage.suggest("Hello", "", CATEGORIES)
    assert s.priority == "normal" and s.category is None and s.confidence == 0.5
    assert triage.suggest("Water leak", "", {}).category is None  # no list, no category
    assert triage.keyword_match("no heat", "NO\nHEAT here")
    assert not triage.keyword_match("heat", "heating")


async def test_the_suggestion_is_stored_shown_and_not_applied(services: Any) -> None:
    tenant = await _tenant(services, ticket_categories=CATEGORIES)
    t = await _create(services, tenant, subject="Leak in the bathroom", description="asap!")
    assert (t["suggested_category"], t["suggested_priority"]) == ("plumbing", "urgent")
    assert t["suggestion_confidence"] is not None and t["suggestion_confidence"] > 0.5
    assert t["priority"] == "normal" and t["category"] is None
    # The agent accepts by setting the fields.
    t = await tickets.update_ticket(
        services.pool,
        tenant.id,
        t["id"],
        {"category": t["suggested_category"], "priority": t["suggested_priority"]},
        actor=ANN,
        categories=CATEGORIES,
        now=NOW,
    )
    assert (t["category"], t["priority"]) == ("plumbing", "urgent")


async def test_a_rule_may_take_the_suggestion_above_a_confidence(services: Any) -> None:
    tenant = await _tenant(services, ticket_categories=CATEGORIES)
    await _rules(services, tenant, {"name": "trust the AI", "actions": {"apply_suggestion": 0.6}})
    t = await _create(services, tenant, subject="Leak in the bathroom", description="asap!")
    assert (t["category"], t["priority"]) == ("plumbing", "urgent")
    t = await _create(services, tenant, subject="Hello")
    assert (t["category"], t["priority"]) == (None, "normal")  # 0.5 is below 0.6


async def test_new_tables_are_under_row_level_security(services: Any) -> None:
    mine, theirs = await _tenant(services), await _tenant(services)
    team = await teams.create_team(services.pool, theirs.id, "Ops")
    await _rules(services, theirs, {"name": "r", "actions": {"team_id": str(team.id)}})
    await _create(services, theirs)
    async with services.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO team_assignment (tenant_id, team_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (theirs.id, team.id),
        )
    async with tenant_scope(services.pool, mine.id) as conn:
        for table in ("triage_rules", "team_assignment"):
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
            row = await cur.fetchone()
            assert row is not None and row["n"] == 0, table
        assert await triage.list_rules(conn, mine.id) == []
    async with tenant_scope(services.pool, theirs.id) as conn:
        assert len(await triage.list_rules(conn, theirs.id)) == 1


async def test_the_rule_routes_need_triage_manage_and_name_bad_fields(
    live_api: Any, services: Any
) -> None:
    staff = await make_staff(services.pool)
    team = await teams.create_team(services.pool, staff.tenant.id, "On-call")
    body = {
        "rules": [
            {
                "name": "Site down",
                "conditions": {"impact": ["site_down"], "category": ["outage"]},
                "actions": {"priority": "urgent", "team_id": str(team.id)},
            }
        ]
    }
    admin, agent = bearer(staff.admin_key), bearer(staff.agent_key)
    with live_api.client() as client:
        r = client.put("/v1/admin/triage-rules", json=body, headers=agent)
        assert r.status_code == 403 and "triage.manage" in r.json()["message"]
        r = client.put("/v1/admin/triage-rules", json=body, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["rules"][0]["actions"]["team_id"] == str(team.id)
        assert client.get("/v1/admin/triage-rules", headers=admin).json() == r.json()
        bad = {"rules": [{**body["rules"][0], "actions": {"team_id": str(uuid.uuid4())}}]}
        r = client.put("/v1/admin/triage-rules", json=bad, headers=admin)
        assert r.status_code == 422 and "rules[0].actions.team_id" in r.json()["message"]
        r = client.put(
            "/v1/admin/triage-rules",
            json={"rules": [{"name": "x", "actions": {"priority": "asap"}}]},
            headers=admin,
        )
        assert r.status_code == 422, r.text
        r = client.post(
            "/v1/tickets",
            json={"subject": "Shop down", "impact": "site_down", "category": "outage"},
            headers=agent,
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["priority"] == "urgent" and made["team_id"] == str(team.id)
        assert "suggested_priority" in made and "suggestion_confidence" in made
        r = client.get(f"/v1/tickets/{made['id']}/timeline", headers=agent)
        kinds = [i["kind"] for i in r.json()["items"]]
        assert "triage" in kinds


async def test_a_rule_whose_team_was_deleted_skips_that_action(services: Any) -> None:
    tenant = await _tenant(services)
    team = await teams.create_team(services.pool, tenant.id, "Gone soon")
    await _rules(
        services,
        tenant,
        {"name": "route", "actions": {"team_id": str(team.id), "add_tags": ["routed"]}},
    )
    await teams.delete_team(services.pool, tenant.id, team.id)
    t = await _create(services, tenant)
    assert t["team_id"] is None and t["tags"] == ["routed"]
    [event] = await _events(services, tenant, t["id"], "triage")
    assert set(event["changes"]) == {"tags"}


async def test_concurrent_replacements_do_not_collide(services: Any) -> None:
    tenant = await _tenant(services)
    lists = [[{"name": f"r{i}", "actions": {"priority": "low"}}] for i in range(5)]
    await asyncio.gather(*(triage.replace_rules(services.pool, tenant.id, rs) for rs in lists))
    [kept] = await triage.list_rules(services.pool, tenant.id)
    assert kept["name"] in {f"r{i}" for i in range(5)}
