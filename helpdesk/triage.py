"""Triage: a tenant's ordered rules, and the AI's category / priority suggestion.

A rule has ``conditions`` (all given must hold; a list matches any of its values) on
``category``, ``impact``, ``priority``, ``channel``, ``intent``, ``keywords`` (whole words of
subject or description, any case), ``contact_id`` and ``organization_id``, and ``actions``
that set ``priority``, ``team_id``, ``assignee_id``, add ``add_tags``, or take the AI's
suggestion (``apply_suggestion``: the least confidence to take it at).

:func:`apply_rules` runs inside the transaction of :func:`helpdesk.tickets.create_ticket` and
:func:`helpdesk.tickets.update_ticket` (and a hand-off's ticket): on create every rule, on a
change the rules whose conditions read a changed field. Every rule is matched against the
ticket as that change left it (a snapshot), so one rule's changes never trigger another rule
nor itself: no loops. Rules are applied in order; a field set by an earlier rule stays (the
first rule wins), tags add up. Each application that changed something is a ``triage`` event
on the timeline naming the rule and what it changed.

:func:`suggest` is offline: the words of the ticket and its conversation's intent give a
category of the tenant's list and a priority, with a confidence. It is stored on the ticket,
never applied unless an agent or a rule does. See docs/tickets.md.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk import notifications
from helpdesk.audit import Actor
from helpdesk.errors import InvalidInput
from helpdesk.tenancy import Db, connect
from helpdesk.text_policy import check_text

PRIORITIES = ("low", "normal", "high", "urgent")
IMPACTS = ("none", "single_user", "several_users", "all_users", "site_down")
CHANNELS = ("web", "email", "api", "phone", "agent")

MAX_RULES = 100
MAX_VALUES = 50

CONDITION_FIELDS: dict[str, tuple[str, ...]] = {
    "category": ("category",),
    "impact": ("impact",),
    "priority": ("priority",),
    "channel": ("channel",),
    "intent": ("intents",),
    "keywords": ("subject", "description"),
    "contact_id": ("contact_id",),
    "organization_id": ("organization_id",),
}
"""Condition -> the ticket fields it reads (a change of one of them re-runs the rule)."""

ACTIONS = ("priority", "team_id", "assignee_id", "add_tags", "apply_suggestion")


# ------------------------------------------------------------------------------ validation


def _where(index: int, part: str, key: str) -> str:
    return f"rules[{index}].{part}.{key}"


def _strings(value: Any, where: str, *, allowed: tuple[str, ...] | None = None) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where}: expected a non-empty list of strings")
    if len(value) > MAX_VALUES:
        raise InvalidInput(f"{where}: at most {MAX_VALUES} values")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 100:
            raise InvalidInput(f"{where}: each value is a string of 1 to 100 characters")
        check_text(item, where)
        item = item.strip()
        if allowed is not None and item not in allowed:
            raise InvalidInput(f"{where}: expected one of {', '.join(allowed)}; got {item!r}")
        if item not in out:
            out.append(item)
    return out


def _ids(value: Any, where: str) -> list[str]:
    out = []
    for item in _strings(value, where):
        try:
            out.append(str(uuid.UUID(item)))
        except ValueError as exc:
            raise InvalidInput(f"{where}: {item!r} is not a UUID") from exc
    return out


async def _check_id(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, table: str, value: str, where: str
) -> None:
    cur = await conn.execute(
        f"SELECT 1 FROM {table} WHERE id = %s AND tenant_id = %s", (value, tenant_id)
    )
    if await cur.fetchone() is None:
        raise InvalidInput(f"{where}: no {table[:-1]} {value} for this tenant")


async def validate_rules(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    rules: list[dict[str, Any]],
    categories: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The rules, checked and normalised (:class:`InvalidInput` naming the field otherwise):
    ``[{"name", "enabled", "conditions", "actions"}]``. Ids must be the tenant's."""
    if not isinstance(rules, list):
        raise InvalidInput("rules: expected a list")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"rules: at most {MAX_RULES}")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise InvalidInput(f"rules[{i}]: expected an object")
        unknown = set(rule) - {"id", "name", "enabled", "conditions", "actions"}
        if unknown:
            raise InvalidInput(f"rules[{i}].{sorted(unknown)[0]}: unknown field")
        name = rule.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
            raise InvalidInput(f"rules[{i}].name: expected 1 to 100 characters")
        check_text(name, f"rules[{i}].name")
        name = name.strip()
        if name.lower() in names:
            raise InvalidInput(f"rules[{i}].name: {name!r} is used by another rule")
        names.add(name.lower())
        enabled = rule.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidInput(f"rules[{i}].enabled: expected true or false")
        conditions = await _validate_conditions(
            conn, tenant_id, i, rule.get("conditions") or {}, categories
        )
        actions = await _validate_actions(conn, tenant_id, i, rule.get("actions"), categories)
        out.append({"name": name, "enabled": enabled, "conditions": conditions, "actions": actions})
    return out


