"""``deskgraph tenant policy`` and ``deskgraph purge``: a tenant's rules, and its retention."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.pool import run_with_pool

console = Console()


def option_value(raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, true/false/null, lists), else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def tenant_policy(
    slug: str,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help='KEY=VALUE to change (repeatable); VALUE is JSON (30, null, ["legal"]) or'
            " text. Without --set the policy is printed.",
        ),
    ] = None,
) -> None:
    """Print a tenant's policy (every key, defaults included), or change keys of it.

    The whole policy is validated before anything is saved: an unknown key or a bad value
    changes nothing (exit 2). Keys and defaults: ``helpdesk/policy.py``.
    """
    from pydantic import ValidationError

    from helpdesk.policy import TenantPolicy
    from helpdesk.tenants import get_tenant, set_policy

    changes: dict[str, Any] = {}
    for item in set_ or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]error:[/] --set expects KEY=VALUE, got {item!r}")
            raise typer.Exit(2)
        changes[key.strip()] = option_value(raw)

    async def body(pool: Any) -> None:
        tenant = await get_tenant(pool, slug)
        policy = tenant.policy
        if changes:
            try:
                policy = TenantPolicy.model_validate({**policy.model_dump(), **changes})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "policy"
                console.print(
                    f"[red]error:[/] {where}: {first['msg']} (nothing was saved)", soft_wrap=True
                )
                raise typer.Exit(2) from exc
            await set_policy(pool, tenant.id, policy)
        # Plain print: JSON for scripts, unwrapped.
        print(json.dumps(policy.model_dump(mode="json"), indent=2))

    run_with_pool(body)


def purge(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant (default: every tenant)")
    ] = None,
    older_than_days: Annotated[
        int | None,
        typer.Option(
            "--older-than-days",
            min=1,
            help="Instead of the tenant's retention_days (needs --tenant).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete conversations past their tenant's retention_days (helpdesk/retention.py).

    Prints one JSON object: tenant slug -> conversations, tickets and graph threads deleted.
    Tenants without retention_days are left alone unless --older-than-days names a period.
    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from helpdesk.retention import purge_all, purge_conversations
    from helpdesk.tenants import get_tenant

    if older_than_days is not None and tenant is None:
        console.print("[red]error:[/] --older-than-days needs --tenant")
        raise typer.Exit(2)

    async def body(pool: Any) -> None:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        if tenant is None:
            done = await purge_all(pool, saver, dry_run=dry_run)
        else:
            t = await get_tenant(pool, tenant)
            days = older_than_days if older_than_days is not None else t.policy.retention_days
            if days is None:
                console.print(
                    f"[red]error:[/] tenant {t.slug} has no retention_days; set it"
                    f" (deskgraph tenant policy {t.slug} --set retention_days=N)"
                    " or pass --older-than-days",
                    soft_wrap=True,
                )
                raise typer.Exit(2)
            done = {
                t.slug: await purge_conversations(
                    pool, saver, t.id, timedelta(days=days), dry_run=dry_run
                )
            }
        print(json.dumps({slug: vars(stats) for slug, stats in done.items()}, indent=2))

    run_with_pool(body)
