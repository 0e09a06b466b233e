"""``deskgraph keys``: create, list and revoke a tenant's API keys."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from cli.pool import run_with_pool

keys_app = typer.Typer(help="API keys (widget, agent, admin).", no_args_is_help=True)
console = Console()


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")],
    kind: Annotated[Literal["widget", "agent", "admin"], typer.Option("--kind")],
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Allowed browser origin of a widget key (repeatable)."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")] = "",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from helpdesk import keys
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        secret, key = await keys.create_key(pool, t.id, kind, name=name, origins=origin or [])
        console.print(f"created {kind} key {key.id} for tenant {t.slug}; it is shown only once:")
        # Plain print: the key must be copyable, without wrapping or markup.
        print(secret)

    run_with_pool(body)


@keys_app.command("list")
def list_keys(tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")]) -> None:
    """List a tenant's keys (prefixes only)."""
    from helpdesk import keys
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        table = Table("id", "kind", "name", "prefix", "origins", "created", "revoked")
        for k in await keys.list_keys(pool, t.id):
            table.add_row(
                str(k.id),
                k.kind,
                k.name,
                k.prefix + "…",
                ", ".join(k.allowed_origins),
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
            )
        console.print(table)

    run_with_pool(body)


@keys_app.command("revoke")
def revoke(
    key_id: uuid.UUID, tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")]
) -> None:
    """Revoke a key (API processes stop accepting it within seconds)."""
    from helpdesk import keys
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        key = await keys.revoke_key(pool, t.id, key_id)
        console.print(f"revoked {key.kind} key {key.id} ({key.prefix}…)")

    run_with_pool(body)
