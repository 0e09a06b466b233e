"""Each business speaks as itself, and its profile answers what depends on the clock.

Real graph, offline models, real Postgres; the clock is fixed per test (``services.clock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from evals.answering import answer_one
from helpdesk import intents
from helpdesk import profile as profiles
from helpdesk.tenants import Tenant, create_tenant, get_tenant

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
    assert (await answer_one(graph, services, demo, "I want to talk to a person")).answer == (
        services.prompts.reply("handoff", demo.business)
    )


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