async def _validate_conditions(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    i: int,
    conditions: Any,
    categories: dict[str, list[str]] | None = None,
) -> dict[str, list[str]]:
    if not isinstance(conditions, dict):
        raise InvalidInput(f"rules[{i}].conditions: expected an object")
    out: dict[str, list[str]] = {}
    for key, value in conditions.items():
        where = _where(i, "conditions", key)
        if key not in CONDITION_FIELDS:
            raise InvalidInput(f"{where}: unknown condition; one of {', '.join(CONDITION_FIELDS)}")
        if value is None:
            continue
        if key == "impact":
            out[key] = _strings(value, where, allowed=IMPACTS)
        elif key == "priority":
            out[key] = _strings(value, where, allowed=PRIORITIES)
        elif key == "channel":
            out[key] = _strings(value, where, allowed=CHANNELS)
        elif key in ("contact_id", "organization_id"):
            out[key] = _ids(value, where)
            table = "contacts" if key == "contact_id" else "organizations"
            for v in out[key]:
                await _check_id(conn, tenant_id, table, v, where)
        else:
            out[key] = _strings(value, where)
        if key == "category" and categories:
            known = {c.lower() for c in categories}
            for v in out[key]:
                if v.lower() not in known:
                    raise InvalidInput(
                        f"{where}: {v!r} is not one of this business's categories:"
                        f" {', '.join(sorted(categories))}"
                    )
    return out


async def _validate_actions(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    i: int,
    actions: Any,
    categories: dict[str, list[str]] | None,
) -> dict[str, Any]:
    if not isinstance(actions, dict) or not actions:
        raise InvalidInput(f"rules[{i}].actions: expected at least one action")
    out: dict[str, Any] = {}
    for key, value in actions.items():
        where = _where(i, "actions", key)
        if key not in ACTIONS:
            raise InvalidInput(f"{where}: unknown action; one of {', '.join(ACTIONS)}")
        if value is None:
            continue
        if key == "priority":
            if value not in PRIORITIES:
                raise InvalidInput(f"{where}: expected one of {', '.join(PRIORITIES)}")
            out[key] = value
        elif key in ("team_id", "assignee_id"):
            if not isinstance(value, str):
                raise InvalidInput(f"{where}: expected an id")
            [one] = _ids([value], where)
            table = "teams" if key == "team_id" else "users"
            await _check_id(conn, tenant_id, table, one, where)
            out[key] = one
        elif key == "add_tags":
            out[key] = [t.lower() for t in _strings(value, where)]
            if any(len(t) > 50 for t in out[key]):
                raise InvalidInput(f"{where}: a tag has at most 50 characters")
        elif key == "apply_suggestion":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidInput(f"{where}: expected the least confidence, 0 to 1")
            out[key] = float(value)
    if not out:
        raise InvalidInput(f"rules[{i}].actions: expected at least one action")
    return out


# ------------------------------------------------------------------------------ storing


async def list_rules(db: Db, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's rules in order."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM triage_rules WHERE tenant_id = %s ORDER BY position", (tenant_id,)
        )
        return [dict(r) for r in await cur.fetchall()]


