"""``deskgraph search``: query a tenant's knowledge base from the shell, one query per line.

It opens only what search needs (database, embedding model, chunk index), not the graph, so it
starts in a few seconds and can be driven by scripts: with ``--jsonl`` every input line gives
exactly one output line, a JSON array of ``{"source_id","chunk_id","title","score"}``, plus
``"url"`` for an article that has a web page: the key is absent, never null, when it has none,
so the four documented keys are all a reader that predates urls ever sees.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def search(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Results per query")] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid | vector | fulltext")] = "hybrid",
    audience: Annotated[
        str, typer.Option("--audience", help="customer (external only) | agent (all)")
    ] = "customer",
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON array per input line on stdout")
    ] = False,
) -> None:
    """Search a tenant's knowledge base; queries are read from stdin, one per line.

    A line may also be a JSON object with a "query" field. Empty lines give an empty result.
    """
    if mode not in ("hybrid", "vector", "fulltext"):
        raise typer.BadParameter("--mode must be hybrid, vector or fulltext")
    if audience not in ("customer", "agent"):
        raise typer.BadParameter("--audience must be customer or agent")
    try:
        asyncio.run(_run(tenant, k, mode, audience, jsonl))  # type: ignore[arg-type]
    except LookupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


async def _run(
    slug: str,
    k: int,
    mode: Literal["hybrid", "vector", "fulltext"],
    audience: Literal["customer", "agent"],
    jsonl: bool,
) -> None:
    from graph.runtime import open_knowledge_base
    from helpdesk.errors import NotFound
    from helpdesk.tenants import get_tenant

    async with open_knowledge_base(pool_size=2) as (pool, kb):
        try:
            tenant = await get_tenant(pool, slug)
        except NotFound as exc:
            raise LookupError(f"no tenant {slug!r}") from exc
        while line := await asyncio.to_thread(sys.stdin.readline):
            query = _query_of(line)
            hits = await kb.search(tenant.id, query, k=k, mode=mode, audience=audience)
            rows: list[dict[str, object]] = []
            for h in hits:
                row: dict[str, object] = {
                    "source_id": h["source_id"],
                    "chunk_id": h["chunk_id"],
                    "title": h["title"],
                    "score": round(h["score"], 6),
                }
                if url := h.get("url"):
                    row["url"] = url
                rows.append(row)
            if jsonl:
                sys.stdout.write(json.dumps(rows) + "\n")
                sys.stdout.flush()
            else:
                _print_table(query, rows)


def _query_of(line: str) -> str:
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return text
        if isinstance(obj, dict) and isinstance(obj.get("query"), str):
            return str(obj["query"])
    return text


def _print_table(query: str, rows: list[dict[str, object]]) -> None:
    table = Table(title=query or "(empty query)", title_justify="left")
    for col in ("#", "source_id", "title", "score"):
        table.add_column(col)
    for i, row in enumerate(rows, 1):
        table.add_row(str(i), str(row["source_id"]), str(row["title"]), f"{row['score']:.3f}")
    Console().print(table)
