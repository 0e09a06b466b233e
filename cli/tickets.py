"""``deskgraph ticket "..." --tenant SLUG [--json] [--yes]``: a ticket command in words.

The words are parsed (rules offline, the LLM when configured: ``desk.ticket_commands``) into a
validated command, shown, and applied on confirmation through the same functions as the
console and the API; ``--yes`` applies without asking (for scripts). Words that do not say
enough get a question back and change nothing (exit 2). ``--json`` prints the compact answer
(``{"status": "ok"|"nf"|"er"|"up", "action", "data"}``, ``data.number`` the ticket's number);
a command that is not confirmed is ``up`` with ``data.plan``. Exit codes: 0 applied or shown,
1 a ticket not found or a change refused, 2 a question or not confirmed. Done as ``cli``
in the audit log.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.pool import run_with_pool

console = Console()


def ticket(
    words: Annotated[str, typer.Argument(help='e.g. "close T-42, T-43: fixed the config"')],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the compact JSON answer")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking")] = False,
) -> None:
    """Create, update, show, resolve or close tickets with a sentence."""
    from desk.ticket_commands import understand
    from helpdesk import ticket_commands as tc
    from helpdesk.audit import Actor
    from helpdesk.config import get_settings
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant
    from nlp.models import chat_model

    outcome: dict[str, Any] = {}

    def say(answer: dict[str, Any], text: str) -> None:
        outcome.update(answer)
        if as_json:
            print(json.dumps(answer, ensure_ascii=False, default=str))
        else:
            console.print(text, soft_wrap=True, highlight=False)

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        categories = t.policy.ticket_categories
        parsed = await understand(
            chat_model(get_settings()), words, categories=list(categories) or None
        )
        if isinstance(parsed, tc.Question):
            say({"status": "up", "action": None, "data": {"question": parsed.question}},
                parsed.question)  # fmt: skip
            return
        plan = tc.describe(parsed)
        if parsed.action != "show" and not yes:
            if as_json or not sys.stdin.isatty():
                say({"status": "up", "action": parsed.action, "data": {"plan": plan}},
                    f"{plan}\nNot applied: run again with --yes to apply.")  # fmt: skip
                return
            if not typer.confirm(f"{plan}. Apply?", default=False):
                say({"status": "up", "action": parsed.action, "data": {"plan": plan}},
                    "Nothing changed.")  # fmt: skip
                return
        async with tenant_scope(pool, t.id) as conn:
            answer = await tc.apply(conn, t.id, parsed, actor=Actor("cli"), categories=categories)
        say(answer, _text(plan, answer))

    run_with_pool(body)
    status = outcome.get("status")
    if status == "up":
        raise typer.Exit(2)
    if status in ("nf", "er"):
        raise typer.Exit(1)


def _text(plan: str, answer: dict[str, Any]) -> str:
    data = answer["data"]
    if answer["action"] == "show":
        lines = [f"{t['number']}  {t['status']:<16} {t['priority']:<7} {t['subject']}"
                 for t in data["tickets"]]  # fmt: skip
        if data.get("not_found"):
            lines.append("not found: " + ", ".join(data["not_found"]))
        return "\n".join(lines) or "No tickets."
    if answer["action"] == "create":
        return f"{plan}: {data['number']}"
    results = data.get("results") or [data]
    lines = [plan]
    for r in results:
        if r["result"] == "ok":
            lines.append(f"{r['number']}: done ({r['subject']}: now {r['status']})")
        elif r["result"] == "nf":
            lines.append(f"{r['number']}: not found")
        else:
            lines.append(f"{r['number']}: refused: {r['message']}")
    return "\n".join(lines)
