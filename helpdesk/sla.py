"""SLAs: first-response and resolution targets counted in the business's opening hours.

Three parts, see docs/sla.md:

* **Business time** (pure, :func:`add_business_minutes`, :func:`business_seconds_between`):
  the opening periods of the tenant's profile (several a day, closures replacing a weekday's
  hours), on the local wall clock of its time zone, DST included (a period is measured in
  real elapsed time between its local start and end). A profile with no opening hours at all
  counts every minute (24/7).
* **Per ticket** (:func:`refresh`, called by ``helpdesk.tickets`` wherever a ticket is
  created, changes priority or category, changes status, or gets its first response): the
  rule that applies (:func:`rule_for`; a category rule beats the priority's), the due and
  warning instants, the paused clock, the breaches. The clock stops while the ticket is
  ``waiting_customer`` (and while ``resolved``; closed stops it for good); when it runs again
  the due times move by the business time it was stopped.
* **The sweep** (:func:`sweep`): one set-based statement over every tenant records the
  ``sla.warning`` and ``sla.breach`` ticket events whose instant has come, each once per
  ticket and target (a unique dedupe key), whatever number of sweeps run at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from helpdesk import notifications
from helpdesk.errors import InvalidInput
from helpdesk.hours import periods_on
from helpdesk.profile import BusinessProfile
from helpdesk.tenancy import Db, connect

Target = Literal["first_response", "resolution"]
TARGETS: tuple[Target, ...] = get_args(Target)
SlaState = Literal["ok", "warning", "breached", "paused", "met"]
SLA_STATES: tuple[SlaState, ...] = get_args(SlaState)
PRIORITIES = ("low", "normal", "high", "urgent")

DEFAULT_WARN_PERCENT = 80
"""A rule without its own warning, of a tenant without one, warns at 80% of the target."""

DEFAULT_POLICIES: dict[str, tuple[int, int]] = {
    "urgent": (60, 240),
    "high": (240, 960),
    "normal": (480, 2400),
    "low": (960, 4800),
}
"""priority -> (first response, resolution) in business minutes, for a tenant that never saved
an SLA policy: urgent 1 h / 4 h, high 4 h / 2 days, normal 1 day / 5 days, low 2 days / 10
days (a business day of 8 hours)."""

STOPPED = frozenset({"waiting_customer", "resolved", "closed"})
"""Statuses in which the clock does not run (``waiting_customer`` is the pause; ``resolved``
stops it until a reopen; ``closed`` for good)."""
OPEN = frozenset({"new", "triage", "in_progress", "waiting_customer", "waiting_internal",
                  "pending_release"})  # fmt: skip

_MAX_DAYS = 3 * 366
"""How far business time is looked for: a profile open nowhere in three years has no due."""


# ------------------------------------------------------------------------------ business time


def _always_open(profile: BusinessProfile) -> bool:
    return not any(profile.hours.values())


def _local(day: date, clock: time, profile: BusinessProfile) -> datetime:
    if clock == time.max:  # 24:00: the next day's midnight
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=profile.zone)
    return datetime.combine(day, clock, tzinfo=profile.zone)


def open_intervals(
    profile: BusinessProfile, start: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The business's open intervals from ``start`` on, in order, as UTC instants (the first
    cut at ``start``). A day's periods are the closure's when one covers the day, else the
    weekday's; a profile with no weekday hours at all is open all day every day (closures
    still apply). Ends after :data:`_MAX_DAYS` days."""
    if start.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    start = start.astimezone(UTC)
    always = _always_open(profile)
    day0 = start.astimezone(profile.zone).date()
    for offset in range(_MAX_DAYS):
        day = day0 + timedelta(days=offset)
        periods, closure = periods_on(profile, day)
        if always and closure is None:
            bounds = [(time(0), time.max)]
        else:
            bounds = sorted((p.start, p.end) for p in periods)
        for opens, closes in bounds:
            s = _local(day, opens, profile).astimezone(UTC)
            e = _local(day, closes, profile).astimezone(UTC)
            if e > start:
                yield (max(s, start), e)


