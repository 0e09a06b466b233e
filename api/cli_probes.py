"""Probes: run one piece of the desk on inputs from the shell, one input per line.

``deskgraph answer --tenant SLUG [--jsonl]`` runs the whole support graph (guard, classify,
retrieve, draft, judge, routing) on each input line, each in a fresh conversation of the tenant
(``evals.answering``). A line is a plain question, or a JSON object: ``{"turns": [{"speaker":
"user"|"agent", "text"}, ...]}`` whose last user turn is answered with the turns before it as
the conversation so far, or ``{"question": ...}``. With ``--jsonl`` every input line gives
exactly one output line::

    {"answer": str, "citations": [source ids], "handoff": bool, "declined": bool,
     "confidence": float | null}

``declined`` means the assistant said the knowledge base does not answer it; ``handoff`` that
the conversation went to a person (``answer`` is then the hand-off message). A line that is not
a valid input gives ``{"error": {"code": "invalid_item", "message": ...}}`` on its output line,
the rest still run, and the command exits with status 2. The conversations are real rows of the
tenant (channel ``api``), so probe an evaluation tenant or a staging database.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)


def parse_line(line: str) -> str | dict[str, Any]:
    """One input line as an answering item: a JSON object or string, else the text itself.

    Raises:
        ValueError: the line is a JSON value that is neither an object nor a string.
    """
    text = line.strip()
    if text[:1] in ("{", '"', "["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text  # a question that happens to start with a quote or bracket
        if isinstance(value, dict | str):
            return value
        raise ValueError(f"expected a question or a JSON object, got JSON {type(value).__name__}")
    return text


def answer(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")],
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per input line on stdout")
    ] = False,
) -> None:
    """Answer questions through the whole graph; inputs are read from stdin, one per line."""
    try:
        failed = asyncio.run(_run(tenant, jsonl))
    except LookupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if failed:
        console.print(f"[red]{failed} line(s) were not valid inputs[/]")
        raise typer.Exit(2)


async def _run(slug: str, jsonl: bool) -> int:
    from evals.answering import answer_one, parse_item
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk.errors import NotFound

    failed = 0
    async with open_services() as services:
        try:
            tenant = await services.tenant(slug)
        except NotFound as exc:
            raise LookupError(f"no tenant {slug!r}") from exc
        graph = build_graph(services, await open_checkpointer(services))
        while line := await asyncio.to_thread(sys.stdin.readline):
            try:
                item = parse_line(line)
                parse_item(item)
            except ValueError as exc:
                failed += 1
                _emit_error(str(exc), jsonl)
                continue
            result = await answer_one(graph, services, tenant, item)
            if jsonl:
                sys.stdout.write(json.dumps(result.to_json()) + "\n")
                sys.stdout.flush()
            else:
                _print(result)
    return failed


def _emit_error(message: str, jsonl: bool) -> None:
    if jsonl:
        sys.stdout.write(json.dumps({"error": {"code": "invalid_item", "message": message}}) + "\n")
        sys.stdout.flush()
    else:
        console.print(f"[red]invalid input:[/] {message}")


def _print(result: Any) -> None:
    out = Console()
    kind = "handed off" if result.handoff else "declined" if result.declined else "answered"
    conf = "-" if result.confidence is None else f"{result.confidence:.2f}"
    out.print(f"[bold cyan]Q:[/] {result.input}", markup=True, highlight=False)
    out.print(f"[bold green]A:[/] {result.answer}", markup=True, highlight=False)
    out.print(
        f"[dim]{kind}; confidence {conf}; intent {result.intent}; "
        f"sources {', '.join(result.citations) or '-'}; {result.latency_s:.2f}s[/]",
        markup=True,
        highlight=False,
    )