async def replace_rules(
    db: Db,
    tenant_id: uuid.UUID,
    rules: list[dict[str, Any]],
    *,
    categories: dict[str, list[str]] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Make ``rules`` (validated by :func:`validate_rules`) the tenant's rules, in this order;
    return them stored. A rule sent with the ``id`` of one of the tenant's rules keeps it."""
    async with connect(db) as conn, conn.transaction():
        clean = await validate_rules(conn, tenant_id, rules, categories)
        # One replacement of a tenant's list at a time (two at once would both insert
        # position 0 when the tenant had no rules to lock).
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('triage_rules:' || %s::text, 0))",
            (tenant_id,),
        )
        cur = await conn.execute(
            "SELECT id, created_at FROM triage_rules WHERE tenant_id = %s FOR UPDATE",
            (tenant_id,),
        )
        existing = {r["id"]: r["created_at"] for r in await cur.fetchall()}
        await conn.execute("DELETE FROM triage_rules WHERE tenant_id = %s", (tenant_id,))
        seen: set[uuid.UUID] = set()
        for position, (raw, rule) in enumerate(zip(rules, clean, strict=True)):
            rid = _keep_id(raw.get("id"), existing, seen)
            await conn.execute(
                "INSERT INTO triage_rules (id, tenant_id, position, name, enabled, conditions,"
                " actions, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, COALESCE(%s, now()), COALESCE(%s, now()))",
                (
                    rid,
                    tenant_id,
                    position,
                    rule["name"],
                    rule["enabled"],
                    Jsonb(rule["conditions"]),
                    Jsonb(rule["actions"]),
                    existing.get(rid, now),
                    now,
                ),
            )
        return await list_rules(conn, tenant_id)


def _keep_id(raw: Any, existing: dict[uuid.UUID, Any], seen: set[uuid.UUID]) -> uuid.UUID:
    try:
        rid = uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        rid = None
    if rid is None or rid not in existing or rid in seen:
        rid = uuid.uuid4()
    seen.add(rid)
    return rid


# ------------------------------------------------------------------------------ matching


def _words(text: str) -> str:
    return " ".join(text.split())


def keyword_match(keyword: str, text: str) -> bool:
    """Whether ``keyword`` (a word or phrase) is in ``text`` as whole words, any case."""
    phrase = r"\s+".join(re.escape(w) for w in keyword.split())
    if not phrase:
        return False
    return re.search(rf"(?<!\w){phrase}(?!\w)", text, re.IGNORECASE) is not None


def matches(conditions: dict[str, list[str]], ticket: dict[str, Any]) -> bool:
    """Whether the ticket meets every condition (a list: any of its values)."""
    for key, values in conditions.items():
        if key == "keywords":
            text = f"{ticket.get('subject') or ''}\n{ticket.get('description') or ''}"
            if not any(keyword_match(k, text) for k in values):
                return False
        elif key == "intent":
            have = {i.lower() for i in ticket.get("intents") or []}
            if not have & {v.lower() for v in values}:
                return False
        elif key == "category":
            category = (ticket.get("category") or "").lower()
            if category not in {v.lower() for v in values}:
                return False
        else:
            value = ticket.get(key)
            if value is None or str(value) not in values:
                return False
    return True


def reads(conditions: dict[str, list[str]]) -> set[str]:
    """The ticket fields a rule's conditions read."""
    return {f for key in conditions for f in CONDITION_FIELDS[key]}


@dataclass(frozen=True)
class Applied:
    """One rule's application: its id and name and what it changed (field -> before, after)."""

    rule_id: uuid.UUID
    rule_name: str
    changes: dict[str, tuple[Any, Any]]


def plan(
    rules: list[dict[str, Any]], ticket: dict[str, Any], changed: set[str] | None
) -> tuple[dict[str, Any], list[Applied]]:
    """What the rules do to ``ticket`` after a change of ``changed`` (None: it was created):
    the new values of the fields, and each application. Pure: nothing is written."""
    values: dict[str, Any] = {}
    set_by: set[str] = set()
    applied: list[Applied] = []
    for rule in rules:
        if not rule.get("enabled", True):
            continue
        conditions = rule["conditions"] or {}
        if changed is not None and not reads(conditions) & changed:
            continue  # this change touched nothing the rule reads
        if not matches(conditions, ticket):
            continue
        changes: dict[str, tuple[Any, Any]] = {}
        actions = rule["actions"] or {}
        targets: dict[str, Any] = {}
        for field in ("priority", "team_id", "assignee_id"):
            if actions.get(field) is not None:
                targets[field] = actions[field]
        floor = actions.get("apply_suggestion")
        if floor is not None and (ticket.get("suggestion_confidence") or 0) >= floor:
            if ticket.get("suggested_category"):
                targets.setdefault("category", ticket["suggested_category"])
            if ticket.get("suggested_priority"):
                targets.setdefault("priority", ticket["suggested_priority"])
        for field, target in targets.items():
            if field in set_by:
                continue  # an earlier rule set it: the first rule wins
            current = values.get(field, ticket.get(field))
            if field in ("team_id", "assignee_id"):
                target = uuid.UUID(str(target))
            if current != target:
                changes[field] = (current, target)
                values[field] = target
                set_by.add(field)
        if actions.get("add_tags"):
            tags = list(values.get("tags", ticket.get("tags") or []))
            added = [t for t in actions["add_tags"] if t not in tags]
            if added:
                changes["tags"] = (tags, tags + added)
                values["tags"] = tags + added
        if changes:
            applied.append(Applied(rule["id"], rule["name"], changes))
    return values, applied