def add_business_minutes(
    profile: BusinessProfile, start: datetime, minutes: float
) -> datetime | None:
    """The instant ``minutes`` of opening time after ``start`` (UTC); None when the business
    is not open that long in the next three years. 0 minutes is ``start`` itself."""
    left = timedelta(minutes=minutes)
    if left <= timedelta(0):
        return start.astimezone(UTC)
    for s, e in open_intervals(profile, start):
        if e - s >= left:
            return s + left
        left -= e - s
    return None


def business_seconds_between(profile: BusinessProfile, start: datetime, end: datetime) -> float:
    """Opening time between two instants, in seconds (negative when ``end`` is before)."""
    if end < start:
        return -business_seconds_between(profile, end, start)
    total = 0.0
    end = end.astimezone(UTC)
    for s, e in open_intervals(profile, start):
        if s >= end:
            break
        total += (min(e, end) - s).total_seconds()
    return total


# ------------------------------------------------------------------------------ policies


@dataclass(frozen=True)
class Rule:
    """One SLA rule: the targets of the tickets of a priority (and a category, when set)."""

    priority: str
    category: str | None
    first_response_minutes: int
    resolution_minutes: int
    warn_percent: int | None = None
    warn_minutes: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored and API form."""
        return {
            "priority": self.priority,
            "category": self.category,
            "first_response_minutes": self.first_response_minutes,
            "resolution_minutes": self.resolution_minutes,
            "warn_before": _warn_json(self.warn_percent, self.warn_minutes),
        }


def _warn_json(percent: int | None, minutes: int | None) -> dict[str, int] | None:
    if percent is not None:
        return {"percent": percent}
    if minutes is not None:
        return {"minutes": minutes}
    return None


@dataclass(frozen=True)
class Config:
    """A tenant's SLA configuration: ``source`` is ``default`` (never saved) or ``tenant``."""

    enabled: bool
    rules: tuple[Rule, ...]
    warn_percent: int | None = None
    warn_minutes: int | None = None
    source: Literal["default", "tenant"] = "default"
    updated_at: datetime | None = None
    updated_by: str = ""

    def as_json(self) -> dict[str, Any]:
        """The API form (``GET /v1/admin/sla``)."""
        return {
            "enabled": self.enabled,
            "warn_before": _warn_json(self.warn_percent, self.warn_minutes)
            or {"percent": DEFAULT_WARN_PERCENT},
            "policies": [r.as_json() for r in self.rules],
            "source": self.source,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


DEFAULT_CONFIG = Config(
    enabled=True,
    rules=tuple(Rule(p, None, f, r) for p, (f, r) in DEFAULT_POLICIES.items()),
)


def rule_for(config: Config, priority: str, category: str | None) -> Rule | None:
    """The rule of a ticket: its priority and category's, else its priority's (category
    unset), else none (no SLA). A disabled configuration has none."""
    if not config.enabled:
        return None
    general = None
    for rule in config.rules:
        if rule.priority != priority:
            continue
        if rule.category is not None and rule.category == category:
            return rule
        if rule.category is None:
            general = rule
    return general


def warn_after(rule: Rule, target_minutes: int, config: Config) -> float:
    """Business minutes after the start at which a target warns: ``percent`` of the target
    elapsed, or ``minutes`` before it (at the start when that is more than the target). The
    rule's own warning wins over the tenant's, which wins over :data:`DEFAULT_WARN_PERCENT`."""
    percent, minutes = rule.warn_percent, rule.warn_minutes
    if percent is None and minutes is None:
        percent, minutes = config.warn_percent, config.warn_minutes
    if percent is None and minutes is None:
        percent = DEFAULT_WARN_PERCENT
    if minutes is not None:
        return float(max(0, target_minutes - minutes))
    assert percent is not None
    return target_minutes * percent / 100


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a ``PUT /v1/admin/sla`` body into a :class:`Config`; raise
    :class:`InvalidInput` naming the field (``policies.2.category: ...``)."""

    def fail(where: str, message: str) -> InvalidInput:
        return InvalidInput(f"{where}: {message}")

    def minutes(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 525600:
            raise fail(where, f"expected whole minutes from 1 to 525600, got {value!r}")
        return value

    def warn(value: Any, where: str) -> tuple[int | None, int | None]:
        if value is None:
            return None, None
        if (
            not isinstance(value, dict)
            or len(value) != 1
            or not {"percent", "minutes"} & set(value)
        ):
            raise fail(where, 'expected {"percent": 1-99} or {"minutes": N}')
        if "percent" in value:
            p = value["percent"]
            if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 99:
                raise fail(f"{where}.percent", f"expected a whole percent from 1 to 99, got {p!r}")
            return p, None
        return None, minutes(value["minutes"], f"{where}.minutes")

    if not isinstance(data, dict):
        raise fail("body", "expected an object")
    unknown = set(data) - {"enabled", "warn_before", "policies"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field (enabled, warn_before, policies)")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"expected true or false, got {enabled!r}")
    wp, wm = warn(data.get("warn_before"), "warn_before")
    raw = data.get("policies", [])
    if not isinstance(raw, list) or len(raw) > 500:
        raise fail("policies", "expected a list of at most 500 rules")
    rules: list[Rule] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(raw):
        where = f"policies.{i}"
        if not isinstance(item, dict):
            raise fail(where, "expected an object")
        extra = set(item) - {
            "priority",
            "category",
            "first_response_minutes",
            "resolution_minutes",
            "warn_before",
        }
        if extra:
            raise fail(f"{where}.{sorted(extra)[0]}", "unknown field")
        priority = item.get("priority")
        if priority not in PRIORITIES:
            raise fail(f"{where}.priority", f"one of {', '.join(PRIORITIES)}; got {priority!r}")
        category = item.get("category")
        if category is not None and (
            not isinstance(category, str) or not 1 <= len(category.strip()) <= 100
        ):
            raise fail(f"{where}.category", "a category name of 1-100 characters, or null")
        category = category.strip() if category is not None else None
        for name in ("first_response_minutes", "resolution_minutes"):
            if name not in item:
                raise fail(f"{where}.{name}", "required")
        frt = minutes(item["first_response_minutes"], f"{where}.first_response_minutes")
        res = minutes(item["resolution_minutes"], f"{where}.resolution_minutes")
        if res < frt:
            raise fail(
                f"{where}.resolution_minutes",
                f"must not be shorter than first_response_minutes ({frt}); got {res}",
            )
        key = (priority, category)
        if key in seen:
            raise fail(where, f"a second rule for priority {priority} and category {category!r}")
        seen.add(key)
        rp, rm = warn(item.get("warn_before"), f"{where}.warn_before")
        rules.append(Rule(priority, category, frt, res, rp, rm))
    return Config(enabled, tuple(rules), wp, wm, "tenant")


async def get_config(db: Db, tenant_id: uuid.UUID) -> Config:
    """The tenant's SLA configuration: what it saved, else :data:`DEFAULT_CONFIG`."""
    async with connect(db) as conn:
        cur = await conn.execute("SELECT * FROM sla_settings WHERE tenant_id = %s", (tenant_id,))
        settings = await cur.fetchone()
        if settings is None:
            return DEFAULT_CONFIG
        cur = await conn.execute(
            "SELECT * FROM sla_policies WHERE tenant_id = %s ORDER BY"
            " array_position(ARRAY['urgent','high','normal','low'], priority),"
            " category NULLS FIRST",
            (tenant_id,),
        )
        rules = tuple(
            Rule(
                r["priority"],
                r["category"],
                r["first_response_minutes"],
                r["resolution_minutes"],
                r["warn_percent"],
                r["warn_minutes"],
            )
            for r in await cur.fetchall()
        )
    return Config(
        settings["enabled"],
        rules,
        settings["warn_percent"],
        settings["warn_minutes"],
        "tenant",
        settings["updated_at"],
        settings["updated_by"],
    )


async def save_config(
    db: Db, tenant_id: uuid.UUID, config: Config, *, by: str, now: datetime | None = None
) -> Config:
    """Replace the tenant's SLA configuration whole; return it as stored.

    Tickets already open keep the rule they were given (their snapshot); a ticket picks up
    the new rules when it is created or its priority or category changes.
    """
    at = now or datetime.now(UTC)
    async with connect(db) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO sla_settings (tenant_id, enabled, warn_percent, warn_minutes,"
            " updated_by, updated_at) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id) DO UPDATE SET enabled = EXCLUDED.enabled,"
            " warn_percent = EXCLUDED.warn_percent, warn_minutes = EXCLUDED.warn_minutes,"
            " updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
            (tenant_id, config.enabled, config.warn_percent, config.warn_minutes, by[:300], at),
        )
        await conn.execute("DELETE FROM sla_policies WHERE tenant_id = %s", (tenant_id,))
        for r in config.rules:
            await conn.execute(
                "INSERT INTO sla_policies (tenant_id, priority, category,"
                " first_response_minutes, resolution_minutes, warn_percent, warn_minutes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    tenant_id,
                    r.priority,
                    r.category,
                    r.first_response_minutes,
                    r.resolution_minutes,
                    r.warn_percent,
                    r.warn_minutes,
                ),
            )
        return await get_config(conn, tenant_id)


