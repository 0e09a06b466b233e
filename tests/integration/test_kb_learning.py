"""The knowledge base learns (issue 17 item 5): a question the knowledge base could not answer
is handed to a person, who answers it; the conversation becomes an article draft; it goes
through review (an agent submits, only a manager approves and publishes); publishing indexes
it at once, and the next customer asking the same question is answered from it, citing it."""

from __future__ import annotations

import pytest

from desk import kb_learning
from tests.support.agent_api import act
from tests.support.live_api import bearer, sse_turn, start_conversation

pytestmark = pytest.mark.integration

QUESTION = "Do you install bidet toilet seats?"
ANSWER = (
    "Yes, we install bidet toilet seats. A plumber fits one in about an hour, connects it to "
    "your cold water supply and checks the connection for leaks before leaving."
)


def test_a_resolved_conversation_becomes_an_article_the_next_customer_is_answered_from(
    live_api,
):
    agent, admin = bearer(live_api.demo.agent_key), bearer(live_api.demo.admin_key)
    with live_api.client() as client:
        before = dict(
            sse_turn(client, start_conversation(client, live_api.demo.widget_key), QUESTION)
        )
        cited_before = {
            c["source_id"] for c in before.get("message.completed", {}).get("citations", [])
        }
        assert not any(s.startswith("learned-") for s in cited_before)

        conv = start_conversation(client, live_api.demo.widget_key)
        sse_turn(client, conv, QUESTION)
        assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
        assert act(client, live_api, conv["id"], "reply", {"text": ANSWER}).status_code == 200
        assert act(client, live_api, conv["id"], "close").status_code == 200

        r = client.post("/v1/kb/drafts", json={"conversation_id": conv["id"]}, headers=agent)
        assert r.status_code == 201, r.text
        draft = r.json()
        assert (draft["state"], draft["kind"], draft["title"]) == ("draft", "new", QUESTION)
        assert ANSWER in draft["body"] and draft["source_conversations"] == [conv["id"]]
        again = client.post("/v1/kb/drafts", json={"conversation_id": conv["id"]}, headers=agent)
        assert again.json()["id"] == draft["id"]  # one draft per conversation

        path = f"/v1/kb/drafts/{draft['id']}"
        r = client.post(f"{path}/move", json={"to": "published"}, headers=agent)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")
        assert "in_review" in r.json()["message"]
        assert (
            client.post(f"{path}/move", json={"to": "in_review"}, headers=agent).status_code == 200
        )
        r = client.post(f"{path}/move", json={"to": "approved"}, headers=agent)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
        r = client.patch(
            path, json={"title": "Bidet toilet seats: do you install them?"}, headers=agent
        )
        assert r.status_code == 200 and r.json()["ai_generated"] is True  # the body is unchanged
        assert (
            client.post(f"{path}/move", json={"to": "approved"}, headers=admin).status_code == 200
        )
        r = client.patch(path, json={"body": "changed"}, headers=admin)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")
        r = client.post(f"{path}/move", json={"to": "published"}, headers=admin)
        assert r.status_code == 200, r.text
        published = r.json()
        assert published["state"] == "published"
        source = published["published_source_id"]
        assert source.startswith("learned-")

        answered = dict(
            sse_turn(client, start_conversation(client, live_api.demo.widget_key), QUESTION)
        )
        reply = answered.get("message.completed")
        assert reply is not None and not reply["declined"], answered
        assert source in {c["source_id"] for c in reply["citations"]}

        # another tenant's key cannot see or move it
        other = bearer(live_api.other.admin_key)
        assert client.get(path, headers=other).status_code == 404
        assert (
            client.post(f"{path}/move", json={"to": "rejected"}, headers=other).status_code == 404
        )


FIX_QUESTION = "Why does my kitchen tap hammer when I turn it off?"
FIX_REPLY = "That knock is water hammer: we can fit an arrestor under the sink."


