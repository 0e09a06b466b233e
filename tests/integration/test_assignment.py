"""Assignment (helpdesk/assignment.py) on the real database, with a fixed clock for the
tickets: round-robin among a team's online members (one offline skipped), ten concurrent
assignments split fairly, least loaded, nobody online, a team's auto-assignment after a triage
rule, the reassignment history on the timeline, another tenant's ids, and the routes."""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from helpdesk import assignment, sessions, teams, tickets, triage, users
from helpdesk.assignment import NoAgentOnline
from helpdesk.audit import Actor
from helpdesk.errors import InvalidInput, NotFound
from helpdesk.tenants import Tenant, create_tenant
from tests.support.live_api import bearer
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration

NOW = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
ANN = Actor("ann@desk.example")


class Desk:
    """A tenant with a team of three agents, all signed in, the third set offline."""

    def __init__(self, tenant: Tenant, team: teams.Team, agents: list[uuid.UUID]) -> None:
        self.tenant, self.team, self.agents = tenant, team, agents

    @property
    def online(self) -> list[uuid.UUID]:
        return sorted(self.agents[:2])


async def _desk(services: Any, *, signed_in: int = 3) -> Desk:
    tag = uuid.uuid4().hex[:8]
    tenant = await create_tenant(services.pool, f"assign-{tag}", f"Assign {tag}")
    agents = []
    for i in range(3):
        user = await users.create_user(
            services.pool, tenant.id, f"agent{i}-{tag}@desk.example", f"Agent {i}", "agent"
        )
        if i < signed_in:
            await sessions.create_session(services.pool, user)
        agents.append(user.id)
    await teams.set_presence(services.pool, tenant.id, agents[2], "offline")
    team = await teams.create_team(services.pool, tenant.id, "Support")
    team = await teams.update_team(services.pool, tenant.id, team.id, members=agents)
    return Desk(tenant, team, agents)


async def _ticket(services: Any, desk: Desk, **kw: Any) -> dict[str, Any]:
    kw.setdefault("subject", "Help")
    return await tickets.create_ticket(services.pool, desk.tenant.id, actor=ANN, now=NOW, **kw)


async def _assign(services: Any, desk: Desk, ticket: dict[str, Any], mode: str) -> Any:
    row = await assignment.assign(
        services.pool,
        desk.tenant.id,
        ticket["id"],
        mode,
        actor=ANN,
        team_id=desk.team.id,
        now=NOW,
    )
    return row["assignee_id"]


async def test_round_robin_rotates_among_online_members_only(services: Any) -> None:
    desk = await _desk(services)
    got = [
        await _assign(services, desk, await _ticket(services, desk), "round_robin")
        for _ in range(5)
    ]
    a, b = desk.online
    assert got == [a, b, a, b, a]
    assert desk.agents[2] not in got
    settings = await assignment.get_settings(services.pool, desk.tenant.id, desk.team.id)
    assert settings["last_user_id"] == a


async def test_away_members_are_not_online(services: Any) -> None:
    desk = await _desk(services)
    await teams.set_presence(services.pool, desk.tenant.id, desk.agents[0], "away")
    got = {
        await _assign(services, desk, await _ticket(services, desk), "round_robin")
        for _ in range(3)
    }
    assert got == {desk.agents[1]}


async def test_ten_concurrent_assignments_split_fairly(services: Any) -> None:
    desk = await _desk(services)
    made = [await _ticket(services, desk) for _ in range(10)]
    got = await asyncio.gather(*(_assign(services, desk, t, "round_robin") for t in made))
    assert collections.Counter(got) == {desk.online[0]: 5, desk.online[1]: 5}


async def test_least_loaded_takes_the_online_member_with_fewest_open_tickets(
    services: Any,
) -> None:
    desk = await _desk(services)
    a, b = desk.online
    for _ in range(3):
        await _ticket(services, desk, assignee_id=a)
    await _ticket(services, desk, assignee_id=b)
    done = await _ticket(services, desk, assignee_id=b)
    await tickets.transition(
        services.pool,
        desk.tenant.id,
        done["id"],
        "resolved",
        actor=ANN,
        resolution={"type": "invalid", "summary": "spam"},
        now=NOW,
    )
    for _ in range(3):  # the offline member is idle, and skipped
        await _ticket(services, desk)
    got = [
        await _assign(services, desk, await _ticket(services, desk), "least_loaded")
        for _ in range(3)
    ]
    # b has 1 open (the resolved one does not count), a has 3: b, b, then a tie -> rotation.
    assert got[:2] == [b, b]
    assert got[2] == a


