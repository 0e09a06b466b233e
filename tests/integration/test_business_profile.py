"""Each business speaks as itself, and its profile answers what depends on the clock.

Real graph, offline models, real Postgres; the clock is fixed per test (``services.clock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from evals.answering import answer_one
from helpdesk import intents, sessions, teams, users
from helpdesk import profile as profiles
from helpdesk.tenants import Tenant, create_tenant, get_tenant
from kb_pipeline.loaders import load_directory

pytestmark = pytest.mark.integration

ACME = {
    "display_name": "Acme Drain & Sewer",
    "short_name": "Acme",
    "industry": "a drain-cleaning company in Lisbon",
    "topics": "drain cleaning, camera inspections and invoices",
    "timezone": "Europe/Lisbon",
    "hours": {
        d: [{"opens": "09:00", "closes": "17:00"}]
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
    },
    "contact": {"phone": "+351 21 000 0000", "email": "ola@acme.example"},
    "service_area": {"city": "Lisbon", "towns": ["Lisbon", "Oeiras", "Amadora"]},
    "replies": {"decline": "Acme here: that isn't in our notes, so a person from Acme will help."},
}


@pytest.fixture
def clock(services) -> Iterator[list[datetime]]:
    """Set ``now[0]`` to fix the time the graph sees; restored afterwards."""
    before = services.clock
    now = [datetime.fromisoformat("2026-12-02T10:00:00+00:00")]
    services.clock = lambda: now[0]
    yield now
    services.clock = before


async def _tenant_with_profile(services, data: dict) -> Tenant:
    slug = f"acme-{uuid.uuid4().hex[:8]}"
    tenant = await create_tenant(services.pool, slug, "Acme")
    await profiles.save_profile(
        services.pool, tenant.id, profiles.parse_profile(data), based_on=0, saved_by="test"
    )
    return await get_tenant(services.pool, slug)


async def test_two_businesses_greet_redirect_decline_and_hand_off_in_their_own_name(
    graph, services, demo, clock
):
    acme = await _tenant_with_profile(services, ACME)
    turns = {
        "greeting": "hi",
        "out_of_scope": "what is the capital of France?",
        "handoff": "I want to talk to a person",
    }
    said: dict[str, dict[str, str]] = {}
    for tenant in (demo, acme):
        said[tenant.slug] = {}
        for kind, text in turns.items():
            said[tenant.slug][kind] = (await answer_one(graph, services, tenant, text)).answer
    assert said["demo"]["greeting"].startswith("Hi! I'm Brightwater's virtual assistant")
    assert said[acme.slug]["greeting"].startswith("Hi! I'm Acme's virtual assistant. Ask me")
    assert "drain cleaning, camera inspections and invoices" in said[acme.slug]["greeting"]
    assert "Brightwater Home Services" in said["demo"]["out_of_scope"]
    assert said[acme.slug]["out_of_scope"].startswith(
        "I can only help with questions about Acme Drain & Sewer"
    )
    assert said[acme.slug]["handoff"] == services.prompts.reply("handoff", acme.business)
    assert not any("Brightwater" in text for text in said[acme.slug].values())
    assert not any("Acme" in text for text in said["demo"].values())
    # a reply the tenant overrides is its own text
    declined = await answer_one(graph, services, acme, "How much is a drain camera inspection?")
    assert declined.declined and declined.answer == ACME["replies"]["decline"]


async def test_are_you_open_now_either_side_of_closing_and_across_dst(graph, services, clock):
    acme = await _tenant_with_profile(services, ACME)
    # Lisbon: WET (UTC+0) in winter, WEST (UTC+1) in summer; the clocks went back on
    # Sunday 2026-10-25. 16:30 UTC is 17:30 WEST (closed) on Friday 23 October and
    # 16:30 WET (open) on Monday 26 October.
    for when, is_open in [
        ("2026-12-02T16:59:00+00:00", True),
        ("2026-12-02T17:00:00+00:00", False),
        ("2026-10-23T16:30:00+00:00", False),
        ("2026-10-26T16:30:00+00:00", True),
    ]:
        clock[0] = datetime.fromisoformat(when)
        r = await answer_one(graph, services, acme, "Are you open now?")
        assert not r.handoff and not r.declined and r.confidence == 1.0, (when, r)
        assert r.answer.startswith("Yes, we're open now" if is_open else "No, we're closed"), (
            when,
            r.answer,
        )
    assert "WET" in r.answer  # the business's own time zone is named


async def test_profile_facts_on_the_demo_tenant_cite_its_articles(graph, services, demo, clock):
    clock[0] = datetime.fromisoformat("2026-12-05T21:00:00+00:00")  # Saturday 15:00 in Millbrook
    closing = await answer_one(graph, services, demo, "What time do you close on Saturday?")
    assert closing.answer.startswith("Today we close at 2:00 pm")
    assert closing.citations == ["opening-hours"] and not closing.held_for_review
    area = await answer_one(graph, services, demo, "Do you come to Harlan Crossing?")
    assert area.answer.startswith("Yes, we serve Harlan Crossing.")
    assert area.citations == ["service-area"]
    outside = await answer_one(graph, services, demo, "do you come out to Oakdale?")
    assert outside.answer.startswith("Sorry, Oakdale isn't in our service area.")


async def test_a_hand_off_after_hours_says_when_the_team_is_back(graph, services, demo, clock):
    clock[0] = datetime.fromisoformat("2026-12-06T18:00:00+00:00")  # Sunday noon in Millbrook
    r = await answer_one(graph, services, demo, "I want to talk to a person")
    assert r.handoff
    assert r.answer == (
        "I'm passing this conversation to our team. We're closed right now and open again "
        "tomorrow at 7:30 am (CST); a person will reply here then."
    )
    clock[0] = datetime.fromisoformat("2026-12-07T15:00:00+00:00")  # Monday 9:00
    # In hours: a person soon, or (other modules add demo accounts, offline) as soon as one can;
    # which one is pinned by the test below on a tenant of its own.
    assert (await answer_one(graph, services, demo, "I want to talk to a person")).answer in {
        services.prompts.reply("handoff", demo.business),
        services.prompts.reply("handoff_nobody_online", demo.business),
    }


GROOMER = [
    ("how much is a full groom", "grooming_prices"),
    ("what do you charge for a bath and nail trim", "grooming_prices"),
    ("price for a puppy cut", "grooming_prices"),
    ("can I book a groom for saturday", "book_groom"),
    ("I want to schedule my dog for a haircut", "book_groom"),
    ("do you have any openings next week for a bath", "book_groom"),
    ("does my dog need to be vaccinated", "vaccination_policy"),
    ("what shots do you require", "vaccination_policy"),
    ("do you need proof of rabies vaccine", "vaccination_policy"),
]


async def test_a_tenant_classifies_with_its_own_intents(graph, services, demo, clock):
    groomer = await _tenant_with_profile(
        services, {"display_name": "Happy Paws Grooming", "topics": "grooming and bookings"}
    )
    await intents.save_intents(services.pool, groomer.id, GROOMER, "replace", saved_by="test")
    groomer = await get_tenant(services.pool, groomer.slug)
    asked = {
        "What's the price of a groom for a small terrier?": "grooming_prices",
        "Is a rabies certificate needed?": "vaccination_policy",
        "Could I get my spaniel in for a cut on Friday?": "book_groom",
    }
    for text, intent in asked.items():
        r = await answer_one(graph, services, groomer, text)
        assert r.intent == intent, (text, r.intent)
    # the demo tenant keeps the shared intents
    shared = await answer_one(graph, services, demo, "How much is your call-out fee?")
    assert shared.intent == "pricing"
    # back to the shared set
    assert await intents.clear_intents(services.pool, groomer.id)
    groomer = await get_tenant(services.pool, groomer.slug)
    r = await answer_one(graph, services, groomer, "What's the price of a groom?")
    assert r.intent != "grooming_prices"


async def _contact_requests(services, tenant: Tenant) -> list[dict]:
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT e.data FROM conversation_events e WHERE e.tenant_id = %s"
            " AND e.type = 'contact.request' ORDER BY e.conversation_id, e.seq",
            (tenant.id,),
        )
        return [r["data"] for r in await cur.fetchall()]


async def test_a_hand_off_says_whether_a_person_can_answer_and_asks_for_contact_when_not(
    graph, services, clock
):
    acme = await _tenant_with_profile(services, ACME)
    clock[0] = datetime.fromisoformat("2026-12-02T10:00:00+00:00")  # Wednesday 10:00 in Lisbon
    ask = "I want to talk to a person"

    # API keys only: no presence to read, so nobody is said to be missing and nothing is asked.
    r = await answer_one(graph, services, acme, ask)
    assert r.handoff and r.answer == services.prompts.reply("handoff", acme.business)
    assert await _contact_requests(services, acme) == []

    # Staff accounts, none online: the customer hears so and is asked how to reach them.
    person = await users.create_user(
        services.pool,
        acme.id,
        f"ana-{uuid.uuid4().hex[:6]}@acme.example",
        "Ana",
        "agent",
        password="a long enough password",
    )
    r = await answer_one(graph, services, acme, ask)
    assert r.answer == (
        "I'm passing this conversation to our team. Nobody is free to answer right now; a "
        "person will reply here as soon as they can."
    )
    assert await _contact_requests(services, acme) == [
        {
            "reason": "nobody_online",
            "message": "Leave your name and email and Acme will write back there, even if you "
            "close this page.",
        }
    ]

    # Signed in and online: a person replies shortly, and no form is shown.
    await sessions.create_session(services.pool, person)
    await teams.set_presence(services.pool, acme.id, person.id, "online")
    r = await answer_one(graph, services, acme, ask)
    assert r.answer == services.prompts.reply("handoff", acme.business)
    assert len(await _contact_requests(services, acme)) == 1

    # Closed (Saturday): the after-hours text, and the contact form even with someone online.
    clock[0] = datetime.fromisoformat("2026-12-05T12:00:00+00:00")
    r = await answer_one(graph, services, acme, ask)
    assert "We're closed right now and open again on Monday at 9:00 am (WET)" in r.answer
    assert len(await _contact_requests(services, acme)) == 2


async def test_a_price_waits_for_contact_details_when_the_profile_asks_for_them(
    graph, services, clock, tmp_path
):
    data = {**ACME, "chat": {"require_contact_before_quote": True}}
    acme = await _tenant_with_profile(services, data)
    (tmp_path / "drain-prices.md").write_text(
        "# Drain cleaning prices\n\nDrain cleaning costs $149 per drain, camera inspection"
        " included. A second drain on the same visit costs $99.\n",
        encoding="utf-8",
    )
    await services.kb.ingest(acme.id, load_directory(tmp_path))

    held = await answer_one(graph, services, acme, "how much for drain cleaning")
    assert held.intent == "pricing" and not held.handoff
    assert held.answer == services.prompts.reply("contact_before_quote", acme.business)
    assert "$" not in held.answer and held.citations == []
    assert [r["reason"] for r in await _contact_requests(services, acme)] == ["before_quote"]

    # The same business without the rule answers with the price at once, and asks nothing.
    changed = profiles.with_changes(acme.business, [("chat.require_contact_before_quote", False)])
    await profiles.save_profile(
        services.pool, acme.id, changed, based_on=acme.profile_version, saved_by="test"
    )
    services.forget_tenant(acme.slug)
    open_price = await answer_one(graph, services, acme.slug, "how much for drain cleaning")
    assert "$149" in open_price.answer and open_price.citations == ["drain-prices"]
    assert len(await _contact_requests(services, acme)) == 1
