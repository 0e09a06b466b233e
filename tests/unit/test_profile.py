"""The business profile: validated whole, every problem named by its field."""

from __future__ import annotations

import pytest

from helpdesk.errors import InvalidInput
from helpdesk.profile import BusinessProfile, parse_profile, with_changes


def base() -> BusinessProfile:
    return BusinessProfile(display_name="Acme Plumbing")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"timezone": "Mars/Base"}, "timezone: unknown time zone 'Mars/Base'"),
        ({"hours": {"monday": [{"opens": "9:00", "closes": "17:00"}]}}, "hours.monday.0"),
        ({"hours": {"monday": [{"opens": "18:00", "closes": "08:00"}]}}, "must be before"),
        ({"hours": {"funday": []}}, "hours.funday"),
        (
            {
                "hours": {
                    "monday": [
                        {"opens": "08:00", "closes": "12:00"},
                        {"opens": "11:00", "closes": "14:00"},
                    ]
                }
            },
            "overlaps",
        ),
        ({"contact": {"email": "not an email"}}, "contact.email"),
        ({"contact": {"phone": "call us"}}, "contact.phone"),
        ({"chat": {"guardrail_profile": "lax"}}, "chat.guardrail_profile"),
        ({"chat": {"allowed_discount_percent": 150}}, "chat.allowed_discount_percent"),
        ({"chat": {"default_language": "English"}}, "chat.default_language"),
        ({"service_area": {"radius_km": 20}}, "radius_km needs a city"),
        ({"replies": {"greting": "Hi"}}, "unknown reply 'greting'"),
        ({"replies": {"greeting": "Hi from {nmae}"}}, "unknown placeholder {nmae}"),
        ({"replies": {"handoff": "oops {"}}, "replies.handoff"),
        ({"colour": "blue"}, "colour"),
        ({"closures": [{"name": "x", "start": "2026-12-25", "end": "2026-12-20"}]}, "before start"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(data, named):
    with pytest.raises(InvalidInput) as err:
        parse_profile({"display_name": "Acme", **data})
    assert named in err.value.message


def test_every_bad_field_is_named_at_once():
    with pytest.raises(InvalidInput) as err:
        parse_profile({"display_name": "", "timezone": "Nowhere", "languages": ["EN!"]})
    message = err.value.message
    assert "display_name" in message and "timezone" in message and "languages" in message


def test_changes_by_dotted_path_are_validated_whole():
    changed = with_changes(
        base(),
        [
            ("contact.phone", "555-0100"),
            ("hours.saturday", [{"opens": "08:00", "closes": "12:00"}]),
            ("replies.greeting", "Hello from {business}!"),
            ("chat.require_contact_before_quote", True),
        ],
    )
    assert changed.contact.phone == "555-0100"
    assert changed.hours["saturday"][0].closes == "12:00"
    assert changed.chat.require_contact_before_quote is True
    with pytest.raises(InvalidInput, match="timezone"):
        with_changes(changed, [("contact.phone", "555-0199"), ("timezone", "Atlantis")])
    with pytest.raises(InvalidInput, match="display_name: is not an object"):
        with_changes(changed, [("display_name.first", "x")])


def test_template_values_fall_back_to_the_display_name():
    values = base().template_values()
    assert values["business"] == values["short_name"] == "Acme Plumbing"
    named = BusinessProfile(display_name="Brightwater Home Services", short_name="Brightwater")
    assert named.template_values()["short_name"] == "Brightwater"


def test_the_demo_profile_is_valid():
    import json

    from cli.demo import DEMO_PROFILE

    demo = parse_profile(json.loads(DEMO_PROFILE.read_text("utf-8")))
    assert demo.display_name == "Brightwater Home Services"
    assert demo.hours_source == "opening-hours"
