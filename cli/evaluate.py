"""``deskgraph eval``: evaluation suites, run comparison and feedback export.

```
deskgraph eval retrieval  [--kb PATH --questions PATH] [--k 4] [--mode hybrid]
deskgraph eval answers    [--kb PATH --questions PATH | --mtrag PATH] [--judge/--no-judge]
deskgraph eval intents    [--train PATH --test PATH] [--oos-label LABEL] [--folds 5]
deskgraph eval guardrails [--attacks PATH] [--benign PATH]
deskgraph eval escalation [--kb PATH --questions PATH | --mtrag PATH]
deskgraph eval all        [--datasets ../shared/datasets]
deskgraph eval compare RUN_A RUN_B [--html FILE] [--json] [--fail-on-regression]
deskgraph eval export-feedback --tenant SLUG --out FILE.jsonl
```

Every suite writes ``<out>/<run id>.json`` and ``.html`` (default ``evals/reports``), prints the
metrics, and uploads the run to LangSmith when ``LANGSMITH_API_KEY`` is set. Suites run on the
eval database (``deskgraph_eval`` on the configured server, or ``--database-url``), never on the
product's conversations; ``export-feedback`` reads the product database, where the reviews are.
Bad input (a missing file, a malformed row) exits with status 2 and a message naming it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from evals.store import Saved

eval_app = typer.Typer(
    help="Evaluation suites, reports, run comparison and feedback export.",
    no_args_is_help=True,
)
console = Console()

Out = Annotated[Path, typer.Option("--out", help="Folder for the JSON and HTML reports.")]
DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Eval database (default: deskgraph_eval on the server)."),
]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N rows.")]
Kb = Annotated[
    Path | None,
    typer.Option("--kb", exists=True, help="Knowledge base: folder or JSONL (default: demo)."),
]
Questions = Annotated[
    Path | None,
    typer.Option("--questions", exists=True, dir_okay=False, help="Questions JSONL/CSV."),
]
Mtrag = Annotated[
    Path | None,
    typer.Option("--mtrag", exists=True, dir_okay=False, help="MTRAG conversations (dev.jsonl)."),
]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, help="Conversations at once.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
DEFAULT_OUT = Path("evals/reports")
SuiteOptions = dict[str, Any]
# The options every suite command ends with, after its own (see ``_suite``).
_SUITE_OPTIONS = (
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_OUT, annotation=Out),
    inspect.Parameter(
        "database_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DbUrl
    ),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOut),
)


def _fail(exc: BaseException) -> typer.Exit:
    console.print(f"[red]error:[/] {exc}")
    return typer.Exit(2)


def _print_run(saved: Saved, as_json: bool) -> None:
    rec = saved.record
    if as_json:
        typer.echo(json.dumps(summary(saved), ensure_ascii=False))
        return
    table = Table(title=f"{rec.suite} · {rec.dataset.get('name', '')} · {rec.run_id}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rec.metrics.items():
        table.add_row(name, "–" if value is None else f"{value:.4f}")
    console.print(table)
    for note in rec.notes:
        console.print(f"[dim]{note}[/]")
    console.print(f"report: {saved.files.html}\njson:   {saved.files.json}")
    console.print(f"took {rec.duration_s:.1f} s; LangSmith: {saved.langsmith}")


def summary(saved: Saved) -> dict[str, Any]:
    """One run as a JSON line (what ``--json`` and ``eval all`` print)."""
    rec = saved.record
    return {
        "suite": rec.suite,
        "dataset": rec.dataset.get("name"),
        "run_id": rec.run_id,
        "rows": len(rec.examples),
        "duration_s": rec.duration_s,
        "metrics": rec.metrics,
        "html": str(saved.files.html),
        "langsmith": saved.langsmith,
    }


def _run_suite(
    name: str,
    options: SuiteOptions,
    *,
    out: Path,
    database_url: str | None,
    as_json: bool,
) -> None:
    from evals.registry import SUITES
    from evals.store import save
    from evals.workspace import eval_services

    job = SUITES[name].job(options)

    async def go() -> Saved:
        async with eval_services(database_url=database_url) as services:
            record = await job(services)
        return save(record, out)

    try:
        saved = asyncio.run(go())
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(exc) from exc
    _print_run(saved, as_json)


def _suite(name: str) -> Callable[[Callable[..., SuiteOptions]], Callable[..., SuiteOptions]]:
    """Register ``deskgraph eval <name>`` for the suite of that name in ``evals.registry``: the
    decorated function takes the suite's own command line options and returns the options of
    its ``run``; the command adds the options every suite shares (``--out``, ``--database-url``,
    ``--json``) after them and runs the suite with :func:`_run_suite` (eval database, saved
    report, printed summary, bad input exits 2)."""

    def register(build: Callable[..., SuiteOptions]) -> Callable[..., SuiteOptions]:
        own = inspect.signature(build, eval_str=True)

        def command(*, out: Path, database_url: str | None, as_json: bool, **options: Any) -> None:
            run_options = build(**options)
            _run_suite(name, run_options, out=out, database_url=database_url, as_json=as_json)

        # typer reads the options from the signature: the suite's own, then the shared ones.
        signature = own.replace(
            parameters=[*own.parameters.values(), *_SUITE_OPTIONS], return_annotation=None
        )
        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        command.__name__ = build.__name__
        command.__doc__ = build.__doc__
        eval_app.command(name)(command)
        return build

    return register


@_suite("retrieval")
def retrieval(
    kb: Kb = None,
    questions: Questions = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Chunks the drafter gets.")] = 4,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Chunks for MRR.")] = 10,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, vector or fulltext.")] = "hybrid",
    limit: Limit = None,
) -> SuiteOptions:
    """Retrieval: recall@k, MRR and ragas id-based / non-LLM context metrics."""
    if mode not in ("hybrid", "vector", "fulltext"):
        raise _fail(ValueError(f"--mode must be hybrid, vector or fulltext, got {mode!r}"))
    return {"kb": kb, "questions": questions, "k": k, "depth": depth, "mode": mode, "limit": limit}


@_suite("answers")
def answers(
    kb: Kb = None,
    questions: Questions = None,
    mtrag: Mtrag = None,
    judge: Annotated[
        bool | None,
        typer.Option(
            "--judge/--no-judge",
            help="ragas LLM metrics (default: on when a judge model is configured).",
        ),
    ] = None,
    limit: Limit = None,
    concurrency: Concurrency = 1,
) -> SuiteOptions:
    """Answers: run the whole graph per question; string / rouge / groundedness (+ LLM)."""
    return {
        "kb": kb,
        "questions": questions,
        "mtrag_path": mtrag,
        "judge": judge,
        "limit": limit,
        "concurrency": concurrency,
    }


@_suite("intents")
def intents(
    train: Annotated[
        Path | None,
        typer.Option("--train", exists=True, dir_okay=False, help="Training rows (CSV/JSONL)."),
    ] = None,
    test: Annotated[
        Path | None,
        typer.Option("--test", exists=True, dir_okay=False, help="Test rows (CSV/JSONL)."),
    ] = None,
    split: Annotated[
        int | None,
        typer.Option("--split", min=2, help="Hold out 1 of K stratified folds of --train."),
    ] = None,
    oos_label: Annotated[
        str | None, typer.Option("--oos-label", help="The data's out-of-scope label (oos).")
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Demo cross-validation.")] = 5,
    limit: Limit = None,
) -> SuiteOptions:
    """Intents: accuracy, macro-F1, per-intent scores, confusion, out-of-scope recall."""
    return {
        "train": train,
        "test": test,
        "split": split,
        "oos_label": oos_label,
        "folds": folds,
        "limit": limit,
    }


@_suite("guardrails")
def guardrails(
    attacks: Annotated[
        list[Path] | None,
        typer.Option("--attacks", exists=True, dir_okay=False, help="Attack JSONL (repeatable)."),
    ] = None,
    benign: Annotated[
        list[Path] | None,
        typer.Option(
            "--benign", exists=True, dir_okay=False, help="Ordinary messages (repeatable)."
        ),
    ] = None,
    limit: Limit = None,
) -> SuiteOptions:
    """Guardrails: attacks blocked or handed off, ordinary messages wrongly blocked."""
    return {"attacks": attacks or (), "benign": benign or (), "limit": limit}


@_suite("escalation")
def escalation(
    kb: Kb = None,
    questions: Questions = None,
    mtrag: Mtrag = None,
    limit: Limit = None,
    concurrency: Concurrency = 1,
) -> SuiteOptions:
    """Escalation: answers the answerable, declines or hands off the unanswerable?"""
    return {
        "kb": kb,
        "questions": questions,
        "mtrag_path": mtrag,
        "limit": limit,
        "concurrency": concurrency,
    }


@eval_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline run: id, id prefix or JSON path.")],
    run_b: Annotated[str, typer.Argument(help="New run: id, id prefix or JSON path.")],
    reports: Annotated[
        Path, typer.Option("--reports", help="Where run ids are looked up.")
    ] = DEFAULT_OUT,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page.")] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Metric changes up to this are noise.")
    ] = 1e-6,
    show: Annotated[int, typer.Option("--show", min=0, help="Examples listed per side.")] = 10,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when anything regressed.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """Compare two runs of a suite: what improved and what regressed."""
    from evals.compare import compare_runs
    from evals.store import load_run

    try:
        comp = compare_runs(load_run(run_a, reports), load_run(run_b, reports), tolerance=tolerance)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(exc) from exc
    if html is not None:
        from evals.report import render_comparison

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_comparison(comp), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(comp.summary(), ensure_ascii=False))
    else:
        _print_comparison(comp, show)
        if html is not None:
            console.print(f"comparison page: {html}")
    if fail_on_regression and comp.regressed:
        raise typer.Exit(1)


def _print_comparison(comp: Any, show: int) -> None:
    from evals.report import short

    for warning in comp.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    table = Table(title=f"{comp.a.suite}: {comp.a.run_id} → {comp.b.run_id}")
    for col in ("metric", "A", "B", "Δ", ""):
        table.add_column(col, justify="right" if col in ("A", "B", "Δ") else "left")
    style = {"improved": "green", "regressed": "red"}
    for m in comp.metrics:
        table.add_row(
            m.name,
            "–" if m.a is None else f"{m.a:.4f}",
            "–" if m.b is None else f"{m.b:.4f}",
            "–" if m.delta is None else f"{m.delta:+.4f}",
            f"[{style.get(m.status, 'dim')}]{m.status}[/]",
        )
    console.print(table)
    for status in ("regressed", "improved"):
        changed = [e for e in comp.examples if e.status == status]
        console.print(f"[{style[status]}]{len(changed)} examples {status}[/]")
        for e in changed[:show]:
            console.print(
                f"  {e.id}: {_num(e.score_a)} → {_num(e.score_b)}  {short(e.input, 100)}",
                markup=False,
                highlight=False,
            )
    for status in ("added", "removed"):
        n = len(comp.example_ids(status))
        if n:
            console.print(f"[dim]{n} examples {status}[/]")


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


@eval_app.command("export-feedback")
def export_feedback(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write.")],
    only: Annotated[
        str | None, typer.Option("--only", help="edited or rejected (default: both).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: the product database.")
    ] = None,
) -> None:
    """Export drafts that agents edited or rejected as an eval dataset (JSONL)."""
    from evals.feedback import export_feedback as export
    from helpdesk import db
    from helpdesk.config import get_settings
    from helpdesk.errors import NotFound

    if only not in (None, "edited", "rejected"):
        raise _fail(ValueError(f"--only must be edited or rejected, got {only!r}"))
    labels = (only,) if only else ("edited", "rejected")

    async def go() -> Any:
        if database_url:
            url = database_url
        else:
            url = await asyncio.to_thread(db.app_database_url, get_settings())
        pool = db.make_pool(url, 2)
        await pool.open(wait=True)
        try:
            return await export(pool, tenant, out, labels=labels)
        finally:
            await pool.close()

    try:
        stats = asyncio.run(go())
    except (NotFound, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(
        f"wrote {stats.rows} rows ({stats.edited} edited, {stats.rejected} rejected) to {out}"
    )


@eval_app.command("all")
def run_all(
    datasets: Annotated[
        Path | None,
        typer.Option(
            "--datasets",
            exists=True,
            file_okay=False,
            help="Shared datasets folder: also run the suites on it.",
        ),
    ] = None,
    out: Out = DEFAULT_OUT,
    database_url: DbUrl = None,
) -> None:
    """Every offline suite on the demo tenant (and on the shared datasets when given).

    Prints one JSON line per run and a final line with the total time.
    """
    from evals.registry import plan_all
    from evals.store import save
    from evals.workspace import eval_services

    async def go() -> float:
        started = time.perf_counter()
        async with eval_services(database_url=database_url) as services:
            for job in plan_all(datasets):
                record = await job(services)
                typer.echo(json.dumps(summary(save(record, out)), ensure_ascii=False))
        return time.perf_counter() - started

    try:
        total = asyncio.run(go())
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps({"total_s": round(total, 1), "datasets": str(datasets or "")}))
