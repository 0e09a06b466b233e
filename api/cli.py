"""``deskgraph``: the command line of the support desk."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from api.chat_commands import Resume

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
log = logging.getLogger(__name__)


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


def _exit_through_hooks_on_signals() -> None:
    """Make SIGTERM and SIGHUP (a closed terminal) end the process through its exit hooks.

    Python's default for both ends the process on the spot, and pgserver stops the embedded
    Postgres in an exit hook: it would run on with nobody to stop it.
    """
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


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
    """Serve the HTTP API (Ctrl-C or SIGTERM stops it and the embedded Postgres it started)."""
    import uvicorn

    from api.app import create_app

    base = f"http://{host}:{port}"
    on_ready = None
    if demo:
        from api.demo import ensure_demo, ensure_demo_keys, write_demo_file
        from helpdesk.auth import load_secret
        from helpdesk.config import get_settings

        async def on_ready(services: Any) -> None:
            settings = get_settings()
            log.info("indexing the demo knowledge base (unchanged articles are skipped)…")
            tenant, stats = await ensure_demo(services)
            demo_keys = await ensure_demo_keys(services, tenant, load_secret(settings))
            path = write_demo_file(settings.data_dir, demo_keys)
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

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                log.info("ready on %s (Ctrl-C stops the server)", base)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # pgserver logs every command it runs and onnxruntime every step of the one-off export;
    # the start-up's own progress lines say enough.
    for noisy in ("pgserver", "fusion_base", "onnx_model", "onnx_model_bert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again with
    # the handler it found: this one.
    _exit_through_hooks_on_signals()
    config = uvicorn.Config(
        create_app(on_ready=on_ready),
        host=host,
        port=port,
        log_level="info",
        forwarded_allow_ips=forwarded_allow_ips,
    )
    Server(config).run()


@app.command("chat")
def chat(
    tenant: Annotated[str, typer.Option("--tenant")] = "demo",
    channel: Annotated[str, typer.Option("--channel")] = "web",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name when you act as the agent")
    ] = None,
) -> None:
    """Chat with a tenant's assistant in the terminal; '/help' lists the agent's commands
    (/reply, /release, /close, /approve, /edit, /reject)."""
    _exit_through_hooks_on_signals()
    asyncio.run(_chat(tenant, channel, agent))


async def _chat(slug: str, channel: str, agent: str | None) -> None:
    from api.after_review import answer_pending
    from api.chat_commands import Resume, parse_command, waiting_for
    from api.streaming import pending_interrupts, run_turn
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk import conversations
    from helpdesk.tenants import get_tenant
    from helpdesk.text_policy import InvalidText

    async with open_services() as services:
        graph = build_graph(services, await open_checkpointer(services))
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
            if text.startswith("/"):
                pending = await pending_interrupts(graph, cid)
                waiting = waiting_for(pending[0].value["kind"] if pending else None)
                parsed = parse_command(text, waiting, agent or "agent")
                if isinstance(parsed, Resume):
                    await _agent_action(graph, cid, parsed, agent)
                    # After a review: the messages sent meanwhile are answered now, in order.
                    await _print_turn(answer_pending(graph, services, tenant, cid, channel=channel))
                else:
                    console.print(parsed, markup=False, highlight=False)
                continue
            try:
                await _print_turn(run_turn(graph, services, tenant, cid, text, channel=channel))
            except InvalidText as exc:  # refused before anything was stored or run
                console.print(f"[red]error>[/] {escape(str(exc))}; nothing was sent")


async def _print_turn(events: Any, speaker: str = "assistant") -> None:
    started = False
    async for name, data in events:
        if name == "token":
            if not started:
                console.print(f"[bold green]{escape(speaker)}>[/] ", end="")
                started = True
            console.print(data["text"], end="", markup=False, highlight=False)
        elif name == "message.completed":
            if started:
                console.print()
            else:  # sent whole, not streamed (the safety steps while a person owns the chat)
                console.print(f"[bold green]{escape(speaker)}>[/] ", end="")
                console.print(data["text"], markup=False, highlight=False)
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


async def _agent_action(graph: Any, cid: uuid.UUID, action: Resume, agent: str | None) -> None:
    """Resume the waiting thread with a validated action (see :mod:`api.chat_commands`)."""
    from langgraph.types import Command

    from api.streaming import thread_config

    value = action.value
    # The customer is told whose words these are: the agent's own, or the assistant's draft.
    speaker = "assistant" if action.speaker == "assistant" else "agent"
    if speaker == "agent" and agent:
        speaker = f"agent ({agent})"

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

    await _print_turn(events(), speaker)


def main() -> None:
    """Entry point of the ``deskgraph`` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