async def test_nobody_online_is_409_and_changes_nothing(services: Any) -> None:
    desk = await _desk(services, signed_in=0)
    ticket = await _ticket(services, desk)
    with pytest.raises(NoAgentOnline, match="nobody of team 'Support' is online"):
        await _assign(services, desk, ticket, "round_robin")
    after = await tickets.get_ticket(services.pool, desk.tenant.id, ticket["id"])
    assert after["assignee_id"] is None and after["team_id"] is None
    with pytest.raises(InvalidInput, match="team_id"):
        await assignment.assign(
            services.pool, desk.tenant.id, ticket["id"], "round_robin", actor=ANN
        )


async def test_a_team_with_auto_assignment_takes_tickets_a_rule_routes_to_it(
    services: Any,
) -> None:
    desk = await _desk(services)
    await assignment.set_auto_assign(services.pool, desk.tenant.id, desk.team.id, "round_robin")
    await triage.replace_rules(
        services.pool,
        desk.tenant.id,
        [
            {
                "name": "to support",
                "conditions": {"keywords": ["printer"]},
                "actions": {"team_id": str(desk.team.id)},
            },
        ],
    )
    first = await _ticket(services, desk, subject="Printer jam")
    second = await _ticket(services, desk, subject="Printer again")
    assert [first["assignee_id"], second["assignee_id"]] == desk.online
    [event] = [
        i["detail"]
        for i in await tickets.timeline(services.pool, desk.tenant.id, first["id"])
        if i["kind"] == "assigned"
    ]
    assert event["mode"] == "auto_round_robin" and event["to"] == str(desk.online[0])
    # A ticket already assigned keeps its assignee; a team set by hand auto-assigns too.
    kept = await _ticket(services, desk, subject="Printer", assignee_id=desk.agents[2])
    assert kept["assignee_id"] == desk.agents[2]
    plain = await _ticket(services, desk)
    plain = await tickets.update_ticket(
        services.pool, desk.tenant.id, plain["id"], {"team_id": desk.team.id}, actor=ANN, now=NOW
    )
    assert plain["assignee_id"] == desk.online[0]


async def test_auto_assignment_with_nobody_online_leaves_it_unassigned(services: Any) -> None:
    desk = await _desk(services, signed_in=0)
    await assignment.set_auto_assign(services.pool, desk.tenant.id, desk.team.id, "least_loaded")
    ticket = await _ticket(services, desk, team_id=desk.team.id)
    assert ticket["assignee_id"] is None and ticket["team_id"] == desk.team.id
    kinds = [i["kind"] for i in await tickets.timeline(services.pool, desk.tenant.id, ticket["id"])]
    assert "assignment_skipped" in kinds and "assigned" not in kinds


async def test_every_assignee_change_is_in_the_history(services: Any) -> None:
    desk = await _desk(services)
    a, b = desk.online
    ticket = await _ticket(services, desk, assignee_id=desk.agents[2])
    await tickets.update_ticket(
        services.pool,
        desk.tenant.id,
        ticket["id"],
        {"assignee_id": a},
        actor=Actor("boss@desk.example"),
        now=NOW,
    )
    await _assign(services, desk, ticket, "round_robin")  # a is the first online: no change
    await _assign(services, desk, ticket, "round_robin")  # b
    await tickets.update_ticket(
        services.pool, desk.tenant.id, ticket["id"], {"assignee_id": None}, actor=ANN, now=NOW
    )
    history = [
        (i["detail"]["from"], i["detail"]["to"], i["detail"]["by"], i["detail"]["mode"])
        for i in await tickets.timeline(services.pool, desk.tenant.id, ticket["id"])
        if i["kind"] == "assigned"
    ]
    s = str
    assert history == [
        (None, s(desk.agents[2]), ANN.name, "manual"),
        (s(desk.agents[2]), s(a), "boss@desk.example", "manual"),
        (s(a), s(b), ANN.name, "round_robin"),
        (s(b), None, ANN.name, "manual"),
    ]


