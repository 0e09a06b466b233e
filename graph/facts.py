"""Questions the business profile answers: open now, hours of a day, service area, contact.

"Are you open now?" has no answer in any article: it depends on the clock, the weekday and the
holidays, in the business's time zone. These questions are recognised by rules (like the safety
rules, so both tiers answer them the same way and the answer can be tested on a fixed clock) and
answered from :class:`~helpdesk.profile.BusinessProfile` through :mod:`helpdesk.hours`.

The answer is a :class:`~kb_pipeline.index.Retrieved`-shaped chunk put first in the turn's
retrieved chunks: the drafter sends its text as the answer, and the judge checks that answer
against it like against any article. It cites the KB article the profile names as the source of
those facts (``hours_source``, ``contact.source``, ``service_area.source``), so the customer can
read the business's own wording; without one it cites the profile itself.

A rule fires only on a question about the business ("your phone number", not "my phone number
changed") and only when the profile holds the fact; anything else goes to retrieval as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from rapidfuzz import fuzz, process, utils

from helpdesk import hours
from helpdesk.profile import WEEKDAYS, BusinessProfile
from kb_pipeline.index import Retrieved

FactKind = Literal["open_now", "day_hours", "hours", "service_area", "phone", "email", "address"]

PROFILE_SOURCE = "business-profile"
"""Source id of a fact whose profile names no article."""

_DAY = (
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|weekday"
    r"|today|tomorrow|tonight)s?"
)
_YOU = (
    r"(you|you guys|y'all|your (office|shop|store|business|team|company)"
    r"|the (office|shop|store))"
)
_YOUR = r"(your|the (office|shop|store|business|company)'s)"

_RULES: list[tuple[FactKind, re.Pattern[str]]] = [
    (
        "open_now",
        re.compile(
            rf"\b(are|is) {_YOU} (still |currently )?open\b(?! on)(?!.*\b{_DAY})"
            rf"|\b(are|is) {_YOU} open (right )?now\b"
            r"|\bopen (right )?now\b\?|\bopen at the moment\b",
        ),
    ),
    (
        "day_hours",
        re.compile(
            rf"\b(are|is) {_YOU} open\b.*\b{_DAY}\b"
            rf"|\bwhat time (do|does) {_YOU} (open|close)\b.*\b{_DAY}\b"
            rf"|\b(when|what time) (do|does|will) {_YOU} (open|close)\b.*\b{_DAY}\b"
            rf"|\b{_DAY}\b.*\b(opening |business |office )?hours\b"
            rf"|\b(do|does) {_YOU} (work|open)\b.*\b{_DAY}\b",
        ),
    ),
    (
        "hours",
        re.compile(
            r"\b(opening|business|office|working|open) hours\b"
            rf"|\bwhat are {_YOUR} hours\b|\bwhen (are|is) {_YOU} open\b"
            rf"|\b(what time|when) (do|does) {_YOU} (open|close)\b",
        ),
    ),
    (
        "service_area",
        re.compile(
            rf"\b(do|does|will|can|would) {_YOU} (serve|service|cover)\b"
            rf"|\b(do|does|will|can|would) {_YOU} (come|go|travel|work|do jobs)( out)?"
            r" (to|in|around|near)\b"
            r"|\bservice area\b|\b(which|what) (towns|areas|cities|zip codes|postcodes|places)"
            rf"|\bis (\w+ ){{1,3}}in {_YOUR} (service )?area\b",
        ),
    ),
    (
        "phone",
        re.compile(
            rf"\b{_YOUR} (phone|telephone|contact) (number|no)\b"
            r"|\bwhat('s| is) (the|your) (phone )?number\b"
            r"|\bwhat (phone )?number (should|do|can|would) i (call|ring|dial|use)\b"
            rf"|\bhow (do|can|could) i (call|phone|ring) {_YOU}\b"
            r"|\bnumber to call\b",
        ),
    ),
    (
        "email",
        re.compile(
            rf"\b{_YOUR} e-?mail( address)?\b"
            rf"|\b(can|could|may|should) i (send )?(you )?(an )?e-?mail( you)?\b"
            r"|\bwhat('s| is) the e-?mail( address)?\b",
        ),
    ),
    (
        "address",
        re.compile(
            rf"\bwhere (are|is) {_YOU} (located|based)\b|\bwhere (are|is) {_YOU}\?"
            rf"|\b{_YOUR} (street |mailing |postal )?address\b"
            r"|\bwhat('s| is) the (street )?address\b|\bwhere can i find you\b",
        ),
    ),
]

_CONTACT_ANY = re.compile(
    rf"\bhow (can|do|could|should) i (reach|contact|get (in touch|hold of)) {_YOU}\b"
    rf"|\bhow (can|do) i get in touch\b|\bways to (reach|contact) {_YOU}\b"
)
"""A question about every channel at once: answered with phone, email and address together."""


@dataclass(frozen=True)
class FactQuestion:
    """What a customer asked the profile."""

    kinds: tuple[FactKind, ...]
    day: str | None = None
    """For ``day_hours``: a weekday, ``weekend``, ``weekday``, ``today`` or ``tomorrow``."""
    asks_close: bool = False
    place: str | None = None
    """For ``service_area``: the town or postcode asked about, if named."""
    place_certain: bool = False
    """The question is surely about a place ("do you come to X", "is X in your area"), so an
    unknown X is outside the area. "Do you service X" may name a brand or a job ("do you
    service Lennox furnaces?"): an unknown X there is left to the knowledge base."""


def recognise(question: str) -> FactQuestion | None:
    """The profile facts ``question`` asks about, or None."""
    text = " ".join(question.lower().replace("’", "'").split())
    if _CONTACT_ANY.search(text):
        return FactQuestion(kinds=("phone", "email", "address"))
    for kind, rule in _RULES:
        if not rule.search(text):
            continue
        if kind == "open_now" and re.search(r"\b(when|what time|hours)\b", text):
            continue  # "when are you open?" asks for the hours, not whether it is open now
        if kind == "day_hours":
            found = re.search(rf"\b{_DAY}\b", text)
            day = found.group(1) if found else None
            if day == "tonight":
                day = "today"
            return FactQuestion(kinds=(kind,), day=day, asks_close=" close" in text)
        if kind == "service_area":
            place, certain = _place(question)
            return FactQuestion(kinds=(kind,), place=place, place_certain=certain)
        return FactQuestion(kinds=(kind,), asks_close=" close" in text)
    return None


_PLACE = re.compile(
    r"\b(?:(?P<loose>serve|service|cover)\s+|(?:come|go|travel|work|do jobs)(?: out)?\s+"
    r"(?:to|in|around|near)\s+)"
    r"(?P<place>[A-Za-z0-9][A-Za-z0-9' .-]{1,60}?)\s*(?:\?|$|,| area\b| too\b| as well\b)"
    r"|\bis\s+(?P<place2>[A-Za-z0-9][A-Za-z0-9' .-]{1,60}?)\s+in your (?:service )?area\b",
    re.IGNORECASE,
)
_NOT_A_PLACE = re.compile(
    r"^(me|us|my|my (house|home|place|address|area|town|street|neighbou?rhood)|here|there|"
    r"where i live|my zip( code)?|weekends?|nights?|emergencies|the (area|suburbs))$",
    re.IGNORECASE,
)


def _place(question: str) -> tuple[str | None, bool]:
    """The place named and whether the question is surely about a place."""
    match = _PLACE.search(question.strip())
    if not match:
        return None, False
    place = (match.group("place") or match.group("place2") or "").strip(" .'")
    place = re.sub(r"^(the )?(town|city|village) of ", "", place, flags=re.IGNORECASE)
    if not place or _NOT_A_PLACE.match(place):
        return None, False
    postcode = re.fullmatch(r"\d{4,6}(-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", place, re.I)
    return place, match.group("loose") is None or postcode is not None


def answer(
    asked: FactQuestion, profile: BusinessProfile, now: datetime, titles: dict[str, str]
) -> Retrieved | None:
    """The profile's answer as a chunk (see the module docstring), or None when the profile
    does not hold what was asked. ``titles``: source id -> article title, for the citation."""
    parts: list[str] = []
    source: str | None = None
    for kind in asked.kinds:
        text, kind_source = _answer_one(kind, asked, profile, now)
        if text:
            parts.append(text)
            source = source or kind_source
    if not parts:
        return None
    source = source or PROFILE_SOURCE
    title = titles.get(source) or f"{profile.display_name}: business details"
    return Retrieved(
        chunk_id=f"profile:{'+'.join(asked.kinds)}",
        article_id=source,
        source_id=source,
        title=title,
        section="Business profile",
        text="\n".join(parts),
        score=1.0,
        visibility="external",
        url=None,
    )


def is_profile_fact(chunk: Retrieved) -> bool:
    """Whether a retrieved chunk is a profile answer made by :func:`answer`."""
    return chunk["chunk_id"].startswith("profile:")


def _answer_one(
    kind: FactKind, asked: FactQuestion, p: BusinessProfile, now: datetime
) -> tuple[str | None, str | None]:
    if kind in ("open_now", "day_hours", "hours"):
        if not p.hours:
            return None, None
        text = {"open_now": _open_now, "day_hours": _day_hours, "hours": _week}[kind](asked, p, now)
        return text, p.hours_source
    if kind == "service_area":
        return _service_area(asked, p), p.service_area.source
    contact = p.contact
    if kind == "phone" and contact.phone:
        return f"You can call us on {contact.phone}.", contact.source
    if kind == "email" and contact.email:
        return f"You can email us at {contact.email}.", contact.source
    if kind == "address" and contact.address:
        return f"We're at {contact.address}.", contact.source
    return None, None


def _zone_note(local: datetime) -> str:
    return f"(times are {local.tzname()}, our local time)"


def _open_now(asked: FactQuestion, p: BusinessProfile, now: datetime) -> str:
    status = hours.status_at(p, now)
    local = status.local
    if status.open and status.closes_at is not None:
        return (
            f"Yes, we're open now, until {hours.clock_text(status.closes_at)} today "
            f"{_zone_note(local)}."
        )
    why = f" for {status.closure.name}" if status.closure is not None else ""
    if status.next_opens_at is None:
        return f"No, we're closed right now{why}, and not open again in the next few weeks."
    when = hours.day_label(status.next_opens_at.date(), local.date())
    return (
        f"No, we're closed right now{why}. We open again {when} at "
        f"{hours.clock_text(status.next_opens_at)} {_zone_note(local)}."
    )


def _days_for(word: str | None, today: date) -> list[date]:
    """The next date(s) a day word names, from ``today`` on."""
    if word in (None, "today"):
        return [today]
    if word == "tomorrow":
        return [today + timedelta(days=1)]
    names = {"weekend": ["saturday", "sunday"], "weekday": list(WEEKDAYS[:5])}.get(
        word or "", [word or ""]
    )
    out = []
    for name in names:
        index = WEEKDAYS.index(name)
        out.append(today + timedelta(days=(index - today.weekday()) % 7))
    return out


def _day_hours(asked: FactQuestion, p: BusinessProfile, now: datetime) -> str:
    local = now.astimezone(p.zone)
    today = local.date()
    if asked.day == "weekday":
        return _week(asked, p, now)
    lines = []
    for day in _days_for(asked.day, today):
        periods, closure = hours.periods_on(p, day)
        label = hours.day_label(day, today)
        label = label[3:] if label.startswith("on ") else label
        label = label[0].upper() + label[1:]
        if not periods:
            why = f" for {closure.name}" if closure is not None else ""
            lines.append(f"{label} ({day:%B} {day.day}) we're closed{why}.")
        elif asked.asks_close:
            lines.append(
                f"{label} we close at {hours.clock_text(periods[-1].end)}"
                f" (open {hours.periods_text(periods)})."
            )
        else:
            lines.append(f"{label} we're open {hours.periods_text(periods)}.")
        if closure is not None and periods:
            lines[-1] = lines[-1][:-1] + f", for {closure.name}."
    return " ".join(lines) + f" {_zone_note(local)}"


def _week(asked: FactQuestion, p: BusinessProfile, now: datetime) -> str:
    local = now.astimezone(p.zone)
    lines = ["Our opening hours:", *[f"- {line}" for line in hours.week_text(p)]]
    soon = [c for c in p.closures if local.date() <= c.start <= local.date() + timedelta(days=30)]
    for closure in soon:
        kept = f"open {hours.periods_text(closure.hours)}" if closure.hours else "closed"
        lines.append(f"{closure.name} ({closure.start:%B} {closure.start.day}): {kept}.")
    status = hours.status_at(p, now)
    now_open = "We're open right now. " if status.open else ""
    lines.append(f"{now_open}All times are {local.tzname()}, our local time.")
    return "\n".join(lines)


def _service_area(asked: FactQuestion, p: BusinessProfile) -> str | None:
    area = p.service_area
    listed = [*area.towns, *area.postcodes]
    if not listed and not area.city:
        return None
    described = ", ".join(area.towns) if area.towns else ""
    if area.city and area.radius_km:
        described = f"{area.city} and up to {area.radius_km:g} km around it" + (
            f" ({described})" if described else ""
        )
    elif not described:
        described = area.city or ""
    place = asked.place
    if place is None:
        return f"We serve {described}."
    code = re.sub(r"\s", "", place).upper()
    if any(code == re.sub(r"\s", "", c).upper() for c in area.postcodes):
        return f"Yes, {place} is in our service area."
    match = (
        process.extractOne(place, area.towns, scorer=fuzz.WRatio, processor=utils.default_process)
        if area.towns
        else None
    )
    if match is not None and match[1] >= 88:
        return f"Yes, we serve {match[0]}."
    if area.city and fuzz.WRatio(place, area.city, processor=utils.default_process) >= 88:
        return f"Yes, we serve {area.city}."
    if not asked.place_certain:
        return None  # "do you service Lennox furnaces?": not a town; the KB answers
    if area.radius_km and not area.towns:
        # Without a map we cannot tell whether a town is inside the radius: say the area.
        return f"We serve {described}; a person on our team can confirm whether {place} is in it."
    return f"Sorry, {place} isn't in our service area. We serve {described}."
