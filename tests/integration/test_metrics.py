"""Metrics against a scripted history whose right answers are worked out by hand below, and the
metrics API on real HTTP after real turns.

The history (tenant-local times, America/Chicago; the period is Mon 2 - Sun 8 November 2026):

====  =======  ==============  =========================================================
conv  channel  started         what happens (seconds after the start)
====  =======  ==============  =========================================================
c1    web      Mon 10:00       customer asks (hours) 0; AI answers 2
c2    web      Mon 11:00       customer 0 (billing); AI 4 (cites billing-faq, voted up 60);
                               customer 120; CSAT 5
c3    email    Tue 09:00       customer 0 (billing); draft held 3; approved 600; AI 600
c4    web      Wed 14:00       customer 0 (leak); hand-off 1 (emergency); system note 1;
                               Alex replies 300; CSAT 2
c5    web      Thu 16:30       customer 0 (pricing); AI declines 2; customer 30; hand-off 31
                               (customer_request); Sam replies 90
c6    web      Sun 23:30       customer 0 (hours); AI 1 (cites opening-hours, voted down);
                               customer 3600; AI 3602  (Monday in UTC: the zone decides)
c9    web      Fri 12:00       the widget opened, nothing written
c11   web      Fri 13:00       customer 0 (billing); held 2; edited 100 + AI 100; held 300;
                               rejected 400; hand-off 400 (draft_rejected); Alex 500; still
                               waiting on a person
out1  web      Mon 9 Nov 00:30 outside the period (after)
out2  web      Sun 1 Nov 23:30 outside the period (before)
====  =======  ==============  =========================================================
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from helpdesk import metrics
from helpdesk.errors import InvalidInput
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant, create_tenant
from tests.support.live_api import bearer, sse_turn, start_conversation
from tests.support.metrics_history import AS_OF, PERIOD, History, local, write_history

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def scripted(services: Any) -> tuple[Tenant, Tenant]:
    """The scripted tenant, and another with a conversation in the same period."""
    tag = uuid.uuid4().hex[:8]
    tenant = await create_tenant(services.pool, f"metrics-{tag}", "Metrics test")
    other = await create_tenant(services.pool, f"metrics-other-{tag}", "Metrics other")
    await write_history(services.pool, tenant)
    async with services.pool.connection() as conn:
        await History(conn, other.id).conversation(
            local(3, 12), [(0, "customer", {"intent": "billing"}), (1, "ai", {})]
        )
    return tenant, other


async def test_every_metric_of_the_scripted_week(services, scripted):
    tenant, _ = scripted
    async with tenant_scope(services.pool, tenant.id) as conn:
        s = await metrics.summary(conn, tenant.id, PERIOD, as_of=AS_OF)
    m = s["metrics"]
    assert m["conversations"] == 8  # c1-c6, c9, c11: the two outside the period are not
    assert m["engaged_conversations"] == 7
    assert (m["customer_messages"], m["ai_messages"]) == (10, 7)
    assert (m["agent_messages"], m["system_messages"]) == (3, 1)
    # first replies 1, 2, 2, 4, 100, 300, 600 s (c4's system note is not a reply)
    assert m["first_response_p50_s"] == 4
    assert m["first_response_p90_s"] == pytest.approx(420)
    # hand-off to agent: c5 59, c11 100, c4 299
    assert m["human_response_p50_s"] == 100
    assert m["human_response_p90_s"] == pytest.approx(259.2)
    # c1 (quiet for 24 h), c2 (voted up, though the customer wrote again), c6 (answered last);
    # of the five the AI answered in: c3 was held for a person, c11 too
    assert (m["ai_resolved"], m["ai_pending"], m["ai_resolution_rate"]) == (3, 0, 0.6)
    assert m["deflection_rate"] == round(3 / 7, 4)  # c1, c2, c6
    assert m["escalation_rate"] == round(3 / 7, 4)  # c4, c5, c11
    assert m["ai_decline_rate"] == round(1 / 7, 4)  # c5
    assert (m["drafts_held"], m["drafts_approved"], m["drafts_edited"], m["drafts_rejected"]) == (
        3,
        1,
        1,
        1,
    )
    assert m["draft_approval_rate"] == round(1 / 3, 4)
    assert m["ai_assist_rate"] == 0.4  # 2 drafts signed off against 3 agent messages
    assert (m["csat_average"], m["csat_responses"]) == (3.5, 2)
    assert (m["thumbs_up"], m["thumbs_down"]) == (1, 1)
    assert s["escalations_by_reason"] == {
        "emergency": 1,
        "customer_request": 1,
        "draft_rejected": 1,
    }
    assert s["csat_distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert s["leads_created"] == 1
    assert s["backlog"] == {
        "waiting_on_person": 1,
        "open_tickets_by_status": {"new": 1},
        "open_tickets_by_priority": {"high": 1},
    }


async def test_the_kept_facts_equal_the_facts_of_the_source_rows(services, scripted):
    for t in scripted:
        assert await metrics.facts_drift(services.pool, t.id) == []
    # a vote changed and a CSAT withdrawn are folded in as well (on a copy of the history:
    # the other tests read the scripted one)
    tenant = await create_tenant(services.pool, f"metrics-edit-{uuid.uuid4().hex[:8]}", "Edits")
    await write_history(services.pool, tenant)
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE feedback SET rating = 'down' WHERE tenant_id = %s AND rating = 'up'",
            (tenant.id,),
        )
        await conn.execute("DELETE FROM feedback WHERE tenant_id = %s AND csat = 2", (tenant.id,))
    assert await metrics.facts_drift(services.pool, tenant.id) == []
    async with tenant_scope(services.pool, tenant.id) as conn:
        m = (await metrics.summary(conn, tenant.id, PERIOD, as_of=AS_OF))["metrics"]
    assert (m["thumbs_up"], m["thumbs_down"], m["csat_average"]) == (0, 2, 5.0)
    # c2 was resolved by its thumbs-up; without it the customer wrote after the answer
    assert m["ai_resolved"] == 2


async def test_a_fresh_answer_is_pending_until_a_day_has_passed(services, scripted):
    tenant, _ = scripted
    # one hour after c6's last answer: c6 is undecided, c1 and c2 are still resolved
    soon = local(8, 23, 30) + timedelta(seconds=3602, hours=1)
    async with tenant_scope(services.pool, tenant.id) as conn:
        m = (await metrics.summary(conn, tenant.id, PERIOD, as_of=soon))["metrics"]
    assert (m["ai_resolved"], m["ai_pending"], m["ai_resolution_rate"]) == (2, 1, 0.5)


async def test_series_and_breakdowns_read_the_same_definitions(services, scripted):
    tenant, _ = scripted
    async with tenant_scope(services.pool, tenant.id) as conn:
        days = await metrics.timeseries(
            conn, tenant.id, PERIOD, ["conversations", "escalation_rate"], "day", as_of=AS_OF
        )
        weeks = await metrics.timeseries(
            conn, tenant.id, PERIOD, ["conversations", "ai_resolved"], "week", as_of=AS_OF
        )
        channels = await metrics.breakdown(
            conn, tenant.id, PERIOD, "channel", ["ai_resolved"], as_of=AS_OF
        )
        intents = await metrics.breakdown(conn, tenant.id, PERIOD, "intent", [], as_of=AS_OF)
        agents = await metrics.breakdown(
            conn, tenant.id, PERIOD, "agent", ["csat_average"], as_of=AS_OF
        )
        votes = await metrics.article_votes(conn, tenant.id, PERIOD)
    assert [d["bucket"] for d in days] == [f"2026-11-0{d}" for d in range(2, 9)]
    assert [d["conversations"] for d in days] == [2, 1, 1, 1, 2, 0, 1]
    assert [d["escalation_rate"] for d in days] == [0.0, 0.0, 1.0, 1.0, 1.0, None, 0.0]
    assert weeks == [{"bucket": "2026-11-02", "conversations": 8, "ai_resolved": 3}]
    assert [(c["channel"], c["conversations"], c["ai_resolved"]) for c in channels] == [
        ("web", 7, 3),
        ("email", 1, 0),
    ]
    assert {i["intent"]: i["conversations"] for i in intents} == {
        "billing": 3,
        "hours": 2,
        "leak": 1,
        "pricing": 1,
        "unknown": 1,
    }
    by_agent = {a["agent"]: (a["conversations"], a["csat_average"]) for a in agents}
    # the agent who wrote last: c4 and c11 Alex (c4 rated 2), c5 Sam; c2's 5 is nobody's
    assert by_agent == {None: (5, 5.0), "Alex": (2, 2.0), "Sam": (1, None)}
    assert [(v["source_id"], v["up"], v["down"]) for v in votes] == [
        ("billing-faq", 1, 0),
        ("opening-hours", 0, 1),
    ]


async def test_another_tenants_history_is_not_counted(services, scripted):
    tenant, other = scripted
    async with tenant_scope(services.pool, other.id) as conn:
        theirs = await metrics.summary(conn, other.id, PERIOD, as_of=AS_OF)
        # the tenant scope hides the scripted tenant's rows even when asked for them by id
        hidden = await metrics.summary(conn, tenant.id, PERIOD, as_of=AS_OF)
    assert theirs["metrics"]["conversations"] == 1
    assert hidden["metrics"]["conversations"] == 0 and hidden["leads_created"] == 0


def test_the_period_a_request_names_is_checked():
    today = date(2026, 11, 20)
    p = metrics.period(None, None, "UTC", today=today)
    assert (p.first, p.last) == (date(2026, 10, 22), today)
    assert metrics.period("2026-11-02", "2026-11-08", "America/Chicago", today=today) == PERIOD
    assert PERIOD.start == datetime(2026, 11, 2, 6, tzinfo=UTC)  # CST: UTC-6
    for args, field in [
        (("2026-11-31", None, "UTC"), "from"),
        (("2026-11-09", "2026-11-02", "UTC"), "from"),
        (("2025-01-01", "2026-11-02", "UTC"), "to"),
        ((None, None, "Mars/Base"), "tz"),
    ]:
        with pytest.raises(InvalidInput, match=f"^{field}:"):
            metrics.period(*args, today=today)


async def test_the_metrics_api_after_real_turns(live_api, services, demo):
    await asyncio.to_thread(_api_after_real_turns, live_api)
    # every conversation the real turns (and every earlier test) wrote: kept facts == source
    assert await metrics.facts_drift(services.pool, demo.id) == []


def _api_after_real_turns(live_api: Any) -> None:
    with live_api.client() as client:
        admin = bearer(live_api.demo.admin_key)

        def summary() -> dict[str, Any]:
            r = client.get("/v1/metrics/summary", params={"tz": "UTC"}, headers=admin)
            assert r.status_code == 200, r.text
            return r.json()

        def other_conversations() -> int:
            r = client.get(
                "/v1/metrics/summary",
                params={"tz": "UTC"},
                headers=bearer(live_api.other.admin_key),
            )
            assert r.status_code == 200, r.text
            return int(r.json()["metrics"]["conversations"])

        before, other_before = summary(), other_conversations()
        answered = start_conversation(client, live_api.demo.widget_key)
        events = dict(sse_turn(client, answered, "What are your opening hours?"))
        assert events["message.completed"]["declined"] is False, events
        handed = start_conversation(client, live_api.demo.widget_key)
        assert "handoff" in dict(sse_turn(client, handed, "I want to talk to a person"))
        after = summary()

        def delta(name: str) -> Any:
            return after["metrics"][name] - before["metrics"][name]

        assert delta("conversations") == 2 and delta("engaged_conversations") == 2
        assert delta("customer_messages") == 2
        assert sum(after["escalations_by_reason"].values()) == (
            sum(before["escalations_by_reason"].values()) + 1
        )
        # answered a moment ago: not resolved yet, not unresolved either
        assert delta("ai_pending") == 1 and delta("ai_resolved") == 0

        r = client.get("/v1/metrics/summary", headers=bearer(live_api.demo.agent_key))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        for params in [
            {"tz": "Mars/Base"},
            {"from": "2026-13-01"},
            {"from": "2026-11-09", "to": "2026-11-02"},
        ]:
            r = client.get("/v1/metrics/summary", params=params, headers=admin)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_period"), params
        r = client.get("/v1/metrics/timeseries", params={"metrics": "nope"}, headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_period")
        r = client.get("/v1/metrics/breakdown", params={"by": "nope"}, headers=admin)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_period")

        r = client.get("/v1/metrics/export.csv", params={"tz": "UTC"}, headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 30 and list(rows[0]) == ["bucket", *metrics.METRICS]
        assert sum(int(row["conversations"]) for row in rows) == after["metrics"]["conversations"]
        assert other_conversations() == other_before  # the demo's turns are not theirs
