"""Top questions on a scripted week: paraphrases of one question land in one cluster named by
one of them, with the metrics' own figures; the clusters the AI failed on are knowledge gaps.
The phrasings are written for this test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from desk import kb_learning
from helpdesk.tenants import create_tenant
from tests.support.live_api import bearer
from tests.support.metrics_history import History, local
from tests.support.staff import make_staff

pytestmark = pytest.mark.integration

HOURS = [
    "What are your opening hours?",
    "When are you open on weekdays?",
    "What time do you open in the morning?",
    "Are you open on Saturday mornings?",
    "What hours is your office open?",
    "When do you close today?",
]
HEATER = [
    "My water heater is leaking all over the floor",
    "Water is leaking from the bottom of my water heater",
    "The hot water tank is leaking water",
    "There is a puddle under my water heater, it leaks",
    "Help, my water heater started leaking",
]
FINANCING = [
    "Can I pay for a new furnace in monthly installments?",
    "Do you offer monthly payment plans for a furnace?",
    "Is there a payment plan so I can pay monthly for a furnace?",
    "Can I spread the cost of a new furnace over monthly payments?",
]
FIX = "Close the cold-water valve above the heater; a plumber is on the way."
ANSWERED = {"agent": "Alex", "text": FIX}
ONE_OFFS = ["hi", "Do you sell garden gnomes to collectors?", "What is the capital of Peru?"]


async def _write_week(pool: Any, tenant_id: uuid.UUID) -> None:
    async with pool.connection() as conn, conn.transaction():
        h = History(conn, tenant_id)
        minute = 0
        for texts, outcome in (
            (HOURS, [(2, "ai", {})]),
            (
                HEATER,
                [
                    (1, "handoff", {"reason": "emergency"}),
                    (60, "agent", {"agent": "Alex", "text": FIX}),
                ],
            ),
            (FINANCING, [(2, "ai", {"declined": True})]),
            (ONE_OFFS, [(2, "ai", {})]),
        ):
            for text in texts:
                minute += 7
                await h.conversation(
                    local(3, 9, 0) + timedelta(minutes=minute),
                    [(0, "customer", {"text": text}), *outcome],
                )


def _call(live_api: Any, method: str, path: str, key: str, **extra: str) -> Any:
    with live_api.client() as client:
        r = client.request(
            method,
            path,
            params={"from": "2026-11-02", "to": "2026-11-08", "tz": "America/Chicago", **extra},
            headers=bearer(key),
        )
    assert r.status_code == 200, r.text
    return r.json()


async def test_paraphrases_cluster_and_failures_are_gaps(live_api, services):
    staff = await make_staff(services.pool, prefix="topq")
    await _write_week(services.pool, staff.tenant.id)
    key = staff.admin_key
    before = await asyncio.to_thread(_call, live_api, "GET", "/v1/metrics/top-questions", key)
    assert before["computed_at"] is None and before["clusters"] == []

    await asyncio.to_thread(_call, live_api, "POST", "/v1/metrics/top-questions/refresh", key)
    got = await asyncio.to_thread(_call, live_api, "GET", "/v1/metrics/top-questions", key)
    assert got["computed_at"] is not None
    by_label = {c["label"]: c for c in got["clusters"]}
    groups = {"hours": HOURS, "heater": HEATER, "financing": FINANCING}
    found = {}
    for name, texts in groups.items():
        named = [c for c in got["clusters"] if c["label"] in texts]
        assert len(named) == 1, (name, by_label)
        found[name] = named[0]
        # nothing of another group in it
        assert set(found[name]["examples"]) <= set(texts), (name, found[name])
    assert found["hours"]["conversations"] >= 4 and not found["hours"]["knowledge_gap"]
    assert found["hours"]["ai_resolved"] == found["hours"]["ai_decided"] > 0
    assert found["heater"]["knowledge_gap"] and found["heater"]["needed_person"] >= 3
    assert found["financing"]["knowledge_gap"] and found["financing"]["ai_decided"] == 0
    assert all(c["label"] != "hi" for c in got["clusters"])

    gaps = await asyncio.to_thread(
        _call, live_api, "GET", "/v1/metrics/top-questions", key, gaps="true"
    )
    assert {c["label"] for c in gaps["clusters"]} == {
        found["heater"]["label"],
        found["financing"]["label"],
    }

    # "draft an article" for a gap: its questions and what the person answered them; once
    with live_api.client() as client:
        heater = found["heater"]
        r = client.post("/v1/kb/drafts", json={"cluster_id": heater["id"]}, headers=bearer(key))
        assert r.status_code == 201, r.text
        draft = r.json()
        assert draft["title"] == heater["label"] and draft["state"] == "draft"
        assert FIX in draft["body"] and draft["body"].count(FIX) == 1
        assert all(q in draft["body"] for q in heater["examples"])
        assert len(draft["source_conversations"]) == heater["conversations"]
        again = client.post("/v1/kb/drafts", json={"cluster_id": heater["id"]}, headers=bearer(key))
        assert again.json()["id"] == draft["id"]
        r = client.post(
            "/v1/kb/drafts", json={"cluster_id": found["financing"]["id"]}, headers=bearer(key)
        )
        assert r.status_code == 201 and kb_learning.NO_ANSWER_YET in r.json()["body"]
        r = client.post(
            "/v1/kb/drafts",
            json={"cluster_id": heater["id"]},
            headers=bearer(live_api.other.admin_key),
        )
        assert (r.status_code, r.json()["code"]) == (404, "not_found")

    # a second refresh embeds nothing again (each question's vector is kept) and agrees
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n, max(created_at) AS at FROM question_vectors"
            " WHERE tenant_id = %s",
            (staff.tenant.id,),
        )
        kept = await cur.fetchone()
    assert kept["n"] == len(HOURS + HEATER + FINANCING) + len(ONE_OFFS) - 1  # not "hi"
    await asyncio.to_thread(_call, live_api, "POST", "/v1/metrics/top-questions/refresh", key)
    again = await asyncio.to_thread(_call, live_api, "GET", "/v1/metrics/top-questions", key)
    assert [c["label"] for c in again["clusters"]] == [c["label"] for c in got["clusters"]]
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n, max(created_at) AS at FROM question_vectors"
            " WHERE tenant_id = %s",
            (staff.tenant.id,),
        )
        assert await cur.fetchone() == kept

    # another tenant sees none of it; an agent may not read it
    other = await create_tenant(services.pool, f"topq-other-{uuid.uuid4().hex[:6]}", "Other")
    assert other.id != staff.tenant.id
    with live_api.client() as client:
        r = client.get("/v1/metrics/top-questions", headers=bearer(staff.agent_key))
        assert r.status_code == 403
        r = client.get(
            "/v1/metrics/top-questions",
            params={"from": "2026-11-02", "to": "2026-11-08", "tz": "America/Chicago"},
            headers=bearer(live_api.other.admin_key),
        )
        assert r.status_code == 200 and r.json()["clusters"] == []
