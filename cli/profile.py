"""``deskgraph tenant profile``: print or change a tenant's business profile.

Changes are validated whole before anything is saved (a bad value exits 2 naming the field),
and every save is a new version (``helpdesk/profile.py``); ``--versions`` lists them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.admin import option_value
from cli.pool import run_with_pool

console = Console()


def tenant_profile(
    slug: str,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE to change (repeatable); KEY is a dotted path (contact.phone,"
            " hours.saturday, chat.guardrail_profile), VALUE is JSON (true, 500,"
            ' [{"opens": "08:00", "closes": "12:00"}]) or text.',
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A whole profile as JSON (what this command prints)."),
    ] = None,
    versions: Annotated[
        bool, typer.Option("--versions", help="List the saved versions instead.")
    ] = False,
) -> None:
    """Print a tenant's business profile (every key), or save a changed one as a new version.

    ``--file`` replaces the profile with the file's (then ``--set`` applies on top of it).
    """
    from helpdesk import profile as profiles
    from helpdesk.errors import InvalidInput
    from helpdesk.tenants import get_tenant

    changes: list[tuple[str, Any]] = []
    for item in set_ or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]error:[/] --set expects KEY=VALUE, got {item!r}")
            raise typer.Exit(2)
        changes.append((key.strip(), option_value(raw)))
    loaded: Any = None
    if file is not None:
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            console.print(f"[red]error:[/] cannot read {file}: {exc}", soft_wrap=True)
            raise typer.Exit(2) from exc

    async def body(pool: Any) -> None:
        tenant = await get_tenant(pool, slug)
        if versions:
            for row in await profiles.profile_versions(pool, tenant.id):
                print(f"{row['version']}\t{row['saved_at']:%Y-%m-%d %H:%M:%S%z}\t{row['saved_by']}")
            return
        profile = tenant.business
        if loaded is not None or changes:
            try:
                if loaded is not None:
                    profile = profiles.parse_profile(loaded)
                profile = profiles.with_changes(profile, changes)
            except InvalidInput as exc:
                console.print(f"[red]error:[/] {exc.message} (nothing was saved)", soft_wrap=True)
                raise typer.Exit(2) from exc
            version = await profiles.save_profile(
                pool, tenant.id, profile, based_on=tenant.profile_version, saved_by="cli"
            )
            Console(stderr=True).print(f"saved version {version}", style="green")
        print(profiles.dumps(profile))  # plain print: JSON for scripts, unwrapped

    run_with_pool(body)
