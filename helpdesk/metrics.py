"""The desk's figures: one facts query per conversation, and every metric one SQL aggregate over it.

A metric is defined once, in :data:`METRICS` (its SQL and what it means); the summary, the time
series and the breakdowns all read the same definitions, and ``docs/metrics.md`` is rendered
from them (:func:`markdown`; a unit test checks the two agree).

**Cohort.** Conversation metrics are about the conversations *started* in the period: "of the
conversations that began last week, how many did the AI resolve" stays the same figure when it
is asked again next month, and every ratio has one denominator. Each conversation's facts
(first reply, hand-offs, the AI's last answer, votes, CSAT) are read whenever they happened.
Leads are counted by when they were created; the backlog is the state now.

**AI resolution** (the definition Intercom uses for Fin): the AI answered at least once (an
answer that was not a decline), no person took part (no hand-off, no agent message, no draft
held for review), and either the customer confirmed (a thumbs-up on an answer) or the last
message is the AI's answer and 24 hours passed with nothing more from the customer. A
conversation whose last answer is younger than 24 hours and unconfirmed is *pending*: counted
neither way until it is decided.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk.errors import InvalidInput
from helpdesk.tenancy import Db, connect

MAX_DAYS = 366
"""The longest period one request may ask for (a year and a day: a leap year whole)."""
RESOLUTION_QUIET = timedelta(hours=24)
"""How long a customer must stay silent after the AI's answer for it to count as resolving."""

