"""``deskgraph``: the command line of the support desk."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.admin import purge, tenant_policy
from cli.chat import chat
from cli.evaluate import eval_app
from cli.identity import identity_secret
from cli.ingest import ingest
from cli.intents import tenant_intents
from cli.keys import keys_app
from cli.mail import mail_app, mailbox_app
from cli.pool import run_with_pool
from cli.probes import answer, classify, guard
from cli.profile import tenant_profile
from cli.search import search
from cli.signals import exit_through_hooks_on_signals
from cli.tickets import ticket
from cli.users import users_app
from cli.worker import worker

app = typer.Typer(help="deskgraph: AI first-line customer support.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo tenant.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(demo_app, name="demo")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.command("ticket")(ticket)
app.add_typer(mailbox_app, name="mailbox")
app.add_typer(mail_app, name="mail")
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
    """Create the demo tenant, ingest its knowledge base, and create its keys and its demo
    admin and agent, written to <data_dir>/demo.json (idempotent)."""
    from cli.demo import ensure_demo, ensure_demo_keys, ensure_demo_users, write_demo_file
    from graph.runtime import open_services
    from helpdesk.auth import load_secret
    from helpdesk.config import get_settings

    async def go() -> None:
        settings = get_settings()
        async with open_services() as services:
            tenant, stats = await ensure_demo(services)
            console.print(f"demo tenant [bold]{tenant.slug}[/]: {stats}")
            demo_keys = await ensure_demo_keys(services, tenant, load_secret(settings))
            staff = await ensure_demo_users(services, tenant, settings.data_dir, settings)
            path = write_demo_file(settings.data_dir, {**demo_keys, "users": staff})
            console.print(f"keys and the demo staff's sign-in written to {path}")

    asyncio.run(go())


app.command("ingest")(ingest)
app.command("answer")(answer)
app.command("guard")(guard)
app.command("classify")(classify)
app.command("search")(search)
app.command("purge")(purge)
app.command("chat")(chat)
app.command("worker")(worker)
tenant_app.command("policy")(tenant_policy)
tenant_app.command("profile")(tenant_profile)
tenant_app.command("intents")(tenant_intents)
tenant_app.command("identity-secret")(identity_secret)


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
    worker_concurrency: Annotated[
        int,
        typer.Option(
            "--worker-concurrency",
            min=0,
            help="Task-queue jobs run at once by the worker inside this process (0: no"
            " worker here; run `deskgraph worker` instead).",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API with a task-queue worker in-process (Ctrl-C or SIGTERM stops both and
    the embedded Postgres it started)."""
    import uvicorn

    from api.app import create_app
    from helpdesk.config import get_settings as _settings
    from helpdesk.mailboxes import load_mail_key

    # The mailbox passwords' key exists before any mailbox does (generated into the data dir
    # when DESKGRAPH_MAIL_KEY is unset), so `deskgraph mailbox add` and the server agree.
    load_mail_key(_settings())
    base = f"http://{host}:{port}"
    on_ready = None
    if demo:
        from cli.demo import ensure_demo, ensure_demo_keys, ensure_demo_users, write_demo_file
        from helpdesk.auth import load_secret
        from helpdesk.config import get_settings

        async def on_ready(services: Any) -> None:
            settings = get_settings()
            log.info("indexing the demo knowledge base (unchanged articles are skipped)…")
            tenant, stats = await ensure_demo(services)
            demo_keys = await ensure_demo_keys(services, tenant, load_secret(settings))
            staff = await ensure_demo_users(services, tenant, settings.data_dir, settings)
            path = write_demo_file(settings.data_dir, {**demo_keys, "users": staff})
            console.print(
                f"demo tenant [bold]{tenant.slug}[/] ready ({stats.articles_written} articles"
                f" indexed, {stats.articles_unchanged} unchanged); keys written to {path}:",
                soft_wrap=True,
            )
            # Plain print: keys must be copyable without wrapping or markup.
            for name in ("widget_key", "agent_key", "admin_key"):
                print(f"  {name:<11} {demo_keys[name]}")
            for role, who in staff.items():
                print(f"  {'demo ' + role:<11} {who['email']}  password {who['password']}")
            console.print(
                f"  demo page   {base}/demo\n  console     {base}/console?tenant={tenant.slug}\n"
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
    exit_through_hooks_on_signals()
    config = uvicorn.Config(
        create_app(on_ready=on_ready, queue_worker=worker_concurrency),
        host=host,
        port=port,
        log_level="info",
        forwarded_allow_ips=forwarded_allow_ips,
    )
    Server(config).run()


def main() -> None:
    """Entry point of the ``deskgraph`` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
