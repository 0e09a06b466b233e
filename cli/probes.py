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

``deskgraph guard [--jsonl] [--policy FILE]`` runs only the input guard (``nlp.guard``), no
database: a line is a plain message or ``{"text": ...}``; with ``--jsonl`` each gives one line::

    {"blocked": bool, "category": str, "reason": str, "layer": str,
     "action": "handoff" | "refuse" | "continue", "handoff_reason": str | null}

``action`` is what the graph does with the message before any drafting under the tenant policy
(``--policy``: a JSON file of ``TenantPolicy`` fields; default, the default policy): a blocked
message is handed to a person (``handoff_on_blocked_input``) or refused; an unblocked one may
still be handed off by the model-free triggers (an explicit request for a person, a hand-off
keyword), else it ``continue``s to classification and drafting.

``deskgraph classify --examples FILE [--jsonl]`` trains the offline intent classifier
(``nlp.classifier``) on labelled examples, no database: CSV ``text,intent[,...]`` (Bitext,
BANKING77) or JSON Lines ``{"text", "intent"}`` (CLINC150; ``oos`` / ``out_of_scope`` rows are
the out-of-scope class). Then a line is a plain message or ``{"text": ...}`` (other fields are
ignored, so a labelled JSONL file can be piped in as it is); with ``--jsonl`` each gives one
line::

    {"intent": str, "confidence": float, "out_of_scope": bool}

``intent`` is ``out_of_scope`` when ``out_of_scope`` is true; ``confidence`` is the calibrated
probability of that answer. Training embeds every example first (about 300 short texts a second
on one thread), then each line is answered as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
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
    from helpdesk.text_policy import InvalidText

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
            try:
                result = await answer_one(graph, services, tenant, item)
            except InvalidText as exc:  # refused before anything ran (helpdesk.text_policy)
                failed += 1
                _emit_error(exc.message, jsonl)
                continue
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


def guard(
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per input line on stdout")
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Tenant policy JSON file (default: the default policy)"),
    ] = None,
) -> None:
    """Screen messages with the input guard; inputs are read from stdin, one per line."""
    from pydantic import ValidationError

    from evals.suites.guardrails import decide
    from helpdesk.config import get_settings
    from helpdesk.policy import TenantPolicy
    from nlp.guard import load_guard

    try:
        tenant_policy = (
            TenantPolicy.model_validate_json(policy.read_text(encoding="utf-8"))
            if policy
            else TenantPolicy()
        )
    except (OSError, ValidationError) as exc:
        console.print(f"[red]error:[/] --policy {policy}: {exc}")
        raise typer.Exit(2) from exc
    input_guard = load_guard(get_settings().prompts_dir)
    failed = 0
    while line := sys.stdin.readline():  # not `for line in sys.stdin`: answer each line as it comes
        if not line.strip():
            continue
        try:
            text = _guard_text(parse_line(line))
        except ValueError as exc:
            failed += 1
            _emit_error(str(exc), jsonl)
            continue
        d = decide(text, input_guard.screen(text), tenant_policy)
        row = {
            **d.verdict,
            "layer": d.layer,
            "action": d.action,
            "handoff_reason": d.handoff_reason,
        }
        if jsonl:
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
        else:
            out = Console()
            label = f"[red]BLOCKED {d.verdict['category']}[/]" if d.verdict["blocked"] else "ok"
            out.print(f"{label} -> {d.action}: {text[:100]}", markup=True, highlight=False)
            if d.verdict["reason"] or d.handoff_reason:
                out.print(f"  [dim]{d.handoff_reason or d.verdict['reason']}[/]", markup=True)
    if failed:
        console.print(f"[red]{failed} line(s) were not valid inputs[/]")
        raise typer.Exit(2)


def _guard_text(item: str | dict[str, Any]) -> str:
    if isinstance(item, str):
        return item
    text = item.get("text")
    if not isinstance(text, str):
        raise ValueError('expected a message or a JSON object with a string "text"')
    return text


def classify(
    examples: Annotated[
        Path,
        typer.Option(
            "--examples", help="Labelled examples: CSV text,intent or JSONL {text, intent}"
        ),
    ],
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per input line on stdout")
    ] = False,
) -> None:
    """Train the offline intent classifier, then classify stdin lines, one per line."""
    from rich.markup import escape

    from nlp.classifier import IntentClassifier, read_examples
    from nlp.models import local_embeddings

    # local_embeddings() runs on Settings.torch_threads (1 by default) even for the bulk
    # embedding of the examples: on the shared 2-core box two threads embedded 60 texts/s
    # against 300 with one.
    try:
        texts, labels = read_examples(examples)
        classifier = IntentClassifier(local_embeddings()).fit(texts, labels)
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/] --examples: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    failed = 0
    while line := sys.stdin.readline():  # not `for line in sys.stdin`: answer each line as it comes
        if not line.strip():
            continue
        try:
            text = _guard_text(parse_line(line))  # a plain message or {"text": ...}
            if not text.strip():
                raise ValueError('expected a non-empty "text"')
        except ValueError as exc:
            failed += 1
            _emit_error(str(exc), jsonl)
            continue
        pred = classifier.predict_many([text])[0]
        row = {
            "intent": pred.intent,
            "confidence": round(pred.confidence, 4),
            "out_of_scope": pred.out_of_scope,
        }
        if jsonl:
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
        else:
            Console().print(
                f"{pred.intent}\t{pred.confidence:.2f}\t{text[:100]}", markup=False, highlight=False
            )
    if failed:
        console.print(f"[red]{failed} line(s) were not valid inputs[/]")
        raise typer.Exit(2)
