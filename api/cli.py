"""``deskgraph``: the command line of the support desk."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from api.cli_admin import purge, tenant_policy
from api.cli_eval import eval_app
from api.cli_ingest import ingest
from api.cli_pool import run_with_pool
from api.cli_probes import answer, classify, guard
from api.cli_search import search
from api.keys_cli import keys_app

app = typer.Typer(help="deskgraph: AI first-line customer support.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo tenant.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(demo_app, name="demo")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
console = Console()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending SQL migrations."""
    from helpdesk import db
    from helpdesk.config import get_settings

    url = db.app_database_url(get_settings())
    applied = db.upgrade(url)
    console.print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")


@tenant_app.command("create")
def tenant_create(
    slug: str, name: Annotated[str, typer.Option("--name", help="Business name")]
) -> None:
    """Create a tenant."""
    from helpdesk.tenants import create_tenant

    async def body(pool: Any) -> None:
        tenant = await create_tenant(pool, slug, name)
        console.print(f"created tenant [bold]{tenant.slug}[/] ({tenant.id})")

    run_with_pool(body)


@demo_app.command("load")
def demo_load() -> None:
    """Create the demo tenant and ingest its knowledge base (idempotent)."""
    from api.demo import ensure_demo
    from graph.runtime import open_services

    async def go() -> None:
        async with open_services() as services:
            tenant, stats = await ensure_demo(services)
            console.print(f"demo tenant [bold]{tenant.slug}[/]: {stats}")

    asyncio.run(go())


app.command("ingest")(ingest)
app.command("answer")(answer)
app.command("guard")(guard)
app.command("classify")(classify)
app.command("search")(search)
app.command("purge")(purge)
tenant_app.command("policy")(tenant_policy)


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Create and load the demo tenant")] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies whose X-Forwarded-For is trusted (comma-separated; default"
            " 127.0.0.1): behind one, the rate limits count the customer's address.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from api.app import create_app

    on_ready = None
    if demo:
        from api.demo import ensure_demo, ensure_demo_keys, write_demo_file
        from helpdesk.auth import load_secret
        from helpdesk.config import get_settings

        async def on_ready(services: Any) -> None:
            settings = get_settings()
            tenant, stats = await ensure_demo(services)
            demo_keys = await ensure_demo_keys(services, tenant, load_secret(settings))
            path = write_demo_file(settings.data_dir, demo_keys)
            base = f"http://{host}:{port}"
            console.print(
                f"demo tenant [bold]{tenant.slug}[/] ready ({stats.articles_written} articles"
                f" indexed, {stats.articles_unchanged} unchanged); keys written to {path}:",
                soft_wrap=True,
            )
            # Plain print: keys must be copyable without wrapping or markup.
            for name in ("widget_key", "agent_key", "admin_key"):
                print(f"  {name:<11} {demo_keys[name]}")
            console.print(
                f"  demo page   {base}/demo\n  console     {base}/console\n"
                f"  API docs    {base}/docs"
            )

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(on_ready=on_ready),
        host=host,
        port=port,
        log_level="info",
        forwarded_allow_ips=forwarded_allow_ips,
    )


@app.command("chat")
def chat(
    tenant: Annotated[str, typer.Option("--tenant")] = "demo",
    channel: Annotated[str, typer.Option("--channel")] = "web",
) -> None:
    """Chat with a tenant's assistant in the terminal (agent actions with /reply, /release)."""
    asyncio.run(_chat(tenant, channel))


async def _chat(slug: str, channel: str) -> None:
    from api.after_review import answer_pending
    from api.streaming import pending_interrupts, run_turn
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk import conversations
    from helpdesk.tenants import get_tenant

    async with open_services() as services:
        graph = build_graph(services, await open_checkpointer(services))
        tenant = await get_tenant(services.pool, slug)
        cid = await conversations.create_conversation(services.pool, tenant.id, channel=channel)
        console.print(
            f"[dim]conversation {cid} with {tenant.name}. Ctrl-D to quit; while a "
            "person is needed, '/reply TEXT' answers as the agent, '/release' hands back."
            "[/]"
        )
        while True:
            try:
                text = await asyncio.to_thread(console.input, "[bold cyan]you>[/] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not text.strip():
                continue
            if text.startswith("/") and await pending_interrupts(graph, cid):
                await _agent_action(graph, cid, text)
                # After a review: the messages sent meanwhile are answered now, in order.
                await _print_turn(answer_pending(graph, services, tenant, cid, channel=channel))
                continue
            await _print_turn(run_turn(graph, services, tenant, cid, text, channel=channel))


async def _print_turn(events: Any) -> None:
    started = False
    async for name, data in events:
        if name == "token":
            if not started:
                console.print("[bold green]assistant>[/] ", end="")
                started = True
            console.print(data["text"], end="", markup=False, highlight=False)
        elif name == "message.completed":
            if started:
                console.print()
            for c in data["citations"]:
                link = f" {escape(c['url'])}" if c.get("url") else ""
                source = escape(f"{c['title']} [{c['source_id']}]{link}")
                console.print(f"  [dim]source: {source}[/]", markup=True)
            started = False
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


async def _agent_action(graph: Any, cid: uuid.UUID, text: str) -> None:
    """Resume the waiting thread as the agent (/reply, /release, /close, /approve, /edit...)."""
    from langgraph.types import Command
    from pydantic import ValidationError

    from api.streaming import pending_interrupts, thread_config
    from graph.interrupts import parse_agent_action, parse_review

    verb, _, rest = text[1:].partition(" ")
    pending = (await pending_interrupts(graph, cid))[0].value
    raw: dict[str, Any] = {"action": verb}
    if verb in ("reply", "release", "close", "edit") and rest:
        raw["text"] = rest
    if verb == "reject":
        raw["reason"] = rest or "rejected by the agent"
    try:
        parse = parse_review if pending["kind"] == "approval" else parse_agent_action
        value = parse(raw).model_dump()
    except ValidationError as exc:
        console.print(f"[red]not a valid action here:[/] {exc.errors()[0]['msg']}")
        return

    async def events() -> Any:
        async for mode, chunk in graph.astream(
            Command(resume=value), thread_config(cid), stream_mode=["updates", "custom"]
        ):
            if mode == "custom" and chunk.get("type") == "token":
                yield "token", chunk
            elif mode == "updates" and "respond" in chunk:
                yield "message.completed", {"citations": chunk["respond"]["reply"]["citations"]}
            elif mode == "updates" and "__interrupt__" in chunk:
                yield "status", {"status": "waiting_human"}

    await _print_turn(events())


def main() -> None:
    """Entry point of the ``deskgraph`` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