async def load_profile(db: Db, tenant_id: uuid.UUID) -> BusinessProfile:
    """The tenant's newest business profile (its opening hours), or the default one."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT n.name, p.profile FROM tenants n LEFT JOIN LATERAL (SELECT profile FROM"
            " tenant_profiles WHERE tenant_id = n.id ORDER BY version DESC LIMIT 1) p ON true"
            " WHERE n.id = %s",
            (tenant_id,),
        )
        row = await cur.fetchone()
    if row is None or row["profile"] is None:
        return BusinessProfile.default_for(row["name"] if row else "")
    return BusinessProfile.model_validate(row["profile"])


# ------------------------------------------------------------------------------ per ticket


def _snapshot(rule: Rule, config: Config) -> dict[str, Any]:
    return {
        **rule.as_json(),
        "first_response_warn_after": warn_after(rule, rule.first_response_minutes, config),
        "resolution_warn_after": warn_after(rule, rule.resolution_minutes, config),
        "source": config.source,
    }


def _done_at(row: dict[str, Any], target: Target) -> datetime | None:
    resolved = row.get("resolved_at") if row["status"] in ("resolved", "closed") else None
    if target == "first_response":
        # Resolving a ticket nobody had answered yet answers it (the resolution reaches the
        # customer); a reopen makes the first response pending again.
        return row.get("first_response_at") or resolved
    return resolved


def compute(
    row: dict[str, Any],
    profile: BusinessProfile,
    at: datetime,
    *,
    previous_status: str | None = None,
    config: Config | None = None,
) -> dict[str, Any]:
    """The SLA columns of a ticket after a change at ``at``: pure (no database).

    ``config`` given: the rule is chosen again (create, priority or category change); else
    the ticket's snapshot (``sla_policy``) stays. ``previous_status`` given: the status
    changed from it, so the clock may stop or run again.
    """
    out: dict[str, Any] = {}
    policy = row.get("sla_policy")
    if config is not None:
        rule = rule_for(config, row["priority"], row.get("category"))
        policy = _snapshot(rule, config) if rule else None
        out["sla_policy"] = policy
    started = row.get("sla_started_at") or row["created_at"]
    out["sla_started_at"] = started
    paused_at, paused_s = row.get("sla_paused_at"), int(row.get("sla_paused_s") or 0)
    was_stopped = (previous_status or row["status"]) in STOPPED
    if previous_status is None and row.get("sla_started_at") is None:
        was_stopped = False  # a new ticket: its clock starts now
    stopped = row["status"] in STOPPED
    if was_stopped and not stopped and paused_at is not None:
        paused_s += round(business_seconds_between(profile, paused_at, at))
        paused_at = None
    elif stopped and paused_at is None:
        paused_at = at
    out["sla_paused_at"], out["sla_paused_s"] = paused_at, paused_s
    if policy is None:
        out.update(
            first_response_due_at=None,
            first_response_warn_at=None,
            resolution_due_at=None,
            resolution_warn_at=None,
            sla_next_check_at=None,
        )
        return out
    base = paused_s / 60
    for target in TARGETS:
        minutes = policy[f"{target}_minutes"]
        out[f"{target}_due_at"] = add_business_minutes(profile, started, minutes + base)
        out[f"{target}_warn_at"] = add_business_minutes(
            profile, started, policy[f"{target}_warn_after"] + base
        )
    out["sla_next_check_at"] = None if stopped else next_check({**row, **out})
    return out


def next_check(row: dict[str, Any]) -> datetime | None:
    """The next instant the sweep has something to record for the ticket (None: nothing)."""
    pending: list[datetime] = []
    for target in TARGETS:
        if target == "first_response" and row.get("first_response_at") is not None:
            continue
        for kind, stamp in (("warned", "warn_at"), ("breached", "due_at")):
            value = row.get(f"{target}_{stamp}")
            if value is not None and not row.get(f"{target}_{kind}"):
                pending.append(value)
    return min(pending) if pending else None


_COLUMNS = (
    "sla_policy",
    "sla_started_at",
    "sla_paused_at",
    "sla_paused_s",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
    "first_response_warned",
    "first_response_breached",
    "resolution_warned",
    "resolution_breached",
    "sla_next_check_at",
)


async def refresh(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    row: dict[str, Any],
    at: datetime,
    *,
    previous_status: str | None = None,
    rechoose: bool = False,
    created: bool = False,
) -> dict[str, Any]:
    """Recompute and store the ticket's SLA columns after a change (inside the change's
    transaction); return the updated row.

    ``rechoose``: the rule is chosen again from the tenant's configuration (the ticket is
    new, or its priority or category changed). A target that was met late, or whose due
    passed while nobody swept (the clock stopping after it), gets its breach recorded now.
    """
    if row.get("sla_started_at") is None and not created:
        return row  # opened before SLAs existed (migration 0024): it has none
    if not rechoose and not created and row.get("sla_policy") is None:
        return row  # no SLA, and nothing that could give it one
    config = await get_config(conn, tenant_id) if rechoose or created else None
    profile = await load_profile(conn, tenant_id)
    values = compute(row, profile, at, previous_status=previous_status, config=config)
    merged = {**row, **values}
    events: list[tuple[Target, datetime]] = []
    if merged.get("sla_policy") is not None:
        for target in TARGETS:
            due = merged[f"{target}_due_at"]
            done = _done_at(merged, target)
            clock = merged["sla_paused_at"] or at  # a stopped clock stopped at its pause
            late = due is not None and (
                (done is not None and done > due) or (done is None and due <= clock)
            )
            if late and not merged[f"{target}_breached"]:
                merged[f"{target}_breached"] = values[f"{target}_breached"] = True
                merged[f"{target}_warned"] = values[f"{target}_warned"] = True
                events.append((target, due))
        if merged["sla_next_check_at"] is not None:
            merged["sla_next_check_at"] = values["sla_next_check_at"] = next_check(merged)
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    params = {k: Jsonb(v) if k == "sla_policy" and v is not None else v for k, v in values.items()}
    cur = await conn.execute(
        f"UPDATE tickets SET {sets} WHERE id = %(id)s AND tenant_id = %(t)s RETURNING *",
        {**params, "id": row["id"], "t": tenant_id},
    )
    after = await cur.fetchone()
    assert after is not None
    for target, due in events:
        await record(conn, tenant_id, row["id"], "breach", target, due, after["priority"], at)
    return dict(after)


async def record(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    kind: Literal["warning", "breach"],
    target: Target,
    due: datetime,
    priority: str,
    at: datetime,
) -> bool:
    """Record an ``sla.warning`` / ``sla.breach`` event once per ticket and target; return
    whether this call recorded it."""
    detail = {"target": target, "due_at": due.isoformat(), "priority": priority}
    cur = await conn.execute(
        "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail, created_at,"
        " dedupe_key) VALUES (%s, %s, %s, 'system', %s, %s, %s)"
        " ON CONFLICT (ticket_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
        (tenant_id, ticket_id, f"sla.{kind}", Jsonb(detail), at, f"sla.{kind}:{target}"),
    )
    if cur.rowcount == 1:  # staff hear of it (helpdesk.notifications), in this transaction
        await notifications.on_ticket_event(conn, tenant_id, ticket_id, f"sla.{kind}", None, detail)
    return cur.rowcount == 1


# ------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class TargetState:
    """One target of a ticket, as the API shows it."""

    due_at: datetime | None
    warn_at: datetime | None
    state: SlaState
    remaining_minutes: float | None
    """Business minutes to the due time (negative past it); frozen while the clock is
    stopped; None once met or breached by a late answer."""


def target_state(
    row: dict[str, Any], target: Target, now: datetime, profile: BusinessProfile
) -> TargetState:
    """The state of one target of a ticket with an SLA at ``now``."""
    due, warn = row[f"{target}_due_at"], row[f"{target}_warn_at"]
    done = _done_at(row, target)
    if due is None:
        return TargetState(None, warn, "ok", None)
    if done is not None:
        late = done > due or bool(row[f"{target}_breached"])
        state: SlaState = "breached" if late else "met"
        return TargetState(due, warn, state, None)
    clock = row["sla_paused_at"] if row["sla_paused_at"] is not None else now
    remaining = business_seconds_between(profile, clock, due) / 60
    if row[f"{target}_breached"] or due <= clock:
        state = "breached"
    elif row["sla_paused_at"] is not None:
        state = "paused"
    elif warn is not None and warn <= now:
        state = "warning"
    else:
        state = "ok"
    return TargetState(due, warn, state, round(remaining, 1))


def ticket_state(
    row: dict[str, Any], now: datetime, profile: BusinessProfile
) -> dict[str, Any] | None:
    """A ticket's SLA as the API shows it (None: no SLA applies): the overall ``state``
    (breached if a target is; else paused; else warning; else met when both are; else ok),
    ``paused``, the rule, and each target's due time, state and remaining business minutes."""
    if row.get("sla_policy") is None:
        return None
    parts = {t: target_state(row, t, now, profile) for t in TARGETS}
    states = {p.state for p in parts.values()}
    overall: SlaState
    if "breached" in states:
        overall = "breached"
    elif "paused" in states:
        overall = "paused"
    elif "warning" in states:
        overall = "warning"
    elif states == {"met"}:
        overall = "met"
    else:
        overall = "ok"
    policy = row["sla_policy"]
    return {
        "state": overall,
        "paused": row.get("sla_paused_at") is not None and row["status"] == "waiting_customer",
        "policy": {k: policy.get(k) for k in ("priority", "category", "source")},
        **{
            t: {
                "target_minutes": policy[f"{t}_minutes"],
                "due_at": p.due_at,
                "warn_at": p.warn_at,
                "state": p.state,
                "remaining_minutes": p.remaining_minutes,
                "breached": bool(row.get(f"{t}_breached")) or p.state == "breached",
            }
            for t, p in parts.items()
        },
    }


