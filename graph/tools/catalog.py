"""The drafter's tools: tenant-scoped wrappers of the desk's own services.

Each tool takes the model's arguments plus ``run`` (:class:`~graph.tools.run.ToolRun`), an
``InjectedToolArg``: the model's schema never shows it and the loop sets it, so a model cannot
name another tenant, conversation or contact. Every tool checks its input on the server side
and raises :class:`ToolRefused` (or lets a :class:`helpdesk.errors.DeskError` through) with a
message for the model; the loop returns it as an error tool message.
"""

from __future__ import annotations

from typing import Annotated

from langchain_core.tools import BaseTool, InjectedToolArg, tool

from graph import facts
from graph.tools.run import ToolRun
from helpdesk import contacts, conversations, hours, leads, tickets
from helpdesk.tenancy import tenant_scope

Run = Annotated[ToolRun, InjectedToolArg]
SEARCH_HITS = 3
OPEN_STATUSES = ("new",)
"""The status a ticket the AI opens may have: it is new work for a person, never closed."""


class ToolRefused(Exception):
    """A tool call the server does not allow; the message tells the model why."""


@tool
async def search_kb(query: str, run: Run) -> str:
    """Search this business's knowledge base; returns passages, each with its [source-id]."""
    if not query.strip():
        raise ToolRefused("query is empty")
    hits = await run.svc.kb.search(run.tenant.id, query[:500], k=SEARCH_HITS, audience=run.audience)
    known = {c["chunk_id"] for c in run.found}
    run.found += [h for h in hits if h["chunk_id"] not in known]
    if not hits:
        return "No passage of the knowledge base matches."
    return "\n\n".join(f"[{h['source_id']}] {h['title']}\n{h['text'][:800]}" for h in hits)


@tool
async def get_business_profile(run: Run, place: str | None = None) -> str:
    """The business's opening hours, whether it is open now, its contact details and its
    service area (give ``place`` to ask whether a town or postcode is in it)."""
    profile = run.tenant.business
    now = run.svc.clock()
    asked = facts.FactQuestion(
        kinds=("open_now", "hours", "phone", "email", "address", "service_area"),
        place=place.strip()[:80] if place else None,
        place_certain=bool(place),
    )
    answer = facts.answer(asked, profile, now, {})
    if answer is None:
        return "The business profile holds no hours, contact details or service area."
    status = hours.status_at(profile, now) if profile.hours else None
    lines = [answer["text"]]
    if status is not None:
        lines.append(f"Open now: {'yes' if status.open else 'no'}.")
    run.found.append(answer)
    return f"[{answer['source_id']}] " + "\n".join(lines)


@tool
async def my_tickets(run: Run) -> str:
    """The tickets of this conversation and their status."""
    async with tenant_scope(run.svc.pool, run.tenant.id) as db:
        rows = await tickets.list_tickets(db, run.tenant.id, run.conversation_id, limit=10)
    if not rows:
        return "This conversation has no ticket."
    return "\n".join(
        f"{tickets.display_number(int(r['number']))}: {r['subject']} (status: {r['status']})"
        for r in rows
    )


@tool
async def record_contact(
    run: Run, name: str | None = None, email: str | None = None, phone: str | None = None
) -> str:
    """Record how the customer can be reached (an email or a phone is needed)."""
    async with tenant_scope(run.svc.pool, run.tenant.id) as db:
        contact, _ = await contacts.resolve_contact(
            db, run.tenant.id, email=email, phone=phone, name=name
        )
        await contacts.link_conversation(db, run.tenant.id, run.conversation_id, contact["id"])
    return "Contact details recorded."


@tool
async def create_lead(request: str, run: Run, quoted_amount: float | None = None) -> str:
    """Record the customer's request for a quote or a job as a lead for the team.
    ``quoted_amount``: the price you intend to quote, if any."""
    if not request.strip():
        raise ToolRefused("describe what the customer asks for")
    limit = run.tenant.business.chat.max_quote_without_handoff
    async with tenant_scope(run.svc.pool, run.tenant.id) as db:
        conv = await conversations.get_conversation(db, run.tenant.id, run.conversation_id)
        if conv.get("contact_id") is None:
            raise ToolRefused(
                "a lead needs the customer's contact details: ask for an email or a phone"
                " and call record_contact first"
            )
        _, created = await leads.record_lead(
            db, run.tenant.id, conv["contact_id"], run.conversation_id, request
        )
    if quoted_amount is not None and limit is not None and quoted_amount > limit:
        run.handoff_reason = f"quote_over_limit: ${quoted_amount:,.2f}"
        return "Lead recorded. A quote this size is given by a person: the customer is handed off."
    return "Lead recorded." if created else "This conversation's lead was already recorded."


@tool
async def create_ticket(
    subject: str,
    run: Run,
    description: str = "",
    priority: str = "normal",
    status: str = "new",
) -> str:
    """Open a ticket for the team about the customer's problem."""
    if status not in OPEN_STATUSES:
        raise ToolRefused(f"a ticket is opened as 'new', not {status!r}; people close tickets")
    if not subject.strip():
        raise ToolRefused("a ticket needs a subject")
    if priority not in tickets.PRIORITIES:
        raise ToolRefused(f"priority is one of {', '.join(tickets.PRIORITIES)}")
    async with tenant_scope(run.svc.pool, run.tenant.id) as db:
        conv = await conversations.get_conversation(db, run.tenant.id, run.conversation_id)
        row = await tickets.create_ticket(
            db,
            run.tenant.id,
            subject=subject[:200],
            description=description[:4000],
            priority=priority,
            actor=None,
            channel="web",
            conversation_id=run.conversation_id,
            contact_id=conv.get("contact_id"),
        )
    return f"Ticket {tickets.display_number(int(row['number']))} opened (status: {row['status']})."


@tool
async def request_handoff(reason: str, run: Run) -> str:
    """Hand the conversation to a person on the team (say why). Call this instead of telling
    the customer you are transferring them."""
    run.handoff_reason = f"llm_request: {reason.strip()[:200] or 'no reason given'}"
    return "A person will take over this conversation."


TOOLS: list[BaseTool] = [
    search_kb,
    get_business_profile,
    my_tickets,
    record_contact,
    create_lead,
    create_ticket,
    request_handoff,
]
BY_NAME: dict[str, BaseTool] = {t.name: t for t in TOOLS}