Interval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` from whole local days ``first``..``last`` (both included) in ``tz``."""

    first: date
    last: date
    tz: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), ZoneInfo(self.tz))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.tz))

    def as_json(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "tz": self.tz}


def period(first: str | None, last: str | None, tz: str, *, today: date) -> Period:
    """The period a request names: ISO dates, both included; by default the 30 days to today.

    Raises :class:`InvalidInput` naming the bad field (a date that is not one, a time zone that
    is not an IANA name, ``from`` after ``to``, more than :data:`MAX_DAYS` days).
    """
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"tz: unknown time zone {tz!r} (an IANA name, e.g. America/Chicago)"
        ) from exc

    def parse(name: str, value: str | None, default: date) -> date:
        if value is None or value == "":
            return default
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc

    to_day = parse("to", last, today)
    from_day = parse("from", first, to_day - timedelta(days=29))
    if from_day > to_day:
        raise InvalidInput(f"from: {from_day} is after to ({to_day})")
    if (to_day - from_day).days + 1 > MAX_DAYS:
        raise InvalidInput(f"to: a period is at most {MAX_DAYS} days")
    return Period(from_day, to_day, tz)


FACT_COLUMNS = (
    "customer_messages",
    "ai_messages",
    "agent_messages",
    "system_messages",
    "first_customer_at",
    "last_customer_at",
    "intent",
    "last_agent",
    "last_agent_at",
    "first_reply_at",
    "first_agent_reply_at",
    "handoffs",
    "first_handoff_at",
    "handoff_reason",
    "ai_answers",
    "ai_declines",
    "last_ai_answer_at",
    "held",
    "approved",
    "edited",
    "rejected",
    "thumbs_up",
    "thumbs_down",
    "csat",
)
"""What ``conversation_facts`` keeps per conversation (migration ``0017_metrics.sql``)."""

# One row per conversation started in the period, from the rollup the triggers of migration
# 0017 keep as messages, events and feedback are written: a period of a busy tenant is a few
# thousand rows of one narrow table, however many messages they hold.
FACTS_SQL = (
    "SELECT conversation_id AS id, channel, started_at,"
    " (started_at AT TIME ZONE %(tz)s) AS local_start, "
    + ", ".join(FACT_COLUMNS)
    + " FROM conversation_facts WHERE tenant_id = %(tenant)s"
    " AND started_at >= %(start)s AND started_at < %(end)s"
)

# The same facts computed from the source tables: what the rollup must always equal (the
# migration backfilled it with this; tests compare the two, :func:`facts_drift`).
SOURCE_FACTS_SQL = """
SELECT c.id, c.channel, c.created_at AS started_at,
       m.customer_messages, m.ai_messages, m.agent_messages, m.system_messages,
       m.first_customer_at, m.last_customer_at, m.intent, m.last_agent, m.last_agent_at,
       r.first_reply_at, h.first_agent_reply_at,
       e.handoffs, e.first_handoff_at, e.handoff_reason, e.ai_answers, e.ai_declines,
       e.last_ai_answer_at, e.held, e.approved, e.edited, e.rejected,
       f.thumbs_up, f.thumbs_down, f.csat
FROM conversations c
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE sender = 'customer') AS customer_messages,
           count(*) FILTER (WHERE sender = 'ai') AS ai_messages,
           count(*) FILTER (WHERE sender = 'agent') AS agent_messages,
           count(*) FILTER (WHERE sender = 'system') AS system_messages,
           min(created_at) FILTER (WHERE sender = 'customer') AS first_customer_at,
           max(created_at) FILTER (WHERE sender = 'customer') AS last_customer_at,
           (array_agg(intent ORDER BY created_at) FILTER (WHERE intent IS NOT NULL))[1] AS intent,
           (array_agg(agent_name ORDER BY created_at DESC)
                FILTER (WHERE sender = 'agent' AND agent_name IS NOT NULL))[1] AS last_agent,
           max(created_at) FILTER (WHERE sender = 'agent' AND agent_name IS NOT NULL)
               AS last_agent_at
    FROM messages WHERE conversation_id = c.id
) m ON true
LEFT JOIN LATERAL (
    SELECT min(created_at) AS first_reply_at FROM messages
    WHERE conversation_id = c.id AND sender IN ('ai', 'agent') AND visibility = 'public'
      AND created_at >= m.first_customer_at
) r ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE type = 'handoff') AS handoffs,
           min(created_at) FILTER (WHERE type = 'handoff') AS first_handoff_at,
           (array_agg(data->>'reason' ORDER BY seq) FILTER (WHERE type = 'handoff'))[1]
               AS handoff_reason,
           count(*) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                            AND NOT coalesce((data->>'declined')::boolean, false)) AS ai_answers,
           count(*) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                            AND coalesce((data->>'declined')::boolean, false)) AS ai_declines,
           max(created_at) FILTER (WHERE type = 'message.completed' AND data->>'sender' = 'ai'
                                   AND NOT coalesce((data->>'declined')::boolean, false))
               AS last_ai_answer_at,
           count(*) FILTER (WHERE type = 'approval.pending') AS held,
           count(*) FILTER (WHERE type = 'approval.approved') AS approved,
           count(*) FILTER (WHERE type = 'approval.edited') AS edited,
           count(*) FILTER (WHERE type = 'approval.rejected') AS rejected
    FROM conversation_events WHERE conversation_id = c.id
) e ON true
LEFT JOIN LATERAL (
    SELECT min(created_at) AS first_agent_reply_at FROM messages
    WHERE conversation_id = c.id AND sender = 'agent' AND visibility = 'public'
      AND created_at >= e.first_handoff_at
) h ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE kind = 'rating' AND rating = 'up') AS thumbs_up,
           count(*) FILTER (WHERE kind = 'rating' AND rating = 'down') AS thumbs_down,
           max(csat) FILTER (WHERE kind = 'csat') AS csat
    FROM feedback WHERE conversation_id = c.id
) f ON true
WHERE c.tenant_id = %(tenant)s
"""


# Derived per-conversation flags, named once so that every metric below reads the same words.
FLAGS_SQL = """
SELECT *,
       customer_messages > 0 AS engaged,
       (handoffs > 0 OR agent_messages > 0 OR held > 0) AS person_involved,
       ai_answers > 0 AND NOT (handoffs > 0 OR agent_messages > 0 OR held > 0)
           AND (thumbs_up > 0 OR (last_customer_at <= last_ai_answer_at
                                  AND last_ai_answer_at <= %(as_of)s - %(quiet)s))
           AS ai_resolved,
       ai_answers > 0 AND NOT (handoffs > 0 OR agent_messages > 0 OR held > 0)
           AND thumbs_up = 0 AND last_customer_at <= last_ai_answer_at
           AND last_ai_answer_at > %(as_of)s - %(quiet)s AS ai_pending,
       extract(epoch FROM first_reply_at - first_customer_at) AS first_response_s,
       extract(epoch FROM first_agent_reply_at - first_handoff_at) AS human_response_s
FROM facts
"""


@dataclass(frozen=True)
class Metric:
    sql: str
    unit: Literal["count", "ratio", "seconds", "score"]
    means: str


def _pct(q: float, expr: str) -> str:
    return f"percentile_cont({q}) WITHIN GROUP (ORDER BY {expr})"


def _ratio(num: str, den: str) -> str:
    return f"(count(*) FILTER (WHERE {num}))::float / nullif(count(*) FILTER (WHERE {den}), 0)"


METRICS: dict[str, Metric] = {
    "conversations": Metric("count(*)", "count", "conversations started in the period"),
    "engaged_conversations": Metric(
        "count(*) FILTER (WHERE engaged)",
        "count",
        "conversations in which the customer wrote at least once (the denominator of the rates)",
    ),
    "customer_messages": Metric(
        "coalesce(sum(customer_messages), 0)", "count", "messages from customers"
    ),
    "ai_messages": Metric(
        "coalesce(sum(ai_messages), 0)",
        "count",
        "messages from the AI (answers, declines, greetings)",
    ),
    "agent_messages": Metric("coalesce(sum(agent_messages), 0)", "count", "messages from agents"),
    "system_messages": Metric(
        "coalesce(sum(system_messages), 0)", "count", "system notes (hand-off, closing)"
    ),
    "first_response_p50_s": Metric(
        _pct(0.5, "first_response_s"),
        "seconds",
        "median time from the customer's first message to the first public reply (AI or agent)",
    ),
    "first_response_p90_s": Metric(
        _pct(0.9, "first_response_s"), "seconds", "the same, 90th percentile"
    ),
    "human_response_p50_s": Metric(
        _pct(0.5, "human_response_s"),
        "seconds",
        "median time from the first hand-off to the first agent reply after it",
    ),
    "human_response_p90_s": Metric(
        _pct(0.9, "human_response_s"), "seconds", "the same, 90th percentile"
    ),
    "ai_resolved": Metric(
        "count(*) FILTER (WHERE ai_resolved)",
        "count",
        "conversations the AI resolved (see the definition above)",
    ),
    "ai_pending": Metric(
        "count(*) FILTER (WHERE ai_pending)",
        "count",
        "conversations whose last AI answer is under 24 h old, unconfirmed: not decided yet",
    ),
    "ai_resolution_rate": Metric(
        _ratio("ai_resolved", "ai_answers > 0 AND NOT ai_pending"),
        "ratio",
        "AI-resolved over the decided conversations the AI answered in",
    ),
    "deflection_rate": Metric(
        _ratio("engaged AND NOT person_involved", "engaged"),
        "ratio",
        "conversations that never reached a person (no hand-off, agent reply or held draft)",
    ),
    "escalation_rate": Metric(
        _ratio("engaged AND handoffs > 0", "engaged"), "ratio", "conversations handed to a person"
    ),
    "ai_decline_rate": Metric(
        _ratio("engaged AND ai_declines > 0", "engaged"),
        "ratio",
        "conversations in which the AI said at least once that it could not answer",
    ),
    "drafts_held": Metric(
        "coalesce(sum(held), 0)", "count", "AI drafts held for a person's review"
    ),
    "drafts_approved": Metric("coalesce(sum(approved), 0)", "count", "held drafts sent unchanged"),
    "drafts_edited": Metric(
        "coalesce(sum(edited), 0)", "count", "held drafts sent after a person's edit"
    ),
    "drafts_rejected": Metric("coalesce(sum(rejected), 0)", "count", "held drafts rejected"),
    "draft_approval_rate": Metric(
        "sum(approved)::float / nullif(sum(approved + edited + rejected), 0)",
        "ratio",
        "of the reviewed drafts, the share sent unchanged",
    ),
    "ai_assist_rate": Metric(
        "sum(approved + edited)::float / nullif(sum(approved + edited + agent_messages), 0)",
        "ratio",
        "of the replies a person sent or signed off, the share that started from an AI draft",
    ),
    "csat_average": Metric(
        "avg(csat)::float", "score", "mean CSAT (1-5) of the rated conversations"
    ),
    "csat_responses": Metric("count(csat)", "count", "conversations with a CSAT rating"),
    "thumbs_up": Metric("coalesce(sum(thumbs_up), 0)", "count", "answers voted helpful"),
    "thumbs_down": Metric("coalesce(sum(thumbs_down), 0)", "count", "answers voted not helpful"),
}
"""Every conversation metric: its SQL over the per-conversation facts, its unit, its meaning."""

DIMENSIONS: dict[str, str] = {
    "channel": "channel",
    "intent": "coalesce(intent, 'unknown')",
    "hour": "extract(hour FROM local_start)::int",
    "weekday": "extract(isodow FROM local_start)::int",
    "escalation_reason": "handoff_reason",
    "agent": "last_agent",
    "csat": "csat",
}
"""What a breakdown may group by (each conversation counts once, under its own value)."""


def _params(tenant_id: uuid.UUID, p: Period, as_of: datetime) -> dict[str, Any]:
    return {
        "tenant": tenant_id,
        "tz": p.tz,
        "start": p.start,
        "end": p.end,
        "as_of": as_of,
        "quiet": RESOLUTION_QUIET,
    }


def _select(names: Sequence[str]) -> str:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise InvalidInput(f"metrics: unknown metric {unknown[0]!r} (one of {', '.join(METRICS)})")
    return ", ".join(f"{METRICS[n].sql} AS {n}" for n in names)


def _query(select: str, tail: str = "") -> str:
    return f"WITH facts AS ({FACTS_SQL}), flags AS ({FLAGS_SQL}) SELECT {select} FROM flags {tail}"


async def conversation_flags(
    db: Db, tenant_id: uuid.UUID, p: Period, *, as_of: datetime
) -> list[dict[str, Any]]:
    """Each conversation of the period with the flags the metrics count it by (``engaged``,
    ``person_involved``, ``ai_resolved``, ``ai_pending``...), for reports that group
    conversations their own way (top questions)."""
    async with connect(db) as conn:
        cur = await conn.execute(_query("*", "ORDER BY started_at"), _params(tenant_id, p, as_of))
        return [dict(r) for r in await cur.fetchall()]


async def summary(db: Db, tenant_id: uuid.UUID, p: Period, *, as_of: datetime) -> dict[str, Any]:
    """Every metric of :data:`METRICS` for the period, plus the breakdowns a dashboard leads
    with (escalations by reason, CSAT distribution), leads created and the backlog now."""
    params = _params(tenant_id, p, as_of)
    async with connect(db) as conn:
        cur = await conn.execute(_query(_select(list(METRICS))), params)
        row = await cur.fetchone()
        figures = dict(row or {})
        reasons = await _counts(conn, "escalation_reason", params, "handoffs > 0")
        csat = await _counts(conn, "csat", params, "csat IS NOT NULL")
        cur = await conn.execute(
            "SELECT count(*) AS n FROM leads WHERE tenant_id = %(tenant)s"
            " AND created_at >= %(start)s AND created_at < %(end)s",
            params,
        )
        leads = (await cur.fetchone() or {"n": 0})["n"]
        backlog = await _backlog(conn, tenant_id)
    return {
        "period": p.as_json(),
        "as_of": as_of.isoformat(),
        "metrics": {k: _clean(v) for k, v in figures.items()},
        "escalations_by_reason": {str(k): v for k, v in reasons.items()},
        "csat_distribution": {str(s): csat.get(s, 0) for s in range(1, 6)},
        "leads_created": int(leads),
        "backlog": backlog,
    }


async def _counts(conn: Any, by: str, params: dict[str, Any], where: str) -> dict[Any, int]:
    cur = await conn.execute(
        _query(
            f"{DIMENSIONS[by]} AS key, count(*) AS n", f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC"
        ),
        params,
    )
    return {r["key"]: int(r["n"]) for r in await cur.fetchall()}


async def _backlog(conn: Any, tenant_id: uuid.UUID) -> dict[str, Any]:
    """What is waiting now: conversations on a person, open tickets by status and priority."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM conversations WHERE tenant_id = %s AND status = 'waiting_human'",
        (tenant_id,),
    )
    waiting = int((await cur.fetchone() or {"n": 0})["n"])
    cur = await conn.execute(
        "SELECT status, priority, count(*) AS n FROM tickets"
        " WHERE tenant_id = %s AND status NOT IN ('resolved', 'closed') GROUP BY 1, 2",
        (tenant_id,),
    )
    by_status: dict[str, int] = {}
    by_priority: dict[str, int] = {}
    for r in await cur.fetchall():
        by_status[r["status"]] = by_status.get(r["status"], 0) + int(r["n"])
        by_priority[r["priority"]] = by_priority.get(r["priority"], 0) + int(r["n"])
    return {
        "waiting_on_person": waiting,
        "open_tickets_by_status": by_status,
        "open_tickets_by_priority": by_priority,
    }


async def timeseries(
    db: Db,
    tenant_id: uuid.UUID,
    p: Period,
    names: Sequence[str],
    interval: Interval,
    *,
    as_of: datetime,
) -> list[dict[str, Any]]:
    """``names`` per local day, ISO week (Monday) or month of the period; empty buckets kept, so
    a chart's x axis has no holes."""
    if interval not in INTERVALS:
        raise InvalidInput(f"interval: {interval!r} is not one of {', '.join(INTERVALS)}")
    select = _select(names)
    sql = _query(
        f"date_trunc('{interval}', local_start)::date AS bucket, {select}", "GROUP BY 1 ORDER BY 1"
    )
    async with connect(db) as conn:
        cur = await conn.execute(sql, _params(tenant_id, p, as_of))
        rows = {r["bucket"]: r for r in await cur.fetchall()}
    out = []
    for bucket in _buckets(p, interval):
        row = rows.get(bucket)
        values = {n: _clean(row[n]) if row else _empty(n) for n in names}
        out.append({"bucket": bucket.isoformat(), **values})
    return out


def _buckets(p: Period, interval: Interval) -> list[date]:
    def trunc(d: date) -> date:
        if interval == "week":
            return d - timedelta(days=d.weekday())
        if interval == "month":
            return d.replace(day=1)
        return d

    out: list[date] = []
    d = trunc(p.first)
    while d <= p.last:
        out.append(d)
        if interval == "day":
            d += timedelta(days=1)
        elif interval == "week":
            d += timedelta(days=7)
        else:
            d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


async def breakdown(
    db: Db,
    tenant_id: uuid.UUID,
    p: Period,
    by: str,
    names: Sequence[str],
    *,
    as_of: datetime,
) -> list[dict[str, Any]]:
    """``names`` per value of ``by`` (:data:`DIMENSIONS`), largest group first."""
    if by not in DIMENSIONS:
        raise InvalidInput(f"by: {by!r} is not one of {', '.join(DIMENSIONS)}")
    select = _select(["conversations", *[n for n in names if n != "conversations"]])
    sql = _query(f"{DIMENSIONS[by]} AS key, {select}", "GROUP BY 1 ORDER BY conversations DESC, 1")
    async with connect(db) as conn:
        cur = await conn.execute(sql, _params(tenant_id, p, as_of))
        rows = await cur.fetchall()
    return [{by: r["key"], **{k: _clean(v) for k, v in r.items() if k != "key"}} for r in rows]


async def article_votes(db: Db, tenant_id: uuid.UUID, p: Period) -> list[dict[str, Any]]:
    """Votes on answers of the period's conversations, per cited article: an answer citing two
    articles counts for both (the customer judged the answer, not one source)."""
    sql = """
    SELECT cit->>'source_id' AS source_id, max(cit->>'title') AS title,
           count(*) FILTER (WHERE f.rating = 'up') AS up,
           count(*) FILTER (WHERE f.rating = 'down') AS down
    FROM conversations c
    JOIN feedback f ON f.conversation_id = c.id AND f.kind = 'rating'
    JOIN messages m ON m.id = f.message_id
    CROSS JOIN LATERAL jsonb_array_elements(m.citations) AS cit
    WHERE c.tenant_id = %(tenant)s AND c.created_at >= %(start)s AND c.created_at < %(end)s
    GROUP BY 1 ORDER BY count(*) DESC, 1
    """
    async with connect(db) as conn:
        cur = await conn.execute(sql, {"tenant": tenant_id, "start": p.start, "end": p.end})
        rows = await cur.fetchall()
    return [
        {
            **r,
            "up": int(r["up"]),
            "down": int(r["down"]),
            "helpful_share": r["up"] / (r["up"] + r["down"]) if r["up"] + r["down"] else None,
        }
        for r in rows
    ]


async def facts_drift(db: Db, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's conversations whose kept facts differ from the source tables (none, when
    the triggers do their job): each with the columns that differ, kept and recomputed."""
    async with connect(db) as conn:
        cur = await conn.execute(SOURCE_FACTS_SQL, {"tenant": tenant_id})
        source = {r["id"]: r for r in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT conversation_id AS id, channel, started_at, "
            + ", ".join(FACT_COLUMNS)
            + " FROM conversation_facts WHERE tenant_id = %s",
            (tenant_id,),
        )
        kept = {r["id"]: r for r in await cur.fetchall()}
    out = []
    for conv in source.keys() | kept.keys():
        a, b = kept.get(conv), source.get(conv)
        if a is None or b is None:
            out.append({"id": conv, "kept": a is not None, "source": b is not None})
            continue
        diff = {k: (a[k], b[k]) for k in ("channel", "started_at", *FACT_COLUMNS) if a[k] != b[k]}
        if diff:
            out.append({"id": conv, **diff})
    return out


def _clean(value: Any) -> Any:
    """Decimal and float values as plain numbers, rounded where a ratio has noise digits."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else round(number, 4)


def _empty(name: str) -> Any:
    return 0 if METRICS[name].unit == "count" else None


def markdown() -> str:
    """The metric table of ``docs/metrics.md``: name, unit, meaning and SQL."""
    lines = ["| metric | unit | what it counts | SQL over the facts |", "| --- | --- | --- | --- |"]
    for name, m in METRICS.items():
        sql = " ".join(m.sql.split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {m.unit} | {m.means} | `{sql}` |")
    return "\n".join(lines)
