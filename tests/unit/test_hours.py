"""Opening hours on the business's wall clock: open now, next opening, DST, closures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from helpdesk import hours
from helpdesk.profile import BusinessProfile

WEEK = {
    day: [{"opens": "08:00", "closes": "18:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def profile(**extra: object) -> BusinessProfile:
    return BusinessProfile.model_validate(
        {"display_name": "Test Co", "timezone": "America/Chicago", "hours": WEEK, **extra}
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_open_inside_a_period_and_closed_after_it():
    p = profile()
    # 2026-12-02 is a Wednesday; Chicago is UTC-6 in December.
    during = hours.status_at(p, utc(2026, 12, 2, 23, 59))  # 17:59 local
    assert during.open and during.closes_at is not None
    assert during.closes_at.hour == 18 and during.closes_at.tzname() == "CST"
    after = hours.status_at(p, utc(2026, 12, 3, 0, 0))  # 18:00 local: closed (end exclusive)
    assert not after.open
    assert after.next_opens_at == datetime.fromisoformat("2026-12-03T08:00:00-06:00")


def test_the_same_utc_instant_is_open_or_closed_either_side_of_the_dst_change():
    p = profile()
    # Clocks go back on Sunday 2026-11-01 at 02:00 in Chicago (CDT UTC-5 -> CST UTC-6).
    before = hours.status_at(p, utc(2026, 10, 31, 23, 30))  # Saturday 18:30 CDT
    after = hours.status_at(p, utc(2026, 11, 1, 23, 30))  # Sunday 17:30 CST
    assert not before.open
    assert after.open
    assert before.local.tzname() == "CDT" and after.local.tzname() == "CST"
    # the next opening after the change is 08:00 local, i.e. 14:00 UTC (not 13:00)
    assert before.next_opens_at is not None
    assert before.next_opens_at.astimezone(UTC) == utc(2026, 11, 1, 14, 0)


def test_spring_forward_keeps_local_hours():
    p = profile()
    # 2027-03-14: clocks go forward at 02:00; 08:00 CDT is 13:00 UTC.
    assert not hours.status_at(p, utc(2027, 3, 14, 12, 59)).open
    assert hours.status_at(p, utc(2027, 3, 14, 13, 0)).open


def test_a_closure_replaces_the_weekday_and_names_itself():
    p = profile(
        closures=[
            {"name": "Christmas Day", "start": "2026-12-25"},
            {
                "name": "Christmas Eve",
                "start": "2026-12-24",
                "hours": [{"opens": "08:00", "closes": "12:00"}],
            },
        ]
    )
    eve = hours.status_at(p, utc(2026, 12, 24, 19, 0))  # 13:00 local, after the early close
    assert not eve.open and eve.closure is not None and eve.closure.name == "Christmas Eve"
    assert eve.next_opens_at is not None and eve.next_opens_at.date() == date(2026, 12, 26)
    day = hours.status_at(p, utc(2026, 12, 25, 16, 0))
    assert not day.open and day.closure is not None and day.closure.name == "Christmas Day"


def test_several_periods_a_day_and_midnight():
    p = profile(
        hours={
            "monday": [
                {"opens": "13:00", "closes": "24:00"},
                {"opens": "08:00", "closes": "12:00"},
            ]
        }
    )
    assert [x.opens for x in p.hours["monday"]] == ["08:00", "13:00"]  # kept in order
    lunch = hours.status_at(p, datetime.fromisoformat("2026-11-30T12:30:00-06:00"))
    assert not lunch.open and lunch.next_opens_at is not None
    assert lunch.next_opens_at.hour == 13
    late = hours.status_at(p, datetime.fromisoformat("2026-11-30T23:59:00-06:00"))
    assert late.open and late.closes_at == datetime.fromisoformat("2026-12-01T00:00:00-06:00")
    assert hours.clock_text(late.closes_at) == "midnight"


def test_closed_for_weeks_has_no_next_opening():
    p = profile(closures=[{"name": "Renovation", "start": "2026-12-01", "end": "2027-01-31"}])
    status = hours.status_at(p, utc(2026, 12, 2, 16, 0))
    assert not status.open and status.next_opens_at is None


def test_week_text_groups_equal_days():
    p = profile(
        hours={
            **{
                d: [{"opens": "07:30", "closes": "18:00"}]
                for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
            },
            "saturday": [{"opens": "08:00", "closes": "14:00"}],
        }
    )
    assert hours.week_text(p) == [
        "Monday to Friday: 7:30 am – 6:00 pm",
        "Saturday: 8:00 am – 2:00 pm",
        "Sunday: closed",
    ]


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        hours.status_at(profile(), datetime(2026, 12, 2, 10, 0))
