"""``deskgraph tenant intents``: a tenant's own labelled intent examples (CSV ``text,intent``).

Without options it prints what the tenant has. ``--file`` adds the file's examples to the shared
ones (``prompts/intents.csv``), or with ``--replace`` uses them instead; ``--clear`` goes back to
the shared set. Running servers train the tenant's classifier on its next message.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.pool import run_with_pool

console = Console()


def tenant_intents(
    slug: str,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="CSV with text,intent columns (or JSON Lines)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Use only these intents, not the shared ones.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Back to the shared examples.")] = False,
) -> None:
    """Show, set or clear a tenant's own intent examples."""
    from helpdesk import intents
    from helpdesk.tenants import get_tenant
    from nlp.classifier import read_examples

    if file is not None and clear:
        console.print("[red]error:[/] --file and --clear do not go together")
        raise typer.Exit(2)
    rows: list[tuple[str, str]] = []
    if file is not None:
        try:
            texts, labels = read_examples(file)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            console.print(f"[red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(2) from exc
        rows = list(zip(texts, labels, strict=True))

    async def body(pool: Any) -> None:
        tenant = await get_tenant(pool, slug)
        if clear:
            had = await intents.clear_intents(pool, tenant.id)
            print("cleared" if had else "the tenant already uses the shared examples")
            return
        if file is not None:
            await intents.save_intents(
                pool, tenant.id, rows, "replace" if replace else "add", saved_by="cli"
            )
        own = await intents.load_intents(pool, tenant.id)
        if own is None:
            print("shared examples only (prompts/intents.csv)")
            return
        counts = Counter(intent for _, intent in own.examples)
        print(
            f"mode: {own.mode}; {len(own.examples)} examples; saved {own.saved_at:%Y-%m-%d %H:%M}"
        )
        for intent, n in sorted(counts.items()):
            print(f"  {intent}\t{n}")

    run_with_pool(body)