# SQL of the list filter (``sla=warning|breached``): the same states as :func:`ticket_state`
# for open tickets, on the stored columns and the clock %(now)s.
BREACHED_SQL = """(sla_policy IS NOT NULL AND (first_response_breached OR resolution_breached
    OR (sla_paused_at IS NULL AND status NOT IN ('resolved', 'closed')
        AND ((first_response_at IS NULL AND first_response_due_at <= %(now)s)
             OR resolution_due_at <= %(now)s))))"""
WARNING_SQL = """(sla_policy IS NOT NULL AND sla_paused_at IS NULL
    AND status NOT IN ('resolved', 'closed')
    AND NOT first_response_breached AND NOT resolution_breached
    AND (first_response_at IS NOT NULL OR first_response_due_at > %(now)s)
    AND resolution_due_at > %(now)s
    AND ((first_response_at IS NULL AND first_response_warn_at <= %(now)s)
         OR resolution_warn_at <= %(now)s))"""
SLA_FILTERS = {"warning": WARNING_SQL, "breached": BREACHED_SQL}


# ------------------------------------------------------------------------------ the sweep

_SWEEP = """
WITH due AS (
    SELECT id, tenant_id, priority, first_response_at, first_response_warn_at,
           first_response_due_at, resolution_warn_at, resolution_due_at,
           first_response_warned, first_response_breached, resolution_warned,
           resolution_breached
    FROM tickets
    WHERE sla_next_check_at <= %(now)s AND sla_next_check_at IS NOT NULL
    ORDER BY sla_next_check_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
fired AS (
    SELECT d.id, d.tenant_id, d.priority, k.kind, k.target, k.due_at, k.fires_at
    FROM due d CROSS JOIN LATERAL (VALUES
        ('warning', 'first_response', d.first_response_warn_at, d.first_response_due_at,
         d.first_response_warned OR d.first_response_at IS NOT NULL),
        ('breach', 'first_response', d.first_response_due_at, d.first_response_due_at,
         d.first_response_breached OR d.first_response_at IS NOT NULL),
        ('warning', 'resolution', d.resolution_warn_at, d.resolution_due_at,
         d.resolution_warned),
        ('breach', 'resolution', d.resolution_due_at, d.resolution_due_at,
         d.resolution_breached)
    ) AS k(kind, target, fires_at, due_at, done)
    -- A warning whose breach is due too is not worth sending: the breach says it.
    WHERE NOT k.done AND k.fires_at <= %(now)s
      AND NOT (k.kind = 'warning' AND k.due_at <= %(now)s)
),
recorded AS (
    INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail, created_at,
                               dedupe_key)
    SELECT tenant_id, id, 'sla.' || kind, 'system',
           jsonb_build_object('target', target, 'due_at', due_at, 'priority', priority,
                              'at', fires_at),
           %(now)s, 'sla.' || kind || ':' || target
    FROM fired
    ON CONFLICT (ticket_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING tenant_id, ticket_id, kind, detail
),
flagged AS (
    UPDATE tickets t SET
        first_response_warned = t.first_response_warned
            OR t.first_response_warn_at <= %(now)s,
        first_response_breached = t.first_response_breached
            OR (t.first_response_at IS NULL AND t.first_response_due_at <= %(now)s),
        resolution_warned = t.resolution_warned OR t.resolution_warn_at <= %(now)s,
        resolution_breached = t.resolution_breached OR t.resolution_due_at <= %(now)s,
        sla_next_check_at = LEAST(
            CASE WHEN t.first_response_at IS NULL AND t.first_response_warn_at > %(now)s
                 AND NOT t.first_response_warned THEN t.first_response_warn_at END,
            CASE WHEN t.first_response_at IS NULL AND t.first_response_due_at > %(now)s
                 AND NOT t.first_response_breached THEN t.first_response_due_at END,
            CASE WHEN t.resolution_warn_at > %(now)s AND NOT t.resolution_warned
                 THEN t.resolution_warn_at END,
            CASE WHEN t.resolution_due_at > %(now)s AND NOT t.resolution_breached
                 THEN t.resolution_due_at END)
    FROM due d WHERE t.id = d.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM recorded WHERE kind = 'sla.warning') AS warnings,
       (SELECT count(*) FROM recorded WHERE kind = 'sla.breach') AS breaches,
       (SELECT count(*) FROM flagged) AS checked,
       (SELECT coalesce(array_agg(ARRAY[tenant_id::text, ticket_id::text, kind, detail::text]),
                        '{}') FROM recorded
        WHERE (detail->>'at')::timestamptz > %(now)s - %(window)s) AS events
"""


