"""``deskgraph chat``: one conversation in the terminal, you as the customer and the agent.

A plain line is the customer's message, run as a turn by the desk exactly as the API runs one
(:meth:`desk.runner.TurnRunner.say`: the conversation's lock and lease, the turns owed after a
review); a ``/`` line is an agent's command (:mod:`cli.chat_commands`), applied by the desk's
:meth:`desk.actions.AgentDesk.act` like the agent console's buttons, so the terminal never
resumes a thread behind the desk's back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cli.signals import exit_through_hooks_on_signals

console = Console()


def chat(
    tenant: Annotated[str, typer.Option("--tenant")] = "demo",
    channel: Annotated[str, typer.Option("--channel")] = "web",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name when you act as the agent")
    ] = None,
) -> None:
    """Chat with a tenant's assistant in the terminal; '/help' lists the agent's commands
    (/reply, /release, /close, /approve, /edit, /reject)."""
    exit_through_hooks_on_signals()
    asyncio.run(_chat(tenant, channel, agent))


async def _chat(slug: str, channel: str, agent: str | None) -> None:
    from cli.chat_commands import Resume, parse_command, waiting_for
    from desk.actions import ActionRequest
    from desk.service import Desk
    from desk.stream import pending_interrupts
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk import conversations
    from helpdesk.config import get_settings
    from helpdesk.errors import DeskError
    from helpdesk.tenants import get_tenant
    from helpdesk.text_policy import InvalidText

    settings = get_settings()
    async with open_services(settings) as services:
        graph = build_graph(services, await open_checkpointer(services))
        desk = Desk.build(graph, services, lease_ttl_s=settings.turn_lease_s)
        tenant = await get_tenant(services.pool, slug)
        cid = await conversations.create_conversation(services.pool, tenant.id, channel=channel)
        console.print(
            f"[dim]conversation {cid} with {tenant.name}. You type as the customer; '/help'"
            " lists the agent's commands (/reply, /release, /close, /approve, /edit,"
            " /reject). Ctrl-D to quit.[/]"
        )
        while True:
            try:
                text = await asyncio.to_thread(console.input, "[bold cyan]you>[/] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not text.strip():
                continue
            try:
                if text.startswith("/"):
                    pending = await pending_interrupts(graph, cid)
                    waiting = waiting_for(pending[0].value["kind"] if pending else None)
                    parsed = parse_command(text, waiting, agent or "agent")
                    if not isinstance(parsed, Resume):
                        console.print(parsed, markup=False, highlight=False)
                        continue
                    value = parsed.value
                    outcome = await desk.actions.act(
                        tenant,
                        cid,
                        ActionRequest(
                            action=value["action"],
                            agent=value.get("agent") or value.get("reviewer") or "agent",
                            text=value.get("text"),
                            reason=value.get("reason"),
                            then=value.get("then", "redraft"),
                        ),
                    )
                    # The customer is told whose words these are: the agent's own, or the
                    # assistant's draft; the turns owed after a review are the assistant's.
                    first = "assistant" if parsed.speaker == "assistant" else _agent(agent)
                    await print_events(_listed(outcome.events), first)
                    continue
                stream = await desk.turns.say(tenant, cid, text)
                await print_events(stream.events())
            except InvalidText as exc:  # refused before anything was stored or run
                console.print(f"[red]error>[/] {escape(str(exc))}; nothing was sent")
            except DeskError as exc:
                console.print(f"[red]error>[/] {escape(exc.message)}")


def _agent(name: str | None) -> str:
    return f"agent ({name})" if name else "agent"


async def _listed(events: Iterable[Any]) -> AsyncIterator[Any]:
    for event in events:
        yield event


async def print_events(events: AsyncIterator[Any], first: str = "assistant") -> None:
    """Print a turn's events as they come: the reply typed out (or whole, when it was sent
    whole), then its sources; the first reply under ``first``, an agent's under their name,
    the others as the assistant's."""
    typed = False
    speaker = first
    async for name, data in events:
        if name == "token":
            if not typed:
                console.print(f"[bold green]{escape(speaker)}>[/] ", end="")
                typed = True
            console.print(data["text"], end="", markup=False, highlight=False)
        elif name in ("message.completed", "agent.message"):
            if not typed:  # sent whole, not streamed (the safety steps while a person owns it)
                who = _agent(data.get("agent")) if name == "agent.message" else speaker
                console.print(f"[bold green]{escape(who)}>[/] ", end="")
                console.print(data["text"], end="", markup=False, highlight=False)
            console.print()
            for c in data["citations"]:
                link = f" {escape(c['url'])}" if c.get("url") else ""
                source = escape(f"{c['title']} [{c['source_id']}]{link}")
                console.print(f"  [dim]source: {source}[/]", markup=True)
            typed, speaker = False, "assistant"
        elif name == "handoff":
            console.print(
                f"[bold yellow]handoff>[/] {data['message']} (reason: {data['reason']},"
                f" ticket #{data['ticket_number']})"
            )
        elif name == "approval.pending":
            console.print(f"[bold yellow]review>[/] {data['message']} {data['review_reasons']}")
        elif name == "status" and data.get("waiting_on") == "approval":
            console.print(
                "[dim](a team member is checking an answer; this message is answered after it)[/]"
            )
        elif name == "status" and data.get("status") == "waiting_human":
            console.print("[dim](message passed to the agent)[/]")
        elif name == "error":
            console.print(f"[red]error>[/] {data['message']}")