async def test_a_resolved_ticket_becomes_a_draft_that_answers_the_next_customer(live_api, services):
    agent = bearer(live_api.demo.agent_key)
    resolution = {
        "type": "permanent_fix",
        "summary": "Fitted a water hammer arrestor on the cold supply.",
        "root_cause": "The tap closes fast and the pipes are not anchored.",
        "steps": "Shut off the cold supply\n- Fit the arrestor under the sink\nOpen and test",
    }
    with live_api.client() as client:
        made = {}
        for kind in ("permanent_fix", "duplicate"):
            conv = start_conversation(client, live_api.demo.widget_key)
            sse_turn(client, conv, FIX_QUESTION)
            assert "handoff" in dict(sse_turn(client, conv, "I want to talk to a person"))
            assert act(client, live_api, conv["id"], "takeover").status_code == 200
            assert (
                act(client, live_api, conv["id"], "reply", {"text": FIX_REPLY}).status_code == 200
            )
            ticket = client.get(f"/v1/agent/conversations/{conv['id']}", headers=agent).json()
            tid = ticket["ticket"]["id"]
            r = client.post(
                f"/v1/tickets/{tid}/transition",
                json={"to": "resolved", "resolution": {**resolution, "type": kind}},
                headers=agent,
            )
            assert r.status_code == 200, r.text
            made[kind] = (conv["id"], tid)

    assert await kb_learning.draft_resolved(services) >= 1
    assert await kb_learning.draft_resolved(services) == 0  # each once
    with live_api.client() as client:
        drafts = client.get("/v1/kb/drafts", params={"state": "draft"}, headers=agent).json()
    fixed_conv, fixed_ticket = made["permanent_fix"]
    mine = [d for d in drafts if d["source_conversations"] == [fixed_conv]]
    assert len(mine) == 1, drafts
    draft = mine[0]
    assert draft["source_tickets"] == [fixed_ticket]
    assert draft["created_by"].startswith("the desk (T-")
    for part in (resolution["summary"], resolution["root_cause"], "2. Fit the arrestor under"):
        assert part in draft["body"], draft["body"]
    # a duplicate teaches nothing
    assert not [d for d in drafts if d["source_conversations"] == [made["duplicate"][0]]]

    # reviewed and published, it answers the next customer who asks, citing it
    admin = bearer(live_api.demo.admin_key)
    with live_api.client() as client:
        path = f"/v1/kb/drafts/{draft['id']}"
        for to, who in (("in_review", agent), ("approved", admin), ("published", admin)):
            r = client.post(f"{path}/move", json={"to": to}, headers=who)
            assert r.status_code == 200, r.text
        source = r.json()["published_source_id"]
        conv = start_conversation(client, live_api.demo.widget_key)
        reply = dict(sse_turn(client, conv, FIX_QUESTION)).get("message.completed")
        assert reply is not None and not reply["declined"], reply
        assert source in {c["source_id"] for c in reply["citations"]}


SHUTOFF = "Where is the main water shut-off valve in an older house?"
SHUTOFF_ANSWER = (
    "In most older houses the main shut-off valve is in the basement on the front wall, where "
    "the water line comes in; turn it clockwise to close it."
)


async def test_a_tenant_that_opts_in_publishes_well_founded_drafts_as_internal_articles(services):
    """``learning.auto_publish_internal_at``: a new draft resting on a person's answer, a written
    resolution and its steps (confidence 1.0) is published at once as an internal article that
    staff search finds and customer search does not; one resting on a reply only (0.5) waits for
    review; so does an update of an existing article, and every draft of a tenant that did not
    opt in."""
    from datetime import UTC, datetime

    from helpdesk.profile import BusinessProfile, LearningConfig
    from kb_pipeline.loaders import Article
    from tests.support.metrics_history import History
    from tests.support.staff import make_staff

    opted = (await make_staff(services.pool, prefix="autopub")).tenant
    plain = (await make_staff(services.pool, prefix="noautopub")).tenant
    profile = BusinessProfile(
        display_name="Auto", learning=LearningConfig(auto_publish_internal_at=0.75)
    )
    resolution = {
        "summary": "Showed the customer the valve by the water meter.",
        "steps": ["Find the water meter", "Close the valve beside it"],
    }
    # an article the last question is close to: its draft is an update
    await services.kb.ingest(
        opted.id, [Article(source_id="water-heater", title="Water heater pilot light", body=(
            "## Relighting the pilot light\n\nTurn the gas knob to pilot, hold it down and press"
            " the igniter until the flame stays lit."))],
    )  # fmt: skip

    async def conversation(tenant_id, question: str) -> object:
        async with services.pool.connection() as conn, conn.transaction():
            return await History(conn, tenant_id).conversation(
                datetime(2026, 11, 3, 9, tzinfo=UTC),
                [(0, "customer", {"text": question}), (60, "agent", {"text": SHUTOFF_ANSWER})],
            )

    async def draft(tenant_id, question: str, business, with_resolution: bool = True) -> dict:
        return await kb_learning.draft_from_conversation(
            services, tenant_id, await conversation(tenant_id, question), created_by="alex",
            resolution=resolution if with_resolution else None, business=business,
        )  # fmt: skip

    published = await draft(opted.id, SHUTOFF, profile)
    assert published["confidence"] == 1.0
    assert published["state"] == "published" and published["visibility"] == "internal"
    assert published["reviewed_by"].startswith("the desk (auto-publish")
    source = published["published_source_id"]
    staff = await services.kb.search(opted.id, SHUTOFF, k=3, audience="agent")
    assert source in {h["source_id"] for h in staff}
    customers = await services.kb.search(opted.id, SHUTOFF, k=10, audience="customer")
    assert source not in {h["source_id"] for h in customers}

    reply_only = await draft(opted.id, "Do you sell shut-off valve keys?", profile, False)
    assert reply_only["confidence"] == 0.5 and reply_only["state"] == "draft"
    assert reply_only["visibility"] == "external"
    update = await draft(opted.id, "How do I relight the water heater pilot light?", profile)
    assert update["kind"] == "update" and update["state"] == "draft", update
    not_opted = await draft(plain.id, SHUTOFF, BusinessProfile(display_name="Plain"))
    assert not_opted["confidence"] == 1.0 and not_opted["state"] == "draft"