NOTIFY_WINDOW = timedelta(hours=1)
"""An event whose instant passed longer ago than this when it is recorded (the workers were
down) is recorded without a notification: after an outage the desk gets the last hour's, not
a flood of stale ones; the console shows every ticket's state anyway."""

SWEEP_BATCH = 10_000
"""Tickets one sweep transaction takes at most: a backlog (workers down for hours) is worked
through in transactions of this size, so no agent's edit waits long on a row it locked."""


SWEEP_WORKERS = 3
"""Batches a sweep over a pool runs at once, each on a connection of its own: a backlog's
batches lock disjoint tickets (``SKIP LOCKED``), so they work side by side; the catch-up
after days without a sweep is CPU-bound per batch, and this spreads it over the server's
cores."""


async def sweep(
    db: Db,
    now: datetime | None = None,
    *,
    batch: int = SWEEP_BATCH,
    workers: int = SWEEP_WORKERS,
) -> dict[str, int]:
    """Record every ``sla.warning`` and ``sla.breach`` whose instant has come; return the
    counts (``warnings``, ``breaches``, ``checked`` tickets).

    For every tenant when ``db`` is a pool (the owner; row-level security does not restrict
    it), for one tenant inside its scope. Each statement reads only the tickets whose
    ``sla_next_check_at`` has come (an index range, ``batch`` at most, each batch its own
    transaction), and each event has a unique dedupe key per ticket and target, so sweeps
    that overlap record every event once: rows one sweep has locked the other skips, and an
    insert that meets the other's key does nothing. Over a pool, ``workers`` batches run at
    once (that same guarantee is what lets them); on one connection, one after the other.
    """
    at = now or datetime.now(UTC)
    total = {"warnings": 0, "breaches": 0, "checked": 0}

    async def worker() -> None:
        while True:
            async with connect(db) as conn, conn.transaction():
                cur = await conn.execute(
                    _SWEEP, {"now": at, "batch": batch, "window": NOTIFY_WINDOW}
                )
                row = await cur.fetchone()
                assert row is not None
                # Staff hear of each event recorded (helpdesk.notifications), in its
                # transaction: the events this batch recorded only, never a pass over the
                # tickets.
                for tenant, ticket, kind, detail in row["events"]:
                    await notifications.on_ticket_event(
                        conn, uuid.UUID(tenant), uuid.UUID(ticket), kind, None, json.loads(detail)
                    )
            for k in total:
                total[k] += int(row[k])
            # Fewer than a batch: nothing due is left that another worker has not locked
            # (and a swept ticket's next check is always after ``at``).
            if int(row["checked"]) < batch:
                return

    parallel = workers if isinstance(db, AsyncConnectionPool) else 1
    async with asyncio.TaskGroup() as group:  # one failing stops the others
        for _ in range(max(1, parallel)):
            group.create_task(worker())
    return total