async def ticket_intents(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, ticket: dict[str, Any]
) -> list[str]:
    """The intents a ticket carries: its hand-off's, and its conversation's last classified
    customer message's."""
    out = list(ticket.get("intents") or [])
    if ticket.get("conversation_id") is not None:
        cur = await conn.execute(
            "SELECT intent FROM messages WHERE tenant_id = %s AND conversation_id = %s"
            " AND sender = 'customer' AND intent IS NOT NULL ORDER BY created_at DESC LIMIT 1",
            (tenant_id, ticket["conversation_id"]),
        )
        row = await cur.fetchone()
        if row is not None and row["intent"] not in out:
            out.append(row["intent"])
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


async def apply_rules(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket: dict[str, Any],
    changed: set[str] | None,
    at: datetime,
) -> dict[str, Any]:
    """Apply the tenant's rules to ``ticket`` (just created when ``changed`` is None, else
    just changed in those fields), inside the caller's transaction; record a ``triage`` event
    per application; return the ticket row as it is now."""
    cur = await conn.execute(
        "SELECT * FROM triage_rules WHERE tenant_id = %s AND enabled ORDER BY position",
        (tenant_id,),
    )
    rules = [dict(r) for r in await cur.fetchall()]
    if not rules:
        return ticket
    needs_intent = any("intent" in (r["conditions"] or {}) for r in rules)
    snapshot = dict(ticket)
    if needs_intent:
        snapshot["intents"] = await ticket_intents(conn, tenant_id, ticket)
    values, applied = plan(rules, snapshot, changed)
    for field, table in (("team_id", "teams"), ("assignee_id", "users")):
        if values.get(field) is None:
            continue
        cur = await conn.execute(
            f"SELECT 1 FROM {table} WHERE id = %s AND tenant_id = %s", (values[field], tenant_id)
        )
        if await cur.fetchone() is None:  # deleted since the rule was saved: skip that action
            del values[field]
            applied = [
                Applied(a.rule_id, a.rule_name, {k: v for k, v in a.changes.items() if k != field})
                for a in applied
            ]
    applied = [a for a in applied if a.changes]
    if not values:
        return ticket
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    cur = await conn.execute(
        f"UPDATE tickets SET {sets}, updated_at = %(at)s"
        " WHERE id = %(id)s AND tenant_id = %(t)s RETURNING *",
        {**values, "at": at, "id": ticket["id"], "t": tenant_id},
    )
    after = await cur.fetchone()
    assert after is not None
    for a in applied:
        detail = {
            "rule_id": str(a.rule_id),
            "rule_name": a.rule_name,
            "changes": {
                k: {"before": _jsonable(b), "after": _jsonable(v)}
                for k, (b, v) in a.changes.items()
            },
        }
        await conn.execute(
            "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail,"
            " created_at) VALUES (%s, %s, 'triage', %s, %s, %s)",
            (tenant_id, ticket["id"], f"rule: {a.rule_name}"[:300], Jsonb(detail), at),
        )
        if "assignee_id" in a.changes:
            before, to = a.changes["assignee_id"]
            await record_assignment(
                conn, tenant_id, ticket["id"], before, to, None, "rule", at, rule=a.rule_name
            )
        await notify_changes(conn, tenant_id, ticket["id"], None, a.changes)
    return dict(after)


async def notify_changes(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    actor: Actor | None,
    changes: dict[str, tuple[Any, Any]],
) -> None:
    """Tell staff about a change made outside :func:`helpdesk.tickets.update_ticket` (a rule,
    an assignment) as its ``updated`` event would (urgent now, assigned to you)."""
    await notifications.on_ticket_event(
        conn,
        tenant_id,
        ticket_id,
        "updated",
        actor,
        {
            "before": {k: _jsonable(b) for k, (b, _) in changes.items()},
            "after": {k: _jsonable(v) for k, (_, v) in changes.items()},
        },
    )


