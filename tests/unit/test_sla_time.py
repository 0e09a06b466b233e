"""Business-time arithmetic and the pure SLA rules (helpdesk/sla.py), nothing started: opening
periods with a lunch break, the end of the day, weekends, a closure day, a closure that keeps
other hours, DST in both directions, a 24/7 profile, pauses, the rule chosen and the warning."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from helpdesk import sla
from helpdesk.errors import InvalidInput
from helpdesk.profile import BusinessProfile

BERLIN = ZoneInfo("Europe/Berlin")
DAY = [{"opens": "09:00", "closes": "12:00"}, {"opens": "13:00", "closes": "17:00"}]
WEEK = {d: DAY for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}


def _profile(**kw: Any) -> BusinessProfile:
    data: dict[str, Any] = {"display_name": "Shop", "timezone": "Europe/Berlin", "hours": WEEK}
    data.update(kw)
    return BusinessProfile.model_validate(data)


def at(y: int, m: int, d: int, hh: int, mm: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=zone)


# 2021-03-01 is a Monday.
MON = (2021, 3, 1)


def test_minutes_inside_one_period() -> None:
    assert sla.add_business_minutes(_profile(), at(*MON, 10), 60) == at(*MON, 11)


def test_the_lunch_break_is_skipped() -> None:
    assert sla.add_business_minutes(_profile(), at(*MON, 11, 30), 60) == at(*MON, 13, 30)
    assert sla.business_seconds_between(_profile(), at(*MON, 11), at(*MON, 14)) == 2 * 3600


def test_the_end_of_the_day_carries_to_the_next_morning() -> None:
    assert sla.add_business_minutes(_profile(), at(*MON, 16, 30), 60) == at(2021, 3, 2, 9, 30)
    # Landing exactly on a closing time stays there.
    assert sla.add_business_minutes(_profile(), at(*MON, 16), 60) == at(*MON, 17)


def test_before_opening_counts_from_the_opening() -> None:
    assert sla.add_business_minutes(_profile(), at(*MON, 6), 30) == at(*MON, 9, 30)


def test_the_weekend_is_closed() -> None:
    friday = (2021, 3, 5)
    assert sla.add_business_minutes(_profile(), at(*friday, 16, 30), 60) == at(2021, 3, 8, 9, 30)
    assert sla.business_seconds_between(_profile(), at(*friday, 16), at(2021, 3, 8, 10)) == 7200
    # Saturday noon to Sunday noon: nothing.
    assert sla.business_seconds_between(_profile(), at(2021, 3, 6, 12), at(2021, 3, 7, 12)) == 0


def test_a_closure_day_is_skipped_and_one_with_hours_keeps_them() -> None:
    closed = _profile(closures=[{"name": "Holiday", "start": "2021-03-02"}])
    assert sla.add_business_minutes(closed, at(*MON, 16, 30), 60) == at(2021, 3, 3, 9, 30)
    half = _profile(
        closures=[
            {
                "name": "Short day",
                "start": "2021-03-02",
                "hours": [{"opens": "09:00", "closes": "10:00"}],
            }
        ]
    )
    # Monday's last half hour, Tuesday's one hour, then Wednesday.
    assert sla.add_business_minutes(half, at(*MON, 16, 30), 120) == at(2021, 3, 3, 9, 30)
    run = _profile(closures=[{"name": "Works", "start": "2021-03-02", "end": "2021-03-04"}])
    assert sla.add_business_minutes(run, at(*MON, 17), 30) == at(2021, 3, 5, 9, 30)


def test_dst_spring_forward_and_fall_back() -> None:
    # Europe/Berlin moved 02:00 -> 03:00 on Sunday 2021-03-28. Opening hours are local: Monday
    # 9:00 is 9:00 CEST, and Friday 16:00 CET + 2 business hours is Monday 10:00 CEST.
    due = sla.add_business_minutes(_profile(), at(2021, 3, 26, 16), 120)
    assert due is not None and due.astimezone(BERLIN) == at(2021, 3, 29, 10)
    assert due == datetime(2021, 3, 29, 8, tzinfo=UTC)
    # A period over the change is measured in real time: 01:00-04:00 that night is 2 hours.
    night = _profile(hours={"sunday": [{"opens": "01:00", "closes": "04:00"}]})
    assert sla.business_seconds_between(night, at(2021, 3, 28, 0), at(2021, 3, 28, 5)) == 7200
    # New York moved 02:00 -> 01:00 on Sunday 2021-11-07: 00:00-03:00 held 4 real hours.
    ny = ZoneInfo("America/New_York")
    back = _profile(
        timezone="America/New_York", hours={"sunday": [{"opens": "00:00", "closes": "03:00"}]}
    )
    start = datetime(2021, 11, 6, 12, tzinfo=ny)
    assert sla.business_seconds_between(back, start, datetime(2021, 11, 8, tzinfo=ny)) == 4 * 3600
    # A 24/7 desk over the spring change: 3 hours from 23:00 is 03:00 CEST (real hours).
    always = _profile(hours={})
    due = sla.add_business_minutes(always, at(2021, 3, 27, 23), 180)
    assert due is not None and due.astimezone(BERLIN).hour == 3


def test_a_profile_without_hours_counts_every_minute_but_closures() -> None:
    always = _profile(hours={}, closures=[{"name": "Holiday", "start": "2021-03-02"}])
    assert sla.add_business_minutes(always, at(*MON, 23), 120) == at(2021, 3, 3, 1)
    assert sla.business_seconds_between(always, at(*MON, 0), at(*MON, 6)) == 6 * 3600


def test_never_open_has_no_due_and_elapsed_is_signed() -> None:
    shut = _profile(closures=[{"name": "Gone", "start": "2021-01-01", "end": "2030-01-01"}])
    assert sla.add_business_minutes(shut, at(*MON, 9), 1) is None
    assert sla.business_seconds_between(_profile(), at(*MON, 11), at(*MON, 10)) == -3600
    assert sla.add_business_minutes(_profile(), at(*MON, 20), 0) == at(*MON, 20)
    with pytest.raises(ValueError, match="aware"):
        sla.add_business_minutes(_profile(), datetime(2021, 3, 1, 9), 5)


# ------------------------------------------------------------------------------ rules


def test_the_category_rule_beats_the_priority_rule() -> None:
    config = sla.parse_config(
        {
            "policies": [
                {"priority": "high", "first_response_minutes": 60, "resolution_minutes": 480},
                {
                    "priority": "high",
                    "category": "outage",
                    "first_response_minutes": 15,
                    "resolution_minutes": 120,
                    "warn_before": {"minutes": 5},
                },
            ]
        }
    )
    outage = sla.rule_for(config, "high", "outage")
    assert outage is not None and outage.first_response_minutes == 15
    other = sla.rule_for(config, "high", "billing")
    assert other is not None and other.first_response_minutes == 60
    assert sla.rule_for(config, "low", None) is None  # no rule for it: no SLA
    assert sla.warn_after(outage, 15, config) == 10  # 5 minutes before
    assert sla.warn_after(other, 60, config) == 48  # 80% by default
    assert sla.rule_for(sla.parse_config({"enabled": False, "policies": []}), "high", None) is None


def test_defaults_apply_until_a_tenant_saves_its_own() -> None:
    rule = sla.rule_for(sla.DEFAULT_CONFIG, "urgent", "anything")
    assert rule is not None and (rule.first_response_minutes, rule.resolution_minutes) == (60, 240)
    assert set(sla.DEFAULT_POLICIES) == {"low", "normal", "high", "urgent"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "policies": [
                    {"priority": "soon", "first_response_minutes": 1, "resolution_minutes": 2}
                ]
            },
            "policies.0.priority",
        ),
        (
            {
                "policies": [
                    {"priority": "low", "first_response_minutes": 0, "resolution_minutes": 2}
                ]
            },
            "policies.0.first_response_minutes",
        ),
        (
            {
                "policies": [
                    {"priority": "low", "first_response_minutes": 30, "resolution_minutes": 10}
                ]
            },
            "policies.0.resolution_minutes",
        ),
        (
            {"policies": [{"priority": "low", "first_response_minutes": 1}]},
            "policies.0.resolution_minutes",
        ),
        (
            {
                "policies": [
                    {
                        "priority": "low",
                        "first_response_minutes": 1,
                        "resolution_minutes": 2,
                        "warn_before": {"percent": 100},
                    }
                ]
            },
            "policies.0.warn_before.percent",
        ),
        ({"warn_before": {"percent": 50, "minutes": 3}}, "warn_before"),
        ({"enabled": "yes"}, "enabled"),
        (
            {
                "policies": [
                    {"priority": "low", "first_response_minutes": 1, "resolution_minutes": 2}
                ]
                * 2
            },
            "policies.1",
        ),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_policy_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        sla.parse_config(body)
    assert err.value.message.startswith(field + ":"), err.value.message


# ------------------------------------------------------------------------------ per ticket


def _ticket(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "status": "new",
        "priority": "urgent",
        "category": None,
        "created_at": at(*MON, 9),
        "first_response_at": None,
        "resolved_at": None,
        "sla_policy": None,
        "sla_started_at": None,
        "sla_paused_at": None,
        "sla_paused_s": 0,
        "first_response_warned": False,
        "first_response_breached": False,
        "resolution_warned": False,
        "resolution_breached": False,
    }
    row.update(kw)
    return row


def test_due_times_move_by_the_time_waiting_on_the_customer() -> None:
    profile = _profile()
    row = _ticket()
    row.update(sla.compute(row, profile, at(*MON, 9), config=sla.DEFAULT_CONFIG))
    assert row["first_response_due_at"] == at(*MON, 10)
    assert row["first_response_warn_at"] == at(*MON, 9, 48)
    assert row["resolution_due_at"] == at(*MON, 14)  # 4 business hours over lunch
    assert row["sla_next_check_at"] == at(*MON, 9, 48)
    # 9:30 waiting on the customer: the clock stops, nothing to sweep.
    row.update(status="waiting_customer")
    row.update(sla.compute(row, profile, at(*MON, 9, 30), previous_status="new"))
    assert row["sla_paused_at"] == at(*MON, 9, 30) and row["sla_next_check_at"] is None
    state = sla.ticket_state(row, at(*MON, 16), profile)
    assert state is not None and state["state"] == "paused" and state["paused"]
    assert state["first_response"]["remaining_minutes"] == 30  # frozen at the pause
    # Back at Tuesday 9:30: paused 9:30-12:00 and 13:00-17:00 Monday, 9:00-9:30 Tuesday = 7 h.
    row.update(status="in_progress")
    row.update(sla.compute(row, profile, at(2021, 3, 2, 9, 30), previous_status="waiting_customer"))
    assert row["sla_paused_s"] == 7 * 3600 and row["sla_paused_at"] is None
    assert row["first_response_due_at"] == at(2021, 3, 2, 10)
    state = sla.ticket_state(row, at(2021, 3, 2, 9, 50), profile)
    assert state is not None and state["state"] == "warning"
    assert state["first_response"]["remaining_minutes"] == 10


def test_met_and_breached_first_response() -> None:
    profile = _profile()
    row = _ticket()
    row.update(sla.compute(row, profile, at(*MON, 9), config=sla.DEFAULT_CONFIG))
    met = {**row, "first_response_at": at(*MON, 9, 40)}
    state = sla.ticket_state(met, at(*MON, 9, 45), profile)
    assert state is not None and state["first_response"]["state"] == "met"
    assert state["state"] == "ok"  # resolution still running
    late = sla.ticket_state(row, at(*MON, 10, 1), profile)
    assert late is not None and late["state"] == "breached"
    assert late["first_response"]["remaining_minutes"] == -1
    assert sla.next_check({**row, "first_response_at": at(*MON, 9, 40)}) == at(*MON, 13, 12)


def test_no_rule_no_sla() -> None:
    row = _ticket(priority="low")
    config = sla.parse_config({"policies": []})
    values = sla.compute(row, _profile(), at(*MON, 9), config=config)
    assert values["sla_policy"] is None and values["resolution_due_at"] is None
    assert sla.ticket_state({**row, **values}, at(*MON, 9), _profile()) is None


def test_every_day_of_a_year_adds_consistently() -> None:
    profile = _profile()
    start = at(2021, 1, 1, 8)
    for hours in range(0, 24 * 14, 5):
        start = start + timedelta(hours=hours % 24, minutes=7)
        due = sla.add_business_minutes(profile, start, 95)
        assert due is not None
        assert sla.business_seconds_between(profile, start, due) == 95 * 60
    assert date(2021, 1, 1).year == 2021
