"""``deskgraph tenant identity-secret``: the secret a business's server signs its signed-in
customers' identity with (:mod:`helpdesk.identity`, docs/contacts.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from cli.pool import run_with_pool

console = Console(stderr=True)


def identity_secret(
    slug: str,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Make a new secret; identities signed with the old one are refused from now on.",
        ),
    ] = False,
) -> None:
    """Make the tenant's identity secret and print it once (or, with --rotate, replace it).

    The secret is shown only when it is made: put it in the business's server configuration
    then. Asked again without --rotate, the command says one exists, prints nothing and
    exits 2.
    """
    from helpdesk.identity import ensure_identity_secret
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        tenant = await get_tenant(pool, slug)
        secret, made = await ensure_identity_secret(pool, tenant.id, rotate=rotate)
        if not made:
            console.print(
                f"tenant {tenant.slug} already has an identity secret; it was shown when it was"
                " made. --rotate makes a new one (the old one stops working at once).",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        console.print(
            f"{'new ' if rotate else ''}identity secret of tenant {tenant.slug}; it is shown only"
            " once. Sign with HMAC-SHA256 as docs/contacts.md describes:",
            soft_wrap=True,
        )
        # Plain print on stdout: the secret must be copyable, without wrapping or markup.
        print(secret)

    run_with_pool(body)
