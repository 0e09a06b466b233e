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
        ({"learning": {"auto_publish_internal_at": 1.5}}, "learning.auto_publish_internal_at"),
        ({"learning": {"auto_publish_internal_at": 0}}, "learning.auto_publish_internal_at"),
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


def test_the_chat_configuration_adjusts_the_policy_the_assistant_applies():
    from helpdesk.policy import CONSERVATIVE_AUTO_SEND, TenantPolicy, with_chat_config
    from helpdesk.profile import ChatConfig

    policy = TenantPolicy()
    standard = with_chat_config(policy, ChatConfig(allowed_discount_percent=10))
    assert standard.max_discount_percent == 10
    assert standard.auto_send_above == policy.auto_send_above
    assert standard.max_price_promise == policy.max_price_promise
    careful = with_chat_config(policy, ChatConfig(guardrail_profile="conservative"))
    assert careful.auto_send_above == CONSERVATIVE_AUTO_SEND
    assert careful.max_price_promise == 0.0  # every quoted price waits for a person
    assert careful.escalate_below <= careful.auto_send_above
    assert policy.auto_send_above == 0.60  # the stored policy is untouched


def test_an_answer_with_a_price_ends_with_the_estimate_disclaimer():
    from graph.nodes.respond import with_disclaimer
    from graph.state import Reply

    business = BusinessProfile(
        display_name="Acme", chat={"estimate_disclaimer": "Prices are estimates."}
    )

    def reply(text: str, sender: str = "ai") -> Reply:
        return Reply(text=text, sender=sender, citations=[], confidence=1.0, declined=False)  # type: ignore[typeddict-item]

    assert with_disclaimer(reply("The call-out fee is $89."), business)["text"] == (
        "The call-out fee is $89.\n\nPrices are estimates."
    )
    assert with_disclaimer(reply("We open at 8."), business)["text"] == "We open at 8."
    assert with_disclaimer(reply("It is $89.", "agent"), business)["text"] == "It is $89."
    twice = with_disclaimer(with_disclaimer(reply("It is $89."), business), business)
    assert twice["text"].count("Prices are estimates.") == 1
