"""Ticket commands in words (issue 15 item 9): "create ticket: API timeout in production, high
priority", "update T-42 to in progress, checking the load balancer", "show open high priority
tickets", "close T-42, T-43: fixed load balancer config".

:func:`parse` turns the words into a validated :class:`Command` by rules (offline: priority
words such as urgent / asap, status phrases, category names, ticket numbers and bulk lists),
or into a :class:`Question` when the words do not say enough or say two things at once: an
unparseable or ambiguous command is asked about, never guessed into a change. The LLM tier
parses into the same :class:`Command` with structured output (``desk.ticket_commands``) and
the rules stay its fallback. :func:`describe` is the confirmation text shown before anything
is applied; :func:`apply` applies it through the same functions as the UI and the API
(``helpdesk.tickets``), so the lifecycle table, validation and audit are the same.

``close`` means done: a ticket not resolved yet is resolved first (the words after the colon
are the resolution's summary; "fixed" / "fix" make it a ``permanent_fix``, otherwise an
``answered_question``), then closed. ``update ..., <words>`` adds the words as an internal
note. The compact answer (``--json``, the API) is ``{"status": "ok"|"nf"|"er"|"up",
"action", "data"}``: ``ok`` applied (or shown), ``nf`` a ticket number not found, ``er`` a
change the desk refused (an illegal move: the message names the allowed ones), ``up``: not
applied, unparseable or awaiting confirmation (``data.question`` or ``data.plan``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from helpdesk import ticket_bulk, tickets
from helpdesk.audit import Actor
from helpdesk.errors import DeskError, NotFound
from helpdesk.tenancy import Db, connect

Action = Literal["create", "update", "show", "close", "resolve"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal[
    "new", "triage", "in_progress", "waiting_customer", "waiting_internal", "pending_release",
    "resolved", "closed",
]  # fmt: skip
MAX_BULK = 100


class Command(BaseModel):
    """One ticket command, validated."""

    action: Action
    numbers: list[int] = Field(default_factory=list, max_length=MAX_BULK)
    subject: str | None = Field(default=None, max_length=300)
    priority: Priority | None = None
    status: Status | None = None
    category: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=5000)
    open_only: bool = Field(default=False, description="show: only tickets not resolved")


class Question(BaseModel):
    """What to ask back instead of guessing."""

    question: str


_NUMBER = re.compile(r"(?:\bT-?|#|\bticket\s+)(\d{1,12})\b", re.I)
_PRIORITY = [
    ("urgent", re.compile(r"\b(urgent(ly)?|asap|emergency|critical|immediately)\b", re.I)),
    ("high", re.compile(r"\b(high(\s+priority)?|important)\b", re.I)),
    ("low", re.compile(r"\b(low(\s+priority)?|minor|whenever|no rush)\b", re.I)),
    ("normal", re.compile(r"\b(normal|medium)(\s+priority)?\b", re.I)),
]
_STATUS = [
    ("in_progress", re.compile(r"\b(in[\s-]progress|working on( it)?|started)\b", re.I)),
    ("waiting_customer", re.compile(r"\bwaiting\s+(on|for)\s+(the\s+)?customer\b", re.I)),
    ("waiting_internal", re.compile(r"\b(waiting\s+internal(ly)?|on\s+hold)\b", re.I)),
    ("pending_release", re.compile(r"\bpending\s+release\b", re.I)),
    ("triage", re.compile(r"\btriage\b", re.I)),
    ("resolved", re.compile(r"\bresolved\b", re.I)),
    ("closed", re.compile(r"\bclosed\b", re.I)),
]
_VERBS: list[tuple[Action, re.Pattern[str]]] = [
    ("create", re.compile(r"^\s*(create|new|open|add|log)\b(\s+a)?(\s+new)?(\s+ticket)?", re.I)),
    ("show", re.compile(r"^\s*(show|list|find|which|what)\b", re.I)),
    ("close", re.compile(r"^\s*close\b", re.I)),
    ("resolve", re.compile(r"^\s*resolve\b", re.I)),
    ("update", re.compile(r"^\s*(update|set|move|change|mark|put|reopen)\b", re.I)),
]
_PRIORITY_PHRASE = re.compile(
    r"[,;]?\s*\b(with\s+)?(urgent(ly)?|asap|emergency|critical|immediately|high|low|normal|"
    r"medium|important|minor)(\s+priority)?\b",
    re.I,
)
EXAMPLES = [
    "create ticket: API timeout in production, high priority",
    "update T-42 to in progress, checking the load balancer",
    "show open high priority tickets",
    "close T-42, T-43: fixed load balancer config",
]


def _one(found: list[str], what: str) -> str | Question | None:
    distinct = list(dict.fromkeys(found))
    if len(distinct) > 1:
        return Question(question=f"Which {what}: {' or '.join(distinct)}?")
    return distinct[0] if distinct else None


def _priorities(text: str) -> list[str]:
    return [name for name, rx in _PRIORITY if rx.search(text)]


def _statuses(text: str) -> list[str]:
    found = [name for name, rx in _STATUS if rx.search(text)]
    if re.search(r"^\s*reopen\b", text, re.I):
        found.append("in_progress")
    return found


def _category(text: str, categories: list[str]) -> str | Question | None:
    hits = [c for c in categories if re.search(rf"\b{re.escape(c)}\b", text, re.I)]
    return _one(hits, "category")


def parse(text: str, *, categories: list[str] | None = None) -> Command | Question:
    """The command the words say, or the question to ask back (see the module docstring)."""
    words = " ".join(text.split())
    if not words:
        return Question(question="What should I do? For example: " + "; ".join(EXAMPLES))
    action = next((a for a, rx in _VERBS if rx.search(words)), None)
    if action is None:
        return Question(
            question="I did not understand that. Start with create, update, show, close or"
            " resolve, for example: " + "; ".join(EXAMPLES)
        )
    head, _, tail = words.partition(":")
    numbers = [int(n) for n in _NUMBER.findall(head if action in ("close", "resolve") else words)]
    numbers = list(dict.fromkeys(numbers))
    if len(numbers) > MAX_BULK:
        return Question(question=f"That is {len(numbers)} tickets; at most {MAX_BULK} at once.")
    priority = _one(_priorities(words if action != "close" else head), "priority")
    if isinstance(priority, Question):
        return priority
    category = _category(words, categories or [])
    if isinstance(category, Question):
        return category

    if action == "create":
        if numbers:
            return Question(question=f"Create a new ticket, or update T-{numbers[0]}?")
        body = tail if tail.strip() else _VERBS[0][1].sub("", words)
        subject = _PRIORITY_PHRASE.sub("", body).strip(" ,;:.-")
        subject = re.sub(r"^(for|about|re|regarding)\s+", "", subject, flags=re.I)
        if not subject:
            return Question(question="What is the ticket about? e.g. " + EXAMPLES[0])
        return Command(
            action="create", subject=subject[:300], priority=priority,  # type: ignore[arg-type]
            category=category,
        )  # fmt: skip
    if action == "show":
        status = _one(_statuses(words), "status")
        if isinstance(status, Question):
            return status
        return Command(
            action="show",
            numbers=numbers,
            priority=priority,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            category=category,
            open_only=bool(re.search(r"\bopen\b", words, re.I)) and status is None,
        )
    if not numbers:
        return Question(question=f"Which ticket? Name it by number, e.g. {action} T-42.")
    if action in ("close", "resolve"):
        summary = tail.strip() or None
        if action == "resolve" and not summary:
            return Question(
                question=f"How was it resolved? e.g. resolve T-{numbers[0]}: replaced the part"
            )
        return Command(action=action, numbers=numbers, note=summary)
    # update: a status, a priority, a category and/or a note
    after = _NUMBER.split(words)[-1] if _NUMBER.search(words) else ""
    status = _one(_statuses(words), "status")
    if isinstance(status, Question):
        return status
    note = None
    if "," in after:
        note = after.split(",", 1)[1].strip() or None
    elif tail.strip():
        note = tail.strip()
    if status is None and priority is None and category is None and note is None:
        return Question(
            question=f"What should change on T-{numbers[0]}: its status, priority or a note?"
        )
    return Command(
        action="update", numbers=numbers, status=status,  # type: ignore[arg-type]
        priority=priority, category=category, note=note,  # type: ignore[arg-type]
    )  # fmt: skip


def describe(command: Command) -> str:
    """The confirmation text: what applying ``command`` will do, in words."""
    refs = ", ".join(f"T-{n}" for n in command.numbers)
    if command.action == "create":
        extra = [f"priority {command.priority}" if command.priority else "",
                 f"category {command.category}" if command.category else ""]  # fmt: skip
        more = ", ".join(e for e in extra if e)
        return f'Create a ticket "{command.subject}"' + (f" ({more})" if more else "")
    if command.action == "show":
        if command.numbers:
            return f"Show {refs}"
        parts = [
            "open" if command.open_only else "",
            (command.status or "").replace("_", " "),
            f"{command.priority} priority" if command.priority else "",
            "tickets",
            f"in {command.category}" if command.category else "",
        ]
        return "Show " + " ".join(p for p in parts if p)
    if command.action in ("close", "resolve"):
        why = f': "{command.note}"' if command.note else ""
        what = "Resolve and close" if command.action == "close" else "Resolve"
        return f"{what} {refs}{why}"
    changes = []
    if command.status:
        changes.append(f"status to {command.status.replace('_', ' ')}")
    if command.priority:
        changes.append(f"priority to {command.priority}")
    if command.category:
        changes.append(f"category to {command.category}")
    if command.note:
        changes.append(f'note "{command.note}"')
    return f"Update {refs}: " + ", ".join(changes)


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": tickets.display_number(row["number"]),
        "id": str(row["id"]),
        "subject": row["subject"],
        "status": row["status"],
        "priority": row["priority"],
    }


async def _by_number(db: Db, tenant_id: uuid.UUID, numbers: list[int]) -> dict[int, Any]:
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT id, number FROM tickets WHERE tenant_id = %s AND number = ANY(%s)",
            (tenant_id, numbers),
        )
        return {r["number"]: r["id"] for r in await cur.fetchall()}


def _resolution(note: str | None) -> dict[str, Any]:
    summary = note or "Closed from a ticket command."
    fixed = re.search(r"\bfix(ed|es)?\b", summary, re.I)
    return {"type": "permanent_fix" if fixed else "answered_question", "summary": summary[:5000]}


async def apply(
    db: Db,
    tenant_id: uuid.UUID,
    command: Command,
    *,
    actor: Actor,
    categories: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Apply ``command``; return the compact answer (``{"status", "action", "data"}``).

    ``close`` / ``resolve`` apply to the whole list at once (``helpdesk.ticket_bulk.finish``:
    set-based, one transaction); other bulk commands ticket by ticket. Each ticket's outcome
    is its ``result`` in ``data.results`` (one ticket: ``data`` is that entry) and the
    answer's status is the worst of them (``nf`` before ``er`` before ``ok``); ``status`` in
    an entry is the ticket's."""
    action = command.action
    if action == "create":
        row = await tickets.create_ticket(
            db,
            tenant_id,
            subject=command.subject or "",
            actor=actor,
            priority=command.priority or "normal",
            category=command.category,
            channel="agent",
            categories=categories,
        )
        return {"status": "ok", "action": action, "data": _compact(row)}
    if action == "show":
        if command.numbers:
            ids = await _by_number(db, tenant_id, command.numbers)
            found = [
                await tickets.get_ticket(db, tenant_id, ids[n]) for n in command.numbers if n in ids
            ]
            missing = [n for n in command.numbers if n not in ids]
        else:
            statuses: list[str] | None = [command.status] if command.status else None
            if command.open_only:
                statuses = [s for s in tickets.STATUSES if s not in ("resolved", "closed")]
            found = await tickets.search_tickets(
                db,
                tenant_id,
                status=statuses,
                priority=[command.priority] if command.priority else None,
                limit=50,
            )
            if command.category:
                found = [t for t in found if t.get("category") == command.category]
            missing = []
        shown: dict[str, Any] = {"tickets": [_compact(t) for t in found], "count": len(found)}
        if missing:
            shown["not_found"] = [f"T-{n}" for n in missing]
        return {"status": "nf" if missing else "ok", "action": action, "data": shown}

    ids = await _by_number(db, tenant_id, command.numbers)
    results: list[dict[str, Any]] = []
    finished: dict[uuid.UUID, dict[str, Any]] = {}
    if action in ("close", "resolve"):  # set-based: one transaction for the whole list
        rows = await ticket_bulk.finish(
            db, tenant_id, [ids[n] for n in command.numbers if n in ids],
            close=action == "close", actor=actor, resolution=_resolution(command.note),
        )  # fmt: skip
        finished = {r["id"]: r for r in rows}
    for n in command.numbers:
        if n not in ids or (action in ("close", "resolve") and ids[n] not in finished):
            results.append({"number": f"T-{n}", "result": "nf"})
            continue
        if ids[n] in finished:
            results.append({**_compact(finished[ids[n]]), "result": "ok"})
            continue
        try:
            row = await _apply_one(db, tenant_id, ids[n], command, actor, categories)
        except NotFound as exc:
            results.append({"number": f"T-{n}", "result": "nf", "message": exc.message})
            continue
        except DeskError as exc:  # a refused move or value: the message says why
            results.append(
                {"number": f"T-{n}", "result": "er", "code": exc.code, "message": exc.message}
            )
            continue
        results.append({**_compact(row), "result": "ok"})
    worst = next((s for s in ("nf", "er") if any(r["result"] == s for r in results)), "ok")
    data: dict[str, Any] = {"results": results}
    if len(results) == 1:
        data = {**results[0]}
    return {"status": worst, "action": action, "data": data}


async def _apply_one(
    db: Db,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    command: Command,
    actor: Actor,
    categories: dict[str, list[str]] | None,
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if command.priority:
        changes["priority"] = command.priority
    if command.category:
        changes["category"] = command.category
    if changes:
        await tickets.update_ticket(
            db, tenant_id, ticket_id, changes, actor=actor, categories=categories
        )
    if command.status:
        if command.status == "resolved":
            await tickets.transition(
                db, tenant_id, ticket_id, "resolved", actor=actor,
                resolution=_resolution(command.note),
            )  # fmt: skip
        else:
            await tickets.transition(db, tenant_id, ticket_id, command.status, actor=actor)
    if command.note:
        await tickets.add_note(db, tenant_id, body=command.note, actor=actor, ticket_id=ticket_id)
    return await tickets.get_ticket(db, tenant_id, ticket_id)
