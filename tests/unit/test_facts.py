"""Questions the business profile answers, recognised by rules and answered on a fixed clock."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cli.demo import DEMO_PROFILE
from graph.facts import PROFILE_SOURCE, answer, recognise
from helpdesk.profile import BusinessProfile, parse_profile

DEMO = parse_profile(json.loads(DEMO_PROFILE.read_text("utf-8")))
WEDNESDAY_10AM = datetime.fromisoformat("2026-12-02T10:00:00-06:00")
WEDNESDAY_7PM = datetime.fromisoformat("2026-12-02T19:00:00-06:00")
SATURDAY_3PM = datetime.fromisoformat("2026-12-05T15:00:00-06:00")


def ask(question: str, now: datetime = WEDNESDAY_10AM, profile: BusinessProfile = DEMO) -> str:
    asked = recognise(question)
    assert asked is not None, question
    fact = answer(asked, profile, now, {})
    assert fact is not None, question
    return fact["text"]


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("Are you open now?", ("open_now",)),
        ("are you guys still open", ("open_now",)),
        ("When are you open?", ("hours",)),
        ("What are your opening hours?", ("hours",)),
        ("What time does the office close on Saturday?", ("day_hours",)),
        ("Are you open on Sundays?", ("day_hours",)),
        ("do you work weekends?", ("day_hours",)),
        ("Do you come to Pine Ridge?", ("service_area",)),
        ("Which towns do you serve?", ("service_area",)),
        ("What's your phone number?", ("phone",)),
        ("What number should I call?", ("phone",)),
        ("Can I send you an email?", ("email",)),
        ("Where are you located?", ("address",)),
        ("How can I reach you?", ("phone", "email", "address")),
    ],
)
def test_questions_about_the_business_are_recognised(question, kinds):
    asked = recognise(question)
    assert asked is not None and asked.kinds == kinds


@pytest.mark.parametrize(
    "question",
    [
        "My phone number changed, can you update it?",
        "I changed my email address",
        "Do you accept American Express?",
        "can you come today?",
        "How much do you charge for a water heater?",
        "Is the water heater open to the air?",
        "the shop was open when I called but nobody answered",
        "I smell gas",
    ],
)
def test_other_questions_are_left_to_the_knowledge_base(question):
    asked = recognise(question)
    assert asked is None or answer(asked, DEMO, WEDNESDAY_10AM, {}) is None


def test_open_now_either_side_of_closing_time():
    assert ask("are you open now?", WEDNESDAY_10AM).startswith(
        "Yes, we're open now, until 6:00 pm today"
    )
    closed = ask("are you open now?", WEDNESDAY_7PM)
    assert closed.startswith("No, we're closed right now. We open again tomorrow at 7:30 am")
    assert "CST" in closed


def test_open_now_on_a_holiday_names_it():
    christmas = datetime.fromisoformat("2026-12-25T11:00:00-06:00")
    text = ask("Are you open right now?", christmas)
    assert "closed right now for Christmas Day" in text
    assert "open again tomorrow at 8:00 am" in text  # the 26th is a Saturday


def test_the_hours_of_a_day():
    assert ask("what time do you close on Saturday?", WEDNESDAY_10AM).startswith(
        "Saturday we close at 2:00 pm (open 8:00 am – 2:00 pm)."
    )
    assert ask("Are you open on Sundays?").startswith("Sunday (December 6) we're closed.")
    assert ask("are you open today?", SATURDAY_3PM).startswith("Today we're open 8:00 am – 2:00 pm")


def test_the_week_lists_every_day_and_upcoming_closures():
    text = ask("What are your business hours?", datetime.fromisoformat("2026-12-20T10:00-06:00"))
    assert "- Monday to Friday: 7:30 am – 6:00 pm" in text
    assert "- Saturday: 8:00 am – 2:00 pm" in text and "- Sunday: closed" in text
    assert "Christmas Eve (December 24): open 7:30 am – noon." in text
    assert "Christmas Day (December 25): closed." in text


def test_service_area_by_town_or_postcode():
    assert ask("Do you come to Pine Ridge?") == "Yes, we serve Pine Ridge."
    assert ask("do you service fenwick?") == "Yes, we serve Fenwick."
    assert ask("is 56314 in your service area?") == "Yes, 56314 is in our service area."
    outside = ask("Do you come out to Oakdale?")
    assert outside.startswith("Sorry, Oakdale isn't in our service area. We serve Millbrook,")


def test_service_as_a_verb_about_a_brand_is_not_a_place():
    asked = recognise("Do you service Lennox furnaces?")
    assert asked is not None
    assert answer(asked, DEMO, WEDNESDAY_10AM, {}) is None


def test_contact_channels_come_from_the_profile_and_cite_its_source():
    asked = recognise("How do I get in touch with you?")
    assert asked is not None
    fact = answer(asked, DEMO, WEDNESDAY_10AM, {"contact-us": "How to contact us"})
    assert fact is not None
    assert fact["text"] == (
        "You can call us on 555-0142.\nYou can email us at help@brightwater.example.\n"
        "We're at 214 Mill Street, Millbrook 56310."
    )
    assert fact["source_id"] == "contact-us" and fact["title"] == "How to contact us"


def test_a_profile_without_the_fact_answers_nothing():
    bare = BusinessProfile(display_name="Bare Co")
    for question in ("Are you open now?", "What's your phone number?", "Which towns do you serve?"):
        asked = recognise(question)
        assert asked is not None
        assert answer(asked, bare, WEDNESDAY_10AM, {}) is None


def test_without_a_source_article_the_profile_is_cited():
    plain = BusinessProfile(display_name="Plain Co", contact={"phone": "555-0100"})
    asked = recognise("what's your phone number?")
    assert asked is not None
    fact = answer(asked, plain, WEDNESDAY_10AM, {})
    assert fact is not None and fact["source_id"] == PROFILE_SOURCE
    assert fact["title"] == "Plain Co: business details"