# ------------------------------------------------------------------------------ compliance

COMPLIANCE_SQL = """
WITH t AS (
    SELECT priority, first_response_due_at, resolution_due_at, first_response_breached,
           resolution_breached, sla_paused_at,
           status IN ('resolved', 'closed') AS done,
           COALESCE(first_response_at,
                    CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END) AS answered,
           resolved_at
    FROM tickets
    WHERE tenant_id = %(t)s AND created_at >= %(start)s AND created_at < %(end)s
      AND sla_policy IS NOT NULL
      AND (%(team)s::uuid IS NULL OR team_id = %(team)s::uuid)
)
SELECT priority,
       count(*) AS tickets,
       count(*) FILTER (WHERE NOT first_response_breached
                        AND answered <= first_response_due_at) AS first_response_met,
       count(*) FILTER (WHERE first_response_breached OR answered > first_response_due_at
                        OR (answered IS NULL AND sla_paused_at IS NULL
                            AND first_response_due_at <= %(as_of)s)) AS first_response_breached,
       count(*) FILTER (WHERE NOT resolution_breached AND done
                        AND resolved_at <= resolution_due_at) AS resolution_met,
       count(*) FILTER (WHERE resolution_breached OR (done AND resolved_at > resolution_due_at)
                        OR (NOT done AND sla_paused_at IS NULL
                            AND resolution_due_at <= %(as_of)s)) AS resolution_breached
FROM t
GROUP BY priority
"""