async def test_another_tenants_ids_are_not_found(services: Any) -> None:
    mine, theirs = await _desk(services), await _desk(services)
    their_ticket = await _ticket(services, theirs)
    my_ticket = await _ticket(services, mine)
    with pytest.raises(NotFound):
        await _assign(services, mine, their_ticket, "round_robin")
    with pytest.raises(NotFound):
        await assignment.assign(
            services.pool,
            mine.tenant.id,
            my_ticket["id"],
            "round_robin",
            actor=ANN,
            team_id=theirs.team.id,
        )
    with pytest.raises(NotFound):
        await tickets.update_ticket(
            services.pool,
            mine.tenant.id,
            my_ticket["id"],
            {"assignee_id": theirs.agents[0]},
            actor=ANN,
        )
    with pytest.raises(NotFound):
        await assignment.set_auto_assign(services.pool, mine.tenant.id, theirs.team.id, "off")


async def test_the_assign_routes(live_api: Any, services: Any) -> None:
    staff = await make_staff(services.pool)
    tid = staff.tenant.id
    team = await teams.create_team(services.pool, tid, "Desk")
    alice = staff.ids["alice"]
    await teams.update_team(services.pool, tid, team.id, members=[alice])
    agent, admin = bearer(staff.agent_key), bearer(staff.admin_key)
    with live_api.client() as client:
        made = client.post("/v1/tickets", json={"subject": "Help"}, headers=agent).json()
        body = {"mode": "round_robin", "team_id": str(team.id)}
        r = client.post(f"/v1/tickets/{made['id']}/assign", json=body, headers=agent)
        assert r.status_code == 409 and r.json()["code"] == "no_agent_online", r.text
        user = await users.get_user(services.pool, tid, alice)
        await sessions.create_session(services.pool, user)
        r = client.post(f"/v1/tickets/{made['id']}/assign", json=body, headers=agent)
        assert r.status_code == 200, r.text
        assert r.json()["assignee_id"] == str(alice) and r.json()["team_id"] == str(team.id)
        r = client.post(f"/v1/tickets/{uuid.uuid4()}/assign", json=body, headers=agent)
        assert r.status_code == 404
        r = client.post(f"/v1/tickets/{made['id']}/assign", json={"mode": "x"}, headers=agent)
        assert r.status_code == 422
        r = client.get(f"/v1/tickets/{made['id']}/timeline", headers=agent)
        [assigned] = [i for i in r.json()["items"] if i["kind"] == "assigned"]
        assert assigned["detail"]["mode"] == "round_robin"
        url = f"/v1/admin/teams/{team.id}/assignment"
        r = client.put(url, json={"auto_assign": "least_loaded"}, headers=agent)
        assert r.status_code == 403
        r = client.put(url, json={"auto_assign": "least_loaded"}, headers=admin)
        assert r.status_code == 200 and r.json()["auto_assign"] == "least_loaded"
        assert client.get(url, headers=agent).json()["last_user_id"] == str(alice)
        r = client.get(f"/v1/admin/teams/{uuid.uuid4()}/assignment", headers=admin)
        assert r.status_code == 404


async def test_ten_concurrent_least_loaded_assignments_split_fairly(services: Any) -> None:
    desk = await _desk(services)
    made = [await _ticket(services, desk) for _ in range(10)]
    got = await asyncio.gather(*(_assign(services, desk, t, "least_loaded") for t in made))
    assert collections.Counter(got) == {desk.online[0]: 5, desk.online[1]: 5}


async def test_rule_and_automatic_changes_notify_like_an_edit(services: Any) -> None:
    desk = await _desk(services)
    await assignment.set_auto_assign(services.pool, desk.tenant.id, desk.team.id, "round_robin")
    await triage.replace_rules(
        services.pool,
        desk.tenant.id,
        [
            {
                "name": "floods",
                "conditions": {"keywords": ["flood"]},
                "actions": {"priority": "urgent", "team_id": str(desk.team.id)},
            }
        ],
    )
    ticket = await _ticket(services, desk, subject="Flood in the cellar")
    other = await _ticket(services, desk)
    await _assign(services, desk, other, "round_robin")
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, user_id, ticket_id FROM notifications WHERE tenant_id = %s",
            (desk.tenant.id,),
        )
        got = {(r["kind"], r["user_id"], r["ticket_id"]) for r in await cur.fetchall()}
    a, b = desk.online
    assert ("urgent", None, ticket["id"]) in got
    assert ("assigned", a, ticket["id"]) in got
    assert ("assigned", b, other["id"]) in got
