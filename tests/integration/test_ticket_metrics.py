"""Ticket metrics on a scripted week whose right answers are worked out by hand below: the
tickets created in the period, their first response, resolution time, reopen rate and CSAT,
per team, agent and category; a team filter; managers only; another tenant's team is 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from helpdesk import teams
from tests.support.live_api import bearer
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration

PERIOD = {"from": "2026-11-02", "to": "2026-11-08", "tz": "UTC"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11 if day > 0 else 10, day if day > 0 else 30, hour, minute, tzinfo=UTC)


# (name, created, priority, category, team?, assignee?, first response, by AI, status,
#  resolved_at, reopens, csat)
TICKETS = [
    ("T1", at(2, 10), "high", "leak", True, True, at(2, 10, 5), True, "resolved", at(2, 12), 0, 5),
    (
        "T2",
        at(3, 9),
        "normal",
        "bills",
        False,
        False,
        at(3, 9, 30),
        False,
        "closed",
        at(4, 9),
        0,
        3,
    ),
    ("T3", at(4, 8), "high", "leak", True, True, at(4, 8, 10), False, "in_progress", None, 1, None),
    ("T4", at(5, 12), "low", None, False, False, None, None, "new", None, 0, None),
    ("old", at(0, 9), "high", "leak", True, True, at(0, 9, 1), True, "resolved", at(0, 10), 0, 1),
]
# T1 300 s, T2 1800 s, T3 600 s to a first reply: p50 600, p90 600 + 0.8 * 1200 = 1560.
# Resolved: T1 7200 s, T2 86400 s: p50 46800, p90 7200 + 0.9 * 79200 = 78480.
# Resolved at least once: T1, T2, T3 (reopened once): reopen rate 1/3. CSAT (5 + 3) / 2.


async def _write(pool, tenant_id, team_id, user_id) -> None:
    async with pool.connection() as conn, conn.transaction():
        for (
            name,
            created,
            prio,
            cat,
            team,
            mine,
            first,
            ai,
            status,
            resolved,
            reopens,
            csat,
        ) in TICKETS:
            conv = uuid.uuid4()
            await conn.execute(
                "INSERT INTO conversations (id, tenant_id, channel, status, created_at)"
                " VALUES (%s, %s, 'web', 'closed', %s)",
                (conv, tenant_id, created),
            )
            cur = await conn.execute(
                "INSERT INTO tickets (tenant_id, conversation_id, status, priority, subject,"
                " category, team_id, assignee_id, first_response_at, ai_first_response,"
                " resolved_at, closed_at, reopen_count, channel, created_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'web',%s) RETURNING id",
                (
                    tenant_id, conv, status, prio, name, cat, team_id if team else None,
                    user_id if mine else None, first, ai, resolved,
                    resolved if status == "closed" else None, reopens, created,
                ),
            )  # fmt: skip
            ticket = (await cur.fetchone())["id"]
            if csat is not None:
                cur = await conn.execute(
                    "INSERT INTO resolutions (tenant_id, ticket_id, type, summary, resolved_by)"
                    " VALUES (%s, %s, 'answered_question', 'done', 'user') RETURNING id",
                    (tenant_id, ticket),
                )
                resolution = (await cur.fetchone())["id"]
                await conn.execute(
                    "INSERT INTO feedback (tenant_id, conversation_id, kind, csat, resolution_id)"
                    " VALUES (%s, %s, 'csat', %s, %s)",
                    (tenant_id, conv, csat, resolution),
                )


async def test_ticket_metrics_on_a_scripted_week(live_api, services):
    staff = await make_staff(services.pool, prefix="tmetrics")
    team = await teams.create_team(services.pool, staff.tenant.id, "Plumbing")
    await _write(services.pool, staff.tenant.id, team.id, staff.ids["alice"])
    async with services.pool.connection() as conn:
        cur = await conn.execute("SELECT name FROM users WHERE id = %s", (staff.ids["alice"],))
        alice = (await cur.fetchone())["name"]
    admin = bearer(staff.admin_key)
    with live_api.client() as client:
        r = client.get("/v1/metrics/tickets", params=PERIOD, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["metrics"] == {
            "tickets": 4,
            "tickets_resolved": 2,
            "ticket_resolution_rate": 0.5,
            "ticket_first_response_p50_s": 600,
            "ticket_first_response_p90_s": 1560,
            "ai_first_response_rate": 0.3333,
            "resolution_p50_s": 46800,
            "resolution_p90_s": 78480,
            "reopen_rate": 0.3333,
            "ticket_csat_average": 4,
            "ticket_csat_responses": 2,
        }

        def rows(by: str, names: str, **extra: str) -> list:
            r = client.get(
                "/v1/metrics/tickets",
                params={**PERIOD, "by": by, "metrics": names, **extra},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            return r.json()["rows"]

        def by_key(by: str, names: str) -> dict:
            return {r.pop(by): r for r in rows(by, names)}

        assert by_key("team", "tickets,tickets_resolved") == {
            "Plumbing": {"tickets": 2, "tickets_resolved": 1},
            "no team": {"tickets": 2, "tickets_resolved": 1},
        }
        assert by_key("agent", "tickets") == {alice: {"tickets": 2}, "unassigned": {"tickets": 2}}
        assert rows("category", "tickets,ticket_csat_average") == [  # the most tickets first
            {"category": "leak", "tickets": 2, "ticket_csat_average": 5},
            {"category": "bills", "tickets": 1, "ticket_csat_average": 3},
            {"category": "none", "tickets": 1, "ticket_csat_average": None},
        ]

        # one team's tickets: T1 and T3
        r = client.get(
            "/v1/metrics/tickets", params={**PERIOD, "team": str(team.id)}, headers=admin
        )
        got = r.json()["metrics"]
        assert (got["tickets"], got["resolution_p50_s"], got["reopen_rate"]) == (2, 7200, 0.5)

        # refused: an agent; a bad breakdown; another business's team
        r = client.get("/v1/metrics/tickets", params=PERIOD, headers=bearer(staff.agent_key))
        assert r.status_code == 403
        r = client.get("/v1/metrics/tickets", params={**PERIOD, "by": "mood"}, headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
        other = await make_staff(services.pool, prefix="tmetrics-other")
        theirs = await teams.create_team(services.pool, other.tenant.id, "Plumbing")
        r = client.get(
            "/v1/metrics/tickets", params={**PERIOD, "team": str(theirs.id)}, headers=admin
        )
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