def _share(met: int, breached: int) -> float | None:
    return round(met / (met + breached), 4) if met + breached else None


async def compliance(
    db: Db,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime,
    team: uuid.UUID | None = None,
) -> dict[str, Any]:
    """SLA compliance of the tickets created in ``[start, end)`` that had an SLA (of one team's
    tickets with ``team``), whole and by priority: per target the tickets that met it,
    breached it, and are still pending (not answered / resolved and not yet due), and
    ``rate`` = met / (met + breached) (None when nothing is decided yet). The query is shown in
    docs/metrics.md."""
    params = {"t": tenant_id, "start": start, "end": end, "as_of": as_of, "team": team}
    async with connect(db) as conn:
        cur = await conn.execute(COMPLIANCE_SQL, params)
        rows = await cur.fetchall()

    def figures(tickets: int, values: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {"tickets": tickets}
        for target in TARGETS:
            met, breached = values[f"{target}_met"], values[f"{target}_breached"]
            out[target] = {
                "met": met,
                "breached": breached,
                "pending": tickets - met - breached,
                "rate": _share(met, breached),
            }
        return out

    keys = [f"{t}_{k}" for t in TARGETS for k in ("met", "breached")]
    by = {r["priority"]: figures(int(r["tickets"]), {k: int(r[k]) for k in keys}) for r in rows}
    total = {k: sum(int(r[k]) for r in rows) for k in keys}
    return {
        "whole": figures(sum(int(r["tickets"]) for r in rows), total),
        "by_priority": {p: by[p] for p in ("urgent", "high", "normal", "low") if p in by},
    }
