"""Tickets: the help desk's unit of work, with or without a conversation.

A ticket is opened by a hand-off (:func:`open_or_update_ticket`), by an agent or the API
(:func:`create_ticket`), and by a customer writing again after their ticket was closed
(:func:`on_customer_message`). Its status follows one table, :data:`TRANSITIONS`; every other
move is refused with :class:`InvalidTransition` (409 ``invalid_transition``) naming the moves
the ticket may make. Resolving needs a resolution (:data:`RESOLUTION_TYPES`); a customer
message on a resolved ticket reopens it, on a closed one opens a new ticket linked to the old
(``parent_ticket_id``); :func:`close_stale` closes resolved tickets the customer left alone
for the tenant's ``auto_close_days``. Everything that happens to a ticket is a row of
``ticket_events`` (the timeline); staff actions also go to the audit log. See docs/tickets.md.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from helpdesk import assignment, audit, event_log, notifications, sla, triage
from helpdesk.audit import Actor
from helpdesk.errors import Conflict, DeskError, InvalidInput, NotFound
from helpdesk.sla import SLA_FILTERS
from helpdesk.tenancy import Db, connect

TicketStatus = Literal[
    "new",
    "triage",
    "waiting_customer",
    "waiting_internal",
    "in_progress",
    "pending_release",
    "resolved",
    "closed",
]
Priority = Literal["low", "normal", "high", "urgent"]
Impact = Literal["none", "single_user", "several_users", "all_users", "site_down"]
TicketChannel = Literal["web", "email", "api", "phone", "agent"]
ResolutionType = Literal["answered_question", "workaround", "permanent_fix", "duplicate", "invalid"]

STATUSES: tuple[TicketStatus, ...] = get_args(TicketStatus)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
RESOLUTION_TYPES: tuple[ResolutionType, ...] = get_args(ResolutionType)
OPEN_STATUSES: frozenset[str] = frozenset(STATUSES) - {"resolved", "closed"}

TRANSITIONS: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    "new": ("triage", "in_progress", "resolved"),
    "triage": ("in_progress", "waiting_customer", "waiting_internal", "resolved"),
    "in_progress": ("waiting_customer", "waiting_internal", "pending_release", "resolved"),
    "waiting_customer": ("in_progress", "waiting_internal", "resolved"),
    "waiting_internal": ("in_progress", "waiting_customer", "pending_release", "resolved"),
    "pending_release": ("in_progress", "resolved"),
    "resolved": ("in_progress", "closed"),
    "closed": (),
}
"""The lifecycle: status -> the statuses it may move to. The one place moves are decided.

``new -> triage -> in_progress | waiting_customer | waiting_internal -> pending_release ->
resolved -> closed``, plus: an agent may pick a new ticket up at once (``new -> in_progress``);
any open ticket may be resolved (answered, a duplicate, invalid); ``resolved -> in_progress``
is the reopen (by an agent, or by the customer writing again); ``closed`` is final: a customer
coming back gets a new ticket linked to the closed one."""

REOPEN_STATUS: TicketStatus = "in_progress"
"""Where a reopened ticket goes (``resolved -> in_progress`` in :data:`TRANSITIONS`)."""

AUTO_CLOSE_DAYS_DEFAULT = 7
"""Days a resolved ticket waits for the customer before :func:`close_stale` closes it, unless
the tenant's policy sets ``auto_close_days``."""

EDITABLE_FIELDS = (
    "subject",
    "description",
    "priority",
    "impact",
    "channel",
    "category",
    "sub_category",
    "tags",
    "custom_fields",
    "contact_id",
    "organization_id",
    "assignee_id",
    "team_id",
    "parent_ticket_id",
    "ai_confidence",
)
"""Fields :func:`update_ticket` changes (status moves go through :func:`transition`)."""

_REFERENCES = {
    "contact_id": "contacts",
    "organization_id": "organizations",
    "assignee_id": "users",
    "team_id": "teams",
    "parent_ticket_id": "tickets",
    "article_id": "kb_articles",
    "conversation_id": "conversations",
}
_JSON_FIELDS = frozenset({"custom_fields"})


class InvalidTransition(DeskError):
    """A status move the lifecycle table does not allow (409 ``invalid_transition``)."""

    code = "invalid_transition"
    status = 409


def allowed_moves(status: str) -> tuple[TicketStatus, ...]:
    """The statuses a ticket in ``status`` may move to."""
    return TRANSITIONS.get(status, ())  # type: ignore[call-overload]


