"""Opening hours in the business's own time zone: open now, when it closes, when it opens next.

All arithmetic is done on the local wall clock of the profile's ``timezone`` (``zoneinfo``), so a
DST change moves nothing: "open 8:00-18:00" is 8:00-18:00 local on the day the clocks change,
and the instant it closes is computed from that day's offset. Closures (holidays) replace the
weekday's hours for their days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from helpdesk.profile import WEEKDAYS, BusinessProfile, Closure, Period

_LOOKAHEAD_DAYS = 21  # a business closed for three weeks straight says "not in the next weeks"


@dataclass(frozen=True)
class OpenStatus:
    """Whether the business is open at an instant, and the next change."""

    open: bool
    local: datetime
    """The instant asked about, on the business's wall clock."""
    closes_at: datetime | None
    """While open: when the current period ends (local)."""
    next_opens_at: datetime | None
    """While closed: when the next period starts (local), None if none in the next weeks."""
    closure: Closure | None
    """The closure (holiday) in force today, if any."""


def weekday_name(day: date) -> str:
    """``monday`` ... ``sunday``."""
    return WEEKDAYS[day.weekday()]


def periods_on(profile: BusinessProfile, day: date) -> tuple[list[Period], Closure | None]:
    """The periods the business keeps on ``day``, and the closure that set them, if any."""
    for closure in profile.closures:
        if closure.covers(day):
            return list(closure.hours), closure
    return list(profile.hours.get(weekday_name(day), [])), None  # type: ignore[call-overload]


def _at(day: date, clock: time, profile: BusinessProfile) -> datetime:
    if clock == time.max:  # 24:00 is the next day's midnight
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=profile.zone)
    return datetime.combine(day, clock, tzinfo=profile.zone)


def status_at(profile: BusinessProfile, at: datetime) -> OpenStatus:
    """Open or closed at ``at`` (an aware datetime), with the next change."""
    if at.tzinfo is None:
        raise ValueError("status_at needs an aware datetime")
    local = at.astimezone(profile.zone)
    today, closure = periods_on(profile, local.date())
    for period in today:
        start, end = (
            _at(local.date(), period.start, profile),
            _at(local.date(), period.end, profile),
        )
        if start <= local < end:
            return OpenStatus(True, local, end, None, closure)
    return OpenStatus(False, local, None, next_opening(profile, local), closure)


def next_opening(profile: BusinessProfile, after: datetime) -> datetime | None:
    """The first period start after ``after`` (local), within the next three weeks."""
    local = after.astimezone(profile.zone)
    for offset in range(_LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        for period in periods_on(profile, day)[0]:
            start = _at(day, period.start, profile)
            if start > local:
                return start
    return None


def clock_text(value: time | datetime) -> str:
    """``7:30 am``, ``noon``, ``midnight``."""
    if isinstance(value, datetime):
        value = value.timetz().replace(tzinfo=None)
    if value == time.max or value == time(0):
        return "midnight"
    if value == time(12):
        return "noon"
    hour = value.hour % 12 or 12
    return f"{hour}:{value.minute:02d} {'am' if value.hour < 12 else 'pm'}"


def periods_text(periods: list[Period]) -> str:
    """``7:30 am – 6:00 pm`` (and more periods joined by "and"), or ``closed``."""
    if not periods:
        return "closed"
    return " and ".join(f"{clock_text(p.start)} – {clock_text(p.end)}" for p in periods)


def week_text(profile: BusinessProfile) -> list[str]:
    """One line per run of weekdays with the same hours: ``Monday to Friday: 7:30 am – ...``."""
    lines: list[str] = []
    runs: list[tuple[list[str], str]] = []
    for day in WEEKDAYS:
        text = periods_text(list(profile.hours.get(day, [])))  # type: ignore[call-overload]
        if runs and runs[-1][1] == text:
            runs[-1][0].append(day)
        else:
            runs.append(([day], text))
    for days, text in runs:
        name = days[0].title() if len(days) == 1 else f"{days[0].title()} to {days[-1].title()}"
        lines.append(f"{name}: {text}")
    return lines


def day_label(day: date, today: date) -> str:
    """``today``, ``tomorrow`` or ``on Monday``."""
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"on {weekday_name(day).title()}"