async def record_assignment(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    before: Any,
    to: Any,
    actor: Actor | None,
    mode: str,
    at: datetime,
    **extra: Any,
) -> None:
    """An ``assigned`` event on the timeline: from, to, by, mode (the reassignment history)."""
    detail = {
        "from": _jsonable(before),
        "to": _jsonable(to),
        "by": actor.name if actor else "system",
        "mode": mode,
        **{k: _jsonable(v) for k, v in extra.items()},
    }
    await conn.execute(
        "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, actor_user_id,"
        " detail, created_at) VALUES (%s, %s, 'assigned', %s, %s, %s, %s)",
        (
            tenant_id,
            ticket_id,
            (actor.name if actor else "system")[:300],
            actor.user_id if actor else None,
            Jsonb(detail),
            at,
        ),
    )


# ------------------------------------------------------------------------------ suggestion

_URGENT = (
    "urgent",
    "asap",
    "emergency",
    "immediately",
    "right now",
    "leak",
    "leaking",
    "flood",
    "flooding",
    "no heat",
    "no heating",
    "no hot water",
    "gas smell",
    "smell gas",
    "smell of gas",
    "site down",
    "site is down",
    "outage",
    "down for everyone",
    "fire",
    "security breach",
)
_HIGH = (
    "as soon as possible",
    "not working",
    "doesn't work",
    "does not work",
    "broken",
    "can't log in",
    "cannot log in",
    "error",
    "failed",
    "failing",
    "crash",
    "crashes",
    "stopped",
    "today",
)
_LOW = (
    "no rush",
    "when you have time",
    "whenever",
    "just wondering",
    "feature request",
    "suggestion",
    "curious",
)
_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "billing": ("invoice", "charge", "charged", "refund", "payment", "bill", "price", "fee"),
    "outage": ("down", "outage", "not loading", "unavailable", "timeout", "time out"),
    "account": ("password", "log in", "login", "sign in", "account", "username"),
    "shipping": ("delivery", "shipping", "parcel", "package", "tracking", "shipped"),
    "technical": ("error", "bug", "crash", "broken", "not working"),
    "heating": ("boiler", "heating", "radiator", "no heat", "thermostat"),
    "plumbing": ("leak", "leaking", "pipe", "drain", "toilet", "tap"),
}
"""Words that point at common categories, used only when the tenant's list has the category."""


@dataclass(frozen=True)
class Suggestion:
    """The AI's guess for a new ticket."""

    category: str | None
    priority: str
    confidence: float


def _hits(words: tuple[str, ...] | list[str], text: str) -> int:
    return sum(1 for w in words if keyword_match(w, text))


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[\s_\-/]+", name) if len(t) > 2]


def suggest(
    subject: str,
    description: str,
    categories: dict[str, list[str]] | None,
    intents: list[str] | None = None,
) -> Suggestion:
    """Suggest a category of ``categories`` (None without a list or a clue) and a priority
    for a ticket, with a confidence 0-1 (the mean of the category's and the priority's).

    Priority: urgency words ("urgent", "asap", "leak", "no heat"...) -> urgent, trouble words
    ("not working", "error"...) -> high, "no rush" words -> low, else normal. Category: the
    intent naming a category (``billing_question`` -> ``billing``) counts 2, each word of the
    category's name, its sub-categories' and the common words of that category 1; the best
    wins, its confidence shrinking with the runner-up's score.
    """
    text = f"{subject}\n{description}"
    if _hits(_URGENT, text):
        priority, p_conf = "urgent", 0.85
    elif (n := _hits(_HIGH, text)) > 0:
        priority, p_conf = "high", min(0.8, 0.6 + 0.1 * n)
    elif _hits(_LOW, text):
        priority, p_conf = "low", 0.6
    else:
        priority, p_conf = "normal", 0.5
    category, c_conf = None, None
    if categories:
        intent_tokens = {t.lower() for i in intents or [] for t in _tokens(i)}
        scores: dict[str, int] = {}
        for name, subs in categories.items():
            score = 0
            own = _tokens(name)
            if intent_tokens & {t.lower() for t in own}:
                score += 2
            score += _hits([name.replace("_", " "), *own, *subs], text)
            score += _hits(_CATEGORY_WORDS.get(name.lower(), ()), text)
            if score:
                scores[name] = score
        if scores:
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
            best, top = ranked[0]
            runner = ranked[1][1] if len(ranked) > 1 else 0
            category = best
            c_conf = min(0.95, 0.5 + 0.15 * top) * top / (top + runner)
    parts = [p_conf] + ([c_conf] if c_conf is not None else [])
    return Suggestion(category, priority, round(sum(parts) / len(parts), 3))