def check_transition(current: str, to: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> to`` is in :data:`TRANSITIONS`;
    the message names the moves that are allowed."""
    if to not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}; got {to!r}")
    allowed = allowed_moves(current)
    if to not in allowed:
        moves = ", ".join(allowed) if allowed else "none (closed is final)"
        raise InvalidTransition(
            f"a ticket cannot move from {current} to {to}; from {current} it may move to {moves}"
        )


def display_number(number: int) -> str:
    """``T-42``: how people name a ticket."""
    return f"T-{number}"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def _event(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    kind: str,
    actor: Actor | None,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, actor_user_id,"
        " detail, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id,
            ticket_id,
            kind,
            (actor.name if actor else "ai")[:300],
            actor.user_id if actor else None,
            Jsonb(detail),
            at,
        ),
    )
    await notifications.on_ticket_event(conn, tenant_id, ticket_id, kind, actor, detail)


async def _audit(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    actor: Actor | None,
    action: str,
    ticket_id: uuid.UUID,
    detail: dict[str, Any],
) -> None:
    if actor is not None:  # staff actions; the AI's and the system's are on the timeline
        await audit.record(conn, tenant_id, actor, action, "ticket", ticket_id, detail)


async def _check_references(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """404 for an id (contact, organisation, user, team, ticket, article) not of this tenant."""
    for field, table in _REFERENCES.items():
        value = values.get(field)
        if value is None:
            continue
        cur = await conn.execute(
            f"SELECT 1 FROM {table} WHERE id = %s AND tenant_id = %s",
            (value, tenant_id),
        )
        if await cur.fetchone() is None:
            raise NotFound(f"{field}: no {table[:-1].replace('_', ' ')} {value} for this tenant")


def _check_category(
    categories: dict[str, list[str]], category: str | None, sub_category: str | None
) -> None:
    """A tenant with a category list only takes its categories (and their sub-categories);
    a tenant without one takes any."""
    if not categories:
        return
    if sub_category is not None and category is None:
        raise InvalidInput("sub_category needs a category")
    if category is None:
        return
    if category not in categories:
        raise InvalidInput(
            f"category is one of this business's: {', '.join(sorted(categories))}; got {category!r}"
        )
    subs = categories[category]
    if sub_category is not None and subs and sub_category not in subs:
        raise InvalidInput(
            f"sub_category of {category} is one of {', '.join(subs)}; got {sub_category!r}"
        )


def _clean_tags(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        t = tag.strip().lower()
        if t and t not in out:
            out.append(t)
    return out


# ------------------------------------------------------------------------------ reading


async def get_ticket(db: Db, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> dict[str, Any]:
    """Return one ticket of the tenant; raise :class:`NotFound` if absent for this tenant."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE id = %s AND tenant_id = %s", (ticket_id, tenant_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ticket {ticket_id} for this tenant")
    return dict(row)


async def _locked(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    *,
    conversation_first: bool = False,
) -> dict[str, Any]:
    """The ticket row, locked for this transaction. ``conversation_first`` locks its
    conversation's row before it: the order every writer of both follows (storing a message
    and a hand-off lock the conversation, then the ticket), so a move that appends a
    conversation event cannot deadlock with them."""
    if conversation_first:
        await conn.execute(
            "SELECT 1 FROM conversations c JOIN tickets t ON t.conversation_id = c.id"
            " WHERE t.id = %s AND t.tenant_id = %s AND c.tenant_id = %s FOR UPDATE OF c",
            (ticket_id, tenant_id, tenant_id),
        )
    cur = await conn.execute(
        "SELECT * FROM tickets WHERE id = %s AND tenant_id = %s FOR UPDATE",
        (ticket_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ticket {ticket_id} for this tenant")
    return dict(row)


async def list_tickets(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Return the tenant's tickets (of one conversation / in one status when given), oldest
    first."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE tenant_id = %s"
            " AND (%s::uuid IS NULL OR conversation_id = %s)"
            " AND (%s::text IS NULL OR status = %s)"
            " ORDER BY created_at, number LIMIT %s",
            (tenant_id, conversation_id, conversation_id, status, status, limit),
        )
        return [dict(r) for r in await cur.fetchall()]


_NUMBER = re.compile(r"(?i)^\s*(?:t-?)?([0-9]{1,18})\s*$")


COMMON_SHARE = 0.03
"""Words the planner expects in more than this share of tickets are matched by walking the
tenant's tickets newest first (the page fills within a few hundred); rarer ones through the
index (:func:`_matching_ids`)."""


async def _estimated_share(conn: AsyncConnection[DictRow], literal: str) -> float:
    """The planner's estimate of the share of tickets with these words (its statistics of
    ``search_doc``): two EXPLAINs, no ticket read."""
    rows = []
    for cond in (f"search_doc @@ {literal}", "true"):
        cur = await conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM tickets WHERE {cond}")
        row = await cur.fetchone()
        plan = row["QUERY PLAN"] if row else [{"Plan": {"Plan Rows": 1}}]
        rows.append(float(plan[0]["Plan"]["Plan Rows"]))
    return rows[0] / max(rows[1], 1.0)


async def _matching_ids(conn: AsyncConnection[DictRow], literal: str) -> str:
    """A subquery of the ids of the tenant's tickets with these words, for the statement:
    ``ticket_search_ids`` inside a tenant's scope (row-level security keeps the planner from
    using the index for ``@@`` itself; migration 0029 says why), ``@@`` on the index as the
    owner. A set of ids, not an ``OR`` beside the number: an ``OR`` made the planner walk
    the whole tenant."""
    cur = await conn.execute("SELECT deskgraph_current_tenant() IS NOT NULL AS scoped")
    row = await cur.fetchone()
    if row is not None and row["scoped"]:
        return f"SELECT ticket_search_ids({literal})"
    return f"SELECT id FROM tickets WHERE tenant_id = %(t)s AND search_doc @@ {literal}"


async def _text_query(conn: AsyncConnection[DictRow], q: str) -> str | None:
    """The search box's words as a tsquery: each word of ``q`` (split as the index splits
    text, the 'simple' configuration) must be a word of the ticket's subject, description or
    contact email, and the last one (the word being typed) may be the start of one. None when
    ``q`` has no word (punctuation only).

    Only the last word is a prefix: a prefix of a common word ("the:*", "problem:*") makes the
    index collect every ticket that has it before it can intersect, which costs tens of
    milliseconds at 1,000,000 tickets; a whole word is intersected cheaply."""
    cur = await conn.execute(
        "SELECT lexeme FROM unnest(to_tsvector('simple', %s)) ORDER BY positions[1]", (q,)
    )
    words = [str(r["lexeme"]).replace("'", "").replace("\\", "") for r in await cur.fetchall()]
    words = [w for w in words if w]
    if not words:
        return None
    quoted = [f"'{w}'" for w in words]
    quoted[-1] += ":*"
    return " & ".join(quoted)


async def search_tickets(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    status: list[str] | None = None,
    priority: list[str] | None = None,
    assignee_id: uuid.UUID | None = None,
    unassigned: bool = False,
    team_id: uuid.UUID | None = None,
    sla: str | None = None,
    q: str | None = None,
    before_number: int | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The tenant's tickets matching every filter given, newest (highest number) first.

    ``sla`` (``warning`` or ``breached``) keeps the tickets whose SLA is in that state at
    ``now`` (:data:`helpdesk.sla.SLA_FILTERS`).

    ``q``: a ticket number (``42``, ``T-42``) finds that ticket (and tickets whose text has
    the number as a word); other words find the tickets where each word starts a word of the
    subject, the description or the contact's email (``heat`` finds "heating", ``alice``
    and ``example.com`` find alice@example.com), through the full-text index
    ``tickets_search`` (migration 0029). ``before_number`` is the cursor: tickets numbered
    below it.

    Only the filters given are in the statement, so the planner sees plain predicates it can
    match to the partial indexes (a ``$1 IS NULL OR ...`` form hides them from a generic
    plan).
    """
    if sla is not None and sla not in SLA_FILTERS:
        raise InvalidInput(f"sla is one of {', '.join(SLA_FILTERS)}; got {sla!r}")
    where = ["tenant_id = %(t)s"]
    params: dict[str, Any] = {"t": tenant_id, "limit": limit, "now": _now(now)}
    if status:
        where.append("status = ANY(%(status)s)")
        params["status"] = list(status)
    if priority:
        where.append("priority = ANY(%(priority)s)")
        params["priority"] = list(priority)
    if assignee_id is not None:
        where.append("assignee_id = %(assignee)s")
        params["assignee"] = assignee_id
    if unassigned:
        where.append("assignee_id IS NULL")
    if team_id is not None:
        where.append("team_id = %(team)s")
        params["team"] = team_id
    if before_number is not None:
        where.append("number < %(before)s")
        params["before"] = before_number
    if sla:
        where.append(SLA_FILTERS[sla])
    number = _NUMBER.match(q) if q else None
    async with connect(db) as conn:
        if number:
            # A number is a word of its own: exact, not a prefix (42 is not 4242).
            digits = str(int(number.group(1)))
            ids = await _matching_ids(conn, f"'{digits}'::tsquery")
            where.append(
                f"id IN (SELECT id FROM tickets WHERE tenant_id = %(t)s AND number = {digits}"
                f" UNION ALL {ids})"
            )
        elif q and q.strip():
            text = await _text_query(conn, q)
            if text is None:
                return []
            # The query as a literal, not a parameter: the planner sees how rare its words
            # are (a generic plan of a prepared statement would guess), and picks the index.
            literal = sql.Literal(text).as_string(conn) + "::tsquery"
            # Estimated on the whole words: the planner has no statistics for a prefix
            # (it guesses 2% for any), and a prefix matches at least what its word does.
            whole = sql.Literal(text.replace(":*", "")).as_string(conn) + "::tsquery"
            if await _estimated_share(conn, whole) > COMMON_SHARE:
                where.append(f"search_doc @@ {literal}")
            else:
                where.append(f"id IN ({await _matching_ids(conn, literal)})")
        statement = (
            f"SELECT * FROM tickets WHERE {' AND '.join(where)}"
            " ORDER BY number DESC LIMIT %(limit)s"
        )
        cur = await conn.execute(statement, params)
        return [dict(r) for r in await cur.fetchall()]


async def open_ticket(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any] | None:
    """The conversation's open ticket, if it has one."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
            " AND status NOT IN ('resolved', 'closed')",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    return dict(row) if row else None


async def latest_ticket(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> dict[str, Any] | None:
    """The conversation's most recent ticket (any status), if it has one."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
            " ORDER BY number DESC LIMIT 1",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
    return dict(row) if row else None


async def list_resolutions(
    db: Db, tenant_id: uuid.UUID, ticket_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The ticket's resolutions, oldest first (a reopened ticket has several)."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM resolutions WHERE tenant_id = %s AND ticket_id = %s"
            " ORDER BY created_at, id",
            (tenant_id, ticket_id),
        )
        return [dict(r) for r in await cur.fetchall()]


async def get_resolution(
    db: Db, tenant_id: uuid.UUID, resolution_id: uuid.UUID | None
) -> dict[str, Any] | None:
    """One resolution, or None."""
    if resolution_id is None:
        return None
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM resolutions WHERE tenant_id = %s AND id = %s",
            (tenant_id, resolution_id),
        )
        row = await cur.fetchone()
    return dict(row) if row else None


# ------------------------------------------------------------------------------ creating


async def create_ticket(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    subject: str,
    actor: Actor | None,
    description: str = "",
    priority: str = "normal",
    impact: str = "none",
    channel: str | None = None,
    category: str | None = None,
    sub_category: str | None = None,
    tags: list[str] | None = None,
    custom_fields: dict[str, Any] | None = None,
    contact_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    parent_ticket_id: uuid.UUID | None = None,
    ai_confidence: float | None = None,
    categories: dict[str, list[str]] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Open a ticket (``new``) with the next number of the tenant; return the row.

    Ids given must be the tenant's (:class:`NotFound` otherwise); ``categories`` is the
    tenant's list (``TenantPolicy.ticket_categories``). The new ticket gets the AI's
    suggestion, the tenant's triage rules and its team's auto-assignment
    (:func:`_after_create`). ``channel`` defaults to the conversation's, else ``agent``. A
    conversation that already has an open ticket gets :class:`Conflict`.
    """
    at = _now(now)
    values = {
        "contact_id": contact_id,
        "organization_id": organization_id,
        "assignee_id": assignee_id,
        "team_id": team_id,
        "conversation_id": conversation_id,
        "parent_ticket_id": parent_ticket_id,
    }
    if not subject.strip():
        raise InvalidInput("subject must not be empty")
    _check_category(categories or {}, category, sub_category)
    async with connect(db) as conn, conn.transaction():
        await _check_references(conn, tenant_id, values)
        if conversation_id is not None:
            cur = await conn.execute(
                "SELECT channel FROM conversations WHERE id = %s AND tenant_id = %s FOR UPDATE",
                (conversation_id, tenant_id),
            )
            conv = await cur.fetchone()
            assert conv is not None  # checked above
            channel = channel or conv["channel"]
            if await open_ticket(conn, tenant_id, conversation_id):
                raise Conflict(f"conversation {conversation_id} already has an open ticket")
        channel = channel or "agent"
        # The AI's suggestion goes in with the row (one write less than the hook's).
        intents = await triage.ticket_intents(conn, tenant_id, {"conversation_id": conversation_id})
        if categories is None:
            categories = await _tenant_categories(conn, tenant_id)
        guess = triage.suggest(subject.strip(), description, categories, intents)
        cur = await conn.execute(
            """
            INSERT INTO tickets (tenant_id, conversation_id, subject, description, priority,
                                 impact, channel, category, sub_category, tags, custom_fields,
                                 contact_id, organization_id, assignee_id, team_id,
                                 parent_ticket_id, ai_confidence, suggested_category,
                                 suggested_priority, suggestion_confidence, created_by,
                                 handoff_count, created_at, updated_at)
            VALUES (%(tenant)s, %(conv)s, %(subject)s, %(description)s, %(priority)s,
                    %(impact)s, %(channel)s, %(category)s, %(sub)s, %(tags)s, %(custom)s,
                    %(contact)s, %(org)s, %(assignee)s, %(team)s, %(parent)s, %(conf)s,
                    %(s_category)s, %(s_priority)s, %(s_conf)s, %(by)s, 0, %(at)s, %(at)s)
            RETURNING *
            """,
            {
                "tenant": tenant_id,
                "conv": conversation_id,
                "subject": subject.strip(),
                "description": description,
                "priority": priority,
                "impact": impact,
                "channel": channel,
                "category": category,
                "sub": sub_category,
                "tags": _clean_tags(tags or []),
                "custom": Jsonb(custom_fields or {}),
                "contact": contact_id,
                "org": organization_id,
                "assignee": assignee_id,
                "team": team_id,
                "parent": parent_ticket_id,
                "conf": ai_confidence,
                "s_category": guess.category,
                "s_priority": guess.priority,
                "s_conf": guess.confidence,
                "by": actor.name[:300] if actor else "ai",
                "at": at,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        row = await sla.refresh(conn, tenant_id, dict(row), at, created=True)
        detail = {"number": row["number"], "subject": row["subject"], "channel": channel}
        await _event(conn, tenant_id, row["id"], "created", actor, detail, at)
        await _audit(conn, tenant_id, actor, "ticket.create", row["id"], detail)
        if assignee_id is not None:
            await triage.record_assignment(
                conn, tenant_id, row["id"], None, assignee_id, actor, "manual", at
            )
        return await _after_create(conn, tenant_id, dict(row), at, suggested=True)


async def _tenant_categories(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID
) -> dict[str, list[str]]:
    cur = await conn.execute(
        "SELECT policy->'ticket_categories' AS c FROM tenants WHERE id = %s", (tenant_id,)
    )
    row = await cur.fetchone()
    value = row["c"] if row else None
    return value if isinstance(value, dict) else {}


async def _after_create(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    row: dict[str, Any],
    at: datetime,
    *,
    suggested: bool = False,
) -> dict[str, Any]:
    """The creation hook, inside the creating transaction: the AI's suggestion (stored, not
    applied; ``suggested``: the row has it already), the triage rules
    (:func:`helpdesk.triage.apply_rules`), then the team's auto-assignment."""
    if not suggested:
        categories = await _tenant_categories(conn, tenant_id)
        intents = await triage.ticket_intents(conn, tenant_id, row)
        guess = triage.suggest(row["subject"], row["description"], categories, intents)
        cur = await conn.execute(
            "UPDATE tickets SET suggested_category = %s, suggested_priority = %s,"
            " suggestion_confidence = %s WHERE id = %s AND tenant_id = %s RETURNING *",
            (guess.category, guess.priority, guess.confidence, row["id"], tenant_id),
        )
        updated = await cur.fetchone()
        assert updated is not None
        row = dict(updated)
    before = (row["priority"], row["category"])
    row = await triage.apply_rules(conn, tenant_id, row, None, at)
    row = await assignment.auto_assign(conn, tenant_id, row, at)
    return await _sla_after_rules(conn, tenant_id, before, row, at)


async def _sla_after_rules(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    before: tuple[Any, Any],
    row: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    """A triage rule that changed the priority or category may bring another SLA rule."""
    if (row["priority"], row["category"]) != before:
        return await sla.refresh(conn, tenant_id, row, at, rechoose=True)
    return row


async def _after_change(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    after: dict[str, Any],
    changed: set[str],
    at: datetime,
) -> dict[str, Any]:
    """The change hook, inside the changing transaction: the triage rules that read a changed
    field, then auto-assignment when the ticket got a team."""
    row = await triage.apply_rules(conn, tenant_id, after, changed, at)
    if row["team_id"] != before["team_id"]:
        row = await assignment.auto_assign(conn, tenant_id, row, at)
    return await _sla_after_rules(conn, tenant_id, (after["priority"], after["category"]), row, at)


async def open_or_update_ticket(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    handoff_key: str,
    subject: str,
    reason: str,
    summary: str,
    intents: list[str],
    priority: str = "normal",
) -> dict[str, Any]:
    """Open the conversation's ticket, or update its open one; return the ticket row.

    A conversation has at most one open ticket. ``handoff_key`` names the hand-off; the same
    key again (the hand-off node re-running on resume) changes nothing, so one hand-off never
    counts twice. A conversation whose last ticket was closed gets a new one linked to it.
    """
    async with connect(db) as conn, conn.transaction():
        # Serialise hand-offs of one conversation: the check-then-insert below cannot race.
        await conn.execute(
            "SELECT 1 FROM conversations WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (conversation_id, tenant_id),
        )
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
            " AND status NOT IN ('resolved', 'closed') FOR UPDATE",
            (conversation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is not None:
            if row["last_handoff_key"] == handoff_key:
                return dict(row)
            cur = await conn.execute(
                """
                UPDATE tickets SET reason = %s, summary = %s, intents = %s, priority = %s,
                    handoff_count = handoff_count + 1, last_handoff_key = %s, updated_at = now()
                WHERE id = %s AND tenant_id = %s RETURNING *
                """,
                (reason, summary, intents, priority, handoff_key, row["id"], tenant_id),
            )
            updated = await cur.fetchone()
            assert updated is not None
            changed = {k for k in ("intents", "priority") if updated[k] != row[k]}
            if not changed:
                return dict(updated)
            if "priority" in changed:
                updated = await sla.refresh(
                    conn, tenant_id, dict(updated), updated["updated_at"], rechoose=True
                )
            return await _after_change(
                conn, tenant_id, dict(row), dict(updated), changed, updated["updated_at"]
            )
        previous = await latest_ticket(conn, tenant_id, conversation_id)
        parent = previous["id"] if previous and previous["status"] == "closed" else None
        cur = await conn.execute(
            """
            INSERT INTO tickets (tenant_id, conversation_id, subject, reason, summary, intents,
                                 priority, last_handoff_key, channel, parent_ticket_id)
            SELECT %(tenant)s, %(conv)s, %(subject)s, %(reason)s, %(summary)s, %(intents)s,
                   %(priority)s, %(key)s, c.channel, %(parent)s
            FROM conversations c WHERE c.id = %(conv)s AND c.tenant_id = %(tenant)s
            RETURNING *
            """,
            {
                "tenant": tenant_id,
                "conv": conversation_id,
                "subject": subject,
                "reason": reason,
                "summary": summary,
                "intents": intents,
                "priority": priority,
                "key": handoff_key,
                "parent": parent,
            },
        )
        created = await cur.fetchone()
        if created is None:
            raise NotFound(f"no conversation {conversation_id} for this tenant")
        created = await sla.refresh(
            conn, tenant_id, dict(created), created["created_at"], created=True
        )
        await _event(
            conn,
            tenant_id,
            created["id"],
            "created",
            None,
            {"number": created["number"], "handoff": reason, "parent_ticket_id": _s(parent)},
            created["created_at"],
        )
        return await _after_create(conn, tenant_id, dict(created), created["created_at"])


def _s(value: object | None) -> str | None:
    return str(value) if value is not None else None


# ------------------------------------------------------------------------------ changing


async def update_ticket(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    actor: Actor | None,
    categories: dict[str, list[str]] | None = None,
    now: datetime | None = None,
    audited: bool = True,
) -> dict[str, Any]:
    """Change the fields in ``changes`` (names from :data:`EDITABLE_FIELDS`); return the row.

    A field set to its current value is no change; when nothing changes nothing is written.
    ``audited=False`` leaves the audit log to the caller (a route that writes its own entry).
    An assignee change is an ``assigned`` event (mode ``manual``); then the triage rules that
    read a changed field run, and the team's auto-assignment when the team changed
    (:mod:`helpdesk.triage`, :mod:`helpdesk.assignment`).
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"fields that can be edited: {', '.join(EDITABLE_FIELDS)}")
    at = _now(now)
    async with connect(db) as conn, conn.transaction():
        row = await _locked(conn, tenant_id, ticket_id)
        if "tags" in changes:
            changes = {**changes, "tags": _clean_tags(changes["tags"] or [])}
        if "subject" in changes and not (changes["subject"] or "").strip():
            raise InvalidInput("subject must not be empty")
        diff = {k: v for k, v in changes.items() if row.get(k) != v}
        if not diff:
            return row
        if diff.get("parent_ticket_id") == ticket_id:
            raise InvalidInput("a ticket cannot be its own parent")
        if "category" in diff or "sub_category" in diff:
            _check_category(
                categories or {},
                changes.get("category", row["category"]),
                changes.get("sub_category", row["sub_category"]),
            )
        await _check_references(conn, tenant_id, diff)
        sets = ", ".join(f"{k} = %({k})s" for k in diff)
        params = {k: Jsonb(v) if k in _JSON_FIELDS else v for k, v in diff.items()}
        cur = await conn.execute(
            f"UPDATE tickets SET {sets}, updated_at = %(at)s"
            " WHERE id = %(id)s AND tenant_id = %(t)s RETURNING *",
            {**params, "at": at, "id": ticket_id, "t": tenant_id},
        )
        after = await cur.fetchone()
        assert after is not None
        if {"priority", "category"} & set(diff):  # the SLA rule may be another now
            after = await sla.refresh(conn, tenant_id, dict(after), at, rechoose=True)
        detail = {
            "before": {k: _jsonable(row[k]) for k in diff},
            "after": {k: _jsonable(after[k]) for k in diff},
        }
        await _event(conn, tenant_id, ticket_id, "updated", actor, detail, at)
        if "assignee_id" in diff:
            await triage.record_assignment(
                conn,
                tenant_id,
                ticket_id,
                row["assignee_id"],
                after["assignee_id"],
                actor,
                "manual",
                at,
            )
        action = "ticket.assign" if {"assignee_id", "team_id"} & set(diff) else "ticket.edit"
        if audited:
            await _audit(conn, tenant_id, actor, action, ticket_id, detail)
        return await _after_change(conn, tenant_id, row, dict(after), set(diff), at)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


async def transition(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    to: str,
    *,
    actor: Actor | None,
    resolution: dict[str, Any] | None = None,
    now: datetime | None = None,
    audited: bool = True,
) -> dict[str, Any]:
    """Move the ticket to ``to`` when :data:`TRANSITIONS` allows it; return the row.

    Moving to ``resolved`` needs ``resolution`` (keys of :func:`_insert_resolution`); it is
    stored, becomes the ticket's ``resolution_id``, stamps ``resolved_at`` and asks the
    customer of the ticket's conversation for CSAT (a ``csat.request`` event). ``closed``
    stamps ``closed_at``; ``resolved -> in_progress`` is a reopen (``reopen_count`` + 1).
    Moving to the status the ticket is in is no move and changes nothing.
    """
    at = _now(now)
    async with connect(db) as conn, conn.transaction():
        row = await _locked(conn, tenant_id, ticket_id, conversation_first=to == "resolved")
        if row["status"] == to and resolution is None:
            return row
        check_transition(row["status"], to)
        if to == "resolved" and resolution is None:
            raise InvalidInput(
                "resolving a ticket needs a resolution: type (one of"
                f" {', '.join(RESOLUTION_TYPES)}) and summary"
            )
        if to != "resolved" and resolution is not None:
            raise InvalidInput("a resolution is given only when moving to resolved")
        return await _move(conn, tenant_id, row, to, actor, resolution, at, audited=audited)


async def _move(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    row: dict[str, Any],
    to: str,
    actor: Actor | None,
    resolution: dict[str, Any] | None,
    at: datetime,
    *,
    by_customer: bool = False,
    audited: bool = True,
) -> dict[str, Any]:
    ticket_id = row["id"]
    resolution_row = None
    if to == "resolved":
        assert resolution is not None
        resolution_row = await _insert_resolution(conn, tenant_id, ticket_id, resolution, actor, at)
    reopen = row["status"] == "resolved" and to == REOPEN_STATUS
    cur = await conn.execute(
        """
        UPDATE tickets SET status = %(to)s, updated_at = %(at)s,
            resolved_at = CASE WHEN %(to)s = 'resolved' THEN %(at)s
                               WHEN %(to)s = 'closed' THEN resolved_at ELSE NULL END,
            closed_at = CASE WHEN %(to)s = 'closed' THEN %(at)s ELSE NULL END,
            resolution_id = CASE WHEN %(rid)s::uuid IS NOT NULL THEN %(rid)s::uuid
                                 ELSE resolution_id END,
            reopen_count = reopen_count + %(reopen)s
        WHERE id = %(id)s AND tenant_id = %(t)s RETURNING *
        """,
        {
            "to": to,
            "at": at,
            "rid": resolution_row["id"] if resolution_row else None,
            "reopen": int(reopen),
            "id": ticket_id,
            "t": tenant_id,
        },
    )
    after = await cur.fetchone()
    assert after is not None
    # The SLA clock stops or runs again with the status: the one place statuses change.
    after = await sla.refresh(conn, tenant_id, dict(after), at, previous_status=row["status"])
    detail: dict[str, Any] = {"from": row["status"], "to": to}
    if by_customer:
        detail["by"] = "customer"
    await _event(conn, tenant_id, ticket_id, "reopened" if reopen else "status", actor, detail, at)
    if resolution_row is not None:
        rdetail = {
            "resolution_id": str(resolution_row["id"]),
            "type": resolution_row["type"],
            "summary": resolution_row["summary"],
        }
        await _event(conn, tenant_id, ticket_id, "resolved", actor, rdetail, at)
        detail["resolution"] = rdetail
        if after["conversation_id"] is not None:
            await _ask_csat(conn, tenant_id, after, resolution_row)
    if audited:
        await _audit(conn, tenant_id, actor, "ticket.transition", ticket_id, detail)
    return dict(after)


async def check_resolution(
    conn: AsyncConnection[DictRow], tenant_id: uuid.UUID, resolution: dict[str, Any]
) -> tuple[str, str]:
    """The resolution's type and summary, checked (422 for a bad one, 404 for an article not
    of this tenant)."""
    kind = resolution.get("type")
    if kind not in RESOLUTION_TYPES:
        raise InvalidInput(f"resolution type is one of {', '.join(RESOLUTION_TYPES)}; got {kind!r}")
    summary = (resolution.get("summary") or "").strip()
    if not summary:
        raise InvalidInput("a resolution needs a summary")
    await _check_references(conn, tenant_id, {"article_id": resolution.get("article_id")})
    return str(kind), summary


async def _insert_resolution(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    resolution: dict[str, Any],
    actor: Actor | None,
    at: datetime,
) -> dict[str, Any]:
    """Store a resolution: ``type``, ``summary`` (required), ``steps``, ``root_cause``,
    ``article_id``, ``references`` (``[{"kind": "article"|"url", "ref", "title"}]``),
    ``ai_generated``. ``resolved_by`` is the actor's user, or the AI when there is no actor."""
    kind, summary = await check_resolution(conn, tenant_id, resolution)
    cur = await conn.execute(
        """
        INSERT INTO resolutions (tenant_id, ticket_id, type, summary, steps, root_cause,
                                 article_id, refs, resolved_by, resolved_by_user_id,
                                 resolved_by_name, ai_generated, created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *
        """,
        (
            tenant_id,
            ticket_id,
            kind,
            summary,
            resolution.get("steps") or "",
            resolution.get("root_cause") or "",
            resolution.get("article_id"),
            Jsonb(resolution.get("references") or []),
            "user" if actor is not None else "ai",
            actor.user_id if actor else None,
            (actor.name if actor else "ai")[:300],
            bool(resolution.get("ai_generated", actor is None)),
            at,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


CSAT_REQUEST_EVENT = "csat.request"
"""The conversation event that asks the customer for CSAT after a resolve (the widget shows
1-5 and a comment, and posts ``/v1/conversations/{id}/csat``)."""


async def _ask_csat(
    conn: AsyncConnection[DictRow],
    tenant_id: uuid.UUID,
    ticket: dict[str, Any],
    resolution: dict[str, Any],
) -> None:
    await event_log.append_event(
        conn,
        tenant_id,
        ticket["conversation_id"],
        CSAT_REQUEST_EVENT,
        {
            "ticket_number": display_number(ticket["number"]),
            "resolution_id": str(resolution["id"]),
            "scale": [1, 5],
        },
        dedupe_key=f"csat:{resolution['id']}",
    )


async def set_ticket_status(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    status: TicketStatus,
    *,
    priority: str | None = None,
    actor: Actor | None = None,
    audited: bool = True,
) -> dict[str, Any]:
    """Change a ticket's status (through :func:`transition`) and priority when given; return
    the ticket row. Resolving this way is refused (it needs a resolution)."""
    async with connect(db) as conn, conn.transaction():
        row = await transition(conn, tenant_id, ticket_id, status, actor=actor, audited=audited)
        if priority is not None and priority != row["priority"]:
            row = await update_ticket(
                conn, tenant_id, ticket_id, {"priority": priority}, actor=actor, audited=audited
            )
    return row


async def settle_open_ticket(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    status: TicketStatus,
    *,
    actor: Actor | None = None,
    summary: str = "",
) -> dict[str, Any] | None:
    """Move the conversation's open ticket (if any) to ``status`` after a desk action (takeover
    -> in_progress, release or close -> resolved); return it.

    A move the lifecycle does not allow from where the ticket is leaves it there (the
    conversation action still happens). Resolving this way records an ``answered_question``
    resolution with ``summary``.
    """
    async with connect(db) as conn, conn.transaction():
        ticket = await open_ticket(conn, tenant_id, conversation_id)
        if ticket is None or ticket["status"] == status:
            return ticket
        if status not in allowed_moves(ticket["status"]):
            return ticket
        resolution = None
        if status == "resolved":
            resolution = {
                "type": "answered_question",
                "summary": summary or "Resolved in the conversation.",
                "ai_generated": False,
            }
        locked = await _locked(conn, tenant_id, ticket["id"], conversation_first=True)
        # The conversation action that moved the ticket is audited by the desk itself.
        return await _move(
            conn, tenant_id, locked, status, actor, resolution, _now(None), audited=False
        )


async def on_customer_message(
    db: Db, tenant_id: uuid.UUID, conversation_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """A customer wrote in the conversation: reopen its resolved ticket (``reopen_count`` + 1),
    or open a new ticket linked (``parent_ticket_id``) to its closed one. Return the ticket
    that is open now because of this message, else None (an open ticket already, or none)."""
    at = _now(now)
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT * FROM tickets WHERE conversation_id = %s AND tenant_id = %s"
            " ORDER BY (status NOT IN ('resolved', 'closed')) DESC, number DESC LIMIT 1"
            " FOR UPDATE",
            (conversation_id, tenant_id),
        )
        last = await cur.fetchone()
        if last is None or last["status"] in OPEN_STATUSES:
            return None
        if last["status"] == "resolved":
            return await _move(
                conn, tenant_id, dict(last), REOPEN_STATUS, None, None, at, by_customer=True
            )
        cur = await conn.execute(
            """
            INSERT INTO tickets (tenant_id, conversation_id, subject, description, priority,
                                 impact, channel, category, sub_category, tags, contact_id,
                                 organization_id, team_id, parent_ticket_id, created_by,
                                 handoff_count, created_at, updated_at)
            SELECT tenant_id, conversation_id, subject, '', priority, impact, channel, category,
                   sub_category, tags, contact_id, organization_id, team_id, id, 'customer', 0,
                   %(at)s, %(at)s
            FROM tickets WHERE id = %(id)s
            RETURNING *
            """,
            {"at": at, "id": last["id"]},
        )
        created = await cur.fetchone()
        assert created is not None
        created = await sla.refresh(conn, tenant_id, dict(created), at, created=True)
        detail = {"number": created["number"], "parent_number": last["number"], "by": "customer"}
        await _event(conn, tenant_id, created["id"], "created", None, detail, at)
        await _event(
            conn,
            tenant_id,
            last["id"],
            "follow_up",
            None,
            {"ticket_id": str(created["id"]), "number": created["number"]},
            at,
        )
        return await _after_create(conn, tenant_id, dict(created), at)


async def stamp_first_response(
    db: Db,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    by_ai: bool,
    now: datetime | None = None,
) -> bool:
    """The first customer-visible reply on the conversation's open ticket: stamp
    ``first_response_at`` and ``ai_first_response``. Idempotent (a ticket is stamped once);
    return whether this call stamped."""
    at = _now(now)
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE tickets SET first_response_at = %s, ai_first_response = %s"
            " WHERE conversation_id = %s AND tenant_id = %s AND first_response_at IS NULL"
            " AND status NOT IN ('resolved', 'closed') RETURNING *",
            (at, by_ai, conversation_id, tenant_id),
        )
        row = await cur.fetchone()
        if row is not None:
            await _event(conn, tenant_id, row["id"], "first_response", None, {"ai": by_ai}, at)
            await sla.refresh(conn, tenant_id, dict(row), at)  # met, or breached late
    return row is not None


async def close_stale(db: Db, now: datetime | None = None) -> int:
    """Close every resolved ticket whose customer has not written for the tenant's
    ``auto_close_days`` (policy; :data:`AUTO_CLOSE_DAYS_DEFAULT` when unset) since it was
    resolved; return how many were closed.

    A customer message reopens a resolved ticket (:func:`on_customer_message`), so "resolved
    for N days" is "N days without a customer reply". Runs for all tenants when ``db`` is a
    pool (as the owner, which row-level security does not restrict), for one tenant inside
    its :func:`~helpdesk.tenancy.tenant_scope`. Safe to run concurrently: the row locks of the
    UPDATE make a second run skip what the first closed.
    """
    at = _now(now)
    async with connect(db) as conn, conn.transaction():
        cur = await conn.execute(
            """
            WITH closed AS (
                UPDATE tickets t SET status = 'closed', closed_at = %(at)s, updated_at = %(at)s
                FROM tenants n
                WHERE n.id = t.tenant_id AND t.status = 'resolved'
                  AND t.resolved_at <= %(at)s - make_interval(days => COALESCE(
                        (n.policy->>'auto_close_days')::int, %(default)s))
                RETURNING t.id, t.tenant_id
            )
            INSERT INTO ticket_events (tenant_id, ticket_id, kind, actor_name, detail, created_at)
            SELECT tenant_id, id, 'status', 'system',
                   '{"from": "resolved", "to": "closed", "by": "auto_close"}'::jsonb, %(at)s
            FROM closed
            """,
            {"at": at, "default": AUTO_CLOSE_DAYS_DEFAULT},
        )
        return cur.rowcount


# ------------------------------------------------------------------------------ notes


async def add_note(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    body: str,
    actor: Actor,
    ticket_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add an internal note (staff only) to a ticket or a conversation; return it."""
    at = _now(now)
    if not body.strip():
        raise InvalidInput("a note needs text")
    async with connect(db) as conn, conn.transaction():
        if ticket_id is not None:
            await _locked(conn, tenant_id, ticket_id)
        await _check_references(conn, tenant_id, {"conversation_id": conversation_id})
        cur = await conn.execute(
            "INSERT INTO internal_notes (tenant_id, ticket_id, conversation_id, body,"
            " author_user_id, author_name, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING *",
            (
                tenant_id,
                ticket_id,
                conversation_id,
                body,
                actor.user_id,
                actor.name[:300],
                at,
            ),
        )
        note = await cur.fetchone()
        assert note is not None
        target = ticket_id or conversation_id
        if ticket_id is not None:
            await _event(
                conn, tenant_id, ticket_id, "note", actor, {"note_id": str(note["id"])}, at
            )
        await audit.record(
            conn,
            tenant_id,
            actor,
            "note.add",
            "ticket" if ticket_id else "conversation",
            target,
            {"note_id": str(note["id"])},
        )
    return dict(note)


async def list_notes(
    db: Db,
    tenant_id: uuid.UUID,
    *,
    ticket_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Internal notes, oldest first: with ``ticket_id`` the ticket's (plus the notes on
    ``conversation_id`` when given); with ``conversation_id`` alone the conversation's and its
    tickets'."""
    async with connect(db) as conn:
        cur = await conn.execute(
            """
            SELECT * FROM internal_notes n WHERE n.tenant_id = %(t)s AND (
                (%(ticket)s::uuid IS NOT NULL AND n.ticket_id = %(ticket)s)
                OR (%(conv)s::uuid IS NOT NULL AND n.conversation_id = %(conv)s)
                OR (%(ticket)s::uuid IS NULL AND %(conv)s::uuid IS NOT NULL AND n.ticket_id IN (
                    SELECT k.id FROM tickets k
                    WHERE k.tenant_id = %(t)s AND k.conversation_id = %(conv)s)))
            ORDER BY n.created_at, n.id
            """,
            {"t": tenant_id, "ticket": ticket_id, "conv": conversation_id},
        )
        return [dict(r) for r in await cur.fetchall()]


async def timeline(db: Db, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> list[dict[str, Any]]:
    """What happened to the ticket, oldest first: its events, its notes (and its
    conversation's), and the conversation's public messages. Each item is
    ``{"at", "kind", "actor", "detail"}``; ``kind`` is ``message``, ``note`` or an event kind."""
    ticket = await get_ticket(db, tenant_id, ticket_id)
    cid = ticket["conversation_id"]
    items: list[dict[str, Any]] = []
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM ticket_events WHERE tenant_id = %s AND ticket_id = %s ORDER BY id",
            (tenant_id, ticket_id),
        )
        for e in await cur.fetchall():
            if e["kind"] == "note":
                continue  # the note itself is listed below
            items.append(
                {
                    "at": e["created_at"],
                    "kind": e["kind"],
                    "actor": e["actor_name"],
                    "detail": e["detail"],
                }
            )
        for n in await list_notes(conn, tenant_id, ticket_id=ticket_id, conversation_id=cid):
            items.append(
                {
                    "at": n["created_at"],
                    "kind": "note",
                    "actor": n["author_name"],
                    "detail": {
                        "note_id": str(n["id"]),
                        "body": n["body"],
                        "on": "ticket" if n["ticket_id"] else "conversation",
                    },
                }
            )
        if cid is not None:
            cur = await conn.execute(
                "SELECT id, sender, text, agent_name, created_at FROM messages"
                " WHERE tenant_id = %s AND conversation_id = %s AND visibility = 'public'"
                " ORDER BY created_at, id",
                (tenant_id, cid),
            )
            for m in await cur.fetchall():
                items.append(
                    {
                        "at": m["created_at"],
                        "kind": "message",
                        "actor": m["agent_name"] or m["sender"],
                        "detail": {
                            "message_id": str(m["id"]),
                            "sender": m["sender"],
                            "text": m["text"],
                        },
                    }
                )
    items.sort(key=lambda i: i["at"])
    return items
